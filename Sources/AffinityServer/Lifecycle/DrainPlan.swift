/// The steps of a graceful drain after its start, without I/O: driven by what the replica still holds (a
/// ``Snapshot``) and the clock, it says when every connection must be closed and when the drain is over.
///
/// 1. Deliveries in progress finish (until none is left, or the drain deadline).
/// 2. Workers, told `drain`, close their connections once every outcome they sent was answered; those still
///    open after the worker grace period (counted from the end of step 1, within the deadline) are not waited
///    for any longer.
/// 3. Deliveries finish again (outcomes workers sent during step 2).
/// 4. Every connection still open is closed (``Action/closeEveryConnection``); the drain ends once none is
///    left, or at the deadline.
struct DrainPlan {
    /// What the replica holds now.
    struct Snapshot: Equatable {
        var deliveries: Int
        var workers: Int
        var connections: Int
    }

    enum Phase: Equatable {
        case deliveries
        case workers(graceEnds: ContinuousClock.Instant)
        case deliveriesAfterWorkers
        case connections
        case finished
    }

    enum Action: Equatable {
        case none
        /// Close every connection still open (`drain`, then close 1001).
        case closeEveryConnection
    }

    private(set) var phase: Phase = .deliveries
    let deadline: ContinuousClock.Instant
    let workerGrace: Duration

    init(deadline: ContinuousClock.Instant, workerGrace: Duration) {
        self.deadline = deadline
        self.workerGrace = workerGrace
    }

    /// The next instant at which the plan advances without a change of the snapshot (nil when finished).
    var nextDeadline: ContinuousClock.Instant? {
        switch phase {
        case .workers(let graceEnds): graceEnds
        case .finished: nil
        case .deliveries, .deliveriesAfterWorkers, .connections: deadline
        }
    }

    /// Whether the drain is over.
    var isFinished: Bool { phase == .finished }

    /// Advances as far as `snapshot` at `now` allows; returns what must be done now.
    mutating func observe(_ snapshot: Snapshot, now: ContinuousClock.Instant) -> Action {
        var action = Action.none
        while true {
            let late = now >= deadline
            switch phase {
            case .deliveries:
                guard snapshot.deliveries == 0 || late else { return action }
                phase = .workers(graceEnds: min(deadline, now + workerGrace))
            case .workers(let graceEnds):
                guard snapshot.workers == 0 || now >= graceEnds else { return action }
                phase = .deliveriesAfterWorkers
            case .deliveriesAfterWorkers:
                guard snapshot.deliveries == 0 || late else { return action }
                phase = .connections
                action = .closeEveryConnection
            case .connections:
                guard snapshot.connections == 0 || late else { return action }
                phase = .finished
                return action
            case .finished:
                return action
            }
        }
    }
}
