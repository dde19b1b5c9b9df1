import AffinityProtocol
import HTTPTypes
import Hummingbird
import NIOCore

/// Maps ``AffinityError`` codes to HTTP statuses and JSON bodies (the same object as an `error` frame).
enum HTTPErrorResponse {
    static func status(for code: AffinityError.Code) -> HTTPResponse.Status {
        switch code {
        case .badRequest, .unknownType: .badRequest
        case .unauthorized: .unauthorized
        case .forbidden: .forbidden
        case .tooLarge: .contentTooLarge
        case .conflict: .conflict
        case .unavailable: .serviceUnavailable
        case .timeout: .gatewayTimeout
        default: .internalServerError
        }
    }

    static func response(for error: AffinityError) -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if error.code == .unauthorized { headers[.wwwAuthenticate] = "Bearer" }
        return Response(
            status: status(for: error.code), headers: headers,
            body: .init(byteBuffer: ByteBuffer(bytes: AffinityMessage.error(error).encoded())))
    }

    static func json(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}
