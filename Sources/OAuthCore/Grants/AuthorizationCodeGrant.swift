/// RFC 6749 §4.1.3 with RFC 7636 §4.6: a code for tokens, once. With `openid` in the
/// code's scope, an ID Token too (OpenID Connect Core §3.1.3.3).
public struct AuthorizationCodeGrant: TokenGrant {
    public let grantType = GrantType.authorizationCode
    let context: GrantContext

    public init(_ context: GrantContext) { self.context = context }

    public func issue(_ request: TokenRequest) throws -> IssuedTokens {
        let code = try request.params.required("code")
        let redirectURI = try request.params.single("redirect_uri")
        let verifier = try request.params.single("code_verifier")
        let client = request.client
        let now = context.clock.now()
        let signer = try context.idTokenSigner(for: client)
        let codeHash = context.tokens.hash(code)
        let ahead = context.mintAhead(for: client, now: now) {
            guard let peek = try context.store.peekCode(hash: codeHash)?.record, !peek.consumed, !peek.userDisabled,
                (try? TokenRules.checkCode(peek, client: client, redirectURI: redirectURI, codeVerifier: verifier, now: now)) != nil
            else { return nil }
            return Self.basis(peek, client: client)
        }
        var minted: GrantContext.Minted?
        let verdict = try context.store.redeemCode(hash: codeHash, now: now) { stored in
            try Self.decide(stored, client: client, redirectURI: redirectURI, codeVerifier: verifier, now: now) { code in
                let basis = Self.basis(code, client: client)
                let fresh = try context.mint(for: client, user: basis.user, scope: basis.scope, refresh: basis.refresh, now: now,
                                             ahead: ahead)
                minted = fresh
                return fresh.plan
            }
        }
        switch verdict {
        case .redeem(_, let scope):
            guard let minted else { throw OAuthError.serverError("redeemed without minted tokens") }
            return try context.issued(minted, scope: scope, client: client, now: now, signer: signer)
        case .refuse(let error):
            throw error
        case .revokeGrant(let error):
            context.report(.codeReplayed(clientID: client.id))
            throw error
        }
    }

    /// What the tokens of `code` are made from.
    static func basis(_ code: AuthorizationCodeRecord, client: Client) -> GrantContext.MintBasis {
        GrantContext.MintBasis(user: Authentication(subject: code.subject, authTime: code.authTime, nonce: code.nonce),
                               scope: code.scope, refresh: client.allows(.refreshToken), familyExpiresAt: nil)
    }

    /// The rules for one presented code, decided inside the store's atomic step; `mint`
    /// makes the tokens of a code that passes them.
    ///
    /// - §4.1.3: the code must exist, be issued to this client, be unexpired, and the
    ///   redirect_uri must match the authorization request's.
    /// - §4.1.2: "If an authorization code is used more than once, the authorization server
    ///   MUST deny the request and SHOULD revoke (when possible) all tokens previously issued
    ///   based on that authorization code." Only for the client it was issued to: another
    ///   client presenting it learns nothing and revokes nothing (§10.4's spirit).
    public static func decide(_ stored: StoredCode?, client: Client, redirectURI: String?, codeVerifier: String?, now: Int64,
                              mint: (AuthorizationCodeRecord) throws -> NewTokens) throws -> CodeVerdict {
        guard let stored else { return .refuse(.invalidGrant("invalid authorization code")) }
        let record = stored.record
        if record.consumed {
            guard record.clientID.sameBytes(as: client.id) else { return .refuse(.invalidGrant("invalid authorization code")) }
            return .revokeGrant(.invalidGrant("authorization code already used; tokens issued from it are revoked"))
        }
        do {
            try TokenRules.checkCode(record, client: client, redirectURI: redirectURI, codeVerifier: codeVerifier, now: now)
        } catch {
            return .refuse(error)
        }
        return .redeem(try mint(record), scope: record.scope)
    }
}
