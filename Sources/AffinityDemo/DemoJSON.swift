import Foundation

/// The small JSON view the demo needs to validate request bodies.
enum DemoJSON {
    case object([String: Any])
    case other

    static func parse(_ text: String) -> DemoJSON? {
        guard let value = try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed]) else {
            return nil
        }
        if let object = value as? [String: Any] { return .object(object) }
        return .other
    }
}
