import AffinityProtocol
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A file of bearer tokens, one per line (blank lines and `#` comments ignored; several tokens
/// allow rotation). The file is read again whenever its size, modification time or inode change,
/// so a rotated Kubernetes Secret takes effect without a restart. Comparison is constant-time.
public final class TokenFile: Sendable {
    private struct Snapshot {
        var signature: FileSignature
        var tokens: [[UInt8]]
    }

    private struct FileSignature: Equatable {
        var inode: UInt64
        var size: Int64
        var modifiedSeconds: Int
        var modifiedNanoseconds: Int
    }

    /// The path of the file.
    public let path: String
    private let snapshot: Mutex<Snapshot>

    /// Reads the file; throws when it is missing, unreadable or holds no token.
    public init(path: String) throws(AffinityError) {
        self.path = path
        let signature = try Self.signature(of: path)
        let tokens = try Self.readTokens(path: path)
        self.snapshot = Mutex(Snapshot(signature: signature, tokens: tokens))
    }

    /// True when `candidate` equals one of the tokens. Reloads the file first if it changed; when a
    /// reload fails (file being replaced), the previous tokens stay in force.
    public func contains(_ candidate: String) -> Bool {
        let tokens = currentTokens()
        let bytes = Array(candidate.utf8)
        var found = false
        for token in tokens {
            found = Self.constantTimeEquals(token, bytes) || found
        }
        return found
    }

    /// The number of tokens currently loaded.
    public var count: Int { currentTokens().count }

    private func currentTokens() -> [[UInt8]] {
        if let signature = try? Self.signature(of: path) {
            let known = snapshot.withLock { $0.signature }
            if signature != known, let tokens = try? Self.readTokens(path: path) {
                snapshot.withLock { $0 = Snapshot(signature: signature, tokens: tokens) }
            }
        }
        return snapshot.withLock { $0.tokens }
    }

    static func constantTimeEquals(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        let length = max(lhs.count, rhs.count)
        var difference = UInt8(truncatingIfNeeded: lhs.count ^ rhs.count) | (lhs.count == rhs.count ? 0 : 1)
        for index in 0..<length {
            let left = index < lhs.count ? lhs[index] : 0
            let right = index < rhs.count ? rhs[index] : 0
            difference |= left ^ right
        }
        return difference == 0
    }

    private static func signature(of path: String) throws(AffinityError) -> FileSignature {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw AffinityError(code: .badRequest, message: "token file \(path) cannot be read (errno \(errno))")
        }
        #if canImport(Darwin)
        let modified = info.st_mtimespec
        #else
        let modified = info.st_mtim
        #endif
        return FileSignature(
            inode: UInt64(info.st_ino), size: Int64(info.st_size),
            modifiedSeconds: Int(modified.tv_sec), modifiedNanoseconds: Int(modified.tv_nsec))
    }

    private static func readTokens(path: String) throws(AffinityError) -> [[UInt8]] {
        guard let file = fopen(path, "rb") else {
            throw AffinityError(code: .badRequest, message: "token file \(path) cannot be opened (errno \(errno))")
        }
        defer { fclose(file) }
        var content: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&chunk, 1, chunk.count, file)
            if count > 0 { content.append(contentsOf: chunk[0..<count]) }
            if count < chunk.count { break }
            if content.count > 1 << 20 {
                throw AffinityError(code: .badRequest, message: "token file \(path) is larger than 1 MiB")
            }
        }
        let tokens = content.split(separator: UInt8(ascii: "\n"))
            .map { line in
                Array(
                    line.drop(while: Self.isSpace).reversed().drop(while: Self.isSpace).reversed()
                )
            }
            .filter { !$0.isEmpty && $0.first != UInt8(ascii: "#") }
        guard !tokens.isEmpty else {
            throw AffinityError(code: .badRequest, message: "token file \(path) holds no token")
        }
        return tokens
    }

    private static func isSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x09 || byte == 0x0D
    }
}
