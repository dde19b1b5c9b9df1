public import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Certificates generated at test time with the `openssl` command line, in a temporary folder that
/// ``withTestPKI(_:)`` removes afterwards.
public struct TestPKI: Sendable {
    /// A certificate authority: its certificate and key files.
    public struct Authority: Sendable {
        /// The CA certificate file.
        public let certificatePath: String
        /// The CA key file.
        public let keyPath: String

        /// Names existing files.
        public init(certificatePath: String, keyPath: String) {
            self.certificatePath = certificatePath
            self.keyPath = keyPath
        }
    }

    /// A leaf certificate and its key.
    public struct Identity: Sendable {
        /// The certificate file.
        public let certificatePath: String
        /// The key file.
        public let keyPath: String

        /// Names existing files.
        public init(certificatePath: String, keyPath: String) {
            self.certificatePath = certificatePath
            self.keyPath = keyPath
        }
    }

    /// The temporary folder holding every file.
    public let directory: URL

    /// Generates into `directory` (which the caller creates and removes; see ``withTestPKI(_:)``).
    public init(directory: URL) {
        self.directory = directory
    }

    /// Creates a CA (EC P-256) with the given common name.
    public func makeAuthority(_ name: String) throws -> Authority {
        let certificate = self.path("\(name)-ca.crt")
        let key = self.path("\(name)-ca.key")
        try self.openssl([
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", certificate, "-days", "2", "-subj", "/O=affinity-tests/CN=\(name)",
            "-addext", "basicConstraints=critical,CA:TRUE,pathlen:0",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        ])
        return Authority(certificatePath: certificate, keyPath: key)
    }

    /// Issues a leaf certificate from `authority` for TLS server and client use, with DNS names `names`
    /// and IP addresses `addresses`.
    public func issue(
        _ commonName: String,
        by authority: Authority,
        names: [String] = ["affinity-peer", "localhost"],
        addresses: [String] = ["127.0.0.1"],
        extendedKeyUsage: String = "serverAuth,clientAuth"
    ) throws -> Identity {
        let certificate = self.path("\(commonName)-\(UUID().uuidString.prefix(8)).crt")
        let key = certificate.replacingOccurrences(of: ".crt", with: ".key")
        let request = certificate.replacingOccurrences(of: ".crt", with: ".csr")
        let extensions = certificate.replacingOccurrences(of: ".crt", with: ".ext")
        let sans = (names.map { "DNS:\($0)" } + addresses.map { "IP:\($0)" }).joined(separator: ",")
        try """
        basicConstraints=critical,CA:FALSE
        keyUsage=critical,digitalSignature,keyEncipherment
        extendedKeyUsage=\(extendedKeyUsage)
        \(sans.isEmpty ? "" : "subjectAltName=\(sans)")

        """.write(toFile: extensions, atomically: true, encoding: .utf8)
        try self.openssl([
            "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", request, "-subj", "/O=affinity-tests/CN=\(commonName)",
        ])
        try self.openssl([
            "x509", "-req", "-in", request, "-CA", authority.certificatePath, "-CAkey", authority.keyPath,
            "-set_serial", "\(UInt32.random(in: 1...UInt32.max))", "-out", certificate, "-days", "2",
            "-extfile", extensions,
        ])
        return Identity(certificatePath: certificate, keyPath: key)
    }

    /// A self-signed leaf certificate (its own issuer, from no CA).
    public func selfSigned(_ commonName: String) throws -> Identity {
        let certificate = self.path("\(commonName)-self.crt")
        let key = self.path("\(commonName)-self.key")
        try self.openssl([
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", key, "-out", certificate, "-days", "2", "-subj", "/O=affinity-tests/CN=\(commonName)",
            "-addext", "subjectAltName=DNS:affinity-peer,IP:127.0.0.1",
            "-addext", "extendedKeyUsage=serverAuth,clientAuth",
        ])
        return Identity(certificatePath: certificate, keyPath: key)
    }

    /// Writes the concatenation of the authorities' certificates as a CA bundle.
    public func bundle(_ authorities: [Authority], name: String) throws -> String {
        let path = self.path(name)
        var contents = Data()
        for authority in authorities {
            contents.append(try Data(contentsOf: URL(fileURLWithPath: authority.certificatePath)))
        }
        try contents.write(to: URL(fileURLWithPath: path))
        return path
    }

    /// A path in the temporary folder.
    public func path(_ name: String) -> String {
        self.directory.appendingPathComponent(name).path
    }

    /// Copies `source` over `destination` atomically (write a temporary file, then rename), as a Secret
    /// update does.
    public func replace(_ destination: String, with source: String) throws {
        let temporary = destination + ".tmp-\(UUID().uuidString.prefix(6))"
        try FileManager.default.copyItem(atPath: source, toPath: temporary)
        guard rename(temporary, destination) == 0 else {
            throw TestPKIError(message: "cannot rename \(temporary) to \(destination): errno \(errno)")
        }
    }

    private func openssl(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = try Self.opensslExecutable()
        process.arguments = arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let message = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw TestPKIError(
                message: "openssl \(arguments.prefix(2).joined(separator: " ")) failed: "
                    + String(decoding: message, as: UTF8.self))
        }
    }

    private static func opensslExecutable() throws -> URL {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = URL(fileURLWithPath: String(directory)).appendingPathComponent("openssl")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        }
        throw TestPKIError(message: "the openssl command is not on PATH (Debian: apt-get install openssl)")
    }
}

public struct TestPKIError: Error, CustomStringConvertible {
    /// What failed.
    public let message: String
    /// The message.
    public var description: String { self.message }
}

/// Runs `body` with a fresh temporary PKI folder and removes it afterwards.
public func withTestPKI<Result>(_ body: (TestPKI) async throws -> Result) async throws -> Result {
    let directory = FileManager.default.temporaryDirectory
        .appendingPathComponent("affinity-peer-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    return try await body(TestPKI(directory: directory))
}
