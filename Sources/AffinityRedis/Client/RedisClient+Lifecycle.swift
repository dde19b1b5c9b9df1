import EventLoopTimers
import Logging
import NIOCore
import NIOSSL
import Synchronization

extension RedisClient {
    var isStopping: Bool {
        state.withLock { $0.stopping }
    }

    /// The `AUTH` and `SELECT` commands the configuration asks for; the password file is read each time.
    func handshake() throws(RedisError) -> [RedisCommand] {
        var commands: [RedisCommand] = []
        var password = configuration.password
        if let file = configuration.passwordFile {
            password = try Self.readPasswordFile(file)
        }
        if let password {
            var auth: RedisCommand = ["AUTH"]
            if let user = configuration.username { auth.append(user) }
            auth.append(password)
            commands.append(auth)
        } else if configuration.username != nil {
            throw RedisError(code: .configuration, message: "an ACL user name needs a password")
        }
        if configuration.database != 0 {
            commands.append(["SELECT", String(configuration.database)])
        }
        return commands
    }

    static func readPasswordFile(_ path: String, what: String = "Redis password file") throws(RedisError) -> String {
        guard let bytes = readFile(path) else {
            throw RedisError(code: .configuration, message: "cannot read the \(what) \(path)")
        }
        var text = Substring(String(decoding: bytes, as: UTF8.self))
        while let last = text.last, last.isWhitespace { text.removeLast() }
        while let first = text.first, first.isWhitespace { text.removeFirst() }
        return String(text)
    }

    func makeSSLContext() throws(RedisError) -> NIOSSLContext? {
        guard let tls = configuration.tls else { return nil }
        var tlsConfiguration = TLSConfiguration.makeClientConfiguration()
        tlsConfiguration.certificateVerification = tls.verifyCertificate ? .fullVerification : .none
        if let caFile = tls.caFile {
            tlsConfiguration.trustRoots = .file(caFile)
        }
        if let certificateFile = tls.certificateFile {
            guard let keyFile = tls.keyFile else {
                throw RedisError(code: .configuration, message: "a TLS client certificate needs its key file")
            }
            do {
                tlsConfiguration.certificateChain = try NIOSSLCertificate.fromPEMFile(certificateFile).map {
                    .certificate($0)
                }
                tlsConfiguration.privateKey = .privateKey(try NIOSSLPrivateKey(file: keyFile, format: .pem))
            } catch {
                throw RedisError(
                    code: .tls, message: "cannot load the TLS client certificate \(certificateFile) or key \(keyFile)",
                    cause: error)
            }
        }
        do {
            return try NIOSSLContext(configuration: tlsConfiguration)
        } catch {
            throw RedisError(code: .tls, message: "invalid TLS settings for Redis: \(error)", cause: error)
        }
    }

    /// Publishes a ready connection; `false` when the client is stopping.
    func publish(_ connection: RedisConnection) -> Bool {
        let listeners: [AsyncStream<RedisConnectionEvent>.Continuation]? = state.withLock { state in
            guard !state.stopping else { return nil }
            state.connection = connection
            return Array(state.listeners.values)
        }
        guard let listeners else { return false }
        listeners.forEach { $0.yield(.connected(generation: connection.generation)) }
        return true
    }

    func unpublish(_ connection: RedisConnection, reason: RedisError) {
        let listeners = state.withLock { state in
            if state.connection?.generation == connection.generation { state.connection = nil }
            return Array(state.listeners.values)
        }
        logger.info(
            "redis connection lost",
            metadata: ["redis.generation": "\(connection.generation)", "error.message": "\(reason)"])
        listeners.forEach { $0.yield(.disconnected(generation: connection.generation, reason: reason)) }
    }

    func emit(_ event: RedisConnectionEvent) {
        let listeners = state.withLock { Array($0.listeners.values) }
        listeners.forEach { $0.yield(event) }
    }

    /// Starts stopping: no new connections, the current one closes after its commands in flight, a pending
    /// back-off sleep ends.
    func stop() {
        let (connections, sleepers) = state.withLock { state in
            state.stopping = true
            var sleepers = [state.cluster.takeWakeWaiter()].compactMap { $0 }
            sleepers += state.cluster.refreshWaiters
            state.cluster.refreshWaiters.removeAll()
            return (
                [state.connection].compactMap { $0 } + state.cluster.connections.values + state.confirmations.open,
                sleepers
            )
        }
        backoffSleeper.stop()
        connections.forEach { $0.closeGracefully() }
        sleepers.forEach { $0.resume() }
    }

    /// Ends every connection-event stream; called when ``run()`` returns.
    func finish() {
        let listeners = state.withLock { state in
            state.stopping = true
            state.finished = true
            state.connection = nil
            state.cluster.connections.removeAll()
            state.cluster.usable = false
            state.confirmations.entries.removeAll()
            let listeners = Array(state.listeners.values)
            state.listeners.removeAll()
            return listeners
        }
        listeners.forEach { $0.finish() }
    }
}
