import Synchronization

/// Whether the replica takes new work: false from the moment a drain starts.
final class Readiness: Sendable {
    private let draining = Atomic<Bool>(false)

    var isDraining: Bool { draining.load(ordering: .acquiring) }

    /// Marks the replica as draining; returns false if it already was.
    @discardableResult
    func startDraining() -> Bool {
        !draining.exchange(true, ordering: .acquiringAndReleasing)
    }
}
