import OAuthCore
import OAuthCrypto
import Logging

extension App {
    static let sessionCookie = "__Host-gatehouse"
    /// The only fields a POST to /authorize may carry: the authorization request itself
    /// travels sealed in `authz`, never as raw parameters echoed into the form.
    static let formFields: Set<String> = ["step", "csrf", "authz", "username", "password", "decision"]
    /// Sealed into the forms when `prompt=login` or `max_age` asked for the password: the
    /// time from which a login counts. Never taken from a request's own parameters.
    static let loginAfterField = "gatehouse_login_after"

    struct Session {
        var idHash: [UInt8]
        var record: SessionRecord
    }

    /// Whoever fills in the forms: a stored session (created at login), or before login
    /// only a signed cookie, so an anonymous GET writes nothing to the database.
    struct Visitor {
        var csrf: String
        var session: Session?
        /// Set-Cookie to send with the page (a new pre-login cookie), if any.
        var cookie: String?
    }

    // MARK: - /authorize (RFC 6749 §4.1.1, §4.1.2; RFC 9207)

    func authorize(_ request: HTTPRequest) throws -> HTTPResponse {
        let isPost = request.method == "POST"
        let all = try pageParameters(request)
        let oauthParams: Parameters
        if isPost {
            // The request comes back exactly as the page was shown, sealed under the form's
            // CSRF token: a field added or changed on the way voids the form (Hydra PR 770).
            guard all.pairs.allSatisfy({ App.formFields.contains($0.name) }) else { return formChanged() }
            guard let sealed = try? all.single("authz"), let csrf = try? all.single("csrf"),
                let unsealed = unseal(sealed, csrf: csrf)
            else { return sessionExpired() }
            oauthParams = unsealed
        } else {
            oauthParams = Parameters(all.pairs.filter { !App.formFields.contains($0.name) && $0.name != App.loginAfterField })
        }
        let clientID = (try? oauthParams.single("client_id")) ?? nil
        let client = try clientID.flatMap { try store.client(id: $0) }

        switch AuthorizationEndpoint.validate(oauthParams, client: client) {
        case .display(let message):
            return pages.errorPage(status: 400, title: "This request cannot be completed", message: message)
        case .redirectError(let uri, let error, let state):
            return .redirect(AuthorizationEndpoint.errorLocation(uri, error: error, state: state, issuer: config.issuer))
        case .valid(let authz):
            guard let client else { return pages.errorPage(status: 400, title: "Unknown client", message: "") }
            do {
                return try isPost ? submit(request, all, authz, client, oauthParams)
                    : show(request, authz, client, oauthParams)
            } catch let e as OAuthError {
                throw e  // a malformed form of ours: an error page
            } catch {
                // §4.1.2.1: once the redirect URI is known, even server errors go back to the client.
                let failure = error as? StorageFailure
                let temporary = failure?.isTemporary == true
                Log.warn(failure?.event ?? "server_error", ["endpoint": "authorize", "detail": "\(error)"])
                if temporary { counter.count(.databaseBusy) }
                let e: OAuthError = temporary ? .temporarilyUnavailable("\(error)") : .serverError("\(error)")
                return .redirect(AuthorizationEndpoint.errorLocation(authz.redirectURI, error: e, state: authz.state,
                                                                     issuer: config.issuer))
            }
        }
    }

    /// GET: log in, ask consent, or answer at once when consent is remembered.
    /// `prompt=none` shows no page: it answers or redirects with `login_required` /
    /// `consent_required` (OpenID Connect Core §3.1.2.6).
    private func show(_ request: HTTPRequest, _ authz: AuthorizationRequest, _ client: Client, _ params: Parameters) throws
        -> HTTPResponse
    {
        let session = try currentSession(request)
        guard let session, let userID = authenticatedUser(session), !authz.prompt.contains("login"), loginIsFresh(session, authz)
        else {
            if authz.prompt.contains("none") { return redirectError(authz, OAuthError(.loginRequired, "the user must log in")) }
            let visitor = session.map { Visitor(csrf: $0.record.csrf, session: $0) } ?? preLoginVisitor(request)
            // prompt=login and max_age want the password entered from now on: the forms carry
            // that, sealed, so a consent step posted in place of the login (same session, same
            // CSRF token) cannot issue a code on the older login (OIDC Core §3.1.2.1).
            var demanded = params
            if authz.prompt.contains("login") || authz.maxAge != nil { demanded.append(App.loginAfterField, String(now)) }
            return loginPage(authz, client, demanded, visitor: visitor, error: nil, username: authz.loginHint)
        }
        return try afterLogin(authz, client, params, session: session, userID: userID, extraHeaders: [], viaPost: false)
    }

