import Foundation
import OAuthCore
import OAuthCrypto

/// The server key that HMACs tokens, codes, session ids and client secrets before they
/// are stored. Created once (0600) on first start; only its hashes reach the database,
/// so a copy of the database alone cannot be used to check guessed secrets.
public struct SecretKey: Sendable {
    public let bytes: [UInt8]

    /// Reads the key, or creates it (0600) when the file does not exist. Refuses a key file
    /// that group or others may access: whoever can read it can check guessed secrets
    /// against a copy of the database.
    public static func loadOrCreate(path: String) throws -> SecretKey {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 && errno == ENOENT { return try create(path: path) }
        guard fd >= 0 else { throw ConfigError("cannot read secret key file \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw ConfigError("cannot stat secret key file \(path): \(String(cString: strerror(errno)))") }
        let mode = st.st_mode & 0o7777
        guard mode & 0o077 == 0 else {
            let octal = String(mode, radix: 8)
            throw ConfigError("secret key file \(path) has mode \(String(repeating: "0", count: max(0, 4 - octal.count)) + octal) "
                + "(group or others may access it); run: chmod 600 \(path)")
        }
        var data = [UInt8](repeating: 0, count: 256)
        let n = read(fd, &data, data.count)
        guard n >= 0 else { throw ConfigError("cannot read secret key file \(path): \(String(cString: strerror(errno)))") }
        let hex = String(decoding: data[0..<n], as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard hex.count == 64, let bytes = decodeHex(hex) else {
            throw ConfigError("secret key file \(path) is malformed (expected 64 hex characters)")
        }
        return SecretKey(bytes: bytes)
    }

    static func create(path: String) throws -> SecretKey {
        let bytes = SecureRandom.bytes(32)
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ConfigError("cannot create secret key file \(path): \(String(cString: strerror(errno)))") }
        let text = Digest.hex(bytes) + "\n"
        _ = text.withCString { write(fd, $0, strlen($0)) }
        fsync(fd)
        close(fd)
        return SecretKey(bytes: bytes)
    }

    /// HMAC-SHA-256 of a token, code, session id or client secret.
    public func hash(_ value: String) -> [UInt8] { Digest.hmacSHA256(key: bytes, Array(value.utf8)) }

    /// A key for one purpose, derived from the server key (HMAC as a PRF, RFC 5869's
    /// extract step with the purpose as salt), so no two uses share key material.
    public func derived(_ purpose: String) -> [UInt8] { Digest.hmacSHA256(key: bytes, Array(("gatehouse/" + purpose).utf8)) }

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

extension SecretKey {
    /// The server key of the deployment whose database is `store`. It is made only for a
    /// database that holds nothing made under a key yet. A missing key file beside a used
    /// database, or a key that opens none of the database's signing keys, stops here: a new
    /// key would silently void every client secret, token and session (a restore without
    /// secret.key, a host set up without the cluster's key).
    public static func forDatabase(path: String, store: any AuthorizationStore) throws -> SecretKey {
        let existed = FileManager.default.fileExists(atPath: path)
        let signingKeys = try store.signingKeys()
        if !existed, try !signingKeys.isEmpty || !store.clients().isEmpty {
            throw ConfigError("secret key file \(path) is missing, but the database already holds clients or signing keys "
                + "made under a key: restore secret.key with the database (scripts/restore.sh) or copy it from another host "
                + "of this deployment; a new key would void every client secret, token and session")
        }
        let key = try loadOrCreate(path: path)
        if existed, !signingKeys.isEmpty, !signingKeys.contains(where: { SigningKeyRing.opens($0, with: key) }) {
            throw ConfigError("secret key file \(path) does not belong to this database: none of its signing keys opens "
                + "with it (a key from another deployment, or a database restored without its key?)")
        }
        return key
    }
}
