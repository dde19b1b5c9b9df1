import AffinityClient
import AffinityProtocol
import AffinityZeebe
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ZeebeClient

/// The HTTP handlers of the demo front-end.
struct DemoRoutes: Sendable {
    let client: AffinityZeebeClient
    let timeout: Duration
    let maxBodyBytes: Int
    let logger: Logger
    let isReady: @Sendable () -> Bool

    /// The answer header carrying the process instance key (the chat flow needs it for `/message`).
    static let processInstanceKeyHeader = HTTPField.Name("x-process-instance-key")!

    func register(on router: Router<BasicRequestContext>) {
        router.get("/health/live") { _, _ in HTTPResponse.Status.ok }
        router.get("/health/ready") { _, _ -> Response in
            Response(status: isReady() ? .ok : .serviceUnavailable)
        }
        router.post("/process/:bpmnProcessId") { request, context -> Response in
            let processID = try context.parameters.require("bpmnProcessId")
            let body = try await request.body.collect(upTo: maxBodyBytes)
            let text = body.readableBytes == 0 ? "{}" : String(buffer: body)
            guard case .some(.object) = DemoJSON.parse(text) else {
                return Self.json(.badRequest, ["error": "bad_request", "message": "the body must be a JSON object"])
            }
            return await answer(key: nil) {
                try await client.createProcessInstanceWithAffinity(
                    bpmnProcessId: processID, variables: try ZeebeVariables(json: text), timeout: timeout)
            }
        }
        router.post("/message/:name") { request, context -> Response in
            let name = try context.parameters.require("name")
            let body = try await request.body.collect(upTo: maxBodyBytes)
            let message: DemoMessageRequest
            do {
                message = try DemoMessageRequest(json: Array(buffer: body))
            } catch let error as DemoMessageRequest.Invalid {
                return Self.json(.badRequest, ["error": "bad_request", "message": error.message])
            }
            return await answer(key: message.processInstanceKey) {
                try await client.publishMessageWithAffinity(
                    name: name, correlationKey: message.correlationKey,
                    processInstanceKey: message.processInstanceKey, variables: message.variables,
                    messageId: message.messageId ?? "", timeout: timeout)
            }
        }
    }

    /// Runs `call` and maps its result or error to an HTTP answer.
    func answer(key: Int64?, _ call: () async throws -> AffinityProcessResult) async -> Response {
        do {
            let result = try await call()
            var headers: HTTPFields = [.contentType: "application/json"]
            headers[Self.processInstanceKeyHeader] = String(result.processInstanceKey)
            return Response(
                status: .ok, headers: headers,
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: result.outcome.variables)))
        } catch let error as AffinityClientError where error.code == .timeout {
            let key = error.processInstanceKey?.description ?? key.map(String.init) ?? ""
            return Self.json(
                .gatewayTimeout, ["error": "timeout", "processInstanceKey": key, "message": error.message])
        } catch let error as AffinityClientError {
            logger.debug("affinity request failed", metadata: ["affinity.error": "\(error)"])
            return Self.json(.serviceUnavailable, ["error": error.code.rawValue, "message": error.message])
        } catch let error as ZeebeError {
            let status: HTTPResponse.Status =
                switch error.code {
                case .notFound: .notFound
                case .invalidArgument, .invalidVariables: .badRequest
                default: .badGateway
                }
            return Self.json(status, ["error": error.code.rawValue, "message": error.message])
        } catch {
            return Self.json(.internalServerError, ["error": "internal", "message": "\(error)"])
        }
    }

    static func json(_ status: HTTPResponse.Status, _ fields: [String: String]) -> Response {
        let body = (try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys])) ?? Data("{}".utf8)
        return Response(
            status: status, headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: Array(body))))
    }
}
