/// What is stored for an authorization code (only its hash identifies it).
public struct AuthorizationCodeRecord: Sendable, Equatable {
    public var clientID: String
    public var userID: Int64
    public var username: String
    public var scope: [String]
    /// The redirect_uri parameter sent to /authorize, or nil when it was omitted
    /// (RFC 6749 §4.1.3: then /token must not require it).
    public var redirectURI: String?
    public var codeChallenge: String?
    public var codeChallengeMethod: PKCE.Method?
    public var expiresAt: Int64
    public var consumed: Bool
    /// The resource owner was disabled after the code was issued.
    public var userDisabled: Bool
    /// OpenID Connect: `nonce` as sent to /authorize, and when the user logged in.
    public var nonce: String?
    public var authTime: Int64?
    /// The user's `sub` (read with the code, like `username`).
    public var subject: String

    public init(clientID: String, userID: Int64, username: String, scope: [String], redirectURI: String?,
                codeChallenge: String?, codeChallengeMethod: PKCE.Method?, expiresAt: Int64, consumed: Bool = false,
                userDisabled: Bool = false, nonce: String? = nil, authTime: Int64? = nil, subject: String = "") {
        self.nonce = nonce
        self.authTime = authTime
        self.subject = subject
        self.clientID = clientID
        self.userID = userID
        self.username = username
        self.scope = scope
        self.redirectURI = redirectURI
        self.codeChallenge = codeChallenge
        self.codeChallengeMethod = codeChallengeMethod
        self.expiresAt = expiresAt
        self.consumed = consumed
        self.userDisabled = userDisabled
    }
}

public enum TokenKind: String, Sendable { case access, refresh }

/// A stored access or refresh token.
public struct TokenRecord: Sendable, Equatable {
    public var kind: TokenKind
    public var clientID: String
    /// nil for client_credentials tokens.
    public var username: String?
    public var scope: [String]
    public var issuedAt: Int64
    public var expiresAt: Int64
    public var revoked: Bool
    /// All tokens descending from one grant (a code or a password request) share a family,
    /// so reuse detection and revocation cover all of them. 0: none (a client_credentials
    /// token is its grant alone).
    public var familyID: Int64
    /// Refresh tokens: set once rotated (the moment it was used).
    public var rotatedAt: Int64?
    /// The user's OpenID Connect `sub`; nil for client_credentials tokens.
    public var subject: String?

    public init(kind: TokenKind, clientID: String, username: String?, scope: [String], issuedAt: Int64,
                expiresAt: Int64, revoked: Bool, familyID: Int64, rotatedAt: Int64? = nil, subject: String? = nil) {
        self.subject = subject
        self.kind = kind
        self.clientID = clientID
        self.username = username
        self.scope = scope
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
        self.revoked = revoked
        self.familyID = familyID
        self.rotatedAt = rotatedAt
    }

    public func isActive(at now: Int64) -> Bool { !revoked && now < expiresAt && rotatedAt == nil }
}

/// A token pair as issued, before its wire form.
public struct IssuedTokens: Sendable, Equatable {
    public var accessToken: String
    public var refreshToken: String?
    public var scope: [String]
    public var expiresIn: Int
    /// OpenID Connect: present when the grant's scope has `openid`.
    public var idToken: String?

    public init(accessToken: String, refreshToken: String?, scope: [String], expiresIn: Int, idToken: String? = nil) {
        self.idToken = idToken
        self.accessToken = accessToken
        self.refreshToken = refreshToken
        self.scope = scope
        self.expiresIn = expiresIn
    }

    /// RFC 6749 §5.1, shaped like WSO2's password-grant response, with no-store headers.
    public func response() -> HTTPResponse {
        var o = JSONObject()
        o["access_token"] = accessToken
        o["refresh_token"] = refreshToken
        o["scope"] = Scope.string(scope)
        o["token_type"] = "Bearer"
        o.set("expires_in", expiresIn)
        o["id_token"] = idToken
        return .json(200, o.serialized(), headers: HTTPResponse.noStoreHeaders)
    }
}
