import Foundation
import GRPCCore
import Synchronization

extension GatewayEngine {
    /// Activates up to `maxJobs` activatable jobs of `type` and of one of `tenantIds` (empty:
    /// `<default>`) for `worker`.
    func activate(
        type: String,
        worker: String,
        maxJobs: Int,
        timeout: Duration,
        fetchVariables: [String],
        tenantIds: [String] = []
    ) -> [EngineActivation] {
        let tenants = Self.tenants(tenantIds)
        return state.withLock { state in
            Self.expireLocks(&state)
            let now = Date()
            let candidates = state.jobs.values
                .filter { job in
                    guard job.type == type, tenants.contains(job.tenantId),
                        case .activatable(let notBefore) = job.state
                    else { return false }
                    return notBefore <= now && job.retries > 0
                }
                .sorted { $0.key < $1.key }
                .prefix(maxJobs)
            return candidates.compactMap { job in
                Self.lock(&state, jobKey: job.key, worker: worker, timeout: timeout, fetchVariables: fetchVariables)
            }
        }
    }

    /// Registers a job stream; new jobs of its type and of one of `tenantIds` (empty: `<default>`) are
    /// pushed to it.
    func openStream(
        type: String,
        worker: String,
        timeout: Duration,
        fetchVariables: [String],
        tenantIds: [String] = []
    ) -> (UUID, AsyncStream<EngineActivation>) {
        let (stream, continuation) = AsyncStream.makeStream(of: EngineActivation.self)
        let id = UUID()
        state.withLock {
            $0.streams[id] = JobStreamRegistration(
                type: type,
                worker: worker,
                timeout: timeout,
                fetchVariables: fetchVariables,
                tenantIds: Self.tenants(tenantIds),
                continuation: continuation
            )
        }
        return (id, stream)
    }

    /// Removes a job stream. The jobs pushed to it and not yet written to the client are yielded back:
    /// activatable again at once, as the broker does with a push that failed.
    func closeStream(_ id: UUID) {
        let registration = state.withLock { state in
            let registration = state.streams.removeValue(forKey: id)
            for key in registration?.unwritten ?? [] {
                if case .activated = state.jobs[key]?.state {
                    state.jobs[key]?.state = .activatable(notBefore: .distantPast)
                }
            }
            return registration
        }
        registration?.continuation.finish()
    }

    /// Makes activated jobs that never reached their worker activatable again at once.
    func yieldBack(_ jobKeys: [Int64]) {
        state.withLock { state in
            for key in jobKeys {
                if case .activated = state.jobs[key]?.state {
                    state.jobs[key]?.state = .activatable(notBefore: .distantPast)
                }
            }
        }
    }

    /// A pushed job was written to the stream's client.
    func streamWrote(_ id: UUID, jobKey: Int64) {
        state.withLock { _ = $0.streams[id]?.unwritten.remove(jobKey) }
    }

    /// Ends every job stream cleanly (gateway shutdown; tests: a gateway that closes its streams).
    public func closeAllStreams() {
        let registrations = state.withLock { state in
            defer { state.streams.removeAll() }
            return Array(state.streams.values)
        }
        for registration in registrations { registration.continuation.finish() }
    }

    /// Completes a job: its variables go to the instance, which moves on.
    func complete(jobKey: Int64, variables: String) throws {
        let parsed = try Self.parseVariables(variables, command: "COMPLETE")
        try state.withLock { state in
            Self.expireLocks(&state)
            guard let job = state.jobs[jobKey] else {
                throw Self.rejection(
                    "COMPLETE",
                    .notFound,
                    "Expected to complete job with key '\(jobKey)', but no such job was found"
                )
            }
            if case .incident = job.state {
                throw Self.rejection(
                    "COMPLETE",
                    .failedPrecondition,
                    "Expected to complete job with key '\(jobKey)', but it is in state 'FAILED'"
                )
            }
            state.jobs[jobKey] = nil
            state.completedJobs.append(jobKey)
            state.completedJobRecords[jobKey] = job
            guard state.instances[job.processInstanceKey]?.state == .active else { return }
            state.instances[job.processInstanceKey]?.variables.merge(parsed) { $1 }
            let definitionKey = state.instances[job.processInstanceKey]!.processDefinitionKey
            guard let next = state.definitionsByKey[definitionKey]?.process.next[job.elementId] else {
                state.instances[job.processInstanceKey]?.state = .completed
                state.instances[job.processInstanceKey]?.currentElementId = nil
                return
            }
            Self.advance(&state, instance: job.processInstanceKey, to: next)
        }
    }

