import Foundation

#if canImport(FoundationXML)
import FoundationXML
#endif

/// Parses the BPMN subset the test engine runs (see ``BPMNProcess``) with Foundation's XMLParser.
public enum BPMNParser {
    /// A BPMN document the engine cannot run, with the reason.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        /// Why the document was rejected.
        public var message: String
        /// The reason.
        public var description: String { message }
    }

    /// Parses every executable process in `data`.
    /// - Throws: ``Failure`` for malformed XML, unsupported elements or missing attributes.
    public static func parse(_ data: [UInt8]) throws -> [BPMNProcess] {
        let delegate = Collector()
        let parser = XMLParser(data: Data(data))
        parser.shouldProcessNamespaces = true
        parser.delegate = delegate
        guard parser.parse() else {
            throw Failure(message: "malformed BPMN XML: \(parser.parserError.map { "\($0)" } ?? "unknown error")")
        }
        if let error = delegate.error { throw error }
        return try delegate.finish()
    }

    private final class Collector: NSObject, XMLParserDelegate {
        struct RawProcess {
            var id: String
            var nodes: [String: BPMNProcess.Element] = [:]
            var pendingCatches: [String: String] = [:]  // element id -> message ref
            var flows: [(source: String, target: String)] = []
        }

        var processes: [RawProcess] = []
        var messages: [String: (name: String, correlationKey: String?)] = [:]
        var stack: [String] = []
        var currentProcess: RawProcess?
        var currentNode: (id: String, kind: String)?
        var currentTask: (type: String?, retries: Int32, headers: [String: String])?
        var currentMessageId: String?
        var error: Failure?

        static let ignoredInProcess: Set<String> = [
            "extensionElements", "documentation", "laneSet", "textAnnotation", "association",
        ]

        func parser(
            _ parser: XMLParser,
            didStartElement name: String,
            namespaceURI: String?,
            qualifiedName: String?,
            attributes: [String: String] = [:]
        ) {
            defer { stack.append(name) }
            let parent = stack.last
            switch name {
            case "process" where parent == "definitions":
                currentProcess = RawProcess(id: attributes["id"] ?? "")
            case "message" where parent == "definitions":
                guard let id = attributes["id"] else { return fail("a message has no id") }
                messages[id] = (attributes["name"] ?? id, nil)
                currentMessageId = id
            case "subscription":
                if let id = currentMessageId {
                    messages[id]?.correlationKey = attributes["correlationKey"]
                }
            case _ where parent == "process":
                guard currentProcess != nil else { return }
                handleFlowNode(name, attributes)
            case "taskDefinition":
                guard currentTask != nil else { return }
                currentTask?.type = attributes["type"]
                if let retries = attributes["retries"] {
                    guard let value = Int32(retries) else { return fail("retries '\(retries)' is not a number") }
                    currentTask?.retries = value
                }
            case "header":
                if let key = attributes["key"] { currentTask?.headers[key] = attributes["value"] ?? "" }
            case "messageEventDefinition":
                if let node = currentNode, node.kind == "intermediateCatchEvent" {
                    currentProcess?.pendingCatches[node.id] = attributes["messageRef"] ?? ""
                }
            default:
                break
            }
        }

        func handleFlowNode(_ name: String, _ attributes: [String: String]) {
            if Self.ignoredInProcess.contains(name) { return }
            if name == "sequenceFlow" {
                guard let source = attributes["sourceRef"], let target = attributes["targetRef"] else {
                    return fail("a sequence flow needs sourceRef and targetRef")
                }
                currentProcess?.flows.append((source, target))
                return
            }
            guard let id = attributes["id"], !id.isEmpty else { return fail("a \(name) has no id") }
            switch name {
            case "startEvent": currentProcess?.nodes[id] = .startEvent
            case "endEvent": currentProcess?.nodes[id] = .endEvent
            case "serviceTask": currentTask = (nil, 3, [:])
            case "intermediateCatchEvent": break
            default: return fail("unsupported BPMN element '\(name)' (\(id)) in the test engine")
            }
            currentNode = (id, name)
        }

        func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
            stack.removeLast()
            let parent = stack.last
            if name == "process", parent == "definitions", let process = currentProcess {
                processes.append(process)
                currentProcess = nil
            } else if name == "message", parent == "definitions" {
                currentMessageId = nil
            } else if parent == "process", let node = currentNode, node.kind == name {
                if name == "serviceTask" {
                    guard let type = currentTask?.type, !type.isEmpty else {
                        return fail("service task \(node.id) has no zeebe:taskDefinition type")
                    }
                    currentProcess?.nodes[node.id] = .serviceTask(
                        jobType: type,
                        retries: currentTask?.retries ?? 3,
                        headers: currentTask?.headers ?? [:]
                    )
                    currentTask = nil
                } else if name == "intermediateCatchEvent", currentProcess?.pendingCatches[node.id] == nil {
                    return fail("intermediate catch event \(node.id) is not a message catch event")
                }
                currentNode = nil
            }
        }

        func fail(_ message: String) {
            if error == nil { error = Failure(message: message) }
        }

        func finish() throws -> [BPMNProcess] {
            guard !processes.isEmpty else { throw Failure(message: "the document has no process") }
            return try processes.map { raw in
                var nodes = raw.nodes
                for (elementId, messageRef) in raw.pendingCatches {
                    guard let message = messages[messageRef] else {
                        throw Failure(message: "catch event \(elementId) refers to unknown message '\(messageRef)'")
                    }
                    guard let key = message.correlationKey, key.hasPrefix("="),
                        Self.isIdentifier(key.dropFirst().trimmingCharacters(in: .whitespaces))
                    else {
                        throw Failure(
                            message: "message '\(message.name)' needs a correlationKey of the form =<variable>"
                        )
                    }
                    nodes[elementId] = .messageCatch(
                        messageName: message.name,
                        correlationKeyVariable: key.dropFirst().trimmingCharacters(in: .whitespaces)
                    )
                }
                var next: [String: String] = [:]
                for flow in raw.flows {
                    guard nodes[flow.source] != nil, nodes[flow.target] != nil else {
                        throw Failure(message: "sequence flow \(flow.source) -> \(flow.target) joins unknown elements")
                    }
                    guard next[flow.source] == nil else {
                        throw Failure(message: "element \(flow.source) has more than one outgoing flow")
                    }
                    next[flow.source] = flow.target
                }
                let starts = nodes.filter { $0.value == .startEvent }.map(\.key)
                guard starts.count == 1, let start = starts.first else {
                    throw Failure(message: "process \(raw.id) needs exactly one none start event")
                }
                guard !raw.id.isEmpty else { throw Failure(message: "a process has no id") }
                return BPMNProcess(id: raw.id, elements: nodes, next: next, startEventId: start)
            }
        }

        static func isIdentifier(_ text: String) -> Bool {
            guard let first = text.first, first.isLetter || first == "_" else { return false }
            return text.allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" }
        }
    }
}
