import Foundation
import Logging
import OAuthCore
import OAuthCrypto

extension App {
    // MARK: - /logout (OpenID Connect RP-Initiated Logout 1.0)

    /// With a valid `id_token_hint` for the signed-in user (or when nobody is signed in) the
    /// session ends at once, and the browser goes back to `post_logout_redirect_uri` when
    /// that URI is registered for the hint's client (§3), with `state`. Otherwise the user
    /// confirms in a form with a CSRF token (§2: the OP "SHOULD ask the End-User whether to
    /// log out"), so a page elsewhere cannot sign people out, and the URI is used only when
    /// `client_id` ties it to a client.
    func logout(_ request: HTTPRequest) throws -> HTTPResponse {
        let params = try pageParameters(request)
        let hint: String?, uri: String?, state: String?, clientID: String?
        do {
            (hint, uri) = (try params.single("id_token_hint"), try params.single("post_logout_redirect_uri"))
            (state, clientID) = (try params.single("state"), try params.single("client_id"))
        } catch {
            return pages.errorPage(status: 400, title: "Bad request", message: "The logout request is malformed.")
        }
        let session = try currentSession(request)

        // The confirmation form coming back.
        if request.method == "POST", let sealed = (try? params.single("logout")) ?? nil {
            guard let session else { return signedOut(cookie: nil) }
            if let csrf = (try? params.single("csrf")) ?? nil, ConstantTime.equals(csrf, session.record.csrf),
                let carried = unseal(sealed, purpose: "logout", csrf: csrf) {
                try store.deleteSession(idHash: session.idHash)
                Log.info("logout", ["confirmed": true])
                let client = ((try? carried.single("client_id")) ?? nil).flatMap { (try? store.client(id: $0)) ?? nil }
                return backToClient(client,
                                    uri: (try? carried.single("post_logout_redirect_uri")) ?? nil,
                                    state: (try? carried.single("state")) ?? nil, status: 303) ?? signedOut(cookie: App.clearedCookie)
            }
            // A stale form (from before a new login) or a forged one: the session goes on, so
            // the page below asks again rather than say "signed out".
        }

        // A hint counts when we signed it (any key /jwks still lists), for a client that is
        // still registered (a removed client's ID Tokens sign nobody out) and the client_id
        // sent with it, if any, is that client (§2: the OP MUST check they match).
        let verified = hint.flatMap { keys.verifiedClaims($0, issuer: config.issuer) }
        let hinted = verified.flatMap { claims -> (subject: String, client: Client)? in
            guard clientID.map({ claims.audience.sameBytes(as: $0) }) ?? true,
                let client = (try? store.client(id: claims.audience)) ?? nil
            else { return nil }
            return (claims.subject, client)
        }
        let sessionSubject = try session?.record.userID.flatMap { try store.user(id: $0)?.subject }
        if let hinted, session == nil || sessionSubject == hinted.subject {
            if let session { try store.deleteSession(idHash: session.idHash) }
            Log.info("logout", ["client": hinted.client.id])
            return backToClient(hinted.client, uri: uri, state: state, status: 302)
                ?? signedOut(cookie: App.clearedCookie)
        }
        guard let session else { return signedOut(cookie: nil) }
        var carried = Parameters()
        if let clientID = clientID ?? hinted?.client.id { carried.append("client_id", clientID) }
        if let uri { carried.append("post_logout_redirect_uri", uri) }
        if let state { carried.append("state", state) }
        let csrf = session.record.csrf
        return pages.render(pages.logout, [
            "title": "Sign out?", "message": "Do you want to sign out of \(host(of: config.issuer))?", "confirm": true,
            "csrf": csrf, "logout": seal(carried, purpose: "logout", csrf: csrf), "action": config.issuer + "/logout",
            "issuer_host": host(of: config.issuer),
        ], status: 200, formTarget: uri)
    }

    static let clearedCookie = "\(App.sessionCookie)=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0"

    /// A redirect to `uri` when it is registered, exactly, for `client`; nil otherwise.
    private func backToClient(_ client: Client?, uri: String?, state: String?, status: Int) -> HTTPResponse? {
        guard let client, let uri, client.postLogoutRedirectURIs.contains(where: { $0.sameBytes(as: uri) })
        else { return nil }
        var p = Parameters()
        if let state { p.append("state", state) }
        return .redirect(p.pairs.isEmpty ? uri : RedirectURI.appending(p, to: uri), status: status,
                         headers: [("Set-Cookie", App.clearedCookie)])
    }

    private func signedOut(cookie: String?) -> HTTPResponse {
        pages.render(pages.logout, ["title": "You are signed out", "message": "You can close this page.",
                                    "issuer_host": host(of: config.issuer)],
                     status: 200, formTarget: nil, extraHeaders: cookie.map { [("Set-Cookie", $0)] } ?? [])
    }
}

extension SigningKeyRing {
    /// Who an ID Token we signed names (`sub`) and for which client (`aud`), when its
    /// signature verifies under a published key and its `iss` is ours. Expiry is not
    /// checked: RP-Initiated Logout §2 accepts an expired hint.
    func verifiedClaims(_ token: String, issuer: String) -> (subject: String, audience: String)? {
        guard let (_, payload) = JWS.verified(token, verify: { header, input, signature in
            // typ JWT: an ID Token. An RFC 9068 access token (at+jwt) carries the same iss, sub
            // and aud, and whoever holds one (any API it was sent to) must not sign its user out.
            guard let h = try? JSONSerialization.jsonObject(with: Data(header.utf8)) as? [String: Any],
                h["typ"] as? String == "JWT", let kid = h["kid"] as? String, let key = try? publicKey(kid)
            else { return false }
            return key.verify(signature, of: input)
        }),
            let claims = try? JSONSerialization.jsonObject(with: Data(payload.utf8)) as? [String: Any],
            claims["iss"] as? String == issuer, let subject = claims["sub"] as? String
        else { return nil }
        let audience = (claims["aud"] as? String) ?? (claims["aud"] as? [String])?.first
        guard let audience else { return nil }
        return (subject, audience)
    }
}
