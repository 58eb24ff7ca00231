/// RFC 6749 §3.3 access token scope.
public enum Scope {
    /// Splits a space-delimited scope string into its tokens, in order, without repeats.
    /// Each token must be `1*( %x21 / %x23-5B / %x5D-7E )`.
    public static func parse(_ text: String) throws(OAuthError) -> [String] {
        var out: [String] = []
        for part in text.split(separator: " ", omittingEmptySubsequences: true) {
            guard part.utf8.allSatisfy({ $0 == 0x21 || (0x23...0x5B).contains($0) || (0x5D...0x7E).contains($0) })
            else { throw OAuthError.invalidScope("malformed scope") }
            let token = String(part)
            if !out.contains(token) { out.append(token) }
        }
        return out
    }

    /// The scope to grant for a request: the requested scope if it is a subset of what the
    /// client may have; the client's default when the request names none (§3.3 "MUST
    /// either process the request using a pre-defined default value or fail").
    public static func resolve(requested: String?, allowed: [String], defaults: [String]) throws(OAuthError) -> [String] {
        guard let requested else {
            if defaults.isEmpty { throw OAuthError.invalidScope("no scope requested and the client has no default") }
            return defaults
        }
        let scopes = try parse(requested)
        if scopes.isEmpty { return defaults }
        if scopes.contains(where: { !allowed.contains($0) }) {
            throw OAuthError.invalidScope("a requested scope is not allowed for this client")
        }
        return scopes
    }

    /// §6: a refresh may ask for a narrower scope, never a wider one.
    public static func narrow(requested: String?, granted: [String]) throws(OAuthError) -> [String] {
        guard let requested else { return granted }
        let scopes = try parse(requested)
        if scopes.isEmpty { return granted }
        if scopes.contains(where: { !granted.contains($0) }) {
            throw OAuthError.invalidScope("a requested scope exceeds the original grant")
        }
        return scopes
    }

    public static func string(_ scopes: [String]) -> String { scopes.joined(separator: " ") }
}
