import COpenSSL

/// Slow salted password hashing: PBKDF2-HMAC-SHA-256 from OpenSSL, with its parameters
/// stored beside each hash (`pbkdf2-sha256$<iterations>$<salt b64url>$<hash b64url>`) so
/// the cost can be raised later without invalidating existing passwords.
public struct PasswordHasher: Sendable {
    /// OWASP Password Storage Cheat Sheet (2023+) figure for PBKDF2-HMAC-SHA-256.
    public static let recommendedIterations = 600_000
    public var iterations: Int

    public init(iterations: Int = PasswordHasher.recommendedIterations) { self.iterations = iterations }

    /// A new encoded hash of `password` with a fresh 16-byte salt.
    public func hash(_ password: String) -> String {
        let salt = SecureRandom.bytes(16)
        let derived = Self.pbkdf2(Array(password.utf8), salt: salt, iterations: iterations)
        return "pbkdf2-sha256$\(iterations)$\(Base64URL.encode(salt))$\(Base64URL.encode(derived))"
    }

    /// True when `password` matches `encoded`. Malformed encodings never match.
    public static func verify(_ password: String, against encoded: String) -> Bool {
        let parts = encoded.split(separator: "$", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "pbkdf2-sha256", let iterations = Int(parts[1]),
            iterations > 0, iterations <= 10_000_000,
            let salt = Base64URL.decode(String(parts[2])), let expected = Base64URL.decode(String(parts[3]))
        else { return false }
        let derived = pbkdf2(Array(password.utf8), salt: salt, iterations: iterations, length: expected.count)
        return ConstantTime.equals(derived, expected)
    }

    /// Burns the same time as a real verification, for unknown usernames, so response time
    /// does not tell which accounts exist.
    public func verifyDummy(_ password: String) {
        _ = Self.pbkdf2(Array(password.utf8), salt: [UInt8](repeating: 0, count: 16), iterations: iterations)
    }

    static func pbkdf2(_ password: [UInt8], salt: [UInt8], iterations: Int, length: Int = 32) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: length)
        let ok = password.withUnsafeBytes { p in
            salt.withUnsafeBufferPointer { s in
                out.withUnsafeMutableBufferPointer { o in
                    PKCS5_PBKDF2_HMAC(p.bindMemory(to: CChar.self).baseAddress, Int32(p.count), s.baseAddress,
                                      Int32(s.count), Int32(iterations), EVP_sha256(), Int32(length), o.baseAddress)
                }
            }
        }
        precondition(ok == 1, "PBKDF2 failed")
        return out
    }
}
