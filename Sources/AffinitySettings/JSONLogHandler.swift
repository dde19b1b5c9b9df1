public import Logging
import Synchronization

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A swift-log handler that writes one JSON object per line to standard error:
/// `{"time":"…","level":"info","label":"…","message":"…","affinity.key":"…",…}`.
/// Nested metadata is flattened into dotted keys.
public struct JSONLogHandler: LogHandler {
    private static let output = Mutex(())

    /// The logger label.
    public let label: String
    /// The minimum level written.
    public var logLevel: Logger.Level = .info
    /// Metadata attached to every record.
    public var metadata: Logger.Metadata = [:]

    /// Creates a handler for `label`.
    public init(label: String) {
        self.label = label
    }

    /// Reads or writes one metadata value.
    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// Writes one record.
    public func log(event: LogEvent) {
        let line = record(event)
        Self.output.withLock { _ in
            StandardError.write(line)
        }
    }

    /// One record as the line written for it (with its newline).
    func record(_ event: LogEvent) -> String {
        var line = "{"
        func member(_ name: String, _ value: String) {
            if line.count > 1 { line += "," }
            line += Self.quoted(name) + ":" + Self.quoted(value)
        }
        member("time", Self.timestamp())
        member("level", event.level.rawValue)
        member("label", label)
        member("message", event.message.description)
        var flat: [(String, String)] = []
        Self.flatten(metadata.merging(event.metadata ?? [:]) { _, new in new }, prefix: "", into: &flat)
        for (key, value) in flat.sorted(by: { $0.0 < $1.0 }) where !["time", "level", "label", "message"].contains(key)
        {
            member(key, value)
        }
        return line + "}\n"
    }

    static func flatten(_ metadata: Logger.Metadata, prefix: String, into output: inout [(String, String)]) {
        for (key, value) in metadata {
            let name = prefix.isEmpty ? key : "\(prefix).\(key)"
            switch value {
            case .dictionary(let nested): flatten(nested, prefix: name, into: &output)
            case .array(let values): output.append((name, "[" + values.map(\.description).joined(separator: ",") + "]"))
            case .string(let text): output.append((name, text))
            case .stringConvertible(let value): output.append((name, value.description))
            }
        }
    }

    static func quoted(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }

    private static func timestamp() -> String {
        Date.now.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }
}
