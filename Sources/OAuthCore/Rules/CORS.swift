/// Cross-origin access for browser applications (single-page apps with PKCE) to `/token` and
/// `/revoke`. A client's allowed origins are the origins of its registered redirect URIs
/// (as Keycloak's "+" web origin): no second list to keep in sync, and an origin that may
/// receive the code may also redeem it. Nothing is allowed for the `null` origin.
public enum CORS {
    /// The origin of an absolute URI as browsers serialize it in `Origin`: lower-case scheme
    /// and host, the port only when it is not the scheme's default.
    public static func origin(of uri: String) -> String? {
        guard let p = RedirectURI.split(uri), !p.authority.contains("@"), !p.host.isEmpty else { return nil }
        let scheme = p.scheme.lowercased()
        let host = p.host.lowercased()
        var port = String(p.authority.dropFirst(p.host.count))
        if (scheme == "https" && port == ":443") || (scheme == "http" && port == ":80") { port = "" }
        return "\(scheme)://\(host)\(port)"
    }

    /// True when a page at `origin` may read this client's responses.
    public static func allows(_ origin: String, client: Client) -> Bool {
        client.redirectURIs.contains { Self.origin(of: $0) == origin }
    }

    /// Headers on an answer to a page at `origin` (`Vary` so caches keep origins apart).
    public static func responseHeaders(origin: String) -> [(String, String)] {
        [("Access-Control-Allow-Origin", origin), ("Vary", "Origin")]
    }

    /// Headers on a preflight (`OPTIONS`) answer for an allowed origin: POST with the two
    /// headers a token request needs, cached by the browser for ten minutes.
    public static func preflightHeaders(origin: String) -> [(String, String)] {
        responseHeaders(origin: origin) + [
            ("Access-Control-Allow-Methods", "POST"),
            ("Access-Control-Allow-Headers", "Authorization, Content-Type"),
            ("Access-Control-Max-Age", "600"),
        ]
    }
}
