import GRPCCore

extension ZeebeClient {
    /// Activates up to `maxJobsToActivate` jobs of `type`, long-polling for at most `requestTimeout`.
    ///
    /// - Parameters:
    ///   - timeout: the job lock; a job not completed or failed in time is handed out again.
    ///   - requestTimeout: long-polling time (`nil`: the gateway's default, 10 s; negative: no long
    ///     polling). The gRPC deadline is this plus ``ZeebeClientConfiguration/deadlineOffset``.
    ///   - fetchVariables: the variables to fetch (empty: all).
    /// - Returns: the jobs from every response message of the stream.
    /// Not retried automatically: a lost answer leaves its jobs locked until their timeout.
    public func activateJobs(
        type: String,
        worker: String,
        maxJobsToActivate: Int32,
        timeout: Duration,
        requestTimeout: Duration? = nil,
        fetchVariables: [String] = [],
        tenantIds: [String] = []
    ) async throws -> [ZeebeJob] {
        var request = GatewayProtocol_ActivateJobsRequest()
        request.type = type
        request.worker = worker
        request.maxJobsToActivate = maxJobsToActivate
        request.timeout = timeout.milliseconds
        request.requestTimeout = requestTimeout?.milliseconds ?? 0
        request.fetchVariable = fetchVariables
        request.tenantIds = tenantIds
        let polling = max(requestTimeout ?? .seconds(10), .zero)
        return try await perform("ActivateJobs", .notIdempotent, timeout: polling + configuration.deadlineOffset) {
            metadata,
            options in
            try await gateway.activateJobs(request, metadata: metadata, options: options) { response in
                var jobs: [ZeebeJob] = []
                for try await message in response.messages {
                    jobs.append(contentsOf: message.jobs.map(ZeebeJob.init))
                }
                return jobs
            }
        }
    }

    /// Opens a job stream (job push, Zeebe 8.3+) and calls `onJob` for every pushed job, one at
    /// a time: the next job is read only after `onJob` returns, so a slow consumer applies
    /// HTTP/2 flow control instead of buffering. Returns when the gateway closes the stream
    /// after `streamTimeout` (8 h by default, as in Java); throws on a stream error.
    ///
    /// Jobs created before the stream opened, and jobs that come back after a timeout, are
    /// served only by ``activateJobs(type:worker:maxJobsToActivate:timeout:requestTimeout:fetchVariables:tenantIds:)``:
    /// use both together, as ``JobWorker`` does.
    public func streamActivatedJobs(
        type: String,
        worker: String,
        timeout: Duration,
        fetchVariables: [String] = [],
        tenantIds: [String] = [],
        streamTimeout: Duration = .seconds(8 * 3600),
        onJob: @escaping @Sendable (ZeebeJob) async throws -> Void
    ) async throws {
        var request = GatewayProtocol_StreamActivatedJobsRequest()
        request.type = type
        request.worker = worker
        request.timeout = timeout.milliseconds
        request.fetchVariable = fetchVariables
        request.tenantIds = tenantIds
        do {
            try await perform("StreamActivatedJobs", .notIdempotent, timeout: streamTimeout) { metadata, options in
                try await gateway.streamActivatedJobs(request, metadata: metadata, options: options) { response in
                    for try await job in response.messages {
                        try await onJob(ZeebeJob(job))
                    }
                }
            }
        } catch let error as ZeebeError where error.code == .deadlineExceeded {
            return
        }
    }

    /// Completes a job, merging `variables` into the process. Idempotent (a repeat gets NOT_FOUND).
    /// - Throws: ``ZeebeError`` `NOT_FOUND` when the job is gone (e.g. it timed out and was
    ///   completed elsewhere), `FAILED_PRECONDITION` when it is failed or in an incident.
    public func completeJob(_ jobKey: Int64, variables: ZeebeVariables = .empty) async throws {
        var request = GatewayProtocol_CompleteJobRequest()
        request.jobKey = jobKey
        request.variables = variables.json
        _ = try await perform("CompleteJob", .idempotent) { metadata, options in
            try await gateway.completeJob(request, metadata: metadata, options: options)
        }
    }

    /// Fails a job. `retries` is what the job has left afterwards (usually `job.retries - 1`);
    /// at zero an incident is raised. The job is retried after `retryBackOff`. Idempotent.
    public func failJob(
        _ jobKey: Int64,
        retries: Int32,
        errorMessage: String,
        retryBackOff: Duration = .zero,
        variables: ZeebeVariables = .empty
    ) async throws {
        var request = GatewayProtocol_FailJobRequest()
        request.jobKey = jobKey
        request.retries = retries
        request.errorMessage = errorMessage
        request.retryBackOff = retryBackOff.milliseconds
        request.variables = variables.json
        _ = try await perform("FailJob", .idempotent) { metadata, options in
            try await gateway.failJob(request, metadata: metadata, options: options)
        }
    }

    /// Throws a BPMN error from a job, for a matching error catch event (or an incident). Idempotent.
    public func throwError(
        _ jobKey: Int64,
        errorCode: String,
        errorMessage: String = "",
        variables: ZeebeVariables = .empty
    ) async throws {
        var request = GatewayProtocol_ThrowErrorRequest()
        request.jobKey = jobKey
        request.errorCode = errorCode
        request.errorMessage = errorMessage
        request.variables = variables.json
        _ = try await perform("ThrowError", .idempotent) { metadata, options in
            try await gateway.throwError(request, metadata: metadata, options: options)
        }
    }

    /// Sets a job's retries (e.g. before resolving its incident). Idempotent.
    public func updateJobRetries(_ jobKey: Int64, retries: Int32) async throws {
        var request = GatewayProtocol_UpdateJobRetriesRequest()
        request.jobKey = jobKey
        request.retries = retries
        _ = try await perform("UpdateJobRetries", .idempotent) { metadata, options in
            try await gateway.updateJobRetries(request, metadata: metadata, options: options)
        }
    }
}
