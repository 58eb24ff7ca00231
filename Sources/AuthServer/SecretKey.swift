import Foundation
import OAuthCrypto

/// The server key that HMACs tokens, codes, session ids and client secrets before they
/// are stored. Created once (0600) on first start; only its hashes reach the database,
/// so a copy of the database alone cannot be used to check guessed secrets.
public struct SecretKey: Sendable {
    public let bytes: [UInt8]

    public static func loadOrCreate(path: String) throws -> SecretKey {
        if let text = try? String(contentsOfFile: path, encoding: .utf8) {
            let hex = text.trimmingCharacters(in: .whitespacesAndNewlines)
            guard hex.count == 64, let bytes = decodeHex(hex) else {
                throw ConfigError("secret key file \(path) is malformed (expected 64 hex characters)")
            }
            return SecretKey(bytes: bytes)
        }
        let bytes = SecureRandom.bytes(32)
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else { throw ConfigError("cannot create secret key file \(path): \(String(cString: strerror(errno)))") }
        let text = Digest.hex(bytes) + "\n"
        _ = text.withCString { write(fd, $0, strlen($0)) }
        fsync(fd)
        close(fd)
        return SecretKey(bytes: bytes)
    }

    /// HMAC-SHA-256 of a token, code, session id or client secret.
    public func hash(_ value: String) -> [UInt8] { Digest.hmacSHA256(key: bytes, Array(value.utf8)) }

    static func decodeHex(_ s: String) -> [UInt8]? {
        var out: [UInt8] = []
        var it = s.utf8.makeIterator()
        while let a = it.next(), let b = it.next() {
            guard let hi = nibble(a), let lo = nibble(b) else { return nil }
            out.append(hi << 4 | lo)
        }
        return out
    }

    static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case 48...57: return c - 48
        case 97...102: return c - 87
        case 65...70: return c - 55
        default: return nil
        }
    }
}

/// Seconds since the epoch; injected so tests can move time.
public struct Clock: Sendable {
    public var now: @Sendable () -> Int64
    public init(now: @escaping @Sendable () -> Int64) { self.now = now }
    public static let system = Clock { Int64(time(nil)) }
}
