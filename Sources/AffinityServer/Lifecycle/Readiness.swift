import Synchronization

/// Whether the replica takes new work: false from the moment a drain starts, and (in a cluster) until the
/// replica is registered under its id.
final class Readiness: Sendable {
    private let draining = Atomic<Bool>(false)
    private let registered = Atomic<Bool>(true)

    var isDraining: Bool { draining.load(ordering: .acquiring) }

    /// False while a cluster replica waits for its registration (see ``LocalReplica/setRegistered(_:)``).
    var isRegistered: Bool { registered.load(ordering: .acquiring) }

    /// Marks the replica as draining; returns false if it already was.
    @discardableResult
    func startDraining() -> Bool {
        !draining.exchange(true, ordering: .acquiringAndReleasing)
    }

    func setRegistered(_ value: Bool) {
        registered.store(value, ordering: .releasing)
    }
}
