import COpenSSL

/// Random bytes from OpenSSL's CSPRNG (`RAND_bytes`).
public enum SecureRandom {
    /// `count` bytes of cryptographically secure randomness. Traps if the CSPRNG fails:
    /// issuing a guessable token is worse than losing one request.
    public static func bytes(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        let ok = out.withUnsafeMutableBufferPointer { RAND_bytes($0.baseAddress, Int32(count)) }
        precondition(ok == 1, "RAND_bytes failed")
        return out
    }

    /// A URL-safe random string: `byteCount` random bytes, base64url without padding.
    public static func token(byteCount: Int = 32) -> String {
        Base64URL.encode(bytes(byteCount))
    }

    /// A `token` that does not start with '-' (1 in 64 would), for identifiers an operator
    /// types after a command, where a leading '-' reads as an option: client ids, key ids.
    public static func identifier(byteCount: Int) -> String {
        while true {
            let s = token(byteCount: byteCount)
            if !s.hasPrefix("-") { return s }
        }
    }
}
