import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import Testing

/// Issue #12.1: parked memory has a byte bound. A replica process with default settings takes 320 outcomes of
/// 1 MB each (more than the 512 MiB memory limit of its base manifest if all were kept): it parks up to its
/// default bound of 128 MiB, refuses the rest with 413 `too_large`, stays well under the limit, and every
/// outcome it parked stays retrievable.
@Suite("Parked memory bound (separate process)")
struct ParkedMemoryBoundTests {
    @Test(.timeLimit(.minutes(3)))
    func parkedBytesStayWithinTheDefaultBound() async throws {
        try await withServerProcess { server in
            let pad = String(repeating: "m", count: 1_000_000)
            let (parked, refused) = try await TestClient.withClient(host: "127.0.0.1", port: server.port) {
                http -> ([Int], Int) in
                var parked: [Int] = []
                var refused = 0
                for index in 0..<320 {
                    let key = 2_251_799_813_700_000 + index
                    let response = try await http.post(
                        "/v1/outcomes",
                        body: ByteBuffer(string: #"{"id":"m\#(index)","key":"\#(key)","variables":{"pad":"\#(pad)"}}"#))
                    switch response.status {
                    case .ok: parked.append(key)
                    case .contentTooLarge:
                        refused += 1
                        #expect(response.body.map { String(buffer: $0) }?.contains(#""code":"too_large""#) == true)
                    default: Issue.record("unexpected \(response.status)")
                    }
                }
                return (parked, refused)
            }
            let rss = try residentBytes(of: server.process.processIdentifier)
            // 128 MiB of frames of about 1,000,080 bytes: 134 outcomes
            #expect(parked.count >= 130 && parked.count <= 135, "parked \(parked.count)")
            #expect(refused == 320 - parked.count)
            #expect(rss < 400 << 20, "resident \(rss >> 20) MiB")
            // what was parked stays retrievable
            try await TestClient.withClient(host: "127.0.0.1", port: server.port) { http in
                for key in [parked.first ?? 0, parked.last ?? 0] {
                    let polled = try await http.get("/v1/outcomes/\(key)?timeout=1")
                    #expect(polled.status == .ok)
                }
            }
        }
    }
}

/// The resident set size of process `pid`, from /proc.
func residentBytes(of pid: Int32) throws -> Int {
    let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
    guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
        let kib = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
    else { throw TestFailure("no VmRSS in /proc/\(pid)/status") }
    return kib * 1024
}