    /// Fails a job: retried after `retryBackOff`, or an incident when no retries are left.
    func fail(jobKey: Int64, retries: Int32, message: String, retryBackOff: Duration) throws {
        try state.withLock { state in
            Self.expireLocks(&state)
            guard let job = state.jobs[jobKey] else {
                throw Self.rejection(
                    "FAIL",
                    .notFound,
                    "Expected to fail job with key '\(jobKey)', but no such job was found"
                )
            }
            guard case .activated = job.state else {
                throw Self.rejection(
                    "FAIL",
                    .failedPrecondition,
                    "Expected to fail activated job with key '\(jobKey)', but it is not activated"
                )
            }
            state.failedJobs.append(jobKey)
            state.jobFailures[jobKey, default: []].append(
                EngineJobFailure(retries: retries, message: message, retryBackOff: retryBackOff))
            state.jobs[jobKey]?.retries = retries
            if retries > 0 {
                state.jobs[jobKey]?.state = .activatable(notBefore: Date() + retryBackOff.timeInterval)
            } else {
                state.jobs[jobKey]?.state = .incident(message: message)
                state.incidents.append(
                    EngineIncident(jobKey: jobKey, processInstanceKey: job.processInstanceKey, message: message)
                )
            }
        }
    }

    /// Throws a BPMN error; the test engine has no error catch events, so it raises an incident.
    func throwError(jobKey: Int64, errorCode: String, message: String) throws {
        try state.withLock { state in
            Self.expireLocks(&state)
            guard let job = state.jobs[jobKey] else {
                throw Self.rejection(
                    "THROW_ERROR",
                    .notFound,
                    "Expected to throw an error for job with key '\(jobKey)', but no such job was found"
                )
            }
            guard case .activated = job.state else {
                throw Self.rejection(
                    "THROW_ERROR",
                    .failedPrecondition,
                    "Expected to throw an error for job with key '\(jobKey)', but it is not activated"
                )
            }
            let text =
                "Expected to throw an error event with the code '\(errorCode)' with message '\(message)', but it was not caught"
            state.jobs[jobKey]?.state = .incident(message: text)
            state.incidents.append(
                EngineIncident(jobKey: jobKey, processInstanceKey: job.processInstanceKey, message: text))
        }
    }

    /// Sets a job's retries.
    func updateRetries(jobKey: Int64, retries: Int32) throws {
        try state.withLock { state in
            guard state.jobs[jobKey] != nil else {
                throw Self.rejection(
                    "UPDATE_RETRIES",
                    .notFound,
                    "Expected to update retries for job with key '\(jobKey)', but no such job was found"
                )
            }
            guard retries > 0 else {
                throw Self.rejection("UPDATE_RETRIES", .invalidArgument, "Expected retries to be greater than zero")
            }
            state.jobs[jobKey]?.retries = retries
        }
    }

    /// Locks a job for a worker and builds what the worker receives.
    static func lock(
        _ state: inout State,
        jobKey: Int64,
        worker: String,
        timeout: Duration,
        fetchVariables: [String]
    ) -> EngineActivation? {
        guard var job = state.jobs[jobKey], let instance = state.instances[job.processInstanceKey] else { return nil }
        let deadline = Date() + timeout.timeInterval
        job.state = .activated(worker: worker, deadline: deadline)
        state.jobs[jobKey] = job
        var variables = instance.variables
        if !fetchVariables.isEmpty {
            variables = variables.filter { fetchVariables.contains($0.key) }
        }
        return EngineActivation(
            job: job,
            bpmnProcessId: instance.bpmnProcessId,
            version: instance.version,
            processDefinitionKey: instance.processDefinitionKey,
            variables: JSONValue.serialize(variables),
            worker: worker,
            deadline: deadline
        )
    }

    /// Pushes a newly activatable job to a stream of its type, if one is open.
    static func pushToStream(_ state: inout State, jobKey: Int64) {
        guard let job = state.jobs[jobKey] else { return }
        let matching = state.streams.filter { $0.value.type == job.type && $0.value.tenantIds.contains(job.tenantId) }
        guard let (id, stream) = matching.randomElement() else { return }
        guard
            let activation = lock(
                &state,
                jobKey: jobKey,
                worker: stream.worker,
                timeout: stream.timeout,
                fetchVariables: stream.fetchVariables
            )
        else { return }
        if case .terminated = stream.continuation.yield(activation) {
            state.jobs[jobKey]?.state = .activatable(notBefore: .distantPast)
        } else {
            state.streamedJobs.append(jobKey)
            state.streams[id]?.unwritten.insert(jobKey)
        }
    }

    /// Makes jobs whose lock expired activatable again, without using a retry.
    static func expireLocks(_ state: inout State) {
        let now = Date()
        for (key, job) in state.jobs {
            if case .activated(_, let deadline) = job.state, deadline <= now {
                state.jobs[key]?.state = .activatable(notBefore: .distantPast)
            }
        }
    }

    static func parseVariables(_ json: String, command: String) throws -> [String: JSONValue] {
        do {
            return try JSONValue.parseObject(json)
        } catch {
            throw rejection(command, .invalidArgument, "Property 'variables' is invalid: expected a JSON object")
        }
    }
}

extension Duration {
    var timeInterval: TimeInterval {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
