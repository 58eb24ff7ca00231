/// RFC 6749 §6 with rotation, reuse detection and a grace window (RFC 9700 §4.14.2). An
/// `openid` grant gets a new ID Token with the original login's `auth_time` (OpenID
/// Connect Core §12.2).
public struct RefreshTokenGrant: TokenGrant {
    public let grantType = GrantType.refreshToken
    let context: GrantContext

    public init(_ context: GrantContext) { self.context = context }

    public func issue(_ request: TokenRequest) throws -> IssuedTokens {
        let presented = try request.params.required("refresh_token")
        let requestedScope = try request.params.single("scope")
        let client = request.client
        let now = context.clock.now()
        let signer = try context.idTokenSigner(for: client)
        let hash = context.tokens.hash(presented)
        let ahead = context.mintAhead(for: client, now: now) {
            guard let peek = try context.store.peekRefreshToken(hash: hash), peek.record.clientID.sameBytes(as: client.id),
                !peek.record.revoked, peek.record.rotatedAt == nil, !peek.userDisabled
            else { return nil }
            return Self.basis(peek, scope: try Scope.narrow(requested: requestedScope, granted: peek.familyScope))
        }
        var minted: GrantContext.Minted?
        let verdict = try context.store.rotateRefreshToken(hash: hash, now: now) { stored in
            try Self.decide(stored, client: client, requestedScope: requestedScope, now: now,
                            graceSeconds: context.lifetimes.refreshGrace) { token, scope in
                let basis = Self.basis(token, scope: scope)
                let fresh = try context.mint(for: client, user: basis.user, scope: scope, refresh: true, now: now,
                                             familyExpiresAt: basis.familyExpiresAt, ahead: ahead)
                minted = fresh
                return fresh.plan
            }
        }
        switch verdict {
        case .rotate(let rotation):
            guard let minted else { throw OAuthError.serverError("rotation without minted tokens") }
            return try context.issued(minted, scope: rotation.scope, client: client, now: now, signer: signer)
        case .refuse(let error):
            throw error
        case .revokeFamily(let error):
            context.report(.refreshTokenReused(clientID: client.id))
            throw error
        }
    }

    /// What the tokens of a rotation of `token` are made from.
    static func basis(_ token: StoredRefreshToken, scope: [String]) -> GrantContext.MintBasis {
        GrantContext.MintBasis(user: token.record.subject.map { Authentication(subject: $0, authTime: token.authTime, nonce: nil) },
                               scope: scope, refresh: true, familyExpiresAt: token.familyExpiresAt)
    }

    /// The rules for one presented refresh token, decided inside the store's atomic step.
    /// `mint` makes the new tokens with the scope they will carry.
    ///
    /// - §10.4: a token presented by another client than its own changes nothing: a client
    ///   cannot revoke, by replaying it, a family that is not its own.
    /// - RFC 9700 §4.14.2: a rotated token presented again is reuse and revokes the family,
    ///   except one retry by the immediately preceding generation inside `graceSeconds`.
    /// - §6: the new scope may narrow the original grant's, never widen it; a disabled
    ///   resource owner gets nothing.
    public static func decide(_ stored: StoredRefreshToken?, client: Client, requestedScope: String?, now: Int64,
                              graceSeconds: Int64, mint: (StoredRefreshToken, [String]) throws -> NewTokens) throws
        -> RefreshVerdict
    {
        guard let stored else { return .refuse(.invalidGrant("unknown refresh token")) }
        let token = stored.record
        guard token.clientID.sameBytes(as: client.id) else { return .refuse(.invalidGrant("refresh token was issued to another client")) }
        if token.revoked { return .refuse(.invalidGrant("refresh token revoked")) }
        var withinGrace = false
        if let rotatedAt = token.rotatedAt {
            withinGrace = graceSeconds > 0 && now - rotatedAt <= graceSeconds
                && stored.generation == stored.familyGeneration - 1 && !stored.graceUsed
            guard withinGrace else {
                return .revokeFamily(.invalidGrant("refresh token already used; its token family is revoked"))
            }
        }
        if now >= token.expiresAt || now >= stored.familyExpiresAt { return .refuse(.invalidGrant("refresh token expired")) }
        guard !stored.userDisabled else { return .refuse(.invalidGrant("the resource owner's account is disabled")) }
        let scope: [String]
        do {
            scope = try Scope.narrow(requested: requestedScope, granted: stored.familyScope)
        } catch {
            return .refuse(error)
        }
        return .rotate(RefreshRotation(tokens: try mint(stored, scope), scope: scope,
                                       generation: withinGrace ? stored.familyGeneration : stored.familyGeneration + 1,
                                       withinGrace: withinGrace))
    }
}
