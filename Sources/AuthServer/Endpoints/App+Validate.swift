import OAuthCore

extension App {
    // MARK: - token validation for nginx auth_request (RFC 6750)

    func validate(_ request: HTTPRequest) throws -> HTTPResponse {
        func deny(_ status: Int, _ error: String?, _ description: String? = nil, scope: String? = nil) -> HTTPResponse {
            let challenge = BearerToken.challenge(error: error, description: description, scope: scope)
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
        // The subject is the user's stable identifier, as /introspect's `sub` and the ID
        // Token's (the client itself for a client_credentials token); the username, which
        // an operator may change, travels beside it for display.
        return HTTPResponse(status: 200, headers: [
            ("X-Gatehouse-Subject", t.subject ?? t.clientID),
            ("X-Gatehouse-Username", t.username ?? ""),
            ("X-Gatehouse-Client", t.clientID),
            ("X-Gatehouse-Scope", Scope.string(t.scope)),
            ("X-Gatehouse-Status", "200"),
            ("Cache-Control", "no-store"),
        ])
    }
}
