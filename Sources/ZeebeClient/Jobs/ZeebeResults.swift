/// A created process instance.
public struct ProcessInstance: Sendable, Hashable {
    /// The instance key.
    public var processInstanceKey: Int64
    /// The process definition key.
    public var processDefinitionKey: Int64
    /// The BPMN process id.
    public var bpmnProcessId: String
    /// The process version.
    public var version: Int32
    /// The tenant id.
    public var tenantId: String
}

/// A completed process instance, as CreateProcessInstanceWithResult returns it.
public struct ProcessInstanceResult: Sendable, Hashable {
    /// The instance.
    public var instance: ProcessInstance
    /// The (fetched) root variables at completion.
    public var variables: ZeebeVariables
}

/// A deployed BPMN process.
public struct DeployedProcess: Sendable, Hashable {
    /// The BPMN process id.
    public var bpmnProcessId: String
    /// The version the deployment got.
    public var version: Int32
    /// The process definition key.
    public var processDefinitionKey: Int64
    /// The resource name it came from.
    public var resourceName: String
}

/// The result of ``ZeebeClient/deployResources(_:tenantId:)``.
public struct DeploymentResult: Sendable, Hashable {
    /// The deployment key.
    public var key: Int64
    /// The processes in the deployment.
    public var processes: [DeployedProcess]
}

/// A resource to deploy: a file name (the extension matters: `.bpmn`, `.dmn`, `.form`) and content.
public struct DeploymentResource: Sendable, Hashable {
    /// The file name, e.g. `order.bpmn`.
    public var name: String
    /// The file content.
    public var content: [UInt8]

    /// Creates a resource.
    public init(name: String, content: [UInt8]) {
        self.name = name
        self.content = content
    }
}
