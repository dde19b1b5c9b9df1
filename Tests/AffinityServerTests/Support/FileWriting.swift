import Foundation

/// Writes `text` to `url` atomically.
func write(_ text: String, to url: URL) throws {
    try Data(text.utf8).write(to: url, options: .atomic)
}
