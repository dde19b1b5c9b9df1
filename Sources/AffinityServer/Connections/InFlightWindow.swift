/// The outcomes one worker connection has in flight (read and not answered yet), without I/O: at
/// most ``maxCount`` outcomes and ``maxBytes`` bytes of their frames. An outcome that does not fit
/// waits (its session stops taking messages, so reading from the socket pauses; see
/// ``KeyedOutcomeQueue``) until answers make room. One outcome always fits into an empty window,
/// whatever its size (up to `--max-message-bytes`).
struct InFlightWindow: Equatable {
    let maxCount: Int
    let maxBytes: Int
    private(set) var count = 0
    private(set) var bytes = 0

    init(maxCount: Int, maxBytes: Int) {
        self.maxCount = max(1, maxCount)
        self.maxBytes = max(1, maxBytes)
    }

    /// Whether an outcome of `size` bytes fits now.
    func fits(_ size: Int) -> Bool {
        count == 0 || (count < maxCount && bytes + size <= maxBytes)
    }

    /// Takes room for an outcome of `size` bytes; false (and nothing taken) when it does not fit.
    mutating func admit(_ size: Int) -> Bool {
        guard fits(size) else { return false }
        count += 1
        bytes += size
        return true
    }

    /// An admitted outcome of `size` bytes was answered.
    mutating func release(_ size: Int) {
        precondition(count > 0 && bytes >= size, "released more than was admitted")
        count -= 1
        bytes -= size
    }
}
