import AffinitySettings
import Foundation
import Logging
import Testing

@testable import AffinitySettings

@Suite("JSONLogHandler")
struct JSONLogHandlerTests {
    func event(_ message: Logger.Message, metadata: Logger.Metadata? = nil) -> LogEvent {
        LogEvent(
            level: .warning, message: message, metadata: metadata, source: "test", file: #fileID,
            function: #function, line: #line)
    }

    func parse(_ line: String) throws -> [String: String] {
        #expect(line.hasSuffix("}\n"))
        #expect(line.dropLast().contains("\n") == false, "one record, one line")
        let object = try JSONSerialization.jsonObject(with: Data(line.utf8))
        return try #require(object as? [String: String])
    }

    @Test func writesOneFlatJSONObjectPerRecord() throws {
        var handler = JSONLogHandler(label: "affinity-server")
        handler[metadataKey: "affinity.replica"] = "r1"
        let record = try parse(
            handler.record(
                event(
                    "outcome \"parked\"\nnext line",
                    metadata: ["affinity": ["key": "42", "ids": ["a", "b"]], "error.code": .stringConvertible(7)])))
        #expect(record["level"] == "warning")
        #expect(record["label"] == "affinity-server")
        #expect(record["message"] == "outcome \"parked\"\nnext line")
        #expect(record["affinity.replica"] == "r1")
        #expect(record["affinity.key"] == "42")
        #expect(record["affinity.ids"] == "[a,b]")
        #expect(record["error.code"] == "7")
        let time = try #require(record["time"])
        #expect(try Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(time) <= Date.now)
    }

    @Test func recordMetadataWinsAndReservedNamesAreKept() throws {
        var handler = JSONLogHandler(label: "l")
        handler[metadataKey: "affinity.key"] = "handler"
        let record = try parse(handler.record(event("m", metadata: ["affinity.key": "event", "message": "spoofed"])))
        #expect(record["affinity.key"] == "event")
        #expect(record["message"] == "m")
    }

    @Test func controlCharactersAreEscaped() throws {
        let handler = JSONLogHandler(label: "l")
        let line = handler.record(event("\u{1}\t\r"))
        #expect(line.contains(#""message":"\u0001\t\r""#))
        #expect(try parse(line)["message"] == "\u{1}\t\r")
    }
}
