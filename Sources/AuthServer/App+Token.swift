import OAuthCore
import OAuthCrypto
import OAuthSQLite
import Logging

extension App {
    // MARK: - /token (RFC 6749 §3.2, §4.1.3, §4.3, §4.4, §6)

    func token(_ request: HTTPRequest) throws -> HTTPResponse {
        let (params, client) = try authenticatedForm(request)
        switch try TokenRules.grantType(params, client: client) {
        case .authorizationCode: return try exchangeCode(params, client: client)
        case .refreshToken: return try refresh(params, client: client)
        case .clientCredentials: return try clientCredentials(params, client: client)
        case .password: return try passwordGrant(request, params, client: client)
        }
    }

    /// Fresh tokens and their hashes; a refresh token only if the client is registered for it.
    func mint(refresh: Bool, now: Int64) -> (access: String, refresh: String?, plan: NewTokens) {
        let access = SecureRandom.token()
        let refreshToken = refresh ? SecureRandom.token() : nil
        let plan = NewTokens(accessHash: key.hash(access), accessExpiresAt: now + config.accessTokenLifetime,
                             refreshHash: refreshToken.map(key.hash), refreshExpiresAt: now + config.refreshTokenIdleLifetime,
                             familyExpiresAt: now + config.refreshTokenLifetime)
        return (access, refreshToken, plan)
    }

    func exchangeCode(_ params: Parameters, client: Client) throws -> HTTPResponse {
        let code = try params.required("code")
        let redirectURI = try params.single("redirect_uri")
        let verifier = try params.single("code_verifier")
        let now = self.now
        let minted = mint(refresh: client.allows(.refreshToken), now: now)
        let outcome = try store.redeemCode(hash: key.hash(code), clientID: client.id, now: now, tokens: minted.plan) { record in
            try TokenRules.checkCode(record, client: client, redirectURI: redirectURI, codeVerifier: verifier, now: now)
        }
        switch outcome {
        case .issued(let record):
            return IssuedTokens(accessToken: minted.access, refreshToken: minted.refresh, scope: record.scope,
                                expiresIn: Int(config.accessTokenLifetime)).response()
        case .notFound:
            throw OAuthError.invalidGrant("invalid authorization code")
        case .replayed:
            Log.warn("code_replayed", ["client": client.id])
            throw OAuthError.invalidGrant("authorization code already used; tokens issued from it are revoked")
        }
    }

    func refresh(_ params: Parameters, client: Client) throws -> HTTPResponse {
        let presented = try params.required("refresh_token")
        let requestedScope = try params.single("scope")
        let now = self.now
        let minted = mint(refresh: true, now: now)
        let outcome = try store.rotateRefreshToken(hash: key.hash(presented), clientID: client.id, now: now, graceSeconds: config.refreshGracePeriod,
                                                   tokens: minted.plan) { candidate in
            try TokenRules.checkRefresh(candidate.record, userDisabled: candidate.userDisabled,
                                        familyScope: candidate.familyScope, client: client, requestedScope: requestedScope)
        }
        switch outcome {
        case .rotated(let scope, _):
            return IssuedTokens(accessToken: minted.access, refreshToken: minted.refresh, scope: scope,
                                expiresIn: Int(config.accessTokenLifetime)).response()
        case .invalid(let why):
            throw OAuthError.invalidGrant(why)
        case .reuseDetected:
            Log.warn("refresh_token_reused", ["client": client.id])
            throw OAuthError.invalidGrant("refresh token already used; its token family is revoked")
        }
    }

    func clientCredentials(_ params: Parameters, client: Client) throws -> HTTPResponse {
        let scope = try Scope.resolve(requested: try params.single("scope"), allowed: client.allowedScopes,
                                      defaults: client.defaultScopes)
        let now = self.now
        // §4.4.3: "A refresh token SHOULD NOT be included."
        let minted = mint(refresh: false, now: now)
        try store.issue(clientID: client.id, userID: nil, scope: scope, tokens: minted.plan, now: now)
        return IssuedTokens(accessToken: minted.access, refreshToken: nil, scope: scope,
                            expiresIn: Int(config.accessTokenLifetime)).response()
    }

    func passwordGrant(_ request: HTTPRequest, _ params: Parameters, client: Client) throws -> HTTPResponse {
        let username = try params.required("username")
        let password = try params.required("password")
        let scope = try Scope.resolve(requested: try params.single("scope"), allowed: client.allowedScopes,
                                      defaults: client.defaultScopes)
        // §4.3.2: "MUST protect the endpoint against brute force attacks": the same counters
        // as the login form, so neither path bypasses the other.
        let checked: User?
        do {
            checked = try checkPassword(username: username, password: password, address: request.remoteAddress)
        } catch is PasswordChecksBusy {
            throw OAuthError.temporarilyUnavailable("password_checks_busy")
        }
        guard let user = checked else { throw OAuthError.invalidGrant("invalid username or password") }
        let now = self.now
        let minted = mint(refresh: client.allows(.refreshToken), now: now)
        try store.issue(clientID: client.id, userID: user.id, scope: scope, tokens: minted.plan, now: now)
        return IssuedTokens(accessToken: minted.access, refreshToken: minted.refresh, scope: scope,
                            expiresIn: Int(config.accessTokenLifetime)).response()
    }

