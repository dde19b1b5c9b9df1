import AffinityProtocol
import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Resolves the settings of the project's executables: a command-line flag wins, else its
/// `AFFINITY_*` environment variable, else the caller's default.
///
/// A variable that is set but empty (or only blanks) counts as unset, the way Kubernetes manifests
/// usually blank out an option; a flag given empty is a value and is validated. Every mistake is a
/// ``SettingsError`` whose message is one line naming the flag or the variable it came from.
public struct CommandLineSettings: Sendable {
    /// The environment the variables are read from.
    public let environment: [String: String]

    /// Reads variables from `environment` (the process environment by default).
    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.environment = environment
    }

    /// The raw text of a setting and where it came from, or nil when neither the flag nor the variable is set.
    ///
    /// - Parameters:
    ///   - flag: the value parsed from the command line, nil when the flag was not given.
    ///   - name: the flag's long name without dashes (`port`), used in messages.
    ///   - variable: the environment variable (`AFFINITY_PORT`).
    public func value(_ flag: String?, name: String, variable: String) -> SettingValue? {
        if let flag { return SettingValue(text: flag, source: "--" + name) }
        if let raw = environment[variable]?.trimmingCharacters(in: .whitespaces), !raw.isEmpty {
            return SettingValue(text: raw, source: variable)
        }
        return nil
    }

    /// A non-empty string, or nil when unset.
    public func string(_ flag: String?, name: String, variable: String) throws(SettingsError) -> String? {
        guard let setting = value(flag, name: name, variable: variable) else { return nil }
        guard !setting.text.isEmpty else { throw SettingsError("\(setting.source) must not be empty") }
        return setting.text
    }

    /// A repeatable flag's values, else the variable split at commas; blanks are dropped.
    public func list(_ flags: [String], variable: String) -> [String] {
        let items = flags.isEmpty ? (environment[variable] ?? "").split(separator: ",").map(String.init) : flags
        return items.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// An integer within `range`, or nil when unset.
    public func integer(
        _ flag: String?, name: String, variable: String, in range: ClosedRange<Int>
    ) throws(SettingsError) -> Int? {
        guard let setting = value(flag, name: name, variable: variable) else { return nil }
        guard let number = Int(setting.text), range.contains(number) else {
            throw SettingsError(
                "\(setting.source) must be an integer in \(range.lowerBound)...\(range.upperBound), got \"\(setting.text)\""
            )
        }
        return number
    }

    /// A duration in ``DurationParser``'s syntax of at least `minimum` (by default: more than zero), or nil when unset.
    public func duration(
        _ flag: String?, name: String, variable: String, minimum: Duration? = nil
    ) throws(SettingsError) -> Duration? {
        guard let setting = value(flag, name: name, variable: variable) else { return nil }
        guard let parsed = DurationParser.parse(setting.text) else {
            throw SettingsError(
                "\(setting.source) must be a positive duration such as 500ms, 10s, 5m, 1h or plain seconds, got \"\(setting.text)\""
            )
        }
        if let minimum {
            guard parsed >= minimum else {
                throw SettingsError("\(setting.source) must be a duration of at least \(Self.text(of: minimum)), got \"\(setting.text)\"")
            }
        } else if parsed <= .zero {
            throw SettingsError(
                "\(setting.source) must be a positive duration such as 500ms, 10s, 5m, 1h or plain seconds, got \"\(setting.text)\""
            )
        }
        return parsed
    }

    /// `minimum` in the syntax the user types: `1s`, `250ms`.
    private static func text(of duration: Duration) -> String {
        let milliseconds = duration / .milliseconds(1)
        return milliseconds.truncatingRemainder(dividingBy: 1000) == 0
            ? "\(Int64(milliseconds / 1000))s" : "\(Int64(milliseconds))ms"
    }

    /// The path of a readable file, or nil when unset.
    public func readableFile(_ flag: String?, name: String, variable: String) throws(SettingsError) -> String? {
        guard let setting = value(flag, name: name, variable: variable) else { return nil }
        guard !setting.text.isEmpty else { throw SettingsError("\(setting.source) must not be empty") }
        guard access(setting.text, R_OK) == 0 else {
            throw SettingsError("\(setting.source): cannot read \(setting.text)")
        }
        return setting.text
    }

    /// A log level (`trace` ... `critical`, any case), or nil when unset.
    public func logLevel(_ flag: String?, name: String, variable: String) throws(SettingsError) -> Logger.Level? {
        guard let setting = value(flag, name: name, variable: variable) else { return nil }
        guard let level = Logger.Level(rawValue: setting.text.lowercased()) else {
            throw SettingsError(
                "\(setting.source) must be trace, debug, info, notice, warning, error or critical, got \"\(setting.text)\""
            )
        }
        return level
    }
}

/// The raw text of one setting and where it came from (`--port` or `AFFINITY_PORT`).
public struct SettingValue: Sendable, Equatable {
    /// The text as given.
    public let text: String
    /// The flag (with its dashes) or the variable the text came from, for messages.
    public let source: String

    /// Creates a value from its text and source.
    public init(text: String, source: String) {
        self.text = text
        self.source = source
    }
}

/// A setting that cannot be used; the message is one line that names the flag or variable.
public struct SettingsError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The one-line explanation.
    public let message: String

    /// Creates an error with its one-line message.
    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}
