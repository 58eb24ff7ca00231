import OAuthCrypto

/// OpenID Connect Core 1.0 §2: the ID Token of an authentication, for one client.
public struct IDTokenClaims: Sendable, Equatable {
    public var issuer: String
    public var subject: String
    public var audience: String
    public var issuedAt: Int64
    public var expiresAt: Int64
    /// When the user last entered their password (the session's login).
    public var authTime: Int64?
    /// As sent to /authorize (§3.1.2.1); absent from a refresh's ID Token (§12.2).
    public var nonce: String?
    /// §3.1.3.6: the left half of SHA-256 of the access token issued with it.
    public var accessTokenHash: String?

    public init(issuer: String, subject: String, audience: String, issuedAt: Int64, expiresAt: Int64, authTime: Int64?,
                nonce: String?, accessTokenHash: String?) {
        self.issuer = issuer
        self.subject = subject
        self.audience = audience
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
        self.authTime = authTime
        self.nonce = nonce
        self.accessTokenHash = accessTokenHash
    }

    /// §3.1.3.6 `at_hash`: base64url of the left-most half of the hash of the access
    /// token's ASCII octets, the hash being the one of the JWS algorithm (SHA-256 for
    /// ES256 and RS256).
    public static func accessTokenHash(_ accessToken: String) -> String {
        Base64URL.encode(Array(Digest.sha256(accessToken).prefix(16)))
    }

    public var json: JSONObject {
        var o = JSONObject()
        o["iss"] = issuer
        o["sub"] = subject
        o["aud"] = audience
        o.set("exp", Int(expiresAt))
        o.set("iat", Int(issuedAt))
        if let authTime { o.set("auth_time", Int(authTime)) }
        o["nonce"] = nonce
        o["at_hash"] = accessTokenHash
        return o
    }
}

/// The claims of a user that scopes release (OIDC Core §5.4), in the order of §5.1.
public enum ScopeClaims {
    /// The claims `scope` releases from `user`; unset attributes are left out.
    public static func claims(of user: User, scope: [String]) -> JSONObject {
        var o = JSONObject()
        o["sub"] = user.subject
        if scope.contains("profile") {
            o["name"] = user.profile.name
            o["given_name"] = user.profile.givenName
            o["family_name"] = user.profile.familyName
            o["preferred_username"] = user.username
            if let updated = user.profile.updatedAt { o.set("updated_at", Int(updated)) }
        }
        if scope.contains("email"), let email = user.profile.email {
            o["email"] = email
            o.set("email_verified", user.profile.emailVerified)
        }
        return o
    }

    /// What the consent page tells a person each scope shares, in plain words.
    public static func description(of scope: String) -> String? {
        switch scope {
        case "openid": return "who you are on this site (an identifier that stays the same)"
        case "profile": return "your name and username"
        case "email": return "your email address"
        default: return nil
        }
    }

    /// The claims this server can release, for discovery.
    public static let supported = ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "name", "given_name",
                                   "family_name", "preferred_username", "updated_at", "email", "email_verified"]
}