    /// Verifies a password with throttling per username and per client address. nil on any
    /// failure (unknown user, wrong password, disabled, locked). Unknown and known names
    /// cost the same hash; a locked name or address costs none (locks are kept for unknown
    /// names too, so a fast answer tells nothing about which accounts exist).
    /// Throws `PasswordChecksBusy` when the host's hashing places are all taken.
    func checkPassword(username: String, password: String, address: String) throws -> User? {
        let keys = ["user:" + username, "addr:" + address]
        let now = self.now
        if try store.lockedUntil(keys: keys, now: now) != nil { return nil }
        let user = try store.user(named: username)
        let matched = passwordHashGate.run {
            guard let user else {
                passwords.verifyDummy(password)  // an unknown name costs the same time as a known one
                return false
            }
            return PasswordHasher.verify(password, against: user.passwordHash)
        }
        guard let matched else { throw PasswordChecksBusy() }
        guard matched, let user, !user.disabled else {
            try store.recordLoginFailure(keys: ["user:" + username], now: now, limit: config.loginMaxFailures,
                                         window: config.loginFailureWindow, lockout: config.loginLockout)
            try store.recordLoginFailure(keys: ["addr:" + address], now: now, limit: config.loginAddressMaxFailures,
                                         window: config.loginFailureWindow, lockout: config.loginLockout)
            return nil
        }
        try store.clearLoginFailures(key: "user:" + username)
        return user
    }

    // MARK: - /revoke (RFC 7009)

    func revoke(_ request: HTTPRequest) throws -> HTTPResponse {
        let (params, client) = try authenticatedForm(request)
        let token = try params.required("token")
        _ = try params.single("token_type_hint")  // §2.1: a hint only; we search both kinds anyway
        // §2.2: 200 whether or not the token existed, was valid, or belonged to this client.
        try store.revoke(hash: key.hash(token), clientID: client.id, now: now)
        return HTTPResponse(status: 200, headers: HTTPResponse.noStoreHeaders)
    }

    // MARK: - /introspect (RFC 7662)

    func introspect(_ request: HTTPRequest) throws -> HTTPResponse {
        let (params, client) = try authenticatedForm(request)
        // §2.1: the endpoint "MUST also require some form of authorization": public clients
        // cannot keep a credential, so they get none.
        guard !client.isPublic else {
            return ClientAuthenticationError(.invalidClient("public clients cannot introspect"),
                                             challenge: request.header("authorization") != nil).response()
        }
        let token = try params.required("token")
        _ = try params.single("token_type_hint")
        let inactive = HTTPResponse.json(200, #"{"active":false}"#, headers: HTTPResponse.noStoreHeaders)
        guard let found = try store.token(hash: key.hash(token)) else { return inactive }
        let t = found.record
        guard t.isActive(at: now), !found.userDisabled, client.isResourceServer || t.clientID.sameBytes(as: client.id) else { return inactive }
        var o = JSONObject()
        o.set("active", true)
        o["scope"] = Scope.string(t.scope)
        o["client_id"] = t.clientID
        o["username"] = t.username
        o["sub"] = t.username ?? t.clientID
        o["token_type"] = t.kind == .access ? "Bearer" : "Refresh"
        o.set("exp", Int(t.expiresAt))
        o.set("iat", Int(t.issuedAt))
        o.set("nbf", Int(t.issuedAt))
        o["aud"] = t.clientID
        o["iss"] = config.issuer
        return .json(200, o.serialized(), headers: HTTPResponse.noStoreHeaders)
    }

    // MARK: - token validation for nginx auth_request (RFC 6750)

    func validate(_ request: HTTPRequest) throws -> HTTPResponse {
        let realm = "Bearer realm=\"gatehouse\""
        func deny(_ status: Int, _ error: String?, _ description: String? = nil, scope: String? = nil) -> HTTPResponse {
            var challenge = realm
            if let error { challenge += ", error=\"\(error)\"" }
            if let description { challenge += ", error_description=\"\(description)\"" }
            if let scope { challenge += ", scope=\"\(scope)\"" }
            // auth_request only understands 2xx, 401 and 403: a malformed request travels as
            // 401 and the include turns it into 400 from X-Gatehouse-Status.
            return HTTPResponse(status: status == 400 ? 401 : status,
                                headers: [("WWW-Authenticate", challenge), ("X-Gatehouse-Status", String(status)),
                                          ("Cache-Control", "no-store")])
        }
        let token: String
        switch BearerToken.parse(request.header("authorization")) {
        case .missing: return deny(401, nil)  // §3.1: no error code when no credentials were sent
        case .malformed: return deny(400, "invalid_request", "malformed Authorization header")
        case .token(let t): token = t
        }
        guard let found = try store.token(hash: key.hash(token)), found.record.kind == .access,
            found.record.isActive(at: now), !found.userDisabled
        else { return deny(401, "invalid_token", "the access token is invalid, expired or revoked") }
        let t = found.record
        let required = (request.header("x-gatehouse-required-scope") ?? "").split(separator: " ").map(String.init)
        if required.contains(where: { !t.scope.contains($0) }) {
            return deny(403, "insufficient_scope", "the access token lacks a required scope", scope: required.joined(separator: " "))
        }
        return HTTPResponse(status: 200, headers: [
            ("X-Gatehouse-Subject", t.username ?? t.clientID),
            ("X-Gatehouse-Client", t.clientID),
            ("X-Gatehouse-Scope", Scope.string(t.scope)),
            ("X-Gatehouse-Status", "200"),
            ("Cache-Control", "no-store"),
        ])
    }
}
