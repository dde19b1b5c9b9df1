import AffinityClient
import AffinityProtocol
import AffinityServer
import AffinityTestSupport
import Foundation
import Testing

@Suite(.timeLimit(.minutes(2))) struct AuthTests {
    @Test func tokenFilesForClientAndWorker() async throws {
        try await withTemporaryDirectory { directory in
            let clientTokens = directory.appendingPathComponent("client-tokens")
            let workerTokens = directory.appendingPathComponent("worker-tokens")
            try Data("client-secret-1\n".utf8).write(to: clientTokens)
            try Data("worker-secret-1\n".utf8).write(to: workerTokens)
            let clientTokenFile = directory.appendingPathComponent("client-token")
            let workerTokenFile = directory.appendingPathComponent("worker-token")
            try Data("# mounted secret\nclient-secret-1\n".utf8).write(to: clientTokenFile)
            try Data("worker-secret-1".utf8).write(to: workerTokenFile)
            try await withServer({
                $0.clientTokenFile = clientTokens.path
                $0.workerTokenFile = workerTokens.path
            }) { url in
                try await withClients(
                    session: [url], clientToken: .file(path: clientTokenFile.path),
                    workerToken: .file(path: workerTokenFile.path)
                ) { session, publisher in
                    let instance = key(808)
                    let status = try await publisher.publish(outcome("auth-1", instance, "{}"), timeout: .seconds(5))
                    #expect(status == .parked)
                    let received = try await session.awaitOutcome(processInstanceKey: instance, timeout: .seconds(5))
                    #expect(received.id == "auth-1")
                }
                // wrong credentials: a worker with the client's token, a client with a wrong token
                let wrongWorker = OutcomePublisher(
                    configuration: testConnection([url], token: .file(path: clientTokenFile.path)), logger: quietLogger)
                let wrongClient = AffinitySession(
                    configuration: testConnection([url], token: .value("not-a-token")), logger: quietLogger)
                let missingFile = OutcomePublisher(
                    configuration: testConnection(
                        [url], token: .file(path: directory.appendingPathComponent("absent").path)),
                    logger: quietLogger)
                try await withRunning(wrongWorker) {
                    try await withRunning(wrongClient) {
                        try await withRunning(missingFile) {
                            try await Task.sleep(for: .milliseconds(600))
                            #expect(!wrongWorker.isConnected)
                            #expect(!missingFile.isConnected)
                            #expect(wrongClient.connectedReplica == nil)
                            await #expect(throws: AffinityClientError.self) {
                                _ = try await wrongWorker.publish(outcome("x", key(1), "{}"), timeout: .seconds(1))
                            }
                        }
                    }
                }
            }
        }
    }

    @Test func tokenFileParsing() throws {
        try withTemporaryDirectorySync { directory in
            let file = directory.appendingPathComponent("token")
            try Data("\n  # comment\n  tok-1  \nsecond\n".utf8).write(to: file)
            #expect(try BearerToken.file(path: file.path).resolve() == "tok-1")
            try Data("# only a comment\n\n".utf8).write(to: file)
            #expect(throws: AffinityClientError.self) { try BearerToken.file(path: file.path).resolve() }
            #expect(throws: AffinityClientError.self) { try BearerToken.value("  ").resolve() }
            #expect(try BearerToken.value(" abc\n").resolve() == "abc")
        }
    }
}

func withTemporaryDirectorySync(_ body: (URL) throws -> Void) throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
        "affinity-client-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    try body(directory)
}