    /// OpenID Connect Core §3.1.2.1 `max_age`: a login older than that asks for the password again.
    private func loginIsFresh(_ session: Session, _ authz: AuthorizationRequest) -> Bool {
        guard let maxAge = authz.maxAge else { return true }
        guard let at = session.record.authenticatedAt else { return false }
        return now - at <= maxAge
    }

    private func redirectError(_ authz: AuthorizationRequest, _ error: OAuthError) -> HTTPResponse {
        .redirect(AuthorizationEndpoint.errorLocation(authz.redirectURI, error: error, state: authz.state, issuer: config.issuer))
    }

    /// Consent is skipped only when remembered, not forced by prompt=consent, and never for
    /// public clients (RFC 8252 §8.6, RFC 6749 §10.2).
    private func afterLogin(_ authz: AuthorizationRequest, _ client: Client, _ params: Parameters, session: Session,
                            userID: Int64, extraHeaders: [(String, String)], viaPost: Bool) throws -> HTTPResponse {
        // Remembered consent, or a trusted first-party client; never for public clients (RFC
        // 8252 §8.6: another app can claim their id), and `prompt=consent` always asks.
        if !authz.prompt.contains("consent"), !client.isPublic,
            try client.skipConsent || store.hasConsent(userID: userID, clientID: client.id, scope: authz.scope) {
            return try issueCode(authz, userID: userID, authTime: session.record.authenticatedAt,
                                 status: viaPost ? 303 : 302, extraHeaders: extraHeaders)
        }
        if authz.prompt.contains("none") {
            return redirectError(authz, OAuthError(.consentRequired, "the user has not consented to this request"))
        }
        let username = try store.user(id: userID)?.username ?? ""
        let csrf = session.record.csrf
        // What each scope shares, in words a person understands where we know them.
        let shared = authz.scope.map { ScopeClaims.description(of: $0) ?? $0 }
        return pages.render(pages.consent, [
            "client_name": client.name, "username": username, "csrf": csrf, "action": formAction,
            "authz": seal(params, csrf: csrf), "scopes": shared, "redirect_host": host(of: authz.redirectURI),
            "issuer_host": host(of: config.issuer),
        ], status: 200, formTarget: authz.redirectURI, extraHeaders: extraHeaders)
    }

