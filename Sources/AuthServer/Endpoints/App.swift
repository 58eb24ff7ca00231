import OAuthCore
import OAuthCrypto
import Logging

/// One worker's application and its composition root: configuration, its own store
/// connection, the key, the pages, and the grants /token serves.
/// `handle` never throws: every error becomes an RFC error response or a 4xx/5xx page.
public final class App {
    public let config: ServerConfig
    public let store: any AuthorizationStore
    let key: SecretKey
    let pages: Pages
    let clock: Clock
    let passwords: PasswordChecker
    let keys: SigningKeyRing
    let tokenEndpoint: TokenEndpoint
    /// Set by the worker loop: the pool's scoreboard snapshot for /status.
    public var statusProvider: (() -> String)?
    /// Set by the worker loop: the Prometheus text for /metrics.
    public var metricsProvider: (() -> String)?
    /// Where security and token events are counted for /metrics (the worker points it at
    /// its scoreboard slot).
    public let counter = MetricCounter()
    /// Set by the worker loop: the host-wide bound on concurrent password hashing.
    public var passwordHashGate: PasswordHashGate {
        get { passwords.gate }
        set { passwords.gate = newValue }
    }

    public init(config: ServerConfig, store: any AuthorizationStore, key: SecretKey, pages: Pages, clock: Clock = .system) {
        self.config = config
        self.store = store
        self.key = key
        self.pages = pages
        self.clock = clock
        passwords = PasswordChecker(store: store, config: config, clock: clock, gate: UnboundedPasswordHashGate())
        let keys = SigningKeyRing(store: store, key: key, clock: clock, tokenLifetime: config.accessTokenLifetime)
        self.keys = keys
        let grants = GrantContext(store: store, clock: clock, tokens: TokenMint(generate: { SecureRandom.token() }, hash: key.hash),
                                  lifetimes: config.tokenLifetimes,
                                  openID: OpenIDSigning(issuer: config.issuer, signer: keys.signer(for:)),
                                  report: { [counter] event in App.report(event, counter) })
        // The grants /token serves: an explicit list, nothing registers itself.
        tokenEndpoint = TokenEndpoint(grants: [
            AuthorizationCodeGrant(grants),
            RefreshTokenGrant(grants),
            ClientCredentialsGrant(grants),
            PasswordGrant(grants, passwords: passwords),
        ])
    }

    static func report(_ event: GrantEvent, _ counter: MetricCounter) {
        switch event {
        case .codeReplayed(let client):
            Log.warn("code_replayed", ["client": client])
            counter.count(.codeReplayed)
        case .refreshTokenReused(let client):
            Log.warn("refresh_token_reused", ["client": client])
            counter.count(.refreshTokenReused)
        }
    }

    public enum Endpoint: String, CaseIterable {
        case authorize, token, revoke, introspect, metadata, validate, health, status, jwks, userinfo, logout, metrics
    }

    /// nginx names the endpoint in `GATEHOUSE_ENDPOINT` (one per location, so prefixes and
    /// WSO2's `/oauth2/*` aliases need no parsing here); otherwise the path's last part decides.
    static func endpoint(named: String?, path: String) -> Endpoint? {
        if let named, let e = Endpoint(rawValue: named) { return e }
        if path.hasSuffix("/.well-known/oauth-authorization-server") || path.hasSuffix("/.well-known/openid-configuration") {
            return .metadata
        }
        guard let last = path.split(separator: "/").last else { return nil }
        return Endpoint(rawValue: String(last))
    }

