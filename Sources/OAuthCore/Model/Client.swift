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

/// A resource owner who logs in at /authorize or through the password grant.
public struct User: Sendable, Equatable {
    public var id: Int64
    public var username: String
    public var passwordHash: String
    public var disabled: Bool

    public init(id: Int64, username: String, passwordHash: String, disabled: Bool) {
        self.id = id
        self.username = username
        self.passwordHash = passwordHash
        self.disabled = disabled
    }
}