    /// POST: the login or consent form. Requires the cookie and its CSRF token (RFC 6749
    /// §10.12); a missing or wrong token is a 403 page, never a redirect.
    private func submit(_ request: HTTPRequest, _ all: Parameters, _ authz: AuthorizationRequest, _ client: Client,
                        _ params: Parameters) throws -> HTTPResponse {
        guard let csrf = try? all.single("csrf") else { return sessionExpired() }
        let visitor: Visitor
        if let session = try currentSession(request) {
            guard ConstantTime.equals(csrf, session.record.csrf) else { return sessionExpired() }
            visitor = Visitor(csrf: csrf, session: session)
        } else {
            guard let pre = preLoginCSRF(request), ConstantTime.equals(csrf, pre) else { return sessionExpired() }
            visitor = Visitor(csrf: csrf)
        }
        switch try all.single("step") {
        case "login":
            let username = (try? all.single("username")) ?? nil
            let password = (try? all.single("password")) ?? nil
            let user: User?
            do {
                user = try username.flatMap { name in
                    try password.flatMap { try passwords.verify(username: name, password: $0, address: request.remoteAddress) }
                }
            } catch is PasswordChecksBusy {
                // Nothing was tried: the same form stays valid for the next attempt.
                Log.warn("login_busy", ["client": client.id])
                return loginPage(authz, client, params, visitor: visitor, status: 503,
                                 error: "Too many sign-ins are being checked right now. Wait a moment and try again.",
                                 username: username, extraHeaders: [("Retry-After", "2")])
            }
            let attempt = passwords.takeAttempt()
            if let attempt { audit(attempt, client: client.id, via: "login_form") }
            guard let user else {
                if attempt == nil {
                    counter.count(.loginFailed)
                    Log.warn("login_failed", ["username": username ?? "", "address": request.remoteAddress, "client": client.id,
                                              "via": "login_form", "reason": "incomplete_form"])
                }
                // A new CSRF token after every failure: one fetched form is one try.
                guard let next = try rotated(visitor) else { return sessionExpired() }
                return loginPage(authz, client, params, visitor: next, status: 401, error: "Incorrect username or password.",
                                 username: username)
            }
            // Session fixation (CWE-384): the session row is born here, with a new id and
            // CSRF token; a pre-login session is replaced.
            guard let renewed = try newSession(userID: user.id, replacing: visitor.session?.idHash) else {
                return sessionExpired()
            }
            return try afterLogin(authz, client, params, session: renewed.session, userID: user.id,
                                  extraHeaders: [("Set-Cookie", renewed.cookie)], viaPost: true)
        case "consent":
            let loginAfter = ((try? params.single(App.loginAfterField)) ?? nil).flatMap { Int64($0) }
            guard let session = visitor.session, let userID = authenticatedUser(session),
                (session.record.authenticatedAt ?? .min) >= (loginAfter ?? .min)
            else {
                return loginPage(authz, client, params, visitor: visitor, error: nil, username: nil)
            }
            // One submission per form, even when two arrive at once.
            guard try store.rotateCSRF(idHash: session.idHash, from: csrf, to: SecureRandom.token()) else {
                return sessionExpired()
            }
            guard (try? all.single("decision")) == "allow" else {
                Log.info("consent_denied", ["username": try store.user(id: userID)?.username ?? "", "client": client.id,
                                            "scope": Scope.string(authz.scope)])
                let denied = OAuthError.accessDenied("the resource owner denied the request")
                return .redirect(AuthorizationEndpoint.errorLocation(authz.redirectURI, error: denied, state: authz.state,
                                                                     issuer: config.issuer), status: 303)
            }
            try store.saveConsent(userID: userID, clientID: client.id, scope: authz.scope, now: now)
            Log.info("consent_granted", ["username": try store.user(id: userID)?.username ?? "", "client": client.id,
                                         "scope": Scope.string(authz.scope)])
            return try issueCode(authz, userID: userID, authTime: session.record.authenticatedAt, status: 303, extraHeaders: [])
        default:
            return pages.errorPage(status: 400, title: "Bad request", message: "Unknown form step.")
        }
    }

    /// §4.1.2: a random code, stored only as its hash, bound to client, redirect URI,
    /// scope, user and PKCE challenge. 302 after GET, 303 after POST (RFC 9700 §4.12).
    /// `authTime` (the session's login) and the request's `nonce` are kept with the code
    /// for its ID Token.
    private func issueCode(_ authz: AuthorizationRequest, userID: Int64, authTime: Int64?, status: Int,
                           extraHeaders: [(String, String)]) throws -> HTTPResponse {
        let code = SecureRandom.token()
        try store.insertCode(hash: key.hash(code), AuthorizationCodeRecord(
            clientID: authz.clientID, userID: userID, username: "", scope: authz.scope, redirectURI: authz.redirectURIParameter,
            codeChallenge: authz.codeChallenge, codeChallengeMethod: authz.codeChallengeMethod,
            expiresAt: now + config.codeLifetime, nonce: authz.nonce, authTime: authTime))
        return .redirect(AuthorizationEndpoint.successLocation(authz, code: code, issuer: config.issuer), status: status,
                         headers: extraHeaders)
    }

