import CHiredis
import NIOCore

/// Writes commands in the Redis protocol (RESP arrays of bulk strings) with hiredis's command formatter.
public enum RedisCommandEncoder {
    /// Appends `command`, formatted by `redisFormatCommandArgv`, to `buffer`.
    public static func encode(_ command: RedisCommand, into buffer: inout ByteBuffer) throws(RedisError) {
        guard !command.words.isEmpty else {
            throw RedisError(code: .protocol, message: "a command needs at least its name")
        }
        // hiredis takes an array of pointers and lengths: lay every word out in one contiguous array.
        var storage: [UInt8] = []
        storage.reserveCapacity(command.words.reduce(1) { $0 + $1.readableBytes })
        var offsets: [Int] = []
        var lengths: [Int] = []
        offsets.reserveCapacity(command.words.count)
        lengths.reserveCapacity(command.words.count)
        for word in command.words {
            offsets.append(storage.count)
            lengths.append(word.readableBytes)
            storage.append(contentsOf: word.readableBytesView)
        }
        storage.append(0)  // never empty, so the base address exists even when every word is empty

        var formatted: UnsafeMutablePointer<CChar>?
        let length = storage.withUnsafeBufferPointer { base -> Int32 in
            base.withMemoryRebound(to: CChar.self) { chars -> Int32 in
                var argv: [UnsafePointer<CChar>?] = offsets.map { UnsafePointer(chars.baseAddress! + $0) }
                return argv.withUnsafeMutableBufferPointer { argvPointer in
                    lengths.withUnsafeBufferPointer { lengthPointer in
                        redisFormatCommandArgv(
                            &formatted, Int32(argvPointer.count), argvPointer.baseAddress, lengthPointer.baseAddress)
                    }
                }
            }
        }
        guard length >= 0, let formatted else {
            throw RedisError(code: .protocol, message: "hiredis could not format the \(command.name) command")
        }
        defer { redisFreeCommand(formatted) }
        buffer.writeBytes(UnsafeRawBufferPointer(start: formatted, count: Int(length)))
    }

    /// The command formatted on its own.
    public static func encode(_ command: RedisCommand) throws(RedisError) -> ByteBuffer {
        var buffer = ByteBuffer()
        try encode(command, into: &buffer)
        return buffer
    }
}
