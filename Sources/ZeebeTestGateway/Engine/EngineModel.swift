import Foundation
import ZeebeClient

/// A job in the test engine.
public struct EngineJob: Sendable, Hashable {
    /// Where a job is in its life cycle.
    public enum State: Sendable, Hashable {
        /// Can be activated once `notBefore` has passed.
        case activatable(notBefore: Date)
        /// Locked for `worker` until `deadline`.
        case activated(worker: String, deadline: Date)
        /// Failed with no retries left (or a BPMN error with no catcher): an incident.
        case incident(message: String)
    }

    /// The job key.
    public var key: Int64
    /// The job type.
    public var type: String
    /// The instance.
    public var processInstanceKey: Int64
    /// The service task's element id.
    public var elementId: String
    /// The element instance key.
    public var elementInstanceKey: Int64
    /// Retries left.
    public var retries: Int32
    /// The custom headers.
    public var headers: [String: String]
    /// The state.
    public var state: State
    /// The tenant of its process instance.
    public var tenantId: String
}

/// One FailJob call on a job, as the test engine received it.
public struct EngineJobFailure: Sendable, Hashable {
    /// The retries the worker left the job with.
    public var retries: Int32
    /// The worker's error message.
    public var message: String
    /// The back-off before the job could be activated again.
    public var retryBackOff: Duration
}

/// An incident raised by the test engine.
public struct EngineIncident: Sendable, Hashable {
    /// The job that raised it (0 for instance-level incidents).
    public var jobKey: Int64
    /// The instance.
    public var processInstanceKey: Int64
    /// The error message (FailJob's message, or the BPMN error code).
    public var message: String
}

/// A process instance in the test engine.
public struct EngineInstance: Sendable, Hashable {
    /// Where the instance is.
    public enum State: Sendable, Hashable {
        /// Running, waiting at an element.
        case active
        /// Reached the end.
        case completed
        /// Canceled.
        case canceled
    }

    /// The instance key.
    public var key: Int64
    /// The process definition.
    public var processDefinitionKey: Int64
    /// The BPMN process id.
    public var bpmnProcessId: String
    /// The version.
    public var version: Int32
    /// The root variables.
    public var variables: [String: JSONValue]
    /// The element it waits at.
    public var currentElementId: String?
    /// The key of the current element instance.
    public var currentElementInstanceKey: Int64
    /// The state.
    public var state: State
    /// The tenant it was created for (`<default>` when the request named none).
    public var tenantId: String
}

/// A deployed process definition.
struct EngineDefinition: Sendable {
    var key: Int64
    var version: Int32
    var resourceName: String
    var process: BPMNProcess
}

/// A published message kept in the buffer until its TTL passes.
struct BufferedMessage: Sendable {
    var key: Int64
    var name: String
    var correlationKey: String
    var messageId: String
    var variables: [String: JSONValue]
    var expiresAt: Date
    var correlatedProcessIds: Set<String>
}

/// An open message subscription of an instance waiting at a catch event.
struct MessageSubscription: Sendable {
    var processInstanceKey: Int64
    var bpmnProcessId: String
    var messageName: String
    var correlationKey: String
}

/// A registered job stream.
struct JobStreamRegistration: Sendable {
    var type: String
    var worker: String
    var timeout: Duration
    var fetchVariables: [String]
    var tenantIds: Set<String>
    /// Jobs pushed to this stream and not yet written to the client: yielded back when it closes.
    var unwritten: Set<Int64> = []
    var continuation: AsyncStream<EngineActivation>.Continuation
}

/// A job handed to a worker, with the variables it sees.
public struct EngineActivation: Sendable {
    /// The job.
    public var job: EngineJob
    /// The instance's BPMN process id.
    public var bpmnProcessId: String
    /// The process version.
    public var version: Int32
    /// The process definition key.
    public var processDefinitionKey: Int64
    /// The fetched variables as JSON.
    public var variables: String
    /// The worker name.
    public var worker: String
    /// The lock deadline.
    public var deadline: Date
}