    private func loginPage(_ authz: AuthorizationRequest, _ client: Client, _ params: Parameters, visitor: Visitor,
                           status: Int = 200, error: String?, username: String?,
                           extraHeaders: [(String, String)] = []) -> HTTPResponse {
        var context: [String: Any] = [
            "client_name": client.name, "csrf": visitor.csrf, "action": formAction,
            "authz": seal(params, csrf: visitor.csrf), "issuer_host": host(of: config.issuer),
        ]
        if let error { context["error"] = error }
        if let username { context["username"] = username }
        let cookie = visitor.cookie.map { [("Set-Cookie", $0)] } ?? []
        return pages.render(pages.login, context, status: status, formTarget: authz.redirectURI,
                            extraHeaders: cookie + extraHeaders)
    }

    // MARK: - the pending request, sealed into the form

    private var formAction: String { config.issuer + "/authorize" }

    /// The authorization parameters carried through the forms. `prompt=login` and
    /// `max_age` were honoured by showing the login page and must not force it again;
    /// `prompt=consent` still has to reach the consent step after a login.
    private func carried(_ params: Parameters) -> Parameters {
        Parameters(params.pairs.compactMap { pair in
            if pair.name == "max_age" { return nil }
            guard pair.name == "prompt" else { return pair }
            let rest = pair.value.split(separator: " ").filter { $0 != "login" }.joined(separator: " ")
            return rest.isEmpty ? nil : (pair.name, rest)
        })
    }

    /// The pending authorization request, sealed into the login and consent forms.
    func seal(_ params: Parameters, csrf: String) -> String { seal(carried(params), purpose: "authz", csrf: csrf) }

    func unseal(_ sealed: String, csrf: String) -> Parameters? { unseal(sealed, purpose: "authz", csrf: csrf) }

    /// `payload.mac`: parameters (base64url, so the page never holds them raw) and an HMAC
    /// under the server key binding them to one form's purpose and CSRF token.
    func seal(_ params: Parameters, purpose: String, csrf: String) -> String {
        let payload = Base64URL.encode(Array(params.encoded().utf8))
        return payload + "." + Base64URL.encode(key.hash(purpose + "\n" + csrf + "\n" + payload))
    }

    /// The parameters of a sealed form field, or nil when it was not sealed for `purpose` and `csrf`.
    func unseal(_ sealed: String, purpose: String, csrf: String) -> Parameters? {
        guard let dot = sealed.utf8.lastIndex(of: UInt8(ascii: ".")) else { return nil }
        let payload = String(sealed[..<dot])
        let mac = String(sealed[sealed.index(after: dot)...])
        guard ConstantTime.equals(mac, Base64URL.encode(key.hash(purpose + "\n" + csrf + "\n" + payload))),
            let bytes = Base64URL.decode(payload), let text = String(validating: bytes, as: UTF8.self)
        else { return nil }
        return try? Parameters.parse(text)
    }

    /// The parameters of a browser page request (/authorize, /logout): the query of a GET,
    /// the form of a POST. Anything else ends the request with an error page.
    func pageParameters(_ request: HTTPRequest) throws -> Parameters {
        let raw: String
        switch request.method {
        case "GET": raw = request.query
        case "POST":
            guard request.mediaType == "application/x-www-form-urlencoded", let body = String(validating: request.body, as: UTF8.self)
            else { throw EarlyResponse(pages.errorPage(status: 400, title: "Bad request", message: "The form could not be read.")) }
            raw = body
        default:
            throw EarlyResponse(pages.errorPage(status: 405, title: "Method not allowed", message: "Use GET or POST."))
        }
        do { return try Parameters.parse(raw) } catch {
            throw EarlyResponse(pages.errorPage(status: 400, title: "Bad request", message: "The request is malformed."))
        }
    }

    func host(of uri: String) -> String {
        guard let origin = Pages.cspSource(uri), let r = origin.range(of: "://") else { return uri }
        return String(origin[r.upperBound...])
    }

    // MARK: - before login: a signed cookie, no row

