import Foundation

/// A job activated for a worker (the gateway's `ActivatedJob`).
public struct ZeebeJob: Sendable, Hashable {
    /// The job key: complete, fail or throw an error with it.
    public var key: Int64
    /// The job type (`zeebe:taskDefinition type`).
    public var type: String
    /// The process instance the job belongs to.
    public var processInstanceKey: Int64
    /// The BPMN process id.
    public var bpmnProcessId: String
    /// The version of the process definition.
    public var processDefinitionVersion: Int32
    /// The process definition key.
    public var processDefinitionKey: Int64
    /// The BPMN element id of the task.
    public var elementId: String
    /// The element instance key (a scope for ``ZeebeClient/setVariables(elementInstanceKey:variables:local:)``).
    public var elementInstanceKey: Int64
    /// The task's custom headers.
    public var customHeaders: [String: String]
    /// The worker name the job was activated for.
    public var worker: String
    /// The retries the job has left.
    public var retries: Int32
    /// When the job's lock expires (epoch milliseconds from the gateway).
    public var deadline: Date
    /// The variables the job was activated with.
    public var variables: ZeebeVariables
    /// The tenant id.
    public var tenantId: String

    /// Converts the gateway's message.
    public init(_ job: GatewayProtocol_ActivatedJob) {
        key = job.key
        type = job.type
        processInstanceKey = job.processInstanceKey
        bpmnProcessId = job.bpmnProcessID
        processDefinitionVersion = job.processDefinitionVersion
        processDefinitionKey = job.processDefinitionKey
        elementId = job.elementID
        elementInstanceKey = job.elementInstanceKey
        customHeaders = Self.parseHeaders(job.customHeaders)
        worker = job.worker
        retries = job.retries
        deadline = Date(timeIntervalSince1970: Double(job.deadline) / 1000)
        variables = ZeebeVariables(trustedJSON: job.variables)
        tenantId = job.tenantID
    }

    /// Decodes the job's variables into `type`.
    public func variables<T: Decodable>(as type: T.Type = T.self) throws -> T {
        try variables.decode(type)
    }

    static func parseHeaders(_ json: String) -> [String: String] {
        guard !json.isEmpty,
            let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
        else { return [:] }
        return object.mapValues { value in (value as? String) ?? "\(value)" }
    }
}
