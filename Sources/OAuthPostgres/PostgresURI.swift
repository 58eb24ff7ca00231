/// The `database` setting when it names PostgreSQL: a libpq connection URI
/// (https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNSTRING-URIS).
/// libpq parses it; Gatehouse only recognises it, keeps passwords out of it, and masks it.
public enum PostgresURI {
    /// `postgresql://…` or `postgres://…`, the two schemes libpq accepts.
    public static func isURI(_ s: String) -> Bool {
        s.hasPrefix("postgresql://") || s.hasPrefix("postgres://")
    }

    /// True when the URI carries a password (`user:secret@host` or `?password=`). Gatehouse
    /// refuses such a URI: the configuration and its log lines must not hold the secret, and
    /// libpq reads it from `~/.pgpass` or `PGPASSFILE` itself.
    public static func hasPassword(_ uri: String) -> Bool {
        let parts = split(uri)
        return parts.userinfo?.contains(":") == true || parts.query.contains { $0.key == "password" }
    }

    /// The URI with any password replaced by `***`, for log lines and messages.
    public static func masked(_ uri: String) -> String {
        guard isURI(uri) else { return uri }
        let parts = split(uri)
        var out = parts.scheme
        if let userinfo = parts.userinfo {
            let user = userinfo.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
            out += user[0] + (user.count > 1 ? ":***" : "") + "@"
        }
        out += parts.rest
        if !parts.query.isEmpty {
            out += "?" + parts.query.map { $0.key == "password" ? "password=***" : $0.raw }.joined(separator: "&")
        }
        return out
    }

    /// scheme (with `://`), userinfo (before the last `@` of the authority), the rest up to
    /// `?`, and the query parameters with their percent-decoded keys.
    private static func split(_ uri: String) -> (scheme: String, userinfo: String?, rest: String,
                                                  query: [(key: String, raw: String)]) {
        guard let schemeEnd = uri.range(of: "://") else { return ("", nil, uri, []) }
        let scheme = String(uri[..<schemeEnd.upperBound])
        var remainder = uri[schemeEnd.upperBound...]
        var query: [(key: String, raw: String)] = []
        if let q = remainder.firstIndex(of: "?") {
            query = remainder[remainder.index(after: q)...].split(separator: "&").map { pair in
                let key = pair.split(separator: "=", maxSplits: 1).first.map(String.init) ?? ""
                return (key: percentDecoded(key), raw: String(pair))
            }
            remainder = remainder[..<q]
        }
        let authorityEnd = remainder.firstIndex(of: "/") ?? remainder.endIndex
        if let at = remainder[..<authorityEnd].lastIndex(of: "@") {
            return (scheme, String(remainder[..<at]), String(remainder[remainder.index(after: at)...]), query)
        }
        return (scheme, nil, String(remainder), query)
    }

    private static func percentDecoded(_ s: String) -> String {
        var bytes: [UInt8] = []
        var utf8 = Array(s.utf8)[...]
        while let b = utf8.popFirst() {
            if b == UInt8(ascii: "%"), utf8.count >= 2, let v = UInt8(String(decoding: utf8.prefix(2), as: UTF8.self), radix: 16) {
                bytes.append(v)
                utf8 = utf8.dropFirst(2)
            } else {
                bytes.append(b)
            }
        }
        return String(decoding: bytes, as: UTF8.self).lowercased()
    }
}
