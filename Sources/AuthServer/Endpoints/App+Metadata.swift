import OAuthCore

extension App {
    // MARK: - /.well-known/oauth-authorization-server (RFC 8414) and
    // /.well-known/openid-configuration (OpenID Connect Discovery 1.0 §3): one document.

    func metadata(_ request: HTTPRequest) -> HTTPResponse {
        let scopes = ((try? store.clients()) ?? []).flatMap(\.allowedScopes)
        var unique: [String] = []
        for s in scopes where !unique.contains(s) { unique.append(s) }
        var o = JSONObject()
        let base = config.issuer
        o["issuer"] = base
        o["authorization_endpoint"] = base + "/authorize"
        o["token_endpoint"] = base + "/token"
        o["revocation_endpoint"] = base + "/revoke"
        o["introspection_endpoint"] = base + "/introspect"
        o["jwks_uri"] = base + "/jwks"
        o["userinfo_endpoint"] = base + "/userinfo"
        o["end_session_endpoint"] = base + "/logout"
        o.set("scopes_supported", .strings(unique))
        o.set("response_types_supported", .strings(["code"]))
        o.set("response_modes_supported", .strings(["query"]))
        o.set("grant_types_supported", .strings(tokenEndpoint.grantTypes.map(\.rawValue)))
        o.set("token_endpoint_auth_methods_supported", .strings(["client_secret_basic", "client_secret_post", "none"]))
        o.set("revocation_endpoint_auth_methods_supported", .strings(["client_secret_basic", "client_secret_post", "none"]))
        o.set("introspection_endpoint_auth_methods_supported", .strings(["client_secret_basic", "client_secret_post"]))
        o.set("code_challenge_methods_supported", .strings(["S256", "plain"]))
        o.set("authorization_response_iss_parameter_supported", true)
        o.set("subject_types_supported", .strings(["public"]))
        o.set("id_token_signing_alg_values_supported", .strings(SigningAlgorithm.allCases.map(\.rawValue)))
        o.set("claims_supported", .strings(ScopeClaims.supported))
        o.set("prompt_values_supported", .strings(["none", "login", "consent"]))
        // A public document: any page may read it (RFC 8414 clients can run in browsers).
        return .json(200, o.serialized(), headers: [("Cache-Control", "public, max-age=300"),
                                                   ("Access-Control-Allow-Origin", "*")])
    }
}

extension App {
    // MARK: - /jwks (RFC 7517 §5)

    /// Public keys only. Relying parties may cache it for five minutes: a rotated key is
    /// published at once and signs after `--publish-ahead` (README, Signing keys).
    func jwks() throws -> HTTPResponse {
        .json(200, try keys.jwks(),
              headers: [("Cache-Control", "public, max-age=300"), ("Access-Control-Allow-Origin", "*")])
    }
}
