#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Unbuffered writes to file descriptor 2.
public enum StandardError {
    /// Writes `text` completely (retrying short writes).
    public static func write(_ text: String) {
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeMutableBytes { buffer in
                #if canImport(Darwin)
                Darwin.write(2, buffer.baseAddress! + offset, buffer.count - offset)
                #elseif canImport(Musl)
                Musl.write(2, buffer.baseAddress! + offset, buffer.count - offset)
                #else
                Glibc.write(2, buffer.baseAddress! + offset, buffer.count - offset)
                #endif
            }
            guard written > 0 else { return }
            offset += written
        }
    }
}
