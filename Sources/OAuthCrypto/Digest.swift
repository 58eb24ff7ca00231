import COpenSSL
#if canImport(Glibc)
import Glibc
#endif

/// SHA-256 and HMAC-SHA-256 through OpenSSL's one-shot APIs.
public enum Digest {
    /// SHA-256 of `data` (FIPS 180-4).
    public static func sha256(_ data: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        data.withUnsafeBufferPointer { input in
            out.withUnsafeMutableBufferPointer { output in
                if let algorithm = sha256Algorithm {
                    var length: UInt32 = 32
                    precondition(EVP_Digest(input.baseAddress, input.count, output.baseAddress, &length, algorithm, nil) == 1,
                                 "SHA-256 failed")
                } else {
                    _ = SHA256(input.baseAddress, input.count, output.baseAddress)
                }
            }
        }
        return out
    }

    /// Fetched once: OpenSSL 3's one-shot SHA256() looks the algorithm up by name, under a
    /// lock, on every call (a JWS signature, its at_hash and each PKCE check hash once each).
    /// A fetched EVP_MD is immutable, so threads share it.
    nonisolated(unsafe) private static let sha256Algorithm: OpaquePointer? = EVP_MD_fetch(nil, "SHA256", nil)

    public static func sha256(_ text: String) -> [UInt8] { sha256(Array(text.utf8)) }

    /// HMAC-SHA-256 (RFC 2104) of `data` under `key`.
    public static func hmacSHA256(key: [UInt8], _ data: [UInt8]) -> [UInt8] {
        if let mac = KeyedHMAC.shared.mac(key: key, data) { return mac }
        var out = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 32
        key.withUnsafeBufferPointer { k in
            data.withUnsafeBufferPointer { d in
                out.withUnsafeMutableBufferPointer { o in
                    let r = HMAC(EVP_sha256(), k.baseAddress, Int32(k.count), d.baseAddress, d.count, o.baseAddress, &length)
                    precondition(r != nil, "HMAC-SHA-256 failed")
                }
            }
        }
        return out
    }

    /// Lower-case hex of `bytes`.
    public static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Constant-time comparison (`CRYPTO_memcmp`) for secrets, hashes and PKCE values.
public enum ConstantTime {
    /// True when both byte strings are equal. The length check leaks only the length, which
    /// is public for every value compared here (hash outputs, fixed-format secrets).
    public static func equals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        if a.isEmpty { return true }
        return a.withUnsafeBytes { pa in b.withUnsafeBytes { pb in CRYPTO_memcmp(pa.baseAddress, pb.baseAddress, a.count) == 0 } }
    }

    public static func equals(_ a: String, _ b: String) -> Bool { equals(Array(a.utf8), Array(b.utf8)) }
}

/// HMAC-SHA-256 under the last key used, its inner and outer hash states computed once.
/// The one-shot `HMAC()` of OpenSSL 3 looks the algorithm up by name, allocates a context
/// and hashes the key's two padded blocks on every call: the server key signs the client
/// secret, the code and both tokens of each /token request, always the same key.
final class KeyedHMAC: @unchecked Sendable {
    static let shared = KeyedHMAC()

    private let lock: UnsafeMutablePointer<pthread_mutex_t>
    private let algorithm: OpaquePointer?  // EVP_MAC "HMAC", fetched once
    private var context: OpaquePointer?    // EVP_MAC_CTX keyed with `key`
    private var key: [UInt8] = []

    private init() {
        lock = .allocate(capacity: 1)
        pthread_mutex_init(lock, nil)
        algorithm = EVP_MAC_fetch(nil, "HMAC", nil)
    }

    /// nil when OpenSSL refuses (the caller falls back to the one-shot HMAC).
    func mac(key newKey: [UInt8], _ data: [UInt8]) -> [UInt8]? {
        guard let algorithm else { return nil }
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        if context == nil || key != newKey {
            EVP_MAC_CTX_free(context)
            key = []
            context = EVP_MAC_CTX_new(algorithm)
            guard let context else { return nil }
            // Immortal C strings: the parameter keeps pointers to them.
            let name = UnsafeMutableRawPointer(mutating: ("digest" as StaticString).utf8Start).assumingMemoryBound(to: CChar.self)
            let digest = UnsafeMutableRawPointer(mutating: ("SHA256" as StaticString).utf8Start).assumingMemoryBound(to: CChar.self)
            var params = [OSSL_PARAM_construct_utf8_string(name, digest, 0), OSSL_PARAM_construct_end()]
            let ok = newKey.withUnsafeBufferPointer { k in
                EVP_MAC_init(context, k.baseAddress, k.count, &params)
            }
            guard ok == 1 else {
                EVP_MAC_CTX_free(context)
                self.context = nil
                return nil
            }
            key = newKey
        } else {
            // A NULL key restarts from the states of the key already set.
            guard EVP_MAC_init(context, nil, 0, nil) == 1 else { return nil }
        }
        var out = [UInt8](repeating: 0, count: 32)
        var length = 0
        let ok = data.withUnsafeBufferPointer { d in
            out.withUnsafeMutableBufferPointer { o in
                EVP_MAC_update(context, d.baseAddress, d.count) == 1 && EVP_MAC_final(context, o.baseAddress, &length, 32) == 1
            }
        }
        guard ok, length == 32 else {
            EVP_MAC_CTX_free(context)
            context = nil
            return nil
        }
        return out
    }
}
