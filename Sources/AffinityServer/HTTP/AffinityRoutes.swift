import AffinityProtocol
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// The HTTP endpoints of a replica: `POST /v1/outcomes`, `GET /v1/outcomes/{key}`, the answer to
/// refused WebSocket upgrades on `/v1/ws`, and `/health/*` (also on the metrics port).
///
/// `/metrics` is served on the metrics port when there is one, and only there, so that a
/// NetworkPolicy that keeps that port internal keeps the metrics internal; without a metrics port
/// it is on the main port.
struct AffinityRoutes: Sendable {
    let environment: SessionEnvironment
    let accessPolicy: AccessPolicy
    let metricsExport: MetricsExport
    let logger: Logger

    /// The router of the main port.
    func mainRouter() -> Router<AffinityRequestContext> {
        let router = Router(context: AffinityRequestContext.self)
        addHealthRoutes(to: router)
        if environment.configuration.metricsPort == nil { addMetricsRoute(to: router) }
        router.get("/v1/ws") { request, _ in
            self.refusedUpgrade(request)
        }
        router.post("/v1/outcomes") { request, _ in
            await self.postOutcome(request)
        }
        router.get("/v1/outcomes/:key") { request, context in
            await self.longPoll(request, key: context.parameters.get("key") ?? "", channel: context.channel)
        }
        router.post("/v1/outcomes/:key/ack") { request, context in
            await self.acknowledge(request, key: context.parameters.get("key") ?? "")
        }
        return router
    }

    /// The router of the separate metrics port.
    func metricsRouter() -> Router<AffinityRequestContext> {
        let router = Router(context: AffinityRequestContext.self)
        addHealthRoutes(to: router)
        addMetricsRoute(to: router)
        return router
    }

