/// A deployed BPMN process, reduced to what the test engine runs: a single path of start
/// event, service tasks, message catch events and end event, joined by sequence flows.
public struct BPMNProcess: Sendable, Hashable {
    /// A flow node the engine knows.
    public enum Element: Sendable, Hashable {
        /// A none start event.
        case startEvent
        /// A service task with `zeebe:taskDefinition type=` (and `retries=`, default 3).
        case serviceTask(jobType: String, retries: Int32, headers: [String: String])
        /// An intermediate message catch event with `zeebe:subscription correlationKey="=<variable>"`.
        case messageCatch(messageName: String, correlationKeyVariable: String)
        /// An end event.
        case endEvent
    }

    /// The BPMN process id.
    public var id: String
    /// The flow nodes by element id.
    public var elements: [String: Element]
    /// The next element of each element (at most one outgoing flow each).
    public var next: [String: String]
    /// The id of the none start event.
    public var startEventId: String
}
