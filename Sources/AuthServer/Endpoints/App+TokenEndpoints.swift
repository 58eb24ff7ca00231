import Logging
import OAuthCore

extension App {
    // MARK: - /token (RFC 6749 §3.2, §4.1.3, §4.3, §4.4, §6)

    func token(_ request: HTTPRequest) throws -> HTTPResponse {
        let (params, client) = try authenticatedForm(request)
        // The password grant checks a password: its outcome is audited like a form login.
        defer { if let attempt = passwords.takeAttempt() { audit(attempt, client: client.id, via: "password_grant") } }
        let issued = try tokenEndpoint.issue(TokenRequest(params: params, client: client, remoteAddress: request.remoteAddress))
        if let raw = try? params.single("grant_type"), let grant = GrantType(rawValue: raw) {
            counter.count(.tokensIssued(grant))
        }
        return issued.response()
    }

    // MARK: - /revoke (RFC 7009)

    func revoke(_ request: HTTPRequest) throws -> HTTPResponse {
        let (params, client) = try authenticatedForm(request)
        let token = try params.required("token")
        _ = try params.single("token_type_hint")  // §2.1: a hint only; we search both kinds anyway
        // §2.2: 200 whether or not the token existed, was valid, or belonged to this client.
        switch try Revocation.revoke(tokenHash: key.hash(token), by: client, in: store, now: now) {
        case .revoked(let found) where found.isActive(at: now):
            Log.info("token_revoked", ["client": client.id, "kind": found.kind.rawValue, "username": found.username ?? "-"])
        case .notOwned(let found) where found.isActive(at: now):
            Log.warn("token_revoke_refused", ["client": client.id, "owner": found.clientID, "kind": found.kind.rawValue])
        default:
            break
        }
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
        o["sub"] = t.subject ?? t.clientID
        o["token_type"] = t.kind == .access ? "Bearer" : "Refresh"
        o.set("exp", Int(t.expiresAt))
        o.set("iat", Int(t.issuedAt))
        o.set("nbf", Int(t.issuedAt))
        o["aud"] = t.clientID
        o["iss"] = config.issuer
        return .json(200, o.serialized(), headers: HTTPResponse.noStoreHeaders)
    }
}