    /// The pre-login cookie's value is `p.<expires>.<nonce>`; the form's CSRF token is its
    /// HMAC under the server key (a signed double-submit cookie). A cross-site page can
    /// neither read the cookie nor compute the token; `__Host-` stops a sibling domain from
    /// planting one.
    private func preLoginToken(_ value: String) -> String { Base64URL.encode(key.hash("login-csrf\n" + value)) }

    /// The CSRF token of a pre-login cookie in `request` that lives at least `margin` more seconds.
    private func preLoginCSRF(_ request: HTTPRequest, margin: Int64 = 0) -> String? {
        guard let value = request.cookie(App.sessionCookie), value.utf8.count <= 96, value.hasPrefix("p.") else { return nil }
        let parts = value.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let expires = Int64(parts[1]), now + margin < expires else { return nil }
        return preLoginToken(value)
    }

    /// The visitor of a login page shown before login: its pre-login cookie while it has
    /// half its life left (two tabs share it), or a new one (a form shown now must not
    /// expire before a person fills it in).
    private func preLoginVisitor(_ request: HTTPRequest) -> Visitor {
        if let csrf = preLoginCSRF(request, margin: config.sessionIdleTimeout / 2) { return Visitor(csrf: csrf) }
        return newPreLoginVisitor()
    }

    private func newPreLoginVisitor() -> Visitor {
        let lifetime = config.sessionIdleTimeout
        let value = "p.\(now + lifetime).\(SecureRandom.token())"
        return Visitor(csrf: preLoginToken(value),
                       cookie: "\(App.sessionCookie)=\(value); Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=\(lifetime)")
    }

    /// The same visitor with a new CSRF token (after a failed login); nil when a concurrent
    /// request already used the stored session's token.
    private func rotated(_ visitor: Visitor) throws -> Visitor? {
        guard let session = visitor.session else { return newPreLoginVisitor() }
        let next = SecureRandom.token()
        guard try store.rotateCSRF(idHash: session.idHash, from: visitor.csrf, to: next) else { return nil }
        var record = session.record
        record.csrf = next
        return Visitor(csrf: next, session: Session(idHash: session.idHash, record: record))
    }

    // MARK: - sessions (after login)

    /// The live session named by the cookie, with idle and absolute timeouts applied.
    func currentSession(_ request: HTTPRequest) throws -> Session? {
        guard let id = request.cookie(App.sessionCookie), !id.isEmpty, id.utf8.count <= 64, !id.hasPrefix("p.") else {
            return nil
        }
        let hash = key.hash(id)
        guard let record = try store.session(idHash: hash) else { return nil }
        let now = self.now
        guard now - record.lastSeenAt < config.sessionIdleTimeout else { return nil }
        if now - record.lastSeenAt > 60 { try store.touchSession(idHash: hash, now: now) }
        return Session(idHash: hash, record: record)
    }

    private func authenticatedUser(_ session: Session) -> Int64? {
        guard let user = session.record.userID, let at = session.record.authenticatedAt,
            now - at < config.sessionAbsoluteTimeout
        else { return nil }
        return user
    }

    private func sessionExpired() -> HTTPResponse {
        pages.errorPage(status: 403, title: "Session expired",
                        message: "Your session expired or the form was not sent from this site. Go back to the application and try again.")
    }

    private func formChanged() -> HTTPResponse {
        pages.errorPage(status: 403, title: "Session expired",
                        message: "This form no longer matches the request. Go back to the application and try again.")
    }

    /// A new logged-in session (and cookie); nil when `old` was already replaced by a
    /// concurrent request.
    private func newSession(userID: Int64, replacing old: [UInt8]?) throws -> (session: Session, cookie: String)? {
        let id = SecureRandom.token()
        let csrf = SecureRandom.token()
        let hash = key.hash(id)
        let now = self.now
        guard try store.replaceSession(oldIDHash: old, newIDHash: hash, csrf: csrf, userID: userID, now: now) else { return nil }
        let record = SessionRecord(csrf: csrf, userID: userID, authenticatedAt: now, createdAt: now, lastSeenAt: now)
        let cookie = "\(App.sessionCookie)=\(id); Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=\(config.sessionAbsoluteTimeout)"
        return (Session(idHash: hash, record: record), cookie)
    }
}
