import GRPCCore

extension ZeebeClient {
    /// The cluster topology (brokers, partitions, gateway version). Idempotent.
    public func topology() async throws -> GatewayProtocol_TopologyResponse {
        try await perform("Topology", .idempotent) { metadata, options in
            try await gateway.topology(GatewayProtocol_TopologyRequest(), metadata: metadata, options: options)
        }
    }

    /// Deploys one BPMN (or DMN, form) file. Idempotent: deploying identical content again
    /// gives the existing version. `tenantId` nil: ``ZeebeClientConfiguration/defaultTenantId``.
    public func deployResource(name: String, content: [UInt8], tenantId: String? = nil) async throws -> DeploymentResult
    {
        try await deployResources([DeploymentResource(name: name, content: content)], tenantId: tenantId)
    }

    /// Deploys several resources atomically. Idempotent.
    public func deployResources(
        _ resources: [DeploymentResource], tenantId: String? = nil
    ) async throws
        -> DeploymentResult
    {
        var request = GatewayProtocol_DeployResourceRequest()
        request.resources = resources.map { resource in
            var message = GatewayProtocol_Resource()
            message.name = resource.name
            message.content = .init(resource.content)
            return message
        }
        request.tenantID = tenantId ?? configuration.defaultTenantId
        let response = try await perform("DeployResource", .idempotent) { metadata, options in
            try await gateway.deployResource(request, metadata: metadata, options: options)
        }
        let processes = response.deployments.compactMap { deployment -> DeployedProcess? in
            guard case .process(let process) = deployment.metadata else { return nil }
            return DeployedProcess(
                bpmnProcessId: process.bpmnProcessID,
                version: process.version,
                processDefinitionKey: process.processDefinitionKey,
                resourceName: process.resourceName
            )
        }
        return DeploymentResult(key: response.key, processes: processes)
    }

    /// Starts an instance of the latest (or the given) version of a process. Not idempotent: retried
    /// only on RESOURCE_EXHAUSTED (the broker refused it under back-pressure before processing it), with
    /// back-off and within the call's deadline; any other error is thrown at once.
    public func createProcessInstance(
        bpmnProcessId: String,
        version: Int32 = -1,
        variables: ZeebeVariables = .empty,
        tenantId: String? = nil
    ) async throws -> ProcessInstance {
        let request = creationRequest(bpmnProcessId, 0, version, variables, tenantId)
        return try await createProcessInstance(request)
    }

    /// Starts an instance of the process definition with `processDefinitionKey`. Not idempotent: retried
    /// only on RESOURCE_EXHAUSTED (back-pressure), within the call's deadline.
    public func createProcessInstance(
        processDefinitionKey: Int64,
        variables: ZeebeVariables = .empty,
        tenantId: String? = nil
    ) async throws -> ProcessInstance {
        let request = creationRequest("", processDefinitionKey, -1, variables, tenantId)
        return try await createProcessInstance(request)
    }

    private func createProcessInstance(
        _ request: GatewayProtocol_CreateProcessInstanceRequest
    ) async throws
        -> ProcessInstance
    {
        let response = try await perform("CreateProcessInstance", .backPressure) { metadata, options in
            try await gateway.createProcessInstance(request, metadata: metadata, options: options)
        }
        return ProcessInstance(
            processInstanceKey: response.processInstanceKey,
            processDefinitionKey: response.processDefinitionKey,
            bpmnProcessId: response.bpmnProcessID,
            version: response.version,
            tenantId: response.tenantID
        )
    }

