/// Parses the duration syntax of the command line: `500ms`, `10s`, `5m`, `1h`, or plain seconds
/// (`30`, `1.5`).
public enum DurationParser {
    /// Returns the duration, or nil when `text` is not a non-negative duration in that syntax.
    public static func parse(_ text: String) -> Duration? {
        let units: [(suffix: String, milliseconds: Double)] = [
            ("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000),
        ]
        var number = Substring(text)
        var scale = 1000.0
        for unit in units where text.hasSuffix(unit.suffix) {
            number = text.dropLast(unit.suffix.count)
            scale = unit.milliseconds
            break
        }
        guard !number.isEmpty, number.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }),
            number.first != ".", number.last != ".", number.filter({ $0 == "." }).count <= 1,
            let value = Double(number), value.isFinite, value >= 0, value * scale < 1e15
        else { return nil }
        return .milliseconds(Int64((value * scale).rounded()))
    }
}
