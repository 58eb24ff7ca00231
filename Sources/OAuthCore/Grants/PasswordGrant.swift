/// RFC 6749 §4.3: the resource owner's password, sent by a trusted client.
public struct PasswordGrant: TokenGrant {
    public let grantType = GrantType.password
    let context: GrantContext
    let passwords: any PasswordVerifier

    public init(_ context: GrantContext, passwords: any PasswordVerifier) {
        self.context = context
        self.passwords = passwords
    }

    public func issue(_ request: TokenRequest) throws -> IssuedTokens {
        let username = try request.params.required("username")
        let password = try request.params.required("password")
        let client = request.client
        let scope = try Scope.resolve(requested: try request.params.single("scope"), allowed: client.allowedScopes,
                                      defaults: client.defaultScopes)
        // §4.3.2: "MUST protect the endpoint against brute force attacks": the verifier
        // throttles with the same counters as the login form.
        let user: User?
        do {
            user = try passwords.verify(username: username, password: password, address: request.remoteAddress)
        } catch is PasswordChecksBusy {
            throw OAuthError.temporarilyUnavailable("password_checks_busy")
        }
        guard let user else { throw OAuthError.invalidGrant("invalid username or password") }
        let now = context.clock.now()
        let signer = try context.idTokenSigner(for: client)
        // The password was just checked: that is the authentication an ID Token states.
        let minted = try context.mint(for: client, user: Authentication(subject: user.subject, authTime: now, nonce: nil),
                                      scope: scope, refresh: client.allows(.refreshToken), now: now)
        try context.store.issue(NewGrant(clientID: client.id, userID: user.id, scope: scope, tokens: minted.plan, now: now,
                                         authTime: now))
        return try context.issued(minted, scope: scope, client: client, now: now, signer: signer)
    }
}

/// Checks a resource owner's password with brute-force throttling (the login form and the
/// password grant share one).
public protocol PasswordVerifier {
    /// The user, or nil on any failure (unknown, wrong password, disabled, locked out).
    /// Throws `PasswordChecksBusy` when the host cannot take another hash right now.
    func verify(username: String, password: String, address: String) throws -> User?
}

/// Every password-hashing place of the host is taken: nothing was tried; try again soon.
public struct PasswordChecksBusy: Error {
    public init() {}
}