    public func handle(_ request: HTTPRequest, endpoint name: String? = nil) -> HTTPResponse {
        guard let endpoint = App.endpoint(named: name, path: request.path) else {
            return .json(404, #"{"error":"not_found"}"#)
        }
        // Browser applications call /token and /revoke across origins (CORS).
        guard endpoint == .token || endpoint == .revoke, let origin = request.header("origin") else {
            return dispatch(request, endpoint)
        }
        if request.method == "OPTIONS" { return preflight(origin: origin) }
        var response = dispatch(request, endpoint)
        if let client = claimedClient(request), CORS.allows(origin, client: client) {
            response.headers += CORS.responseHeaders(origin: origin)
        }
        return response
    }

    func dispatch(_ request: HTTPRequest, _ endpoint: Endpoint) -> HTTPResponse {
        do {
            switch endpoint {
            case .health: return .json(200, #"{"status":"ok"}"#, headers: [("Cache-Control", "no-store")])
            case .status: return .json(200, statusProvider?() ?? "{}", headers: [("Cache-Control", "no-store")])
            case .metrics:
                return HTTPResponse(status: 200, headers: [("Content-Type", Metrics.contentType), ("Cache-Control", "no-store")],
                                    body: Array((metricsProvider?() ?? "").utf8))
            case .metadata: return metadata(request)
            case .authorize: return try authorize(request)
            case .token: return try token(request)
            case .revoke: return try revoke(request)
            case .introspect: return try introspect(request)
            case .validate: return try validate(request)
            case .jwks: return try jwks()
            case .userinfo: return try userinfo(request)
            case .logout: return try logout(request)
            }
        } catch let early as EarlyResponse {
            return early.response
        } catch let e as StorageFailure where e.isTemporary {
            Log.warn(e.event, ["endpoint": endpoint.rawValue, "detail": e.description])
            counter.count(.databaseBusy)
            return failure(endpoint, .temporarilyUnavailable(e.description))
        } catch let e as OAuthError {
            return failure(endpoint, e)
        } catch {
            Log.error("request_failed", ["endpoint": endpoint.rawValue, "detail": "\(error)"])
            return failure(endpoint, .serverError("\(error)"))
        }
    }

    /// A CORS preflight carries no credentials, so it is answered for an origin that any
    /// client registered; the response to the request itself is opened only to the origins
    /// of the client that made it.
    func preflight(origin: String) -> HTTPResponse {
        let known = ((try? store.clients()) ?? []).contains { CORS.allows(origin, client: $0) }
        return HTTPResponse(status: 204, headers: known ? CORS.preflightHeaders(origin: origin) : [("Vary", "Origin")])
    }

    /// The registered client a token or revocation request names (authenticated or not: only
    /// its allowed origins are used, to let its own page read the answer, errors included).
    func claimedClient(_ request: HTTPRequest) -> Client? {
        guard let body = try? TokenRules.formBody(request),
            let credentials = try? ClientCredentials.extract(authorization: request.header("authorization"), body: body)
        else { return nil }
        return try? store.client(id: credentials.clientID)
    }

    /// Ends a request early with a finished response (e.g. a client authentication failure).
    struct EarlyResponse: Error {
        let response: HTTPResponse
        init(_ response: HTTPResponse) { self.response = response }
    }

    private func failure(_ endpoint: Endpoint, _ error: OAuthError) -> HTTPResponse {
        if let detail = error.logDetail, error.code == .serverError { Log.error("server_error", ["detail": detail]) }
        switch endpoint {
        case .authorize, .logout:
            let status = error.code == .temporarilyUnavailable ? 503 : error.code == .serverError ? 500 : 400
            return pages.errorPage(status: status, title: "Something went wrong", message: error.description)
        default:
            return .oauthError(error)
        }
    }

    /// The form body of /token, /revoke or /introspect and the client it authenticates.
    /// A failed authentication ends the request with its own response (401 +
    /// WWW-Authenticate after Basic, RFC 6749 §5.2).
    func authenticatedForm(_ request: HTTPRequest) throws -> (Parameters, Client) {
        let params = try TokenRules.formBody(request)
        do {
            let credentials = try ClientCredentials.extract(authorization: request.header("authorization"), body: params)
            let client = try store.client(id: credentials.clientID)
            return (params, try credentials.authenticate(client, now: now, hashSecret: key.hash))
        } catch let e as ClientAuthenticationError {
            throw EarlyResponse(e.response())
        }
    }

    var now: Int64 { clock.now() }
}
