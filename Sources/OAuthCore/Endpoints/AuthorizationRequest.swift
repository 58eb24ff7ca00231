/// A validated RFC 6749 §4.1.1 authorization request: safe to redirect to `redirectURI`.
public struct AuthorizationRequest: Sendable, Equatable {
    public var clientID: String
    /// Where the response goes: the parameter, or the only registered URI when omitted.
    public var redirectURI: String
    /// The parameter as sent; nil when omitted (§4.1.3 then does not require it at /token).
    public var redirectURIParameter: String?
    public var scope: [String]
    public var state: String?
    public var codeChallenge: String?
    public var codeChallengeMethod: PKCE.Method?
    /// `prompt` values: `login` forces a new login, `consent` asks consent again, `none`
    /// answers without showing any page (OpenID Connect Core §3.1.2.1).
    public var prompt: Set<String>
    /// OpenID Connect: echoed in the ID Token; a login older than `maxAge` seconds asks
    /// for the password again; `loginHint` prefills the username.
    public var nonce: String? = nil
    public var maxAge: Int64? = nil
    public var loginHint: String? = nil

    /// The request asks for an ID Token.
    public var isOpenID: Bool { scope.contains("openid") }
}

/// The outcome of validating an authorization request. The type decides about
/// redirecting: an unknown client or unregistered redirect URI is only ever displayed
/// (§4.1.2.1 "MUST NOT automatically redirect the user-agent to the invalid redirection URI").
public enum AuthorizationValidation: Sendable, Equatable {
    case display(message: String)
    case redirectError(redirectURI: String, error: OAuthError, state: String?)
    case valid(AuthorizationRequest)
}

public enum AuthorizationEndpoint {
    /// The longest `state` echoed in a redirect. With the registered URI (at most
    /// `RedirectURI.maxLength`) and percent-encoding, every Location fits nginx's
    /// `fastcgi_buffer_size` in the shipped include.
    public static let maxStateBytes = 2048
    static let singleValued = ["response_type", "client_id", "redirect_uri", "scope", "state", "code_challenge",
                               "code_challenge_method", "prompt", "response_mode", "nonce", "max_age", "login_hint"]
    /// Bounds on what is stored with a code or shown in a page.
    public static let maxNonceBytes = 512
    public static let maxLoginHintBytes = 256

    /// Validates `params` for `client` (looked up by the caller from `client_id`).
    public static func validate(_ params: Parameters, client: Client?) -> AuthorizationValidation {
        // 1. Client and redirect URI, whose errors are displayed, never redirected.
        guard !params.isRepeated("client_id"), let clientID = try? params.single("client_id") else {
            return .display(message: "The request is missing a valid client_id.")
        }
        guard let client, client.id.sameBytes(as: clientID) else {
            return .display(message: "The client is not registered with this server.")
        }
        if params.isRepeated("redirect_uri") { return .display(message: "The redirect_uri parameter was given more than once.") }
        let redirectParam = try? params.single("redirect_uri")
        let redirectURI: String
        if let redirectParam {
            guard RedirectURI.matches(redirectParam, registered: client.redirectURIs) else {
                return .display(message: "The redirect_uri is not registered for this client.")
            }
            redirectURI = redirectParam
        } else {
            // OpenID Connect Core §3.1.2.1: redirect_uri is REQUIRED in an OpenID request.
            let requested = ((try? params.single("scope")) ?? nil)?.split(separator: " ") ?? []
            if requested.contains("openid") {
                return .display(message: "An OpenID Connect request must include its redirect_uri.")
            }
            // §3.1.2.3: may be omitted only when exactly one URI is registered.
            guard client.redirectURIs.count == 1 else {
                return .display(message: "The request must include a redirect_uri: this client has several.")
            }
            redirectURI = client.redirectURIs[0]
        }

        // 2. Everything else redirects with an error, echoing state: unless state is too
        // long to travel in a Location header, which is shown here instead.
        let state = params.isRepeated("state") ? nil : (try? params.single("state")) ?? nil
        if let state, state.utf8.count > maxStateBytes {
            return .display(message: "The state parameter is longer than \(maxStateBytes) bytes.")
        }
        func fail(_ e: OAuthError) -> AuthorizationValidation { .redirectError(redirectURI: redirectURI, error: e, state: state) }

        for name in singleValued where params.isRepeated(name) {
            return fail(.invalidRequest("parameter '\(name)' included more than once"))
        }
        do {
            guard let responseType = try params.single("response_type") else {
                return fail(.invalidRequest("missing response_type"))
            }
            guard responseType == "code" else {
                return fail(.init(.unsupportedResponseType, "only response_type=code is supported"))
            }
            guard client.allows(.authorizationCode) else {
                return fail(.unauthorizedClient("the client may not use the authorization code grant"))
            }
            let scope = try Scope.resolve(requested: try params.single("scope"), allowed: client.allowedScopes,
                                          defaults: client.defaultScopes)
            let pkce = try PKCE.parseChallenge(challenge: try params.single("code_challenge"),
                                               method: try params.single("code_challenge_method"))
            if pkce == nil && client.mustUsePKCE {
                return fail(.invalidRequest("code_challenge required (PKCE) for this client"))
            }
            let prompt = Set((try params.single("prompt") ?? "").split(separator: " ").map(String.init))
            // OpenID Connect Core §3.1.2.1: "none" with any other value is an error.
            if prompt.contains("none") && prompt.count > 1 {
                return fail(.invalidRequest("prompt=none cannot be combined with other values"))
            }
            let nonce = try params.single("nonce")
            if let nonce, nonce.utf8.count > maxNonceBytes {
                return fail(.invalidRequest("nonce is longer than \(maxNonceBytes) bytes"))
            }
            var maxAge: Int64? = nil
            if let raw = try params.single("max_age") {
                guard let seconds = Int64(raw), seconds >= 0, raw.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else {
                    return fail(.invalidRequest("max_age must be a non-negative number of seconds"))
                }
                maxAge = seconds
            }
            let loginHint = try params.single("login_hint").flatMap { $0.utf8.count <= maxLoginHintBytes ? $0 : nil }
            return .valid(AuthorizationRequest(
                clientID: client.id, redirectURI: redirectURI, redirectURIParameter: redirectParam, scope: scope,
                state: state, codeChallenge: pkce?.0, codeChallengeMethod: pkce?.1, prompt: prompt, nonce: nonce,
                maxAge: maxAge, loginHint: loginHint))
        } catch {
            return fail(error)
        }
    }

    /// The success redirect (§4.1.2, RFC 9207 `iss`).
    public static func successLocation(_ request: AuthorizationRequest, code: String, issuer: String) -> String {
        var p = Parameters()
        p.append("code", code)
        if let state = request.state { p.append("state", state) }
        p.append("iss", issuer)
        return RedirectURI.appending(p, to: request.redirectURI)
    }

    /// The error redirect (§4.1.2.1, RFC 9207 `iss`).
    public static func errorLocation(_ redirectURI: String, error: OAuthError, state: String?, issuer: String) -> String {
        var p = Parameters()
        p.append("error", error.code.rawValue)
        p.append("error_description", error.description)
        if let state { p.append("state", state) }
        p.append("iss", issuer)
        return RedirectURI.appending(p, to: redirectURI)
    }
}
