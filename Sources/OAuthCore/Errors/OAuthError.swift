/// An error returned to the client in the RFC 6749 §5.2 / §4.1.2.1 format.
/// `description` is sent; `logDetail` is logged and never sent.
public struct OAuthError: Error, Equatable, Sendable {
    public enum Code: String, Sendable {
        case invalidRequest = "invalid_request"
        case invalidClient = "invalid_client"
        case invalidGrant = "invalid_grant"
        case unauthorizedClient = "unauthorized_client"
        case unsupportedGrantType = "unsupported_grant_type"
        case invalidScope = "invalid_scope"
        case accessDenied = "access_denied"
        case unsupportedResponseType = "unsupported_response_type"
        case unsupportedTokenType = "unsupported_token_type"
        case serverError = "server_error"
        case temporarilyUnavailable = "temporarily_unavailable"
        case invalidToken = "invalid_token"
        case insufficientScope = "insufficient_scope"
        // OpenID Connect Core §3.1.2.6
        case loginRequired = "login_required"
        case consentRequired = "consent_required"
        case interactionRequired = "interaction_required"
    }

    public var code: Code
    public var description: String
    public var logDetail: String?

    public init(_ code: Code, _ description: String, logDetail: String? = nil) {
        self.code = code
        self.description = OAuthError.sanitize(description)
        self.logDetail = logDetail
    }

    public static func invalidRequest(_ d: String) -> OAuthError { .init(.invalidRequest, d) }
    public static func invalidClient(_ d: String = "client authentication failed") -> OAuthError { .init(.invalidClient, d) }
    public static func invalidGrant(_ d: String) -> OAuthError { .init(.invalidGrant, d) }
    public static func unauthorizedClient(_ d: String) -> OAuthError { .init(.unauthorizedClient, d) }
    public static func unsupportedGrantType(_ d: String) -> OAuthError { .init(.unsupportedGrantType, d) }
    public static func invalidScope(_ d: String) -> OAuthError { .init(.invalidScope, d) }
    public static func accessDenied(_ d: String) -> OAuthError { .init(.accessDenied, d) }
    public static func serverError(_ detail: String) -> OAuthError { .init(.serverError, "internal error", logDetail: detail) }
    public static func temporarilyUnavailable(_ detail: String) -> OAuthError {
        .init(.temporarilyUnavailable, "the server is busy, retry shortly", logDetail: detail)
    }

    /// HTTP status for the token-style JSON response (RFC 6749 §5.2).
    public var status: Int {
        switch code {
        case .invalidClient, .invalidToken: return 401
        case .insufficientScope: return 403
        case .serverError: return 500
        case .temporarilyUnavailable: return 503
        default: return 400
        }
    }

    /// RFC 6749 §5.2: error_description is limited to %x20-21 / %x23-5B / %x5D-7E.
    /// Anything else (quotes, backslashes, control characters, non-ASCII) becomes a space.
    static func sanitize(_ text: String) -> String {
        String(decoding: text.utf8.map { c in
            (c == 0x20 || c == 0x21 || (0x23...0x5B).contains(c) || (0x5D...0x7E).contains(c)) ? c : 0x20
        }, as: UTF8.self)
    }
}
