import GRPCCore
import NIOCore
import NIOSSL
import Testing

@testable import AffinityPeer

#if canImport(Glibc)
import Glibc
#endif

@Suite("Classification of forward failures")
struct PeerDeliveryErrorClassificationTests {
    let address = PeerAddress(host: "10.0.0.7", port: 9443)

    private func classify(_ error: any Error) -> PeerDeliveryError.Code {
        PeerDeliveryError.classifying(error, address: self.address).code
    }

    @Test("transport causes inside RPC errors")
    func transportCauses() {
        let refused = IOError(errnoCode: ECONNREFUSED, reason: "connect")
        let noRoute = IOError(errnoCode: EHOSTUNREACH, reason: "connect")
        #expect(self.classify(RPCError(code: .unavailable, message: "x", cause: refused)) == .refused)
        #expect(self.classify(RPCError(code: .unavailable, message: "x", cause: noRoute)) == .unreachable)
        #expect(
            self.classify(RPCError(code: .unavailable, message: "x", cause: ChannelError.connectTimeout(.seconds(1))))
                == .unreachable)
        #expect(
            self.classify(RPCError(code: .unavailable, message: "x", cause: NIOSSLError.handshakeFailed(.sslError([]))))
                == .tls)
        let nested = RPCError(
            code: .unavailable, message: "x",
            cause: RuntimeError(code: .transportError, message: "y", cause: NIOSSLError.uncleanShutdown))
        #expect(self.classify(nested) == .tls)
        #expect(self.classify(PeerCertificateRejection(reason: "no chain")) == .tls)
    }

    @Test("TLS wins over a connection error in the same chain")
    func tlsWins() {
        let error = RPCError(
            code: .unavailable, message: "x",
            cause: RuntimeError(
                code: .transportError, message: "y", cause: IOError(errnoCode: ECONNRESET, reason: "read")))
        #expect(self.classify(error) == .unreachable)
        let both = RPCError(
            code: .unavailable, message: "x",
            cause: RPCError(code: .unavailable, message: "z", cause: NIOSSLError.handshakeFailed(.sslError([]))))
        #expect(self.classify(both) == .tls)
    }

    @Test(
        "RPC status codes",
        arguments: [
            (RPCError.Code.deadlineExceeded, PeerDeliveryError.Code.deadlineExceeded),
            (.invalidArgument, .rejected), (.failedPrecondition, .rejected), (.resourceExhausted, .rejected),
            (.unimplemented, .rejected), (.permissionDenied, .rejected), (.unauthenticated, .rejected),
            (.unavailable, .unreachable), (.cancelled, .shutDown), (.internalError, .failed), (.unknown, .failed),
        ])
    func statuses(status: RPCError.Code, expected: PeerDeliveryError.Code) {
        #expect(self.classify(RPCError(code: status, message: "x")) == expected)
    }

    @Test("errors that are not from gRPC are failures")
    func otherErrors() {
        struct Other: Error {}
        #expect(self.classify(Other()) == .failed)
    }
}