    /// Starts an instance and waits for it to complete, returning its variables.
    ///
    /// - Parameters:
    ///   - requestTimeout: how long the gateway waits for completion (`nil`: the gateway's default);
    ///     the gRPC deadline is this plus ``ZeebeClientConfiguration/deadlineOffset``.
    ///   - fetchVariables: the root variables to return (empty: all).
    /// - Throws: ``ZeebeError`` `DEADLINE_EXCEEDED` when the instance does not complete in time; the
    ///   instance keeps running. Not idempotent: retried only on RESOURCE_EXHAUSTED (back-pressure),
    ///   within the call's deadline.
    public func createProcessInstanceWithResult(
        bpmnProcessId: String,
        version: Int32 = -1,
        variables: ZeebeVariables = .empty,
        requestTimeout: Duration? = nil,
        fetchVariables: [String] = [],
        tenantId: String? = nil
    ) async throws -> ProcessInstanceResult {
        var request = GatewayProtocol_CreateProcessInstanceWithResultRequest()
        request.request = creationRequest(bpmnProcessId, 0, version, variables, tenantId)
        request.requestTimeout = requestTimeout?.milliseconds ?? 0
        request.fetchVariables = fetchVariables
        let deadline = (requestTimeout ?? configuration.defaultCallTimeout) + configuration.deadlineOffset
        let response = try await perform("CreateProcessInstanceWithResult", .backPressure, timeout: deadline) {
            metadata,
            options in
            try await gateway.createProcessInstanceWithResult(request, metadata: metadata, options: options)
        }
        return ProcessInstanceResult(
            instance: ProcessInstance(
                processInstanceKey: response.processInstanceKey,
                processDefinitionKey: response.processDefinitionKey,
                bpmnProcessId: response.bpmnProcessID,
                version: response.version,
                tenantId: response.tenantID
            ),
            variables: ZeebeVariables(trustedJSON: response.variables)
        )
    }

    /// Cancels a running instance. Idempotent (a second cancel gets NOT_FOUND).
    public func cancelProcessInstance(_ processInstanceKey: Int64) async throws {
        var request = GatewayProtocol_CancelProcessInstanceRequest()
        request.processInstanceKey = processInstanceKey
        _ = try await perform("CancelProcessInstance", .idempotent) { metadata, options in
            try await gateway.cancelProcessInstance(request, metadata: metadata, options: options)
        }
    }

    /// Sets variables in the scope of an element instance (or a process instance key).
    /// With `local`, they are set only in that scope; otherwise they propagate. Idempotent.
    /// - Returns: the key of the variable document update.
    @discardableResult
    public func setVariables(
        elementInstanceKey: Int64, variables: ZeebeVariables, local: Bool = false
    ) async throws
        -> Int64
    {
        var request = GatewayProtocol_SetVariablesRequest()
        request.elementInstanceKey = elementInstanceKey
        request.variables = variables.json
        request.local = local
        return try await perform("SetVariables", .idempotent) { metadata, options in
            try await gateway.setVariables(request, metadata: metadata, options: options)
        }.key
    }

    /// Publishes a message for correlation.
    ///
    /// - Parameters:
    ///   - timeToLive: how long the message is buffered (zero: only open subscriptions get it).
    ///   - messageId: when set, a second message with the same name, correlation key and id is
    ///     rejected with ALREADY_EXISTS while the first is buffered. With an id the call is
    ///     idempotent and retried on RESOURCE_EXHAUSTED and UNAVAILABLE; without one it is retried
    ///     only on RESOURCE_EXHAUSTED (back-pressure: the broker did not take it).
    /// - Returns: the message key.
    @discardableResult
    public func publishMessage(
        name: String,
        correlationKey: String,
        variables: ZeebeVariables = .empty,
        timeToLive: Duration = .seconds(3600),
        messageId: String = "",
        tenantId: String? = nil
    ) async throws -> Int64 {
        var request = GatewayProtocol_PublishMessageRequest()
        request.name = name
        request.correlationKey = correlationKey
        request.variables = variables.json
        request.timeToLive = timeToLive.milliseconds
        request.messageID = messageId
        request.tenantID = tenantId ?? configuration.defaultTenantId
        let retry: RetryPolicy = messageId.isEmpty ? .backPressure : .idempotent
        return try await perform("PublishMessage", retry) { metadata, options in
            try await gateway.publishMessage(request, metadata: metadata, options: options)
        }.key
    }

    func creationRequest(
        _ bpmnProcessId: String,
        _ processDefinitionKey: Int64,
        _ version: Int32,
        _ variables: ZeebeVariables,
        _ tenantId: String?
    ) -> GatewayProtocol_CreateProcessInstanceRequest {
        var request = GatewayProtocol_CreateProcessInstanceRequest()
        request.bpmnProcessID = bpmnProcessId
        request.processDefinitionKey = processDefinitionKey
        request.version = version
        request.variables = variables.json
        request.tenantID = tenantId ?? configuration.defaultTenantId
        return request
    }
}
