import Foundation

/// A snapshot of the test engine's state as the inspection endpoint serves it (`GET /engine`), for
/// tests that run the gateway in another process (`zeebe-test-gateway --inspection-port`).
///
/// TEST SUPPORT ONLY. Keys are decimal strings, as in the affinity protocol. The same types decode the
/// endpoint's JSON in the tests:
///
/// ```swift
/// let snapshot = try JSONDecoder().decode(EngineInspection.self, from: body)
/// let failed = snapshot.jobs.filter { !$0.failures.isEmpty }
/// ```
public struct EngineInspection: Sendable, Codable, Hashable {
    /// Every job the engine knows: open ones (activatable, activated, failed with an incident) and
    /// completed ones, ordered by key.
    public var jobs: [InspectedJob]
    /// Every process instance, ordered by key.
    public var instances: [InspectedInstance]
    /// The incidents raised so far, in order.
    public var incidents: [InspectedIncident]
    /// Keys of the completed jobs, in completion order.
    public var completedJobKeys: [String]
    /// Job keys of every FailJob call, in order (a key appears once per call).
    public var failedJobKeys: [String]
    /// The number of open job streams.
    public var openJobStreams: Int

    /// Creates a snapshot.
    public init(
        jobs: [InspectedJob], instances: [InspectedInstance], incidents: [InspectedIncident],
        completedJobKeys: [String], failedJobKeys: [String], openJobStreams: Int
    ) {
        self.jobs = jobs
        self.instances = instances
        self.incidents = incidents
        self.completedJobKeys = completedJobKeys
        self.failedJobKeys = failedJobKeys
        self.openJobStreams = openJobStreams
    }
}

/// A job in an ``EngineInspection``.
public struct InspectedJob: Sendable, Codable, Hashable {
    /// Where the job is.
    public enum State: String, Sendable, Codable, Hashable {
        /// Waiting to be activated (possibly after a retry back-off).
        case activatable
        /// Locked by a worker.
        case activated
        /// Failed with no retries left, or a BPMN error nobody catches: it raised an incident.
        case incident
        /// Completed by a worker.
        case completed
    }

    /// The job key.
    public var key: String
    /// The job type, e.g. `publish-outcome`.
    public var type: String
    /// The process instance key.
    public var processInstanceKey: String
    /// The service task's element id.
    public var elementId: String
    /// The state.
    public var state: State
    /// Retries left.
    public var retries: Int32
    /// The worker holding the lock, while activated.
    public var worker: String?
    /// The incident message, in state ``State/incident``.
    public var incidentMessage: String?
    /// Every FailJob call on this job, in order.
    public var failures: [InspectedJobFailure]
    /// The tenant of its process instance (`<default>` unless the instance was created for another).
    public var tenantId: String
}

/// One FailJob call in an ``InspectedJob``.
public struct InspectedJobFailure: Sendable, Codable, Hashable {
    /// The retries the worker left.
    public var retries: Int32
    /// The worker's error message.
    public var message: String
    /// The retry back-off in milliseconds.
    public var retryBackOffMilliseconds: Int64
}

/// A process instance in an ``EngineInspection``.
public struct InspectedInstance: Sendable, Codable, Hashable {
    /// Where the instance is.
    public enum State: String, Sendable, Codable, Hashable {
        /// Running, waiting at ``InspectedInstance/currentElementId``.
        case active
        /// Reached its end.
        case completed
        /// Canceled.
        case canceled
    }

    /// The instance key.
    public var key: String
    /// The BPMN process id.
    public var bpmnProcessId: String
    /// The process version.
    public var version: Int32
    /// The state.
    public var state: State
    /// The element it waits at, while active.
    public var currentElementId: String?
    /// The root variables.
    public var variables: [String: JSONValue]
}

/// An incident in an ``EngineInspection``.
public struct InspectedIncident: Sendable, Codable, Hashable {
    /// The job that raised it (nil for instance-level incidents).
    public var jobKey: String?
    /// The process instance key.
    public var processInstanceKey: String
    /// The error message.
    public var message: String
}
