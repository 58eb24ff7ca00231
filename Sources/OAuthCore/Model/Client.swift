/// The grant types a client may be registered for.
public enum GrantType: String, Sendable, CaseIterable {
    case authorizationCode = "authorization_code"
    case refreshToken = "refresh_token"
    case clientCredentials = "client_credentials"
    case password = "password"
}

/// A registered client (WSO2: an application with a consumer key and secret).
public struct Client: Sendable, Equatable {
    public var id: String
    public var name: String
    /// HMAC-SHA-256 of the secret under the server key; nil for public clients.
    public var secretHash: [UInt8]?
    public var redirectURIs: [String]
    public var grantTypes: [GrantType]
    public var allowedScopes: [String]
    public var defaultScopes: [String]
    public var requirePKCE: Bool
    /// May introspect any token, not only its own (RFC 7662 §2.1 authorization).
    public var isResourceServer: Bool
    /// After a rotation with an overlap, the previous secret's hash and when it stops working:
    /// deployments switch to the new secret one instance at a time, with no failed request.
    public var previousSecretHash: [UInt8]? = nil
    public var previousSecretExpiresAt: Int64? = nil
    /// A first-party application the operator trusts: its users are not asked for consent
    /// (honoured for confidential clients only, whose identity a code exchange proves).
    public var skipConsent = false
    /// OpenID Connect: how its ID Tokens (and JWT access tokens) are signed.
    public var idTokenAlgorithm: SigningAlgorithm = .es256
    /// RP-Initiated Logout §3: where /logout may send the browser back, compared exactly.
    public var postLogoutRedirectURIs: [String] = []
    /// Opaque access tokens, or RFC 9068 JWTs (still recorded, so revocable).
    public var accessTokenFormat: AccessTokenFormat = .opaque

    public init(id: String, name: String, secretHash: [UInt8]?, redirectURIs: [String], grantTypes: [GrantType],
                allowedScopes: [String], defaultScopes: [String], requirePKCE: Bool = false,
                isResourceServer: Bool = false) {
        self.id = id
        self.name = name
        self.secretHash = secretHash
        self.redirectURIs = redirectURIs
        self.grantTypes = grantTypes
        self.allowedScopes = allowedScopes
        self.defaultScopes = defaultScopes
        self.requirePKCE = requirePKCE
        self.isResourceServer = isResourceServer
    }

    public var isPublic: Bool { secretHash == nil }

    /// The previous secret's hash while it still works at `now`.
    public func previousSecret(at now: Int64) -> [UInt8]? {
        guard let hash = previousSecretHash, let until = previousSecretExpiresAt, now < until else { return nil }
        return hash
    }

    /// RFC 7636 §4.4.1 and RFC 9700 §2.1.1: PKCE is required for public clients, and for
    /// any client registered with the requirement.
    public var mustUsePKCE: Bool { isPublic || requirePKCE }

    public func allows(_ grant: GrantType) -> Bool { grantTypes.contains(grant) }
}

public enum SigningAlgorithm: String, Sendable, CaseIterable {
    case es256 = "ES256"
    case rs256 = "RS256"
}

public enum AccessTokenFormat: String, Sendable, CaseIterable {
    case opaque, jwt
}

/// A resource owner who logs in at /authorize or through the password grant.
public struct User: Sendable, Equatable {
    public var id: Int64
    public var username: String
    public var passwordHash: String
    public var disabled: Bool
    /// OpenID Connect `sub`: given when the user is created and never to anyone else (a
    /// username can be removed and given to another person).
    public var subject: String
    public var profile: UserProfile

    public init(id: Int64, username: String, passwordHash: String, disabled: Bool, subject: String = "",
                profile: UserProfile = UserProfile()) {
        self.id = id
        self.username = username
        self.passwordHash = passwordHash
        self.disabled = disabled
        self.subject = subject
        self.profile = profile
    }
}

/// The attributes OpenID Connect scopes release (Core §5.1); nil: not set.
public struct UserProfile: Sendable, Equatable {
    public var email: String?
    public var emailVerified: Bool
    public var name: String?
    public var givenName: String?
    public var familyName: String?
    /// When any of these last changed.
    public var updatedAt: Int64?

    public init(email: String? = nil, emailVerified: Bool = false, name: String? = nil, givenName: String? = nil,
                familyName: String? = nil, updatedAt: Int64? = nil) {
        self.email = email
        self.emailVerified = emailVerified
        self.name = name
        self.givenName = givenName
        self.familyName = familyName
        self.updatedAt = updatedAt
    }
}
