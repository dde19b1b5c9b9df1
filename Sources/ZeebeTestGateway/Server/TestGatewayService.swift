import Foundation
import GRPCCore
import ZeebeClient

/// The `gateway_protocol.Gateway` service of the test gateway, backed by a ``GatewayEngine``.
struct TestGatewayService: GatewayProtocol_Gateway.SimpleServiceProtocol {
    let engine: GatewayEngine
    let knobs: TestGatewayKnobs

    func activateJobs(
        request: GatewayProtocol_ActivateJobsRequest,
        response: RPCWriter<GatewayProtocol_ActivateJobsResponse>,
        context: ServerContext
    ) async throws {
        guard !request.type.trimmingCharacters(in: .whitespaces).isEmpty,
            !request.worker.trimmingCharacters(in: .whitespaces).isEmpty, request.timeout >= 1,
            request.maxJobsToActivate >= 1
        else {
            throw RPCError(
                code: .invalidArgument,
                message: "Expected type and worker to be non-blank, timeout and maxJobsToActivate to be at least 1"
            )
        }
        let longPolling: Duration? =
            request.requestTimeout < 0
            ? nil
            : request.requestTimeout == 0 ? knobs.defaultLongPollingTimeout : .milliseconds(request.requestTimeout)
        knobs.recordTenants(request.tenantIds, of: "ActivateJobs")
        if let failure = knobs.takeMidStreamFailure() {
            let activations = engine.activate(
                type: request.type, worker: request.worker,
                maxJobs: min(failure.jobs, Int(request.maxJobsToActivate)), timeout: .milliseconds(request.timeout),
                fetchVariables: request.fetchVariable, tenantIds: request.tenantIds)
            var message = GatewayProtocol_ActivateJobsResponse()
            message.jobs = activations.map(Self.activatedJob)
            try await response.write(message)
            throw RPCError(code: failure.code, message: "a broker failed during the long poll (test gateway)")
        }
        let start = ContinuousClock.now
        while true {
            // a long poll the client gave up activates nothing more
            if context.cancellation.isCancelled { return }
            let activations = engine.activate(
                type: request.type,
                worker: request.worker,
                maxJobs: Int(request.maxJobsToActivate),
                timeout: .milliseconds(request.timeout),
                fetchVariables: request.fetchVariable,
                tenantIds: request.tenantIds
            )
            if !activations.isEmpty {
                var message = GatewayProtocol_ActivateJobsResponse()
                message.jobs = activations.map(Self.activatedJob)
                do {
                    guard !context.cancellation.isCancelled else { throw CancellationError() }
                    try await response.write(message)
                } catch {
                    // jobs that could not be sent are yielded back, as the broker does with a failed push
                    engine.yieldBack(activations.map(\.job.key))
                    throw error
                }
                return
            }
            guard let longPolling, ContinuousClock.now - start < longPolling, !context.cancellation.isCancelled else {
                return
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    func streamActivatedJobs(
        request: GatewayProtocol_StreamActivatedJobsRequest,
        response: RPCWriter<GatewayProtocol_ActivatedJob>,
        context: ServerContext
    ) async throws {
        guard !request.type.trimmingCharacters(in: .whitespaces).isEmpty, request.timeout >= 1 else {
            throw RPCError(
                code: .invalidArgument, message: "Expected type to be non-blank and timeout to be at least 1")
        }
        knobs.recordTenants(request.tenantIds, of: "StreamActivatedJobs")
        let (id, activations) = engine.openStream(
            type: request.type,
            worker: request.worker,
            timeout: .milliseconds(request.timeout),
            fetchVariables: request.fetchVariable,
            tenantIds: request.tenantIds
        )
        defer { engine.closeStream(id) }
        // gRPC reports a cancelled RPC (client gone, deadline, shutdown) through this handler,
        // not by cancelling the task.
        try await withRPCCancellationHandler {
            for await activation in activations {
                try await response.write(Self.activatedJob(activation))
                engine.streamWrote(id, jobKey: activation.job.key)
            }
        } onCancelRPC: {
            engine.closeStream(id)
        }
    }

    func cancelProcessInstance(
        request: GatewayProtocol_CancelProcessInstanceRequest,
        context: ServerContext
    ) async throws -> GatewayProtocol_CancelProcessInstanceResponse {
        try engine.cancel(processInstanceKey: request.processInstanceKey)
        return GatewayProtocol_CancelProcessInstanceResponse()
    }

    func completeJob(
        request: GatewayProtocol_CompleteJobRequest,
        context: ServerContext
    ) async throws -> GatewayProtocol_CompleteJobResponse {
        try engine.complete(jobKey: request.jobKey, variables: request.variables)
        return GatewayProtocol_CompleteJobResponse()
    }

    func createProcessInstance(
        request: GatewayProtocol_CreateProcessInstanceRequest,
        context: ServerContext
    ) async throws -> GatewayProtocol_CreateProcessInstanceResponse {
        knobs.recordTenants([request.tenantID], of: "CreateProcessInstance")
        let instance = try engine.createInstance(
            bpmnProcessId: request.bpmnProcessID,
            processDefinitionKey: request.processDefinitionKey,
            version: request.version,
            variables: request.variables,
            tenantId: request.tenantID
        )
        var response = GatewayProtocol_CreateProcessInstanceResponse()
        response.processInstanceKey = instance.key
        response.processDefinitionKey = instance.processDefinitionKey
        response.bpmnProcessID = instance.bpmnProcessId
        response.version = instance.version
        response.tenantID = instance.tenantId
        return response
    }

    func createProcessInstanceWithResult(
        request: GatewayProtocol_CreateProcessInstanceWithResultRequest,
        context: ServerContext
    ) async throws -> GatewayProtocol_CreateProcessInstanceWithResultResponse {
        let creation = request.request
        knobs.recordTenants([creation.tenantID], of: "CreateProcessInstanceWithResult")
        let instance = try engine.createInstance(
            bpmnProcessId: creation.bpmnProcessID,
            processDefinitionKey: creation.processDefinitionKey,
            version: creation.version,
            variables: creation.variables,
            tenantId: creation.tenantID
        )
        let timeout: Duration =
            request.requestTimeout > 0 ? .milliseconds(request.requestTimeout) : knobs.defaultRequestTimeout
        let start = ContinuousClock.now
        while true {
            if let variables = try engine.result(of: instance.key, fetchVariables: request.fetchVariables) {
                var response = GatewayProtocol_CreateProcessInstanceWithResultResponse()
                response.processInstanceKey = instance.key
                response.processDefinitionKey = instance.processDefinitionKey
                response.bpmnProcessID = instance.bpmnProcessId
                response.version = instance.version
                response.variables = variables
                response.tenantID = instance.tenantId
                return response
            }
            if context.cancellation.isCancelled {
                throw RPCError(code: .cancelled, message: "the call was cancelled")
            }
            guard ContinuousClock.now - start < timeout else {
                throw RPCError(code: .deadlineExceeded, message: "Time out between gateway and broker")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
    }

    func deployResource(
        request: GatewayProtocol_DeployResourceRequest,
        context: ServerContext
    ) async throws -> GatewayProtocol_DeployResourceResponse {
        knobs.recordTenants([request.tenantID], of: "DeployResource")
        let (key, deployed) = try engine.deploy(request.resources.map { ($0.name, Array($0.content)) })
        var response = GatewayProtocol_DeployResourceResponse()
        response.key = key
        response.tenantID = "<default>"
        response.deployments = deployed.map { name, info in
            var process = GatewayProtocol_ProcessMetadata()
            process.bpmnProcessID = info.bpmnProcessId
            process.version = info.version
            process.processDefinitionKey = info.key
            process.resourceName = name
            process.tenantID = "<default>"
            var deployment = GatewayProtocol_Deployment()
            deployment.process = process
            return deployment
        }
        return response
    }

    func failJob(
        request: GatewayProtocol_FailJobRequest,
        context: ServerContext
    ) async throws -> GatewayProtocol_FailJobResponse {
        try engine.fail(
            jobKey: request.jobKey,
            retries: request.retries,
            message: request.errorMessage,
            retryBackOff: .milliseconds(max(0, request.retryBackOff))
        )
        return GatewayProtocol_FailJobResponse()
    }

    func throwError(
        request: GatewayProtocol_ThrowErrorRequest,
        context: ServerContext
    ) async throws -> GatewayProtocol_ThrowErrorResponse {
        try engine.throwError(jobKey: request.jobKey, errorCode: request.errorCode, message: request.errorMessage)
        return GatewayProtocol_ThrowErrorResponse()
    }

    func publishMessage(
        request: GatewayProtocol_PublishMessageRequest,
        context: ServerContext
    ) async throws -> GatewayProtocol_PublishMessageResponse {
        knobs.recordTenants([request.tenantID], of: "PublishMessage")
        var response = GatewayProtocol_PublishMessageResponse()
        response.key = try engine.publish(
            name: request.name,
            correlationKey: request.correlationKey,
            timeToLive: .milliseconds(max(0, request.timeToLive)),
            messageId: request.messageID,
            variables: request.variables
        )
        response.tenantID = "<default>"
        return response
    }

    func setVariables(
        request: GatewayProtocol_SetVariablesRequest,
        context: ServerContext
    ) async throws -> GatewayProtocol_SetVariablesResponse {
        var response = GatewayProtocol_SetVariablesResponse()
        response.key = try engine.setVariables(
            elementInstanceKey: request.elementInstanceKey, variables: request.variables)
        return response
    }

    func topology(
        request: GatewayProtocol_TopologyRequest,
        context: ServerContext
    ) async throws -> GatewayProtocol_TopologyResponse {
        var partition = GatewayProtocol_Partition()
        partition.partitionID = 1
        partition.role = .leader
        partition.health = .healthy
        var broker = GatewayProtocol_BrokerInfo()
        broker.nodeID = 0
        broker.host = "127.0.0.1"
        broker.port = 26501
        broker.partitions = [partition]
        broker.version = "8.8.0-test"
        var response = GatewayProtocol_TopologyResponse()
        response.brokers = [broker]
        response.clusterSize = 1
        response.partitionsCount = 1
        response.replicationFactor = 1
        response.gatewayVersion = "8.8.0-test"
        return response
    }

    func updateJobRetries(
        request: GatewayProtocol_UpdateJobRetriesRequest,
        context: ServerContext
    ) async throws -> GatewayProtocol_UpdateJobRetriesResponse {
        try engine.updateRetries(jobKey: request.jobKey, retries: request.retries)
        return GatewayProtocol_UpdateJobRetriesResponse()
    }

    static func activatedJob(_ activation: EngineActivation) -> GatewayProtocol_ActivatedJob {
        var job = GatewayProtocol_ActivatedJob()
        job.key = activation.job.key
        job.type = activation.job.type
        job.processInstanceKey = activation.job.processInstanceKey
        job.bpmnProcessID = activation.bpmnProcessId
        job.processDefinitionVersion = activation.version
        job.processDefinitionKey = activation.processDefinitionKey
        job.elementID = activation.job.elementId
        job.elementInstanceKey = activation.job.elementInstanceKey
        job.customHeaders = JSONValue.serialize(activation.job.headers.mapValues { .string($0) })
        job.worker = activation.worker
        job.retries = activation.job.retries
        job.deadline = Int64(activation.deadline.timeIntervalSince1970 * 1000)
        job.variables = activation.variables
        job.tenantID = activation.job.tenantId
        return job
    }
}
