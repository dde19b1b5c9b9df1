import Foundation
import Synchronization

extension GatewayEngine {
    /// A consistent snapshot of the whole engine, as the inspection endpoint serves it.
    public func inspection() -> EngineInspection {
        state.withLock { state in
            Self.expireLocks(&state)
            let failures = state.jobFailures
            func inspected(_ job: EngineJob, completed: Bool) -> InspectedJob {
                var jobState = InspectedJob.State.completed
                var worker: String?
                var incidentMessage: String?
                if !completed {
                    switch job.state {
                    case .activatable: jobState = .activatable
                    case .activated(let holder, _):
                        jobState = .activated
                        worker = holder
                    case .incident(let message):
                        jobState = .incident
                        incidentMessage = message
                    }
                }
                return InspectedJob(
                    key: String(job.key), type: job.type, processInstanceKey: String(job.processInstanceKey),
                    elementId: job.elementId, state: jobState, retries: job.retries, worker: worker,
                    incidentMessage: incidentMessage,
                    failures: (failures[job.key] ?? []).map {
                        InspectedJobFailure(
                            retries: $0.retries, message: $0.message,
                            retryBackOffMilliseconds: $0.retryBackOff.components.seconds * 1000
                                + $0.retryBackOff.components.attoseconds / 1_000_000_000_000_000)
                    },
                    tenantId: job.tenantId)
            }
            let open = state.jobs.values.map { inspected($0, completed: false) }
            let completed = state.completedJobRecords.values.map { inspected($0, completed: true) }
            let jobs = (open + completed).sorted { Int64($0.key)! < Int64($1.key)! }
            let instances = state.instances.values.sorted { $0.key < $1.key }.map { instance in
                let instanceState: InspectedInstance.State
                switch instance.state {
                case .active: instanceState = .active
                case .completed: instanceState = .completed
                case .canceled: instanceState = .canceled
                }
                return InspectedInstance(
                    key: String(instance.key), bpmnProcessId: instance.bpmnProcessId, version: instance.version,
                    state: instanceState, currentElementId: instance.currentElementId, variables: instance.variables)
            }
            return EngineInspection(
                jobs: jobs, instances: instances,
                incidents: state.incidents.map {
                    InspectedIncident(
                        jobKey: $0.jobKey == 0 ? nil : String($0.jobKey),
                        processInstanceKey: String($0.processInstanceKey), message: $0.message)
                },
                completedJobKeys: state.completedJobs.map { String($0) },
                failedJobKeys: state.failedJobs.map { String($0) },
                openJobStreams: state.streams.count)
        }
    }

    /// Every FailJob call on the job `key`, in order.
    public func failures(ofJob key: Int64) -> [EngineJobFailure] {
        state.withLock { $0.jobFailures[key] ?? [] }
    }
}
