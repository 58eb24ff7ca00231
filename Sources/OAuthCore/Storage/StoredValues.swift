/// The values that cross the storage contract: what a backend loads for a decision of the
/// core, the verdicts it applies, and what it is asked to write.

/// Hashes and lifetimes of the tokens one grant step inserts.
public struct NewTokens: Sendable, Equatable {
    public var accessHash: [UInt8]
    public var accessExpiresAt: Int64
    public var refreshHash: [UInt8]?
    /// Already capped at `familyExpiresAt`: a backend stores it as it is.
    public var refreshExpiresAt: Int64
    /// The absolute end of the refresh chain, fixed when the family is created.
    public var familyExpiresAt: Int64

    public init(accessHash: [UInt8], accessExpiresAt: Int64, refreshHash: [UInt8]?, refreshExpiresAt: Int64,
                familyExpiresAt: Int64) {
        self.accessHash = accessHash
        self.accessExpiresAt = accessExpiresAt
        self.refreshHash = refreshHash
        self.refreshExpiresAt = min(refreshExpiresAt, familyExpiresAt)
        self.familyExpiresAt = familyExpiresAt
    }
}

/// A grant started by client_credentials or password.
public struct NewGrant: Sendable, Equatable {
    public var clientID: String
    public var userID: Int64?
    public var scope: [String]
    public var tokens: NewTokens
    public var now: Int64
    /// When the user authenticated (OpenID Connect `auth_time` of later ID Tokens).
    public var authTime: Int64?

    public init(clientID: String, userID: Int64?, scope: [String], tokens: NewTokens, now: Int64, authTime: Int64? = nil) {
        self.authTime = authTime
        self.clientID = clientID
        self.userID = userID
        self.scope = scope
        self.tokens = tokens
        self.now = now
    }
}

/// An authorization code as stored, with the grant it produced once redeemed.
public struct StoredCode: Sendable, Equatable {
    public var record: AuthorizationCodeRecord
    /// The family its redemption created (nil before, or after the purge removed it).
    public var familyID: Int64?

    public init(record: AuthorizationCodeRecord, familyID: Int64?) {
        self.record = record
        self.familyID = familyID
    }
}

/// What to do with a presented code.
public enum CodeVerdict: Sendable, Equatable {
    /// Write nothing; the request fails with this error.
    case refuse(OAuthError)
    /// Revoke the family the code produced (a replay, RFC 6749 §4.1.2), then fail.
    case revokeGrant(OAuthError)
    /// Mark the code used, start a family for the code's user and client with `scope`, and
    /// store these tokens in it.
    case redeem(NewTokens, scope: [String])
}

/// A refresh token as stored, with the state of its family.
public struct StoredRefreshToken: Sendable, Equatable {
    public var record: TokenRecord
    public var userID: Int64?
    public var userDisabled: Bool
    /// The generation this token was issued in; the family's current one.
    public var generation: Int64
    public var familyGeneration: Int64
    public var familyExpiresAt: Int64
    /// The scope of the original grant: a refresh may narrow it, never widen it.
    public var familyScope: [String]
    /// This token already had its one retry inside the grace window.
    public var graceUsed: Bool
    /// The login that started the grant (OpenID Connect §12.2: a refresh's ID Token keeps it).
    public var authTime: Int64?

    public init(record: TokenRecord, userID: Int64?, userDisabled: Bool, generation: Int64, familyGeneration: Int64,
                familyExpiresAt: Int64, familyScope: [String], graceUsed: Bool, authTime: Int64? = nil) {
        self.authTime = authTime
        self.record = record
        self.userID = userID
        self.userDisabled = userDisabled
        self.generation = generation
        self.familyGeneration = familyGeneration
        self.familyExpiresAt = familyExpiresAt
        self.familyScope = familyScope
        self.graceUsed = graceUsed
    }
}

/// What to do with a presented refresh token.
public enum RefreshVerdict: Sendable, Equatable {
    /// Write nothing; the request fails with this error.
    case refuse(OAuthError)
    /// Reuse of a rotated token: revoke its whole family, then fail (RFC 9700 §4.14.2).
    case revokeFamily(OAuthError)
    /// Store new tokens in the family.
    case rotate(RefreshRotation)
}

public struct RefreshRotation: Sendable, Equatable {
    public var tokens: NewTokens
    public var scope: [String]
    /// The generation of the new tokens.
    public var generation: Int64
    /// A retry of the previous generation inside the grace window: the presented token is
    /// marked as having used its retry and the family's current tokens stay valid.
    /// Otherwise every unrotated refresh token of the family is marked rotated.
    public var withinGrace: Bool

    public init(tokens: NewTokens, scope: [String], generation: Int64, withinGrace: Bool) {
        self.tokens = tokens
        self.scope = scope
        self.generation = generation
        self.withinGrace = withinGrace
    }
}

/// A token as looked up for validation, introspection or revocation.
public struct TokenLookup: Sendable, Equatable {
    public var record: TokenRecord
    public var userDisabled: Bool

    public init(record: TokenRecord, userDisabled: Bool) {
        self.record = record
        self.userDisabled = userDisabled
    }
}

/// A browser session; the cookie holds the id, the store only its hash.
public struct SessionRecord: Sendable, Equatable {
    public var csrf: String
    public var userID: Int64?
    public var authenticatedAt: Int64?
    public var createdAt: Int64
    public var lastSeenAt: Int64

    public init(csrf: String, userID: Int64?, authenticatedAt: Int64?, createdAt: Int64, lastSeenAt: Int64) {
        self.csrf = csrf
        self.userID = userID
        self.authenticatedAt = authenticatedAt
        self.createdAt = createdAt
        self.lastSeenAt = lastSeenAt
    }
}

/// A signing key as stored: its private part sealed under the server key (AES-256-GCM),
/// so a copy of the database alone signs nothing.
public struct StoredSigningKey: Sendable, Equatable {
    /// The `kid`.
    public var id: String
    public var algorithm: SigningAlgorithm
    public var sealedPrivateKey: [UInt8]
    public var createdAt: Int64
    /// Published in /jwks from `createdAt`, signs from `activeFrom` (publish before use).
    public var activeFrom: Int64
    /// Signs no more from then; stays published until what it signed has expired.
    public var retiredAt: Int64?

    public init(id: String, algorithm: SigningAlgorithm, sealedPrivateKey: [UInt8], createdAt: Int64, activeFrom: Int64,
                retiredAt: Int64? = nil) {
        self.id = id
        self.algorithm = algorithm
        self.sealedPrivateKey = sealedPrivateKey
        self.createdAt = createdAt
        self.activeFrom = activeFrom
        self.retiredAt = retiredAt
    }
}
