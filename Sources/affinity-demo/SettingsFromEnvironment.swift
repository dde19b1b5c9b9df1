import Foundation

/// Reads a flag's value, else its `AFFINITY_*` environment variable, with clear one-line errors.
struct SettingsFromEnvironment {
    let environment: [String: String]

    struct Invalid: Error, CustomStringConvertible {
        let description: String
    }

    func string(_ flag: String?, _ variable: String) -> String? {
        if let flag, !flag.isEmpty { return flag }
        if let value = environment[variable]?.trimmingCharacters(in: .whitespaces), !value.isEmpty { return value }
        return nil
    }

    /// Repeatable flags; else the variable split at commas.
    func list(_ flags: [String], _ variable: String) -> [String] {
        if !flags.isEmpty { return flags }
        return (environment[variable] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
    }

    func integer(_ flag: String?, _ variable: String, _ range: ClosedRange<Int>, default fallback: Int) throws -> Int {
        guard let text = string(flag, variable) else { return fallback }
        guard let value = Int(text), range.contains(value) else {
            throw Invalid(description: "\(variable) must be an integer in \(range), got \"\(text)\"")
        }
        return value
    }

    func duration(_ flag: String?, _ variable: String, default fallback: Duration) throws -> Duration {
        guard let text = string(flag, variable) else { return fallback }
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600), ("", 1)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            if let number = Double(text.dropLast(suffix.count)), number > 0 {
                return .milliseconds(Int64((number * scale * 1000).rounded()))
            }
        }
        throw Invalid(
            description:
                "\(variable) must be a positive duration such as 500ms, 10s, 5m or plain seconds, got \"\(text)\"")
    }
}
