/// RFC 6749 §4.4: a confidential client acting on its own behalf.
public struct ClientCredentialsGrant: TokenGrant {
    public let grantType = GrantType.clientCredentials
    let context: GrantContext

    public init(_ context: GrantContext) { self.context = context }

    public func issue(_ request: TokenRequest) throws -> IssuedTokens {
        let client = request.client
        let scope = try Scope.resolve(requested: try request.params.single("scope"), allowed: client.allowedScopes,
                                      defaults: client.defaultScopes)
        let now = context.clock.now()
        // §4.4.3: "A refresh token SHOULD NOT be included."
        let minted = try context.mint(for: client, user: nil, scope: scope, refresh: false, now: now)
        try context.store.issue(NewGrant(clientID: client.id, userID: nil, scope: scope, tokens: minted.plan, now: now))
        return try context.issued(minted, scope: scope, client: client, now: now, signer: nil)
    }
}
