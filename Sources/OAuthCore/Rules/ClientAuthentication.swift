import OAuthCrypto

/// How a client presented itself at /token, /revoke or /introspect (RFC 6749 §2.3).
public enum ClientCredentials: Sendable, Equatable {
    /// `client_secret_basic`: id and secret from the Authorization header.
    case basic(id: String, secret: String)
    /// `client_secret_post`: id and secret in the body.
    case post(id: String, secret: String)
    /// A public client: `client_id` alone (§2.3, §3.2.1).
    case none(id: String)

    public var clientID: String {
        switch self {
        case .basic(let id, _), .post(let id, _), .none(let id): return id
        }
    }

    public var usedBasic: Bool { if case .basic = self { return true } else { return false } }

    /// Extracts the credentials from the Authorization header and body parameters.
    /// §2.3: "The client MUST NOT use more than one authentication method in each request."
    public static func extract(authorization: String?, body: Parameters) throws(ClientAuthenticationError) -> ClientCredentials {
        let bodyID: String?
        let bodySecret: String?
        do {
            bodyID = try body.single("client_id")
            bodySecret = try body.single("client_secret")
        } catch {
            throw .init(error, challenge: authorization != nil)
        }
        if let authorization, let basic = try parseBasic(authorization) {
            if bodySecret != nil {
                throw .init(.invalidRequest("more than one client authentication method"), challenge: true)
            }
            // OAuthLib GHSA-7984-qgvg-3j9c: authenticate as A, act as B.
            if let bodyID, bodyID != basic.id {
                throw .init(.invalidRequest("client_id does not match the authenticated client"), challenge: true)
            }
            return .basic(id: basic.id, secret: basic.secret)
        }
        // No credentials at all: 401 with a Basic challenge says how to authenticate.
        guard let bodyID else { throw .init(.invalidClient("client authentication required"), challenge: true) }
        if let bodySecret { return .post(id: bodyID, secret: bodySecret) }
        return .none(id: bodyID)
    }

    /// §2.3.1: `Basic base64(urlencode(id) ":" urlencode(secret))`. Returns nil when the
    /// header uses another scheme (e.g. Bearer), throws when Basic is malformed.
    static func parseBasic(_ header: String) throws(ClientAuthenticationError) -> (id: String, secret: String)? {
        let parts = header.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "basic" else { return nil }
        let malformed = ClientAuthenticationError(.invalidClient("malformed Basic credentials"), challenge: true)
        guard let decoded = Base64URL.decodeStandard(String(parts[1]).trimmingSpaces()),
            let colon = decoded.firstIndex(of: UInt8(ascii: ":"))
        else { throw malformed }
        do {
            let id = try Parameters.decode(decoded[..<colon])
            let secret = try Parameters.decode(decoded[(colon + 1)...])
            guard !id.isEmpty else { throw malformed }
            return (id, secret)
        } catch {
            throw malformed
        }
    }

    /// Checks the presented credentials against the registered client: its secret, or its
    /// previous secret while a rotation overlap lasts at `now`.
    /// `hashSecret` is the server's keyed hash (HMAC-SHA-256); comparisons are constant-time.
    public func authenticate(_ client: Client?, now: Int64, hashSecret: (String) -> [UInt8]) throws(ClientAuthenticationError)
        -> Client
    {
        let failure = ClientAuthenticationError(.invalidClient(), challenge: usedBasic)
        switch self {
        case .basic(_, let secret), .post(_, let secret):
            // Hash even when the client is unknown, so timing does not reveal which ids exist.
            let presented = hashSecret(secret)
            guard let client, let stored = client.secretHash else { throw failure }
            let current = ConstantTime.equals(presented, stored)
            let previous = client.previousSecret(at: now).map { ConstantTime.equals(presented, $0) } ?? false
            guard current || previous else { throw failure }
            return client
        case .none:
            guard let client, client.isPublic else { throw failure }
            return client
        }
    }
}

/// A client authentication failure. RFC 6749 §5.2: when the client used the Authorization
/// header (or sent no credentials at all) the answer is 401 with a `WWW-Authenticate`
/// challenge; a failed `client_secret_post` or public-client attempt is a 400.
public struct ClientAuthenticationError: Error, Sendable {
    public var error: OAuthError
    public var challenge: Bool
    public init(_ error: OAuthError, challenge: Bool) {
        self.error = error
        self.challenge = challenge
    }

    public func response(realm: String = "gatehouse") -> HTTPResponse {
        guard error.code == .invalidClient else { return .oauthError(error) }
        if challenge {
            return .oauthError(error, headers: [("WWW-Authenticate", "Basic realm=\"\(realm)\"")])
        }
        var response = HTTPResponse.oauthError(error)
        response.status = 400
        return response
    }
}
