import Foundation
import GRPCCore
import Synchronization

/// The test gateway's small workflow engine: deployments, instances, jobs, messages.
///
/// Test support only. Time is wall-clock time; expired job locks and message TTLs are
/// applied lazily on every operation. Errors are `RPCError`s with the gateway's codes and
/// message format (`Command 'COMPLETE' rejected with code 'NOT_FOUND': ...`).
public final class GatewayEngine: Sendable {
    struct State: Sendable {
        var nextKey: Int64 = 2_251_799_813_685_249
        var definitions: [String: [EngineDefinition]] = [:]
        var definitionsByKey: [Int64: EngineDefinition] = [:]
        var instances: [Int64: EngineInstance] = [:]
        var jobs: [Int64: EngineJob] = [:]
        var messages: [BufferedMessage] = []
        var subscriptions: [MessageSubscription] = []
        var streams: [UUID: JobStreamRegistration] = [:]
        var completedJobs: [Int64] = []
        /// Each completed job as it was when completed (for the inspection endpoint).
        var completedJobRecords: [Int64: EngineJob] = [:]
        var failedJobs: [Int64] = []
        /// Every FailJob call per job key, in order.
        var jobFailures: [Int64: [EngineJobFailure]] = [:]
        var streamedJobs: [Int64] = []
        var incidents: [EngineIncident] = []

        mutating func key() -> Int64 {
            nextKey += 1
            return nextKey
        }
    }

    let state = Mutex(State())

    /// Creates an empty engine.
    public init() {}

    // MARK: Inspection for tests

    /// Keys of the jobs completed so far, in order.
    public var completedJobKeys: [Int64] { state.withLock { $0.completedJobs } }
    /// Keys of the jobs failed so far (every FailJob call), in order.
    public var failedJobKeys: [Int64] { state.withLock { $0.failedJobs } }
    /// Keys of the jobs pushed to a job stream (rather than activated by polling), in order.
    public var streamedJobKeys: [Int64] { state.withLock { $0.streamedJobs } }
    /// The incidents raised so far.
    public var incidents: [EngineIncident] { state.withLock { $0.incidents } }
    /// A job by key, while it exists.
    public func job(_ key: Int64) -> EngineJob? { state.withLock { $0.jobs[key] } }
    /// An instance by key.
    public func instance(_ key: Int64) -> EngineInstance? { state.withLock { $0.instances[key] } }
    /// The number of open job streams.
    public var openStreamCount: Int { state.withLock { $0.streams.count } }

    // MARK: Deployments

    /// Deploys BPMN resources atomically; returns (deployment key, [(resource name, definition)]).
    func deploy(_ resources: [(name: String, content: [UInt8])]) throws -> (Int64, [(String, EngineDefinitionInfo)]) {
        guard !resources.isEmpty else {
            throw Self.rejection("CREATE", .invalidArgument, "Expected to deploy at least one resource, but none given")
        }
        var parsed: [(String, [UInt8], BPMNProcess)] = []
        for resource in resources {
            guard resource.name.hasSuffix(".bpmn") || resource.name.hasSuffix(".xml") else {
                throw Self.rejection(
                    "CREATE",
                    .invalidArgument,
                    "Expected resource '\(resource.name)' to be a BPMN file (.bpmn); the test engine deploys only BPMN"
                )
            }
            do {
                for process in try BPMNParser.parse(resource.content) {
                    parsed.append((resource.name, resource.content, process))
                }
            } catch {
                throw Self.rejection("CREATE", .invalidArgument, "'\(resource.name)': \(error)")
            }
        }
        return state.withLock { state in
            let deploymentKey = state.key()
            var deployed: [(String, EngineDefinitionInfo)] = []
            for (name, _, process) in parsed {
                let versions = state.definitions[process.id] ?? []
                if let latest = versions.last, latest.process == process {
                    deployed.append((name, EngineDefinitionInfo(latest)))
                    continue
                }
                let definition = EngineDefinition(
                    key: state.key(),
                    version: Int32(versions.count + 1),
                    resourceName: name,
                    process: process
                )
                state.definitions[process.id, default: []].append(definition)
                state.definitionsByKey[definition.key] = definition
                deployed.append((name, EngineDefinitionInfo(definition)))
            }
            return (deploymentKey, deployed)
        }
    }

    // MARK: Instances

    /// The tenant of a cluster without multi-tenancy, used when a request names none.
    static let defaultTenantId = "<default>"

    /// The tenants a job-activating request names (`<default>` when it names none).
    static func tenants(_ tenantIds: [String]) -> Set<String> {
        tenantIds.isEmpty ? [defaultTenantId] : Set(tenantIds)
    }

    /// Creates an instance for `tenantId` (empty: `<default>`) and runs it to its first wait state.
    func createInstance(
        bpmnProcessId: String,
        processDefinitionKey: Int64,
        version: Int32,
        variables: String,
        tenantId: String = ""
    ) throws -> EngineInstance {
        let parsedVariables: [String: JSONValue]
        do {
            parsedVariables = try JSONValue.parseObject(variables)
        } catch {
            throw Self.rejection(
                "CREATE",
                .invalidArgument,
                "Property 'variables' is invalid: Expected document to be a root level object, but was '\(variables)'"
            )
        }
        return try state.withLock { state in
            let definition: EngineDefinition?
            if processDefinitionKey > 0 {
                definition = state.definitionsByKey[processDefinitionKey]
            } else if version < 0 {
                definition = state.definitions[bpmnProcessId]?.last
            } else {
                definition = state.definitions[bpmnProcessId]?.first { $0.version == version }
            }
            guard let definition else {
                throw Self.rejection(
                    "CREATE",
                    .notFound,
                    "Expected to find process definition with process ID '\(bpmnProcessId)', but none found"
                )
            }
            let key = state.key()
            state.instances[key] = EngineInstance(
                key: key,
                processDefinitionKey: definition.key,
                bpmnProcessId: definition.process.id,
                version: definition.version,
                variables: parsedVariables,
                currentElementId: nil,
                currentElementInstanceKey: 0,
                state: .active,
                tenantId: tenantId.isEmpty ? Self.defaultTenantId : tenantId
            )
            Self.advance(&state, instance: key, to: definition.process.startEventId)
            return state.instances[key]!
        }
    }

