import AffinityProtocol
import AffinitySettings
import Foundation
import Logging
import Testing

@Suite("DurationParser")
struct DurationParserTests {
    @Test func parsesEveryUnitAndPlainSeconds() {
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
}

@Suite("CommandLineSettings")
struct CommandLineSettingsTests {
    @Test func flagWinsOverVariableWhichWinsOverTheDefault() throws {
        let settings = CommandLineSettings(environment: ["AFFINITY_PORT": "9000"])
        #expect(try settings.integer("8000", name: "port", variable: "AFFINITY_PORT", in: 0...65535) == 8000)
        #expect(try settings.integer(nil, name: "port", variable: "AFFINITY_PORT", in: 0...65535) == 9000)
        #expect(try settings.integer(nil, name: "x", variable: "AFFINITY_UNSET", in: 0...1) == nil)
    }

    @Test func blankVariablesCountAsUnsetButEmptyFlagsAreErrors() throws {
        let settings = CommandLineSettings(environment: ["AFFINITY_HOST": "  ", "AFFINITY_TASK_TYPE": ""])
        #expect(try settings.string(nil, name: "host", variable: "AFFINITY_HOST") == nil)
        #expect(try settings.string(nil, name: "task-type", variable: "AFFINITY_TASK_TYPE") == nil)
        #expect(throws: SettingsError("--host must not be empty")) {
            try settings.string("", name: "host", variable: "AFFINITY_HOST")
        }
    }

    @Test func variableValuesAreTrimmed() throws {
        let settings = CommandLineSettings(environment: ["AFFINITY_HOST": " 127.0.0.1 "])
        #expect(try settings.string(nil, name: "host", variable: "AFFINITY_HOST") == "127.0.0.1")
    }

    @Test func errorsNameWhereTheValueCameFrom() {
        let settings = CommandLineSettings(environment: ["AFFINITY_MAX_JOBS": "lots", "AFFINITY_TIMEOUT": "soon"])
        #expect(throws: SettingsError(#"AFFINITY_MAX_JOBS must be an integer in 1...10000, got "lots""#)) {
            try settings.integer(nil, name: "max-jobs", variable: "AFFINITY_MAX_JOBS", in: 1...10_000)
        }
        #expect(throws: SettingsError(#"--max-jobs must be an integer in 1...10000, got "0""#)) {
            try settings.integer("0", name: "max-jobs", variable: "AFFINITY_MAX_JOBS", in: 1...10_000)
        }
        #expect(
            throws: SettingsError(
                #"AFFINITY_TIMEOUT must be a positive duration such as 500ms, 10s, 5m, 1h or plain seconds, got "soon""#
            )
        ) {
            try settings.duration(nil, name: "timeout", variable: "AFFINITY_TIMEOUT")
        }
    }

    @Test func durationsMustBePositiveOrReachTheMinimum() throws {
        let settings = CommandLineSettings(environment: [:])
        #expect(try settings.duration("250ms", name: "t", variable: "AFFINITY_T") == .milliseconds(250))
        #expect(throws: SettingsError.self) { try settings.duration("0", name: "t", variable: "AFFINITY_T") }
        #expect(throws: SettingsError(#"--route-ttl must be a duration of at least 1s, got "500ms""#)) {
            try settings.duration("500ms", name: "route-ttl", variable: "AFFINITY_ROUTE_TTL", minimum: .seconds(1))
        }
        #expect(
            try settings.duration("0", name: "grace", variable: "AFFINITY_GRACE", minimum: .zero) == .zero)
    }

    @Test func listsComeFromRepeatedFlagsOrACommaSeparatedVariable() {
        let settings = CommandLineSettings(environment: ["AFFINITY_URL": " ws://a/v1/ws, ,ws://b/v1/ws "])
        #expect(settings.list([], variable: "AFFINITY_URL") == ["ws://a/v1/ws", "ws://b/v1/ws"])
        #expect(settings.list(["ws://c/v1/ws"], variable: "AFFINITY_URL") == ["ws://c/v1/ws"])
        #expect(settings.list([], variable: "AFFINITY_NONE").isEmpty)
    }

    @Test func filesMustBeReadable() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("settings-\(UUID().uuidString)")
        try Data("token\n".utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let settings = CommandLineSettings(environment: ["AFFINITY_TOKEN_FILE": file.path])
        #expect(try settings.readableFile(nil, name: "token-file", variable: "AFFINITY_TOKEN_FILE") == file.path)
        #expect(throws: SettingsError("--token-file: cannot read /nonexistent/token")) {
            try settings.readableFile("/nonexistent/token", name: "token-file", variable: "AFFINITY_TOKEN_FILE")
        }
    }

    @Test func logLevelsAreCaseInsensitive() throws {
        let settings = CommandLineSettings(environment: ["AFFINITY_LOG_LEVEL": "DEBUG"])
        #expect(try settings.logLevel(nil, name: "log-level", variable: "AFFINITY_LOG_LEVEL") == .debug)
        #expect(throws: SettingsError.self) {
            try settings.logLevel("loud", name: "log-level", variable: "AFFINITY_LOG_LEVEL")
        }
    }
}