    private func addHealthRoutes(to router: Router<AffinityRequestContext>) {
        router.get("/health/live") { _, _ in
            HTTPErrorResponse.json(#"{"status":"live"}"#)
        }
        router.get("/health/ready") { _, _ in
            if environment.isDraining() {
                return HTTPErrorResponse.json(#"{"status":"draining"}"#, status: .serviceUnavailable)
            }
            if !environment.readiness.isRegistered {
                return HTTPErrorResponse.json(#"{"status":"registering"}"#, status: .serviceUnavailable)
            }
            if !environment.coordinator.isStoreReachable {
                return HTTPErrorResponse.json(#"{"status":"store_unreachable"}"#, status: .serviceUnavailable)
            }
            return HTTPErrorResponse.json(#"{"status":"ready"}"#)
        }
    }

    private func addMetricsRoute(to router: Router<AffinityRequestContext>) {
        router.get("/metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: metricsExport.render())))
        }
    }

    private func authorize(_ request: Request, as role: PeerRole) throws(AffinityError) {
        let roles = try accessPolicy.grantedRoles(authorization: request.headers[.authorization])
        guard roles.contains(role) else {
            throw AffinityError(code: .forbidden, message: "this token may not act as a \(role.rawValue)")
        }
    }

    /// Reached only by requests that do not ask for a WebSocket upgrade.
    private func refusedUpgrade(_ request: Request) -> Response {
        if environment.isDraining() {
            return HTTPErrorResponse.response(
                for: AffinityError(code: .unavailable, message: "this replica is draining; connect to another one"))
        }
        do {
            _ = try accessPolicy.grantedRoles(authorization: request.headers[.authorization])
        } catch {
            return HTTPErrorResponse.response(for: error)
        }
        var response = HTTPErrorResponse.response(
            for: .badRequest(
                "this endpoint needs a WebSocket upgrade (Upgrade: websocket, Sec-WebSocket-Key, version 13)"))
        response.status = .upgradeRequired
        return response
    }

    private func postOutcome(_ request: Request) async -> Response {
        do throws(AffinityError) {
            try authorize(request, as: .worker)
            if environment.isDraining() {
                throw AffinityError(code: .unavailable, message: "this replica is draining; deliver to another one")
            }
            let limit = environment.configuration.maxMessageBytes
            if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > limit {
                throw AffinityError(code: .tooLarge, message: "body larger than \(limit) bytes")
            }
            let body: ByteBuffer
            do {
                body = try await request.body.collect(upTo: limit)
            } catch {
                throw AffinityError(code: .tooLarge, message: "body larger than \(limit) bytes")
            }
            let outcome = try Outcome.decodeDelivery(Array(buffer: body))
            let status = try await environment.coordinator.deliver(outcome)
            return HTTPErrorResponse.json(#"{"status":"\#(status.rawValue)"}"#)
        } catch {
            if error.code != .unavailable || !environment.isDraining() {
                environment.metrics.rejected(error.code)
            }
            return HTTPErrorResponse.response(for: error)
        }
    }

    private func longPoll(_ request: Request, key text: String, channel: any Channel) async -> Response {
        do throws(AffinityError) {
            try authorize(request, as: .client)
            let key = try processInstanceKey(text)
            var timeout = environment.configuration.maxLongPollTimeout
            if let value = request.uri.queryParameters.get("timeout") {
                guard let parsed = DurationParser.parse(value) else {
                    throw AffinityError.badRequest("timeout must be a number of seconds (or 500ms, 10s, 1m)")
                }
                timeout = min(parsed, timeout)
            }
            if environment.isDraining() {
                throw AffinityError(code: .unavailable, message: "this replica is draining; ask another one")
            }
            guard let outcome = try await waitForOutcome(key: key, timeout: timeout, channel: channel) else {
                return Response(status: .noContent)
            }
            return Response(
                status: .ok, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(bytes: outcome.frame)))
        } catch {
            environment.metrics.rejected(error.code)
            return HTTPErrorResponse.response(for: error)
        }
    }

    /// `POST /v1/outcomes/{key}/ack` `{"id":"..."}`: a long-poll client confirms an outcome it received, which
    /// removes it from the store (on any replica) and answers its worker `delivered` if that is still waiting.
    private func acknowledge(_ request: Request, key text: String) async -> Response {
        do throws(AffinityError) {
            try authorize(request, as: .client)
            let key = try processInstanceKey(text)
            let body: ByteBuffer
            do {
                body = try await request.body.collect(upTo: 4096)
            } catch {
                throw AffinityError(code: .tooLarge, message: "an ack body holds only the outcome id")
            }
            let id = try AffinityMessage.decodeHTTPAcknowledgement(Array(buffer: body))
            try await environment.coordinator.acknowledgeFromHTTP(key: key, id: id)
            return Response(status: .noContent)
        } catch {
            environment.metrics.rejected(error.code)
            return HTTPErrorResponse.response(for: error)
        }
    }

    private func processInstanceKey(_ text: String) throws(AffinityError) -> ProcessInstanceKey {
        guard let key = ProcessInstanceKey(text) else {
            throw AffinityError.badRequest(
                "the key must be a decimal process instance key in 1...\(Int64.max)", ref: text)
        }
        return key
    }

    /// Waits for one outcome of `key`: a parked one first, else the next live one (parked before it is handed
    /// out, see ``DeliveryCoordinator/handOverToPoll(_:delivery:poll:)``). Nothing is acknowledged here: the
    /// outcome stays parked until the client's HTTP ack. Returns nil on timeout or when the client left.
    private func waitForOutcome(
        key: ProcessInstanceKey, timeout: Duration, channel: any Channel
    ) async throws(AffinityError) -> Outcome? {
        let waiter = LongPollWaiter()
        let route = Route(replicaID: environment.configuration.replicaID, clientID: "long-poll-\(waiter.connectionID)")
        let coordinator = environment.coordinator
        let page = ParkedPageLimit(count: 1, bytes: 1)
        let deadline = ContinuousClock.now + timeout
        environment.registry.register(waiter)
        channel.closeFuture.whenComplete { _ in waiter.clientGone() }
        defer { environment.registry.unregister(waiter) }
        var parked: ParkedPage
        do {
            parked = try await coordinator.subscribe(waiter, key: key, route: route, page: page)
        } catch {
            waiter.close()
            await coordinator.unsubscribe(waiter.connectionID, keys: [key], route: nil)
            throw error
        }
        var result: Result<Outcome?, AffinityError> = .success(nil)
        waiting: while true {
            if let first = parked.outcomes.first {
                result = .success(first)
                break
            }
            guard waiter.beginWaiting() else {
                parked = (try? await coordinator.parked(key: key, page: page)) ?? .empty
                continue
            }
            switch await waiter.wait(until: deadline) {
            case .outcome(let outcome, .parked):
                waiter.close()
                result = .success(outcome)
                break waiting
            case .outcome(let outcome, .live(let delivery)):
                waiter.close()
                if await coordinator.handOverToPoll(outcome, delivery: delivery, poll: waiter.connectionID) {
                    result = .success(outcome)
                    break waiting
                }
                // not handed over (acknowledged elsewhere, or the route moved): wait for the next one
                if ContinuousClock.now >= deadline || channel.isActive == false { break waiting }
                waiter.reopen()
                parked = (try? await coordinator.parked(key: key, page: page)) ?? .empty
            case .parkedWaiting:
                waiter.beginReading()
                parked = (try? await coordinator.parked(key: key, page: page)) ?? .empty
            case .timedOut, .clientGone:
                break waiting
            case .draining:
                result = .failure(
                    AffinityError(code: .unavailable, message: "this replica is draining; ask another one"))
                break waiting
            }
        }
        if let taken = waiter.close() {
            coordinator.lost([taken], by: waiter.connectionID)
        }
        await coordinator.unsubscribe(waiter.connectionID, keys: [key], route: route)
        return try result.get()
    }
}
