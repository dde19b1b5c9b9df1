import Testing

@testable import AffinityServer

@Suite("InFlightWindow")
struct InFlightWindowTests {
    func admit(_ window: inout InFlightWindow, _ size: Int) -> Bool {
        window.admit(size)
    }

    @Test func admitsUpToTheCountAndTheBytes() {
        var window = InFlightWindow(maxCount: 3, maxBytes: 1000)
        #expect(admit(&window, 400) == true)
        #expect(admit(&window, 400) == true)
        // the bytes bind first
        #expect(!window.fits(300))
        #expect(admit(&window, 300) == false)
        #expect(window.count == 2 && window.bytes == 800)
        #expect(admit(&window, 200) == true)
        // then the count
        #expect(admit(&window, 1) == false)
        window.release(400)
        #expect(window.count == 2 && window.bytes == 600)
        #expect(admit(&window, 1) == true)
        #expect(window.count == 3 && window.bytes == 601)
    }

    @Test func oneOutcomeAlwaysFitsAnEmptyWindow() {
        var window = InFlightWindow(maxCount: 10, maxBytes: 1000)
        #expect(admit(&window, 5000) == true)
        #expect(admit(&window, 1) == false)
        window.release(5000)
        #expect(window == InFlightWindow(maxCount: 10, maxBytes: 1000))
        #expect(admit(&window, 1000) == true)
    }

    @Test func boundsBelowOneAreOne() {
        var window = InFlightWindow(maxCount: 0, maxBytes: -5)
        #expect(window.maxCount == 1 && window.maxBytes == 1)
        #expect(admit(&window, 10) == true)
        #expect(admit(&window, 0) == false)
    }
}
