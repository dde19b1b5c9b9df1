public import AffinityClient
import AffinityProtocol
public import ZeebeClient

/// Starts Zeebe process instances and publishes messages, and answers with the outcome the
/// `publish-outcome` task of that instance delivered to the affinity service.
///
/// It joins a ``ZeebeClient`` (the gateway) and an ``AffinitySession`` (the WebSocket to the
/// affinity service); run both as services in the front-end's `ServiceGroup`.
///
/// ```swift
/// let affinity = AffinityZeebeClient(zeebe: zeebe, session: session)
/// let result = try await affinity.createProcessInstanceWithAffinity(
///     bpmnProcessId: "order-process", variables: try ZeebeVariables(["orderId": "42"]), timeout: .seconds(30))
/// let order = try result.outcome.decode(Order.self)
/// ```
///
/// The subscription for an instance is made right after the instance is created; an outcome that
/// the worker delivers before that is parked by the service and handed over on subscribe, so a
/// fast process cannot lose its outcome. A timeout throws ``AffinityClientError`` with code
/// `timeout` and the process instance key; cancelling the calling task unsubscribes.
public struct AffinityZeebeClient: Sendable {
    /// The Zeebe gateway client.
    public let zeebe: ZeebeClient
    /// The session with the affinity service.
    public let session: AffinitySession

    /// Joins a Zeebe client and an affinity session; both must be running (as services).
    public init(zeebe: ZeebeClient, session: AffinitySession) {
        self.zeebe = zeebe
        self.session = session
    }

    /// Creates an instance of `bpmnProcessId` (the latest version, or `version`) and waits for its next
    /// outcome.
    ///
    /// - Parameters:
    ///   - bpmnProcessId: the process to start.
    ///   - version: the process version (-1: the latest).
    ///   - variables: the instance's start variables.
    ///   - tenantId: the tenant (nil: ``ZeebeClientConfiguration/defaultTenantId``, `<default>`).
    ///   - timeout: how long to wait for the outcome after the instance was created.
    /// - Returns: the process instance key and the outcome (raw JSON; ``AffinityProcessResult/decode(_:using:)``).
    /// - Throws: ``ZeebeError`` when the instance cannot be created; ``AffinityClientError`` with code
    ///   `timeout` (carrying the key) when no outcome came in time, `unavailable` when the session is
    ///   stopped; `CancellationError` when the task was cancelled (the subscription is removed).
    public func createProcessInstanceWithAffinity(
        bpmnProcessId: String, version: Int32 = -1, variables: ZeebeVariables = .empty, tenantId: String? = nil,
        timeout: Duration
    ) async throws -> AffinityProcessResult {
        let instance = try await zeebe.createProcessInstance(
            bpmnProcessId: bpmnProcessId, version: version, variables: variables, tenantId: tenantId)
        return try await awaitOutcome(of: instance, timeout: timeout)
    }

    /// Creates an instance of the process definition with `processDefinitionKey` and waits for its next
    /// outcome.
    ///
    /// - Parameters:
    ///   - processDefinitionKey: the deployed process definition (``DeployedProcess/processDefinitionKey``).
    ///   - variables: the instance's start variables.
    ///   - tenantId: the tenant (nil: ``ZeebeClientConfiguration/defaultTenantId``).
    ///   - timeout: how long to wait for the outcome after the instance was created.
    /// - Throws: as ``createProcessInstanceWithAffinity(bpmnProcessId:version:variables:tenantId:timeout:)``.
    public func createProcessInstanceWithAffinity(
        processDefinitionKey: Int64, variables: ZeebeVariables = .empty, tenantId: String? = nil,
        timeout: Duration
    ) async throws -> AffinityProcessResult {
        let instance = try await zeebe.createProcessInstance(
            processDefinitionKey: processDefinitionKey, variables: variables, tenantId: tenantId)
        return try await awaitOutcome(of: instance, timeout: timeout)
    }

    private func awaitOutcome(of instance: ProcessInstance, timeout: Duration) async throws -> AffinityProcessResult {
        let key = try Self.affinityKey(instance.processInstanceKey)
        let outcome = try await session.awaitOutcome(processInstanceKey: key, timeout: timeout)
        return AffinityProcessResult(processInstanceKey: instance.processInstanceKey, outcome: outcome)
    }

    /// Creates an instance and decodes its outcome's variables into `Output`.
    ///
    /// - Returns: the process instance key and the decoded variables.
    /// - Throws: as ``createProcessInstanceWithAffinity(bpmnProcessId:version:variables:tenantId:timeout:)``, and a
    ///   `DecodingError` when the outcome does not decode as `Output`.
    public func createProcessInstanceWithAffinity<Output: Decodable & Sendable>(
        bpmnProcessId: String, variables: ZeebeVariables = .empty, timeout: Duration, as output: Output.Type
    ) async throws -> (processInstanceKey: Int64, variables: Output) {
        let result = try await createProcessInstanceWithAffinity(
            bpmnProcessId: bpmnProcessId, variables: variables, timeout: timeout)
        return (result.processInstanceKey, try result.decode(Output.self))
    }

    /// Publishes a message to a running instance and waits for that instance's next outcome (the chat
    /// use case: every message produces one outcome).
    ///
    /// The subscription to `processInstanceKey` starts before the message is published, so the
    /// outcome the message causes cannot be missed.
    ///
    /// - Parameters:
    ///   - name: the message name.
    ///   - correlationKey: the correlation key the instance's catch event waits for.
    ///   - processInstanceKey: the instance whose next outcome is awaited.
    ///   - variables: the message variables.
    ///   - timeToLive: how long Zeebe buffers the message (so an instance not yet at its catch event gets it).
    ///   - messageId: an optional message id (makes a repeated publish idempotent).
    ///   - tenantId: the tenant (nil: ``ZeebeClientConfiguration/defaultTenantId``).
    ///   - timeout: how long to wait for the outcome after publishing.
    /// - Throws: ``ZeebeError`` from the publish; ``AffinityClientError`` (`timeout` with the key,
    ///   `unavailable`, `forbidden`); `CancellationError`.
    public func publishMessageWithAffinity(
        name: String, correlationKey: String, processInstanceKey: Int64, variables: ZeebeVariables = .empty,
        timeToLive: Duration = .seconds(60), messageId: String = "", tenantId: String? = nil, timeout: Duration
    ) async throws -> AffinityProcessResult {
        let key = try Self.affinityKey(processInstanceKey)
        var outcomes = session.outcomes(processInstanceKey: key, timeout: timeout).makeAsyncIterator()
        try await zeebe.publishMessage(
            name: name, correlationKey: correlationKey, variables: variables, timeToLive: timeToLive,
            messageId: messageId, tenantId: tenantId)
        guard let outcome = try await outcomes.next() else {
            throw AffinityClientError(
                code: .unavailable, message: "the subscription ended before an outcome arrived",
                processInstanceKey: key)
        }
        return AffinityProcessResult(processInstanceKey: processInstanceKey, outcome: outcome)
    }

    static func affinityKey(_ value: Int64) throws(AffinityClientError) -> ProcessInstanceKey {
        guard let key = ProcessInstanceKey(value) else {
            throw AffinityClientError(
                code: .badRequest, message: "the gateway returned an invalid process instance key \(value)")
        }
        return key
    }
}
