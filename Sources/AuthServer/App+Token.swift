import OAuthCore
import OAuthCrypto
import Logging

extension App {
    // MARK: - /token (RFC 6749 §3.2, §4.1.3, §4.3, §4.4, §6)

    func token(_ request: HTTPRequest) throws -> HTTPResponse {
        let (params, client) = try authenticatedForm(request)
        return try tokenEndpoint.issue(TokenRequest(params: params, client: client, remoteAddress: request.remoteAddress))
            .response()
    }

    // MARK: - /revoke (RFC 7009)

    func revoke(_ request: HTTPRequest) throws -> HTTPResponse {
        let (params, client) = try authenticatedForm(request)
        let token = try params.required("token")
        _ = try params.single("token_type_hint")  // §2.1: a hint only; we search both kinds anyway
        // §2.2: 200 whether or not the token existed, was valid, or belonged to this client.
        try Revocation.revoke(tokenHash: key.hash(token), by: client, in: store, now: now)
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
