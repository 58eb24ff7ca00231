/// Redirect URI registration and matching: RFC 6749 §3.1.2, RFC 9700 §2.1 (exact match),
/// RFC 8252 §7.3 (loopback port) and §8.3 (no `localhost`).
public enum RedirectURI {
    /// The longest redirect URI that can be registered (with `state`, every Location fits
    /// the include's `fastcgi_buffer_size`).
    public static let maxLength = 2048

    /// Why a URI cannot be registered, for the CLI's one-line error.
    public static func registrationProblem(_ uri: String) -> String? {
        if uri.utf8.count > maxLength { return "the redirect URI is longer than \(maxLength) characters" }
        guard let parts = split(uri) else { return "'\(uri)' is not an absolute URI" }
        if uri.contains("#") { return "'\(uri)' has a fragment (RFC 6749 §3.1.2)" }
        if uri.unicodeScalars.contains(where: { $0.value <= 0x20 || $0.value >= 0x7F }) {
            return "'\(uri)' contains spaces, control or non-ASCII characters"
        }
        if parts.authority.contains("@") { return "'\(uri)' contains userinfo" }
        if parts.host.isEmpty { return "'\(uri)' has no host" }
        switch parts.scheme {
        case "https": break
        case "http":
            guard isLoopbackLiteral(parts.host) else {
                return "'\(uri)': http is allowed only for the loopback literals 127.0.0.1 and [::1] (RFC 9700 §2.6)"
            }
        default: return "'\(uri)': only https (or http on 127.0.0.1 / [::1]) redirect URIs are allowed"
        }
        if parts.host.lowercased() == "localhost" { return "'\(uri)': use 127.0.0.1 or [::1], not localhost (RFC 8252 §8.3)" }
        if let q = parts.query, let params = try? Parameters.parse(q),
            params.pairs.contains(where: { ["code", "state", "iss", "error"].contains($0.name) }) {
            return "'\(uri)' already carries a code, state, iss or error parameter"
        }
        return nil
    }

    /// True when `requested` is one of `registered`: exact, byte for byte, except that a
    /// registered loopback `http` URI matches any port (RFC 8252 §7.3). Bytes, not Swift
    /// `==`, which is canonical equivalence: "e\u{301}" would equal "\u{E9}".
    public static func matches(_ requested: String, registered: [String]) -> Bool {
        for r in registered {
            if r.sameBytes(as: requested) { return true }
            if let a = loopbackWithoutPort(r), let b = loopbackWithoutPort(requested), a.sameBytes(as: b) {
                return true
            }
        }
        return false
    }

    /// Adds response parameters to a redirect URI, keeping its own query (§3.1.2 "MUST be retained").
    public static func appending(_ params: Parameters, to uri: String) -> String {
        let encoded = params.encoded()
        if encoded.isEmpty { return uri }
        return uri + (uri.contains("?") ? "&" : "?") + encoded
    }

    // MARK: - parsing

    struct Parts { var scheme: String; var authority: String; var host: String; var rest: Substring; var query: String? }

    static func split(_ uri: String) -> Parts? {
        guard let colon = uri.firstIndex(of: ":") else { return nil }
        let scheme = String(uri[..<colon])
        guard !scheme.isEmpty, scheme.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "+-.".contains($0)) })
        else { return nil }
        let afterScheme = uri[uri.index(after: colon)...]
        guard afterScheme.hasPrefix("//") else { return nil }
        let authStart = afterScheme.index(afterScheme.startIndex, offsetBy: 2)
        let authEnd = afterScheme[authStart...].firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? afterScheme.endIndex
        let authority = String(afterScheme[authStart..<authEnd])
        var host = authority
        if let at = host.lastIndex(of: "@") { host = String(host[host.index(after: at)...]) }
        if host.hasPrefix("[") {
            if let close = host.firstIndex(of: "]") { host = String(host[...close]) }
        } else if let c = host.lastIndex(of: ":") {
            host = String(host[..<c])
        }
        let rest = afterScheme[authEnd...]
        var query: String? = nil
        if let q = rest.firstIndex(of: "?") {
            let end = rest[q...].firstIndex(of: "#") ?? rest.endIndex
            query = String(rest[rest.index(after: q)..<end])
        }
        return Parts(scheme: scheme, authority: authority, host: host, rest: rest, query: query)
    }

    static func isLoopbackLiteral(_ host: String) -> Bool { host == "127.0.0.1" || host == "[::1]" }

    /// `http://127.0.0.1:PORT/rest` → `http://127.0.0.1/rest`; nil when not a loopback http URI.
    static func loopbackWithoutPort(_ uri: String) -> String? {
        guard let p = split(uri), p.scheme == "http", isLoopbackLiteral(p.host), !p.authority.contains("@") else { return nil }
        let portPart = p.authority.dropFirst(p.host.count)
        guard portPart.isEmpty || (portPart.first == ":" && portPart.dropFirst().allSatisfy(\.isASCII)
            && portPart.dropFirst().allSatisfy(\.isNumber)) else { return nil }
        return "http://\(p.host)\(p.rest)"
    }
}
