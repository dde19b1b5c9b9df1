import NIOCore

/// Redis Cluster hash slots: `CRC16(key) mod 16384` (CRC-16/XMODEM), where a key with a non-empty `{hash tag}`
/// hashes only the tag, so that keys sharing a tag share a slot and can be used by one command or script.
///
/// ```swift
/// RedisClusterSlot.slot(forKey: "affinity:{42}:route") == RedisClusterSlot.slot(forKey: "{42}")  // true
/// ```
public enum RedisClusterSlot {
    /// The number of hash slots of a Redis Cluster.
    public static let count = 16384

    /// The slot of `key` (its UTF-8 bytes), as `CLUSTER KEYSLOT` answers it.
    public static func slot(forKey key: String) -> Int {
        var key = key
        return key.withUTF8 { slot(forKeyBytes: UnsafeRawBufferPointer($0)) }
    }

    /// The slot of a binary key.
    public static func slot(forKey key: ByteBuffer) -> Int {
        key.withUnsafeReadableBytes { slot(forKeyBytes: $0) }
    }

    /// The hash tag rule: the bytes between the first `{` and the first `}` after it, if there are any;
    /// otherwise (no `{`, no `}` after it, or `{}`) the whole key.
    private static func slot(forKeyBytes key: UnsafeRawBufferPointer) -> Int {
        if let open = key.firstIndex(of: UInt8(ascii: "{")),
            let close = key[(open + 1)...].firstIndex(of: UInt8(ascii: "}")), close > open + 1
        {
            return Int(crc16(UnsafeRawBufferPointer(rebasing: key[(open + 1)..<close])) & 0x3FFF)
        }
        return Int(crc16(key) & 0x3FFF)
    }

    /// CRC-16/XMODEM (polynomial 0x1021, initial value 0), the checksum Redis Cluster uses.
    static func crc16(_ bytes: UnsafeRawBufferPointer) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc = (crc << 8) ^ crc16Table[Int((crc >> 8) ^ UInt16(byte)) & 0xFF]
        }
        return crc
    }

    private static let crc16Table: [UInt16] = (0..<256).map { index in
        var crc = UInt16(index) << 8
        for _ in 0..<8 {
            crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1
        }
        return crc
    }
}
