import AffinityServer
import Testing

@Suite("Configuration")
struct ConfigurationTests {
    @Test func parsesDurations() {
        #expect(DurationParser.parse("500ms") == .milliseconds(500))
        #expect(DurationParser.parse("10s") == .seconds(10))
        #expect(DurationParser.parse("5m") == .seconds(300))
        #expect(DurationParser.parse("1h") == .seconds(3600))
        #expect(DurationParser.parse("30") == .seconds(30))
        #expect(DurationParser.parse("1.5") == .milliseconds(1500))
        #expect(DurationParser.parse("0") == .zero)
    }

    @Test(arguments: ["", "s", "-1s", "1x", "1.s", ".5s", "1..5", "5 s", " 5s", "1e3", "10d", "ms", "nan"])
    func rejectsBadDurations(_ text: String) {
        #expect(DurationParser.parse(text) == nil)
    }

    @Test func frameLimitIsAboveTheMessageLimit() {
        var configuration = AffinityConfiguration(replicaID: "r")
        #expect(configuration.webSocketFrameLimit > configuration.maxMessageBytes)
        configuration.maxMessageBytes = 1024
        #expect(configuration.webSocketFrameLimit >= 1024 + 64 * 1024)
    }
}
