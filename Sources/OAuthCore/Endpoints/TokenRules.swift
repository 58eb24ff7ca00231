/// The protocol rules of the token endpoint, as pure functions over stored values.
public enum TokenRules {
    /// RFC 6749 §3.2: "The client MUST use the HTTP POST method", and the body is
    /// `application/x-www-form-urlencoded` (§4.1.3). Answers the body parameters.
    public static func formBody(_ request: HTTPRequest) throws(OAuthError) -> Parameters {
        guard request.method == "POST" else { throw .invalidRequest("the token endpoint accepts only POST") }
        guard request.mediaType == "application/x-www-form-urlencoded" else {
            throw .invalidRequest("the body must be application/x-www-form-urlencoded")
        }
        // §2.3.1: credentials "MUST NOT be included in the request URI".
        if let query = try? Parameters.parse(request.query), query.contains("client_secret") {
            throw .invalidRequest("client credentials must not be sent in the query string")
        }
        guard let body = String(validating: request.body, as: UTF8.self) else { throw .invalidRequest("the body is not UTF-8") }
        do {
            return try Parameters.parse(body)
        } catch {
            throw .invalidRequest("malformed form body")
        }
    }

    /// The grant type, checked against the client's registration (§5.2 unauthorized_client).
    public static func grantType(_ params: Parameters, client: Client) throws(OAuthError) -> GrantType {
        guard let raw = try params.single("grant_type") else { throw .invalidRequest("missing grant_type") }
        guard let grant = GrantType(rawValue: raw) else { throw .unsupportedGrantType("grant_type '\(raw)' is not supported") }
        guard client.allows(grant) else { throw .unauthorizedClient("the client may not use the \(raw) grant") }
        // §4.4: client credentials are for confidential clients only.
        if grant == .clientCredentials && client.isPublic {
            throw .unauthorizedClient("public clients cannot use client_credentials")
        }
        return grant
    }

    /// RFC 6749 §4.1.3 and RFC 7636 §4.6 for a stored authorization code.
    public static func checkCode(_ code: AuthorizationCodeRecord, client: Client, redirectURI: String?, codeVerifier: String?,
                                 now: Int64) throws(OAuthError) {
        // "ensure that the authorization code was issued to the authenticated confidential
        // client, or if the client is public, ensure that the code was issued to client_id"
        guard code.clientID.sameBytes(as: client.id) else { throw .invalidGrant("the code was issued to another client") }
        guard now < code.expiresAt else { throw .invalidGrant("the code has expired") }
        guard !code.userDisabled else { throw .invalidGrant("the resource owner's account is disabled") }
        // "ensure that the redirect_uri parameter is present if the redirect_uri parameter
        // was included in the initial authorization request ... and if included ensure that
        // their values are identical."
        if let original = code.redirectURI {
            guard let redirectURI else { throw .invalidGrant("redirect_uri is required: it was sent to /authorize") }
            guard redirectURI.sameBytes(as: original) else { throw .invalidGrant("redirect_uri does not match the authorization request") }
        } else if let redirectURI, !RedirectURI.matches(redirectURI, registered: client.redirectURIs) {
            throw .invalidGrant("redirect_uri is not registered for this client")
        }
        try PKCE.check(verifier: codeVerifier, challenge: code.codeChallenge, method: code.codeChallengeMethod)
    }
}
