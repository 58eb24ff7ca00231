import OAuthCore
import OAuthCrypto
import OAuthSQLite
import Prefork

extension App {
    static let sessionCookie = "__Host-gatehouse"
    /// Our own form fields, carried beside the authorization request's parameters.
    static let formFields: Set<String> = ["step", "csrf", "username", "password", "decision", "consent_binding"]

    struct Session {
        var idHash: [UInt8]
        var record: SessionRecord
    }

    // MARK: - /authorize (RFC 6749 §4.1.1, §4.1.2; RFC 9207)

    func authorize(_ request: HTTPRequest) throws -> HTTPResponse {
        let isPost = request.method == "POST"
        guard isPost || request.method == "GET" else {
            return pages.errorPage(status: 405, title: "Method not allowed", message: "Use GET or POST.")
        }
        let raw: String
        if isPost {
            guard request.mediaType == "application/x-www-form-urlencoded",
                let body = String(validating: request.body, as: UTF8.self)
            else { return pages.errorPage(status: 400, title: "Bad request", message: "The form could not be read.") }
            raw = body
        } else {
            raw = request.query
        }
        let all: Parameters
        do { all = try Parameters.parse(raw) } catch {
            return pages.errorPage(status: 400, title: "Bad request", message: "The request is malformed.")
        }
        let oauthParams = Parameters(all.pairs.filter { !App.formFields.contains($0.name) })
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
                let temporary = (error as? SQLiteError)?.isTemporary == true
                Log.warn((error as? SQLiteError)?.event ?? "server_error", ["endpoint": "authorize", "detail": "\(error)"])
                let e: OAuthError = temporary ? .temporarilyUnavailable("\(error)") : .serverError("\(error)")
                return .redirect(AuthorizationEndpoint.errorLocation(authz.redirectURI, error: e, state: authz.state,
                                                                     issuer: config.issuer))
            }
        }
    }

    /// GET: log in, ask consent, or answer at once when consent is remembered.
    private func show(_ request: HTTPRequest, _ authz: AuthorizationRequest, _ client: Client, _ params: Parameters) throws
        -> HTTPResponse
    {
        let session: Session
        var extra: [(String, String)] = []
        if let existing = try currentSession(request) {
            session = existing
        } else {
            guard let created = try newSession(userID: nil) else { return sessionExpired() }  // (nothing to replace)
            session = created.session
            extra = [("Set-Cookie", created.cookie)]
        }
        guard let userID = authenticatedUser(session), !authz.prompt.contains("login") else {
            return loginPage(authz, client, params, session: session, error: nil, username: nil, extraHeaders: extra)
        }
        return try afterLogin(authz, client, params, session: session, userID: userID, extraHeaders: extra, viaPost: false)
    }

    /// Consent is skipped only when remembered, not forced by prompt=consent, and never for
    /// public clients (RFC 8252 §8.6, RFC 6749 §10.2).
    private func afterLogin(_ authz: AuthorizationRequest, _ client: Client, _ params: Parameters, session: Session,
                            userID: Int64, extraHeaders: [(String, String)], viaPost: Bool) throws -> HTTPResponse {
        // Remembered consent, or a trusted first-party client; never for public clients (RFC
        // 8252 §8.6: another app can claim their id), and `prompt=consent` always asks.
        if !authz.prompt.contains("consent"), !client.isPublic,
            try client.skipConsent || store.hasConsent(userID: userID, clientID: client.id, scope: authz.scope) {
            return try issueCode(authz, userID: userID, status: viaPost ? 303 : 302, extraHeaders: extraHeaders)
        }
        let username = try store.user(id: userID)?.username ?? ""
        let binding = ["name": "consent_binding", "value": consentBinding(csrf: session.record.csrf, params)]
        return pages.render(pages.consent, [
            "client_name": client.name, "username": username, "csrf": session.record.csrf, "action": formAction,
            "params": hidden(params) + [binding], "scopes": authz.scope, "redirect_host": host(of: authz.redirectURI),
            "issuer_host": host(of: config.issuer),
        ], status: 200, formTarget: authz.redirectURI, extraHeaders: extraHeaders)
    }

    /// POST: the login or consent form. Requires the session cookie and its CSRF token
    /// (RFC 6749 §10.12); a missing or wrong token is a 403 page, never a redirect.
    private func submit(_ request: HTTPRequest, _ all: Parameters, _ authz: AuthorizationRequest, _ client: Client,
                        _ params: Parameters) throws -> HTTPResponse {
        guard let session = try currentSession(request), let csrf = try? all.single("csrf"),
            ConstantTime.equals(csrf, session.record.csrf)
        else { return sessionExpired() }
        switch try all.single("step") {
        case "login":
            let username = (try? all.single("username")) ?? nil
            let password = (try? all.single("password")) ?? nil
            guard let username, let password,
                let user = try checkPassword(username: username, password: password, address: request.remoteAddress)
            else {
                Log.info("login_failed", ["client": client.id])
                return loginPage(authz, client, params, session: session, error: "Incorrect username or password.",
                                 username: username, extraHeaders: [])
            }
            // Session fixation (CWE-384): a new id, a new CSRF token, the old row gone.
            guard let renewed = try newSession(userID: user.id, replacing: session.idHash) else { return sessionExpired() }
            Log.info("login_succeeded", ["client": client.id])
            return try afterLogin(authz, client, params, session: renewed.session, userID: user.id,
                                  extraHeaders: [("Set-Cookie", renewed.cookie)], viaPost: true)
        case "consent":
            guard let userID = authenticatedUser(session) else {
                return loginPage(authz, client, params, session: session, error: nil, username: nil, extraHeaders: [])
            }
            // The approval is bound to exactly the request the page showed (Hydra PR 770):
            // changing any parameter of the posted form voids it.
            guard let posted = try? all.single("consent_binding"),
                ConstantTime.equals(posted, consentBinding(csrf: session.record.csrf, params))
            else {
                return pages.errorPage(status: 403, title: "Session expired",
                                       message: "This consent form no longer matches the request. Go back to the application and try again.")
            }
            // One submission per form, even when two arrive at once.
            guard try store.rotateCSRF(idHash: session.idHash, from: session.record.csrf, to: SecureRandom.token()) else {
                return sessionExpired()
            }
            guard (try? all.single("decision")) == "allow" else {
                let denied = OAuthError.accessDenied("the resource owner denied the request")
                return .redirect(AuthorizationEndpoint.errorLocation(authz.redirectURI, error: denied, state: authz.state,
                                                                     issuer: config.issuer), status: 303)
            }
            try store.saveConsent(userID: userID, clientID: client.id, scope: authz.scope, now: now)
            return try issueCode(authz, userID: userID, status: 303, extraHeaders: [])
        default:
            return pages.errorPage(status: 400, title: "Bad request", message: "Unknown form step.")
        }
    }

    /// §4.1.2: a random code, stored only as its hash, bound to client, redirect URI,
    /// scope, user and PKCE challenge. 302 after GET, 303 after POST (RFC 9700 §4.12).
    private func issueCode(_ authz: AuthorizationRequest, userID: Int64, status: Int, extraHeaders: [(String, String)]) throws
        -> HTTPResponse
    {
        let code = SecureRandom.token()
        try store.insertCode(hash: key.hash(code), AuthorizationCodeRecord(
            clientID: authz.clientID, userID: userID, username: "", scope: authz.scope, redirectURI: authz.redirectURIParameter,
            codeChallenge: authz.codeChallenge, codeChallengeMethod: authz.codeChallengeMethod,
            expiresAt: now + config.codeLifetime))
        return .redirect(AuthorizationEndpoint.successLocation(authz, code: code, issuer: config.issuer), status: status,
                         headers: extraHeaders)
    }

    private func loginPage(_ authz: AuthorizationRequest, _ client: Client, _ params: Parameters, session: Session,
                           error: String?, username: String?, extraHeaders: [(String, String)]) -> HTTPResponse {
        var context: [String: Any] = [
            "client_name": client.name, "csrf": session.record.csrf, "action": formAction, "params": hidden(params),
            "issuer_host": host(of: config.issuer),
        ]
        if let error { context["error"] = error }
        if let username { context["username"] = username }
        return pages.render(pages.login, context, status: error == nil ? 200 : 401, formTarget: authz.redirectURI,
                            extraHeaders: extraHeaders)
    }

    // MARK: - sessions

    private var formAction: String { config.issuer + "/authorize" }

    /// The authorization parameters carried through the forms. `prompt` is dropped: it
    /// was honoured when the page was shown and must not force the step again.
    private func carried(_ params: Parameters) -> Parameters { Parameters(params.pairs.filter { $0.name != "prompt" }) }

    private func hidden(_ params: Parameters) -> [[String: String]] {
        carried(params).pairs.map { ["name": $0.name, "value": $0.value] }
    }

    /// HMAC over the session's CSRF token and the exact request shown on the consent page.
    private func consentBinding(csrf: String, _ params: Parameters) -> String {
        Base64URL.encode(key.hash(csrf + "\n" + carried(params).encoded()))
    }

    private func host(of uri: String) -> String {
        guard let origin = Pages.cspSource(uri), let r = origin.range(of: "://") else { return uri }
        return String(origin[r.upperBound...])
    }

    /// The live session named by the cookie, with idle and absolute timeouts applied.
    private func currentSession(_ request: HTTPRequest) throws -> Session? {
        guard let id = request.cookie(App.sessionCookie), !id.isEmpty, id.utf8.count <= 64 else { return nil }
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

    /// A new session (and cookie); nil when `old` was already replaced by a concurrent request.
    private func newSession(userID: Int64?, replacing old: [UInt8]? = nil) throws -> (session: Session, cookie: String)? {
        let id = SecureRandom.token()
        let csrf = SecureRandom.token()
        let hash = key.hash(id)
        let now = self.now
        if let userID {
            guard try store.replaceSession(oldIDHash: old, newIDHash: hash, csrf: csrf, userID: userID, now: now) else { return nil }
        } else {
            try store.createSession(idHash: hash, csrf: csrf, now: now)
        }
        let record = SessionRecord(csrf: csrf, userID: userID, authenticatedAt: userID == nil ? nil : now, createdAt: now,
                                   lastSeenAt: now)
        let cookie = "\(App.sessionCookie)=\(id); Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=\(config.sessionAbsoluteTimeout)"
        return (Session(idHash: hash, record: record), cookie)
    }
}
