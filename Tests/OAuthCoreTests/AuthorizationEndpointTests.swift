import Testing
@testable import OAuthCore

@Suite("RFC 6749 §4.1.1 / §4.1.2.1 authorization request validation")
struct AuthorizationEndpointTests {
    static let client = Client(id: "wU62DjlyDBnq87GlBwplfqvmAbAa", name: "App", secretHash: [1], redirectURIs: ["https://client.example.com/cb"],
                               grantTypes: [.authorizationCode, .refreshToken], allowedScopes: ["PRODUCTION", "SANDBOX"],
                               defaultScopes: ["PRODUCTION"])

    func validate(_ query: String, client: Client? = client) throws -> AuthorizationValidation {
        AuthorizationEndpoint.validate(try Parameters.parse(query), client: client)
    }

    @Test("the WSO2 seed request is valid; %2E decodes to '.' before the exact comparison")
    func seed() throws {
        let v = try validate("response_type=code&client_id=wU62DjlyDBnq87GlBwplfqvmAbAa&scope=PRODUCTION&redirect_uri=https%3A%2F%2Fclient%2Eexample%2Ecom%2Fcb")
        guard case .valid(let r) = v else { Issue.record("\(v)"); return }
        #expect(r.scope == ["PRODUCTION"])
        #expect(r.redirectURIParameter == "https://client.example.com/cb")
    }

    @Test("§4.1.2.1: unknown client is displayed, never redirected")
    func unknownClient() throws {
        guard case .display = try validate("response_type=code&client_id=nope", client: nil) else { Issue.record("redirected"); return }
    }

    @Test("§3.1.2.4: an unregistered redirect_uri is displayed, never redirected")
    func badRedirect() throws {
        guard case .display = try validate("response_type=code&client_id=wU62DjlyDBnq87GlBwplfqvmAbAa&redirect_uri=https://evil.example/cb")
        else { Issue.record("redirected"); return }
    }

    @Test("§3.1: a repeated redirect_uri or client_id is displayed")
    func repeatedTarget() throws {
        guard case .display = try validate("client_id=wU62DjlyDBnq87GlBwplfqvmAbAa&redirect_uri=https://client.example.com/cb&redirect_uri=https://client.example.com/cb")
        else { Issue.record("redirected"); return }
    }

    @Test("errors after validation redirect with error and state", arguments: [
        ("state=s", OAuthError.Code.invalidRequest),
        ("response_type=token&state=s", .unsupportedResponseType),
        ("response_type=code&scope=ADMIN&state=s", .invalidScope),
        ("response_type=code&response_type=code&state=s", .invalidRequest),
        ("response_type=code&code_challenge_method=S256&state=s", .invalidRequest),
    ])
    func redirected(_ query: String, _ code: OAuthError.Code) throws {
        let v = try validate("client_id=wU62DjlyDBnq87GlBwplfqvmAbAa&" + query)
        guard case .redirectError(let uri, let error, let state) = v else { Issue.record("\(v)"); return }
        #expect(uri == "https://client.example.com/cb")
        #expect(error.code == code)
        #expect(state == "s")
    }

    @Test("RFC 7636 §4.4.1: a public client must send code_challenge")
    func publicNeedsPKCE() throws {
        var c = Self.client
        c.secretHash = nil
        guard case .redirectError(_, let e, _) = try validate("response_type=code&client_id=wU62DjlyDBnq87GlBwplfqvmAbAa", client: c)
        else { Issue.record("accepted"); return }
        #expect(e.code == .invalidRequest)
    }

    @Test("RFC 9207: success and error responses carry iss; state is echoed exactly")
    func iss() throws {
        guard case .valid(let r) = try validate("response_type=code&client_id=wU62DjlyDBnq87GlBwplfqvmAbAa&state=a%20b%26c")
        else { Issue.record("invalid"); return }
        let location = AuthorizationEndpoint.successLocation(r, code: "C", issuer: "https://as.example")
        #expect(location == "https://client.example.com/cb?code=C&state=a%20b%26c&iss=https%3A%2F%2Fas.example")
    }

    @Test("§4.1.2.1: error_description uses only the allowed characters")
    func descriptionCharset() {
        let e = OAuthError(.invalidRequest, "bad \"quote\"\n\\ é")
        #expect(e.description.utf8.allSatisfy { $0 == 0x20 || $0 == 0x21 || (0x23...0x5B).contains($0) || (0x5D...0x7E).contains($0) })
    }
}

@Suite("RFC 6749 §4.1.3 token request rules")
struct TokenRulesTests {
    static let client = AuthorizationEndpointTests.client
    static let code = AuthorizationCodeRecord(clientID: client.id, userID: 1, username: "john@org", scope: ["PRODUCTION"],
                                              redirectURI: "https://client.example.com/cb", codeChallenge: nil,
                                              codeChallengeMethod: nil, expiresAt: 1000)

    @Test("a code issued to one client is refused to another")
    func otherClient() {
        var other = Self.client
        other.id = "other"
        #expect(throws: OAuthError.self) {
            try TokenRules.checkCode(Self.code, client: other, redirectURI: "https://client.example.com/cb", codeVerifier: nil, now: 10)
        }
    }

    @Test("redirect_uri must be identical when it was sent to /authorize")
    func redirect() {
        #expect(throws: OAuthError.self) {
            try TokenRules.checkCode(Self.code, client: Self.client, redirectURI: nil, codeVerifier: nil, now: 10)
        }
        #expect(throws: OAuthError.self) {
            try TokenRules.checkCode(Self.code, client: Self.client, redirectURI: "https://client.example.com/cb/", codeVerifier: nil, now: 10)
        }
    }

    @Test("an expired code is invalid_grant")
    func expired() {
        #expect(throws: OAuthError.self) {
            try TokenRules.checkCode(Self.code, client: Self.client, redirectURI: "https://client.example.com/cb", codeVerifier: nil, now: 1000)
        }
    }

    @Test("§3.2: only POST with a form body")
    func formOnly() {
        #expect(throws: OAuthError.self) { try TokenRules.formBody(HTTPRequest(method: "GET", path: "/token")) }
        #expect(throws: OAuthError.self) {
            try TokenRules.formBody(HTTPRequest(method: "POST", path: "/token", headers: ["content-type": "application/json"],
                                                body: Array("{}".utf8)))
        }
    }

    @Test("§5.2: unknown grant is unsupported_grant_type; unregistered is unauthorized_client")
    func grants() throws {
        #expect(throws: OAuthError.unsupportedGrantType("grant_type 'foo' is not supported")) {
            try TokenRules.grantType(try Parameters.parse("grant_type=foo"), client: Self.client)
        }
        #expect(throws: OAuthError.self) { try TokenRules.grantType(try Parameters.parse("grant_type=password"), client: Self.client) }
    }

    @Test("§5.1: token responses are not cacheable and have the WSO2 shape")
    func response() {
        let r = IssuedTokens(accessToken: "A", refreshToken: "R", scope: ["PRODUCTION"], expiresIn: 3600).response()
        #expect(r.header("Cache-Control") == "no-store")
        #expect(r.header("Pragma") == "no-cache")
        #expect(String(decoding: r.body, as: UTF8.self)
            == #"{"access_token":"A","refresh_token":"R","scope":"PRODUCTION","token_type":"Bearer","expires_in":3600}"#)
    }
}
