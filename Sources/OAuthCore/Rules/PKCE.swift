import OAuthCrypto

/// RFC 7636 Proof Key for Code Exchange.
public enum PKCE {
    public enum Method: String, Sendable { case s256 = "S256", plain = "plain" }

    /// §4.1: code-verifier = 43*128unreserved; §4.2 the challenge has the same syntax.
    public static func isWellFormed(_ value: String) -> Bool {
        let n = value.utf8.count
        guard n >= 43 && n <= 128 else { return false }
        return value.utf8.allSatisfy { c in
            (0x41...0x5A).contains(c) || (0x61...0x7A).contains(c) || (0x30...0x39).contains(c)
                || c == 0x2D || c == 0x2E || c == 0x5F || c == 0x7E
        }
    }

    /// §4.3 at the authorization endpoint: the challenge and its method (default `plain`).
    public static func parseChallenge(challenge: String?, method: String?) throws(OAuthError) -> (String, Method)? {
        guard let challenge else {
            if method != nil { throw OAuthError.invalidRequest("code_challenge_method without code_challenge") }
            return nil
        }
        guard let m = Method(rawValue: method ?? "plain") else {
            throw OAuthError.invalidRequest("unsupported code_challenge_method")
        }
        guard isWellFormed(challenge) else { throw OAuthError.invalidRequest("malformed code_challenge") }
        return (challenge, m)
    }

    /// §4.6: the server recomputes the challenge from the verifier and compares.
    public static func verify(verifier: String, challenge: String, method: Method) -> Bool {
        guard isWellFormed(verifier) else { return false }
        switch method {
        case .plain: return ConstantTime.equals(verifier, challenge)
        case .s256: return ConstantTime.equals(Base64URL.encode(Digest.sha256(verifier)), challenge)
        }
    }

    /// The code-exchange rule set (RFC 7636 §4.6, RFC 9700 §2.1.1 downgrade protection).
    public static func check(verifier: String?, challenge: String?, method: Method?) throws(OAuthError) {
        switch (verifier, challenge) {
        case (nil, nil): return
        case (nil, .some): throw OAuthError.invalidGrant("code_verifier required")
        case (.some, nil): throw OAuthError.invalidGrant("code_verifier sent for a code issued without code_challenge")
        case (.some(let v), .some(let c)):
            guard verify(verifier: v, challenge: c, method: method ?? .plain) else {
                throw OAuthError.invalidGrant("code_verifier does not match code_challenge")
            }
        }
    }
}
