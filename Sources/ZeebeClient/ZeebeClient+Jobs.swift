import Foundation
import GRPCCore
import Synchronization

extension ZeebeClient {
    /// Activates up to `maxJobsToActivate` jobs of `type`, long-polling for at most `requestTimeout`.
    ///
    /// - Parameters:
    ///   - timeout: the job lock; a job not completed or failed in time is handed out again.
    ///   - requestTimeout: long-polling time (`nil`: the gateway's default, 10 s; negative: no long
    ///     polling). The gRPC deadline is this plus ``ZeebeClientConfiguration/deadlineOffset``.
    ///   - fetchVariables: the variables to fetch (empty: all).
    ///   - tenantIds: the tenants whose jobs are activated (empty: ``ZeebeClientConfiguration/defaultTenantId``).
    /// - Returns: the jobs from every response message of the stream.
    /// - Throws: on an error, also one in the middle of the response stream: then the jobs of the
    ///   messages before it are lost to the caller (locked until their timeout). Use
    ///   ``activateJobs(type:worker:maxJobsToActivate:timeout:requestTimeout:fetchVariables:tenantIds:onJobs:)``
    ///   to get every job as soon as its message arrives.
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
        let jobs = JobCollector()
        try await activateJobs(
            type: type, worker: worker, maxJobsToActivate: maxJobsToActivate, timeout: timeout,
            requestTimeout: requestTimeout, fetchVariables: fetchVariables, tenantIds: tenantIds
        ) { jobs.append($0) }
        return jobs.jobs
    }

    /// Activates up to `maxJobsToActivate` jobs of `type`, long-polling for at most `requestTimeout`,
    /// and hands over the jobs of each response message to `onJobs` as soon as it arrives, so that an
    /// error later in the stream (a broker that fails in the middle of a long poll) does not drop jobs
    /// already activated. The next message is read only after `onJobs` returns.
    ///
    /// - Returns: the number of jobs handed over.
    /// - Throws: the error that ended the stream, after `onJobs` got the jobs that came before it.
    /// Not retried automatically: a lost answer leaves its jobs locked until their timeout.
    @discardableResult
    public func activateJobs(
        type: String,
        worker: String,
        maxJobsToActivate: Int32,
        timeout: Duration,
        requestTimeout: Duration? = nil,
        fetchVariables: [String] = [],
        tenantIds: [String] = [],
        onJobs: @escaping @Sendable ([ZeebeJob]) async throws -> Void
    ) async throws -> Int {
        var request = GatewayProtocol_ActivateJobsRequest()
        request.type = type
        request.worker = worker
        request.maxJobsToActivate = maxJobsToActivate
        request.timeout = timeout.milliseconds
        request.requestTimeout = requestTimeout?.milliseconds ?? 0
        request.fetchVariable = fetchVariables
        request.tenantIds = tenantIds.isEmpty ? [configuration.defaultTenantId] : tenantIds
        let polling = max(requestTimeout ?? .seconds(10), .zero)
        return try await perform("ActivateJobs", .never, timeout: polling + configuration.deadlineOffset) {
            metadata,
            options in
            try await gateway.activateJobs(request, metadata: metadata, options: options) { response in
                var count = 0
                for try await message in response.messages where !message.jobs.isEmpty {
                    count += message.jobs.count
                    try await onJobs(message.jobs.map(ZeebeJob.init))
                }
                return count
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
        request.tenantIds = tenantIds.isEmpty ? [configuration.defaultTenantId] : tenantIds
        do {
            try await perform("StreamActivatedJobs", .never, timeout: streamTimeout) { metadata, options in
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

    /// Completes a job, merging `variables` into the process. Idempotent (a repeat gets NOT_FOUND):
    /// retried on RESOURCE_EXHAUSTED and UNAVAILABLE (a leader change) for
    /// ``ZeebeClientConfiguration/jobCommandRetryTimeout``, but not past `jobDeadline`.
    ///
    /// - Parameter jobDeadline: the job's ``ZeebeJob/deadline``: no retry starts after it (the job is
    ///   handed out again anyway).
    /// - Throws: ``ZeebeError`` `NOT_FOUND` when the job is gone (e.g. it timed out and was
    ///   completed elsewhere), `FAILED_PRECONDITION` when it is failed or in an incident.
    public func completeJob(_ jobKey: Int64, variables: ZeebeVariables = .empty, jobDeadline: Date? = nil) async throws
    {
        var request = GatewayProtocol_CompleteJobRequest()
        request.jobKey = jobKey
        request.variables = variables.json
        let retry = RetryPolicy.jobCommand(jobDeadline: jobDeadline, timeout: configuration.jobCommandRetryTimeout)
        _ = try await perform("CompleteJob", retry) { metadata, options in
            try await gateway.completeJob(request, metadata: metadata, options: options)
        }
    }

    /// Fails a job. `retries` is what the job has left afterwards (usually `job.retries - 1`);
    /// at zero an incident is raised. The job is retried after `retryBackOff`. Idempotent: retried like
    /// ``completeJob(_:variables:jobDeadline:)``, not past `jobDeadline`.
    public func failJob(
        _ jobKey: Int64,
        retries: Int32,
        errorMessage: String,
        retryBackOff: Duration = .zero,
        variables: ZeebeVariables = .empty,
        jobDeadline: Date? = nil
    ) async throws {
        var request = GatewayProtocol_FailJobRequest()
        request.jobKey = jobKey
        request.retries = retries
        request.errorMessage = errorMessage
        request.retryBackOff = retryBackOff.milliseconds
        request.variables = variables.json
        let retry = RetryPolicy.jobCommand(jobDeadline: jobDeadline, timeout: configuration.jobCommandRetryTimeout)
        _ = try await perform("FailJob", retry) { metadata, options in
            try await gateway.failJob(request, metadata: metadata, options: options)
        }
    }

    /// Throws a BPMN error from a job, for a matching error catch event (or an incident). Idempotent:
    /// retried like ``completeJob(_:variables:jobDeadline:)``, not past `jobDeadline`.
    public func throwError(
        _ jobKey: Int64,
        errorCode: String,
        errorMessage: String = "",
        variables: ZeebeVariables = .empty,
        jobDeadline: Date? = nil
    ) async throws {
        var request = GatewayProtocol_ThrowErrorRequest()
        request.jobKey = jobKey
        request.errorCode = errorCode
        request.errorMessage = errorMessage
        request.variables = variables.json
        let retry = RetryPolicy.jobCommand(jobDeadline: jobDeadline, timeout: configuration.jobCommandRetryTimeout)
        _ = try await perform("ThrowError", retry) { metadata, options in
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

/// The jobs of every response message of one ActivateJobs call.
private final class JobCollector: Sendable {
    private let collected = Mutex<[ZeebeJob]>([])

    func append(_ jobs: [ZeebeJob]) { collected.withLock { $0.append(contentsOf: jobs) } }

    var jobs: [ZeebeJob] { collected.withLock { $0 } }
}
