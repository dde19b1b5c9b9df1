import AffinityProtocol
import CoreMetrics
import Logging

/// Runs one connection of the Node package's wire protocol on `/` (with `--legacy-protocol`): clients
/// register and receive every outcome; workers send outcomes, which go to every legacy client of the
/// cluster (in the order the worker sent them) and, as protocol v1 outcomes with a generated id, to the
/// v1 subscribers of their key (parked when there are none). The protocol has no answers: a malformed
/// frame is logged and counted, never answered, and never closes the connection.
struct LegacySession {
    let environment: SessionEnvironment
    let broadcaster: LegacyBroadcaster
    let metrics: LegacyMetrics
    let logger: Logger

    private enum Role {
        case none, client, worker
    }

    func run(_ connection: WebSocketConnection, inbox: InboundMessageQueue) async {
        environment.registry.register(connection)
        metrics.unregistered.increment()
        var role = Role.none
        if environment.isDraining() {
            connection.close(code: 1001, reason: "draining")
        }
        while let message = await inbox.next() {
            switch message {
            case .text(let bytes):
                await receive(bytes, connection: connection, role: &role)
            case .binary, .oversized:
                invalid("a binary or oversized frame", connection: connection)
            case .readParked, .decoded, .removeParkedCopies, .deliveryNeedsStore:
                // the v1 session's own work: a legacy connection has no immediate handler and no deliveries
                continue
            }
        }
        connection.finishOutbound()
        broadcaster.remove(connection)
        environment.registry.unregister(connection)
        meter(for: role).decrement()
        logger.debug("legacy connection closed", metadata: ["affinity.connection": "\(connection.connectionID)"])
    }

    private func receive(_ bytes: [UInt8], connection: WebSocketConnection, role: inout Role) async {
        let message: LegacyMessage
        do {
            message = try LegacyMessage.decode(bytes)
        } catch {
            invalid(error.message, connection: connection)
            return
        }
        switch message {
        case .registerClient:
            guard role == .none else { return }
            move(&role, to: .client)
            broadcaster.add(connection)
            logger.debug("legacy client registered", metadata: ["affinity.connection": "\(connection.connectionID)"])
        case .registerWorker:
            guard role == .none else { return }
            move(&role, to: .worker)
        case .processOutcome(let key, let variables):
            if role == .none { move(&role, to: .worker) }
            let outcome: Outcome
            do {
                outcome = try Outcome(id: Self.generatedID(), key: key, variables: variables)
            } catch {
                invalid(error.message, connection: connection)
                return
            }
            metrics.received.increment()
            // the legacy clients first, in the worker's order; then the v1 subscribers of the key (answered
            // `delivered` or parked for a later subscriber; the legacy worker reads no answer)
            await broadcaster.broadcast(outcome)
            do {
                _ = try await environment.coordinator.deliver(outcome, broadcastToLegacyClients: false)
            } catch {
                logger.debug(
                    "a legacy outcome could not be delivered to protocol v1 subscribers",
                    metadata: [
                        "affinity.key": "\(key)", "error.code": "\(error.code)", "error.message": "\(error.message)",
                    ])
            }
        }
    }

    private func move(_ role: inout Role, to new: Role) {
        meter(for: role).decrement()
        role = new
        meter(for: role).increment()
    }

    private func meter(for role: Role) -> Meter {
        switch role {
        case .none: metrics.unregistered
        case .client: metrics.clients
        case .worker: metrics.workers
        }
    }

    private func invalid(_ reason: String, connection: WebSocketConnection) {
        metrics.invalidFrames.increment()
        logger.debug(
            "ignoring an invalid legacy frame",
            metadata: ["affinity.connection": "\(connection.connectionID)", "error.message": "\(reason)"])
    }

    /// A unique id for an outcome of a legacy worker (the protocol has none): `legacy-` and 128 random bits.
    static func generatedID() -> String {
        var random = SystemRandomNumberGenerator()
        let high = String(random.next() as UInt64, radix: 16)
        let low = String(random.next() as UInt64, radix: 16)
        return "legacy-" + String(repeating: "0", count: 16 - high.count) + high
            + String(repeating: "0", count: 16 - low.count) + low
    }
}
