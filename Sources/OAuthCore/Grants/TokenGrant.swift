/// One grant type of the token endpoint (RFC 6749 §4): it takes the validated request of
/// an authenticated client and answers the tokens, or throws an RFC error. Every rule of
/// the grant is decided here, once, whatever the backend.
public protocol TokenGrant {
    var grantType: GrantType { get }
    func issue(_ request: TokenRequest) throws -> IssuedTokens
}

/// A /token request after client authentication.
public struct TokenRequest {
    public var params: Parameters
    public var client: Client
    /// The client's network address (throttling of the password grant).
    public var remoteAddress: String

    public init(params: Parameters, client: Client, remoteAddress: String) {
        self.params = params
        self.client = client
        self.remoteAddress = remoteAddress
    }
}

/// The token endpoint: an explicit list of grants, built in the composition root.
public struct TokenEndpoint {
    public let grants: [any TokenGrant]

    public init(grants: [any TokenGrant]) { self.grants = grants }

    public func issue(_ request: TokenRequest) throws -> IssuedTokens {
        let type = try TokenRules.grantType(request.params, client: request.client)
        guard let grant = grants.first(where: { $0.grantType == type }) else {
            throw OAuthError.unsupportedGrantType("grant_type '\(type.rawValue)' is not enabled")
        }
        return try grant.issue(request)
    }

    /// The grant types this endpoint serves, for the metadata document.
    public var grantTypes: [GrantType] { grants.map(\.grantType) }
}

/// What every grant shares: where grants are kept, time, token material, lifetimes, and
/// where security events go.
public struct GrantContext {
    public var store: any GrantStore
    public var clock: Clock
    public var tokens: TokenMint
    public var lifetimes: TokenLifetimes
    /// Security events worth a log line (a replayed code, a reused refresh token).
    public var report: (GrantEvent) -> Void

    public init(store: any GrantStore, clock: Clock, tokens: TokenMint, lifetimes: TokenLifetimes,
                report: @escaping (GrantEvent) -> Void = { _ in }) {
        self.store = store
        self.clock = clock
        self.tokens = tokens
        self.lifetimes = lifetimes
        self.report = report
    }

    /// Fresh tokens and their hashes; a refresh token only when asked for. `familyExpiresAt`
    /// is the end of an existing refresh chain, or nil to start one.
    func mint(refresh: Bool, now: Int64, familyExpiresAt: Int64? = nil) -> (access: String, refresh: String?, plan: NewTokens) {
        let access = tokens.generate()
        let refreshToken = refresh ? tokens.generate() : nil
        let plan = NewTokens(accessHash: tokens.hash(access), accessExpiresAt: now + lifetimes.access,
                             refreshHash: refreshToken.map(tokens.hash), refreshExpiresAt: now + lifetimes.refreshIdle,
                             familyExpiresAt: familyExpiresAt ?? now + lifetimes.refreshAbsolute)
        return (access, refreshToken, plan)
    }

    func issued(_ minted: (access: String, refresh: String?, plan: NewTokens), scope: [String]) -> IssuedTokens {
        IssuedTokens(accessToken: minted.access, refreshToken: minted.refresh, scope: scope,
                     expiresIn: Int(lifetimes.access))
    }
}

/// Token values and the keyed hash that identifies them in storage: random from the
/// CSPRNG in production, seeded in tests.
public struct TokenMint {
    public var generate: () -> String
    public var hash: (String) -> [UInt8]

    public init(generate: @escaping () -> String, hash: @escaping (String) -> [UInt8]) {
        self.generate = generate
        self.hash = hash
    }
}

/// Lifetimes in seconds.
public struct TokenLifetimes: Sendable {
    public var access: Int64
    /// A refresh token unused this long expires.
    public var refreshIdle: Int64
    /// The whole refresh chain of a grant ends this long after it started.
    public var refreshAbsolute: Int64
    /// How long the previous refresh token may be retried once (a lost response), 0: never.
    public var refreshGrace: Int64

    public init(access: Int64, refreshIdle: Int64, refreshAbsolute: Int64, refreshGrace: Int64) {
        self.access = access
        self.refreshIdle = refreshIdle
        self.refreshAbsolute = refreshAbsolute
        self.refreshGrace = refreshGrace
    }
}

public enum GrantEvent: Equatable, Sendable {
    case codeReplayed(clientID: String)
    case refreshTokenReused(clientID: String)
}
