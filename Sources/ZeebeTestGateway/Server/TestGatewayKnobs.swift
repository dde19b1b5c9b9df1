import Foundation
import GRPCCore
import Synchronization

/// Fault injection and auth settings of the test gateway, changeable while it runs.
public final class TestGatewayKnobs: Sendable {
    struct State {
        var injected: [(code: RPCError.Code, message: String, methods: Set<String>?)] = []
        var delay: Duration = .zero
        var callCounts: [String: Int] = [:]
        var refusal: (code: RPCError.Code, methods: Set<String>?, until: ContinuousClock.Instant)?
        var midStreamFailures: [(jobs: Int, code: RPCError.Code)] = []
        var tenantIds: [String: [[String]]] = [:]
    }

    let state = Mutex(State())
    /// The long-polling time used when ActivateJobs asks for the gateway default (0).
    public let defaultLongPollingTimeout: Duration
    /// The wait used when CreateProcessInstanceWithResult asks for the gateway default (0).
    public let defaultRequestTimeout: Duration
    /// When set, every call must carry `authorization: Bearer <token>` valid for this issuer.
    public let tokenIssuer: TestTokenIssuer?
    /// When set, every call must carry `authorization: Basic <base64(username:password)>`.
    public let basicAuthorization: String?

    init(
        defaultLongPollingTimeout: Duration, defaultRequestTimeout: Duration, tokenIssuer: TestTokenIssuer?,
        basicAuth: (username: String, password: String)? = nil
    ) {
        self.defaultLongPollingTimeout = defaultLongPollingTimeout
        self.defaultRequestTimeout = defaultRequestTimeout
        self.tokenIssuer = tokenIssuer
        self.basicAuthorization = basicAuth.map {
            "Basic " + Data("\($0.username):\($0.password)".utf8).base64EncodedString()
        }
    }

    /// The next `count` calls (of `methods`, e.g. `["ActivateJobs"]`, or of any method) fail with `code`.
    public func failNextCalls(
        _ count: Int,
        with code: RPCError.Code,
        message: String = "injected by the test gateway",
        methods: Set<String>? = nil
    ) {
        state.withLock { state in
            for _ in 0..<count { state.injected.append((code, message, methods)) }
        }
    }

    /// Every call of `methods` (of any method when nil) fails with `code` for `duration` from now, as
    /// while a partition elects a new leader (UNAVAILABLE) or a broker applies back-pressure
    /// (RESOURCE_EXHAUSTED).
    public func refuseCalls(
        for duration: Duration, with code: RPCError.Code, methods: Set<String>? = nil
    ) {
        state.withLock { $0.refusal = (code, methods, ContinuousClock.now + duration) }
    }

    /// The next ActivateJobs call activates at most `jobs` jobs, writes them as one response message,
    /// then fails the stream with `code`, as a long poll does when one of several brokers fails after
    /// another one answered.
    public func failNextActivationMidStream(afterJobs jobs: Int, with code: RPCError.Code = .unavailable) {
        state.withLock { $0.midStreamFailures.append((jobs, code)) }
    }

    /// The `tenantIds` (or `tenantId`) of every request of `method` so far, in order.
    public func tenantIds(of method: String) -> [[String]] {
        state.withLock { $0.tenantIds[method, default: []] }
    }

    func recordTenants(_ tenants: [String], of method: String) {
        state.withLock { $0.tenantIds[method, default: []].append(tenants) }
    }

    func takeMidStreamFailure() -> (jobs: Int, code: RPCError.Code)? {
        state.withLock { $0.midStreamFailures.isEmpty ? nil : $0.midStreamFailures.removeFirst() }
    }

    /// Every call waits this long before it is handled (for deadline tests).
    public func delayCalls(by delay: Duration) {
        state.withLock { $0.delay = delay }
    }

    /// How many calls of `method` (e.g. `"CompleteJob"`) reached the gateway, rejected ones included.
    public func callCount(_ method: String) -> Int {
        state.withLock { $0.callCounts[method, default: 0] }
    }

    /// Records a call and returns the error to inject and the delay to apply.
    func admit(_ method: String) -> (RPCError?, Duration) {
        state.withLock { state in
            state.callCounts[method, default: 0] += 1
            if let refusal = state.refusal, ContinuousClock.now < refusal.until,
                refusal.methods?.contains(method) ?? true
            {
                return (RPCError(code: refusal.code, message: "refused by the test gateway for a while"), state.delay)
            }
            guard let index = state.injected.firstIndex(where: { $0.methods?.contains(method) ?? true }) else {
                return (nil, state.delay)
            }
            let injected = state.injected.remove(at: index)
            return (RPCError(code: injected.code, message: injected.message), state.delay)
        }
    }
}
