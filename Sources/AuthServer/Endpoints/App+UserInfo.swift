import OAuthCore

extension App {
    // MARK: - /userinfo (OpenID Connect Core §5.3, RFC 6750 errors)

    /// The claims of the token's scopes about the user it was issued for. GET or POST,
    /// the access token in the Authorization header (RFC 6750 §2.1) or, for POST, the form
    /// body (§2.2).
    func userinfo(_ request: HTTPRequest) throws -> HTTPResponse {
        func challenge(_ status: Int, _ error: String?, _ description: String? = nil) -> HTTPResponse {
            let value = BearerToken.challenge(error: error, description: description)
            var body = JSONObject()
            body["error"] = error
            body["error_description"] = description
            return .json(status, error == nil ? "{}" : body.serialized(),
                         headers: [("WWW-Authenticate", value), ("Cache-Control", "no-store")])
        }
        guard request.method == "GET" || request.method == "POST" else {
            return .json(405, #"{"error":"invalid_request","error_description":"use GET or POST"}"#, headers: [("Allow", "GET, POST")])
        }
        // The form body's access_token (§2.2), when a POST carries a form that has one (an
        // empty or unrelated form beside a header is fine).
        var inBody: String?
        if request.method == "POST", request.mediaType == "application/x-www-form-urlencoded",
            let body = String(validating: request.body, as: UTF8.self) {
            do {
                inBody = try Parameters.parse(body).single("access_token")  // throws when repeated
            } catch {
                return challenge(400, "invalid_request", "malformed form body")
            }
        }
        var token: String?
        switch BearerToken.parse(request.header("authorization")) {
        case .malformed: return challenge(400, "invalid_request", "malformed Authorization header")
        case .token(let t):
            // §3.1: a request that "uses more than one method for including an access token"
            // is invalid_request, whichever of them is valid.
            if inBody != nil { return challenge(400, "invalid_request", "the access token was sent more than once") }
            token = t
        case .missing: token = inBody
        }
        // §3.1 of RFC 6750: no credentials at all get a challenge without an error code.
        guard let token else { return challenge(401, nil) }
        guard let found = try store.token(hash: key.hash(token)), found.record.kind == .access, found.record.isActive(at: now),
            !found.userDisabled, let subject = found.record.subject, let username = found.record.username,
            let user = try store.user(named: username), user.subject == subject
        else { return challenge(401, "invalid_token", "the access token is invalid, expired or revoked") }
        guard found.record.scope.contains("openid") else {
            return challenge(403, "insufficient_scope", "the access token was not issued for openid")
        }
        return .json(200, ScopeClaims.claims(of: user, scope: found.record.scope).serialized(),
                     headers: [("Cache-Control", "no-store"), ("Pragma", "no-cache")])
    }
}
