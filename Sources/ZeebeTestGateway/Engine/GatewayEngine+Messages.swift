import Foundation
import GRPCCore
import Synchronization

extension GatewayEngine {
    /// Publishes a message: correlates it to open subscriptions (at most once per BPMN process id)
    /// and buffers it for `timeToLive`.
    func publish(
        name: String,
        correlationKey: String,
        timeToLive: Duration,
        messageId: String,
        variables: String
    ) throws -> Int64 {
        let parsed = try Self.parseVariables(variables, command: "PUBLISH")
        guard !name.isEmpty else {
            throw Self.rejection("PUBLISH", .invalidArgument, "Expected message name to be non-empty")
        }
        return try state.withLock { state in
            Self.expireMessages(&state)
            if !messageId.isEmpty,
                state.messages.contains(where: {
                    $0.name == name && $0.correlationKey == correlationKey && $0.messageId == messageId
                })
            {
                throw Self.rejection(
                    "PUBLISH",
                    .alreadyExists,
                    "Expected to publish a new message with id '\(messageId)', but a message with that id was already published"
                )
            }
            var message = BufferedMessage(
                key: state.key(),
                name: name,
                correlationKey: correlationKey,
                messageId: messageId,
                variables: parsed,
                expiresAt: Date() + timeToLive.timeInterval,
                correlatedProcessIds: []
            )
            var index = 0
            while index < state.subscriptions.count {
                let subscription = state.subscriptions[index]
                guard subscription.messageName == name, subscription.correlationKey == correlationKey,
                    !message.correlatedProcessIds.contains(subscription.bpmnProcessId)
                else {
                    index += 1
                    continue
                }
                state.subscriptions.remove(at: index)
                message.correlatedProcessIds.insert(subscription.bpmnProcessId)
                Self.correlate(&state, subscription: subscription, variables: parsed)
            }
            if timeToLive > .zero {
                state.messages.append(message)
            }
            return message.key
        }
    }

    /// Moves an instance past its message catch event.
    static func correlate(_ state: inout State, subscription: MessageSubscription, variables: [String: JSONValue]) {
        let key = subscription.processInstanceKey
        guard let instance = state.instances[key], instance.state == .active,
            let elementId = instance.currentElementId,
            let process = state.definitionsByKey[instance.processDefinitionKey]?.process
        else { return }
        state.instances[key]?.variables.merge(variables) { $1 }
        if let next = process.next[elementId] {
            advance(&state, instance: key, to: next)
        } else {
            state.instances[key]?.state = .completed
            state.instances[key]?.currentElementId = nil
        }
    }

    /// Drops buffered messages whose TTL passed.
    static func expireMessages(_ state: inout State) {
        let now = Date()
        state.messages.removeAll { $0.expiresAt <= now }
    }

    /// The variables of a completed instance (filtered), or nil while it runs.
    /// - Throws: NOT_FOUND when the instance was canceled.
    func result(of processInstanceKey: Int64, fetchVariables: [String]) throws -> String? {
        try state.withLock { state in
            guard let instance = state.instances[processInstanceKey] else { return nil }
            switch instance.state {
            case .active:
                return nil
            case .canceled:
                throw RPCError(code: .notFound, message: "the process instance \(processInstanceKey) was canceled")
            case .completed:
                var variables = instance.variables
                if !fetchVariables.isEmpty {
                    variables = variables.filter { fetchVariables.contains($0.key) }
                }
                return JSONValue.serialize(variables)
            }
        }
    }
}
