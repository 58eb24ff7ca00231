/// RFC 6750 §2.1 Authorization Request Header Field.
public enum BearerToken {
    public enum Parsed: Equatable, Sendable {
        case missing
        case malformed
        case token(String)
    }

    /// `credentials = "Bearer" 1*SP b64token`, scheme case-insensitive;
    /// `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
    public static func parse(_ header: String?) -> Parsed {
        guard let header, !header.isEmpty else { return .missing }
        let utf8 = Array(header.utf8)
        guard utf8.count > 7, String(decoding: utf8[0..<6], as: UTF8.self).lowercased() == "bearer", utf8[6] == 0x20
        else { return .malformed }
        var i = 7
        while i < utf8.count, utf8[i] == 0x20 { i += 1 }
        let token = utf8[i...]
        guard !token.isEmpty else { return .malformed }
        var seenPadding = false
        var body = 0
        for c in token {
            if c == UInt8(ascii: "=") { seenPadding = true; continue }
            if seenPadding { return .malformed }
            let ok = (0x41...0x5A).contains(c) || (0x61...0x7A).contains(c) || (0x30...0x39).contains(c)
                || c == 0x2D || c == 0x2E || c == 0x5F || c == 0x7E || c == 0x2B || c == 0x2F
            guard ok else { return .malformed }
            body += 1
        }
        guard body > 0 else { return .malformed }
        return .token(String(decoding: token, as: UTF8.self))
    }

    /// RFC 6750 §3: the `WWW-Authenticate` value of a refused request; no error code when
    /// the request carried no credentials (§3.1).
    public static func challenge(error: String?, description: String? = nil, scope: String? = nil) -> String {
        var value = "Bearer realm=\"gatehouse\""
        if let error { value += ", error=\"\(error)\"" }
        if let description { value += ", error_description=\"\(description)\"" }
        if let scope { value += ", scope=\"\(scope)\"" }
        return value
    }
}
