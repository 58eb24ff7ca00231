import OAuthCrypto

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

/// What every grant shares: where grants are kept, time, token material, lifetimes, the
/// OpenID Connect signer, and where security events go.
public struct GrantContext {
    public var store: any GrantStore
    public var clock: Clock
    public var tokens: TokenMint
    public var lifetimes: TokenLifetimes
    /// Signs ID Tokens and JWT access tokens; nil: neither is issued.
    public var openID: OpenIDSigning?
    /// Security events worth a log line (a replayed code, a reused refresh token).
    public var report: (GrantEvent) -> Void

    public init(store: any GrantStore, clock: Clock, tokens: TokenMint, lifetimes: TokenLifetimes, openID: OpenIDSigning? = nil,
                report: @escaping (GrantEvent) -> Void = { _ in }) {
        self.store = store
        self.clock = clock
        self.tokens = tokens
        self.lifetimes = lifetimes
        self.openID = openID
        self.report = report
    }

    /// The tokens of one grant step before they are stored: their values for the response
    /// and their hashes for the store; `authentication` when the answer carries an ID Token.
    struct Minted {
        var access: String
        var refresh: String?
        var authentication: Authentication?
        var plan: NewTokens
        /// What they were made from (see `mintAhead`).
        var basis: MintBasis
    }

    /// What minted tokens depend on besides the client and the time.
    struct MintBasis: Equatable {
        var user: Authentication?
        var scope: [String]
        var refresh: Bool
        var familyExpiresAt: Int64?
    }

    /// Tokens minted before a grant's atomic step, from a plain read of the code or refresh
    /// token (`basis`), when minting is slow: a JWT access token is a signature (RS256 costs
    /// ~0.4 ms here), and inside the step it would hold every writer of a SQLite host, or
    /// the grant's row locks, that long. The step uses them only when it finds the same basis
    /// (`mint(…, ahead:)`); otherwise they are dropped unseen. nil for opaque tokens (two
    /// random values: the extra read would cost more than it saves), and when the read
    /// finds nothing worth signing for.
    func mintAhead(for client: Client, now: Int64, basis: () throws -> MintBasis?) -> Minted? {
        guard client.accessTokenFormat == .jwt, openID != nil, let basis = try? basis() else { return nil }
        return try? mint(for: client, user: basis.user, scope: basis.scope, refresh: basis.refresh, now: now,
                         familyExpiresAt: basis.familyExpiresAt)
    }

    /// Fresh tokens for `client`: the access token opaque or an RFC 9068 JWT as the client is
    /// registered, and a refresh token when asked for. An ID Token is due when the scope has
    /// `openid` and `user` says who logged in; it is signed after the commit (`issued`), so
    /// the write lock is never held for a signature. `familyExpiresAt` is the end of an
    /// existing refresh chain, or nil to start one.
    func mint(for client: Client, user: Authentication?, scope: [String], refresh: Bool, now: Int64,
              familyExpiresAt: Int64? = nil, ahead: Minted? = nil) throws -> Minted {
        let basis = MintBasis(user: user, scope: scope, refresh: refresh, familyExpiresAt: familyExpiresAt)
        if let ahead, ahead.basis == basis { return ahead }
        var access = tokens.generate()
        if client.accessTokenFormat == .jwt, let openID {
            access = try openID.accessToken(for: client, subject: user?.subject ?? client.id, scope: scope, jti: access, now: now,
                                            lifetime: lifetimes.access)
        }
        let refreshToken = refresh ? tokens.generate() : nil
        let plan = NewTokens(accessHash: tokens.hash(access), accessExpiresAt: now + lifetimes.access,
                             refreshHash: refreshToken.map(tokens.hash), refreshExpiresAt: now + lifetimes.refreshIdle,
                             familyExpiresAt: familyExpiresAt ?? now + lifetimes.refreshAbsolute)
        return Minted(access: access, refresh: refreshToken, authentication: scope.contains("openid") ? user : nil, plan: plan,
                      basis: basis)
    }

    /// The signer of `client`'s ID Tokens, fetched before anything is written, so a code is
    /// never spent on an answer that could not be signed. nil: no OpenID Connect for it.
    func idTokenSigner(for client: Client) throws -> (any JWSSigner)? {
        guard let openID, client.allowedScopes.contains("openid") else { return nil }
        return try openID.signer(client.idTokenAlgorithm)
    }

    func issued(_ minted: Minted, scope: [String], client: Client, now: Int64, signer: (any JWSSigner)?) throws -> IssuedTokens {
        var idToken: String? = nil
        if let user = minted.authentication, let signer, let openID {
            idToken = try openID.idToken(for: client, user: user, accessToken: minted.access, now: now, lifetime: lifetimes.access,
                                         signer: signer)
        }
        return IssuedTokens(accessToken: minted.access, refreshToken: minted.refresh, scope: scope, expiresIn: Int(lifetimes.access),
                            idToken: idToken)
    }
}

/// Who logged in, as an ID Token states it.
public struct Authentication: Sendable, Equatable {
    public var subject: String
    /// When the password was entered (`auth_time`).
    public var authTime: Int64?
    /// The authorization request's `nonce`; never repeated in a refresh's ID Token (Core §12.2).
    public var nonce: String?

    public init(subject: String, authTime: Int64?, nonce: String?) {
        self.subject = subject
        self.authTime = authTime
        self.nonce = nonce
    }
}

/// ID Tokens (OpenID Connect Core §2) and JWT access tokens (RFC 9068) under the server's
/// keys, each client's with the algorithm it is registered for.
public struct OpenIDSigning {
    public var issuer: String
    public var signer: (SigningAlgorithm) throws -> any JWSSigner

    public init(issuer: String, signer: @escaping (SigningAlgorithm) throws -> any JWSSigner) {
        self.issuer = issuer
        self.signer = signer
    }

    func idToken(for client: Client, user: Authentication, accessToken: String, now: Int64, lifetime: Int64,
                 signer: any JWSSigner) throws -> String {
        let claims = IDTokenClaims(issuer: issuer, subject: user.subject, audience: client.id, issuedAt: now,
                                   expiresAt: now + lifetime, authTime: user.authTime, nonce: user.nonce,
                                   accessTokenHash: IDTokenClaims.accessTokenHash(accessToken))
        return try JWS.compact(payload: claims.json, signer: signer)
    }

    /// RFC 9068 §2.2: `iss`, `exp`, `aud`, `sub`, `client_id`, `iat`, `jti`, and `scope`;
    /// `typ` is `at+jwt` (§2.1). `jti` is a fresh random value, so every token differs.
    func accessToken(for client: Client, subject: String, scope: [String], jti: String, now: Int64, lifetime: Int64) throws
        -> String
    {
        var o = JSONObject()
        o["iss"] = issuer
        o["sub"] = subject
        o["aud"] = client.id
        o.set("exp", Int(now + lifetime))
        o.set("iat", Int(now))
        o["jti"] = jti
        o["client_id"] = client.id
        o["scope"] = Scope.string(scope)
        return try JWS.compact(payload: o, type: "at+jwt", signer: signer(client.idTokenAlgorithm))
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
    /// Access tokens, and the ID Tokens issued with them.
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
