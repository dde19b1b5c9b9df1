import AffinityProtocol
import Testing

@testable import AffinityServer

@Suite("AcknowledgedOutcomes")
struct AcknowledgedOutcomesTests {
    let one = ProcessInstanceKey(1)!
    let two = ProcessInstanceKey(2)!
    let three = ProcessInstanceKey(3)!

    @Test func remembersIdsByKeyInOrderOnce() {
        let memory = AcknowledgedOutcomes(capacity: 10)
        memory.insert(key: one, id: "a")
        memory.insert(key: one, id: "b")
        memory.insert(key: one, id: "a")
        memory.insert(key: two, id: "a")
        #expect(memory.ids(of: one) == ["a", "b"])
        #expect(memory.ids(of: two) == ["a"])
        #expect(memory.ids(of: three) == [])
        #expect(memory.contains(key: one, id: "b"))
        #expect(!memory.contains(key: two, id: "b"))
        #expect(!memory.contains(key: three, id: "a"))
    }

    @Test func forgetsTheOldestIdOnceFull() {
        let memory = AcknowledgedOutcomes(capacity: 3)
        memory.insert(key: one, id: "a")
        memory.insert(key: two, id: "b")
        memory.insert(key: one, id: "c")
        memory.insert(key: three, id: "d")
        // "a" (the oldest) went; the key stays while it has ids
        #expect(memory.ids(of: one) == ["c"])
        memory.insert(key: three, id: "e")
        #expect(memory.ids(of: two) == [])
        #expect(!memory.contains(key: two, id: "b"))
        #expect(memory.ids(of: three) == ["d", "e"])
        for id in ["f", "g", "h"] { memory.insert(key: three, id: id) }
        #expect(memory.ids(of: one) == [])
        #expect(memory.ids(of: three) == ["f", "g", "h"])
    }

    @Test func keepsTheLatestIdsOfAKey() {
        let memory = AcknowledgedOutcomes(capacity: 100, idsPerKey: 2)
        for id in ["a", "b", "c"] { memory.insert(key: one, id: id) }
        #expect(memory.ids(of: one) == ["b", "c"])
        #expect(!memory.contains(key: one, id: "a"))
    }

    @Test func staysWithinItsCapacityWhateverIsInserted() {
        let memory = AcknowledgedOutcomes(capacity: 50, idsPerKey: 4)
        for index in 0..<5_000 {
            memory.insert(key: ProcessInstanceKey(Int64(index % 97 + 1))!, id: "id-\(index)")
        }
        let remembered = (1...97).reduce(0) { $0 + memory.ids(of: ProcessInstanceKey(Int64($1))!).count }
        #expect(remembered <= 50)
        #expect(remembered > 0)
        #expect(memory.contains(key: ProcessInstanceKey(Int64(4_999 % 97 + 1))!, id: "id-4999"))
    }
}