    /// Cancels an active instance.
    func cancel(processInstanceKey: Int64) throws {
        try state.withLock { state in
            guard let instance = state.instances[processInstanceKey], instance.state == .active else {
                throw Self.rejection(
                    "CANCEL",
                    .notFound,
                    "Expected to cancel a process instance with key '\(processInstanceKey)', but no such process was found"
                )
            }
            state.instances[processInstanceKey]?.state = .canceled
            state.jobs = state.jobs.filter { $0.value.processInstanceKey != processInstanceKey }
            state.subscriptions.removeAll { $0.processInstanceKey == processInstanceKey }
        }
    }

    /// Merges variables into an instance (by instance key or current element instance key).
    func setVariables(elementInstanceKey: Int64, variables: String) throws -> Int64 {
        guard let parsed = try? JSONValue.parseObject(variables) else {
            throw Self.rejection("UPDATE", .invalidArgument, "Property 'variables' is invalid: expected a JSON object")
        }
        return try state.withLock { state in
            guard
                let instanceKey = state.instances.values.first(where: {
                    $0.state == .active
                        && ($0.key == elementInstanceKey || $0.currentElementInstanceKey == elementInstanceKey)
                })?.key
            else {
                throw Self.rejection(
                    "UPDATE",
                    .notFound,
                    "Expected to update variables for element with key '\(elementInstanceKey)', but no such element was found"
                )
            }
            state.instances[instanceKey]?.variables.merge(parsed) { $1 }
            return state.key()
        }
    }

    /// Moves the instance's token to `elementId` and runs until a wait state or the end.
    static func advance(_ state: inout State, instance key: Int64, to start: String) {
        var elementId: String? = start
        while let current = elementId, var instance = state.instances[key], instance.state == .active {
            guard let definition = state.definitionsByKey[instance.processDefinitionKey],
                let element = definition.process.elements[current]
            else { return }
            instance.currentElementId = current
            instance.currentElementInstanceKey = state.key()
            state.instances[key] = instance
            switch element {
            case .startEvent:
                elementId = definition.process.next[current]
            case .endEvent:
                state.instances[key]?.state = .completed
                state.instances[key]?.currentElementId = nil
                elementId = nil
            case .serviceTask(let jobType, let retries, let headers):
                let job = EngineJob(
                    key: state.key(),
                    type: jobType,
                    processInstanceKey: key,
                    elementId: current,
                    elementInstanceKey: instance.currentElementInstanceKey,
                    retries: retries,
                    headers: headers,
                    state: .activatable(notBefore: .distantPast),
                    tenantId: instance.tenantId
                )
                state.jobs[job.key] = job
                pushToStream(&state, jobKey: job.key)
                return
            case .messageCatch(let messageName, let variable):
                guard let correlationKey = instance.variables[variable]?.correlationKey else {
                    state.incidents.append(
                        EngineIncident(
                            jobKey: 0,
                            processInstanceKey: key,
                            message: "Failed to extract the correlation key for '\(variable)': no such variable"
                        )
                    )
                    return
                }
                let subscription = MessageSubscription(
                    processInstanceKey: key,
                    bpmnProcessId: instance.bpmnProcessId,
                    messageName: messageName,
                    correlationKey: correlationKey
                )
                expireMessages(&state)
                if let index = state.messages.firstIndex(where: {
                    $0.name == messageName && $0.correlationKey == correlationKey
                        && !$0.correlatedProcessIds.contains(instance.bpmnProcessId)
                }) {
                    state.messages[index].correlatedProcessIds.insert(instance.bpmnProcessId)
                    state.instances[key]?.variables.merge(state.messages[index].variables) { $1 }
                    elementId = definition.process.next[current]
                } else {
                    state.subscriptions.append(subscription)
                    return
                }
            }
            if elementId == nil, state.instances[key]?.state == .active {
                state.instances[key]?.state = .completed
                state.instances[key]?.currentElementId = nil
            }
        }
    }

    static func rejection(_ command: String, _ code: RPCError.Code, _ reason: String) -> RPCError {
        RPCError(
            code: code, message: "Command '\(command)' rejected with code '\(Self.rejectionName(code))': \(reason)")
    }

    static func rejectionName(_ code: RPCError.Code) -> String {
        switch code {
        case .notFound: return "NOT_FOUND"
        case .invalidArgument: return "INVALID_ARGUMENT"
        case .alreadyExists: return "ALREADY_EXISTS"
        case .failedPrecondition: return "INVALID_STATE"
        default: return "\(code)"
        }
    }
}

/// What a deployment reports about one process definition.
struct EngineDefinitionInfo: Sendable {
    var bpmnProcessId: String
    var version: Int32
    var key: Int64
    var resourceName: String

    init(_ definition: EngineDefinition) {
        bpmnProcessId = definition.process.id
        version = definition.version
        key = definition.key
        resourceName = definition.resourceName
    }
}
