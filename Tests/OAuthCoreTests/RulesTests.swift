import Testing
@testable import OAuthCore

@Suite("RFC 7636 PKCE")
struct PKCETests {
    @Test("Appendix B: S256 of the example verifier gives the example challenge")
    func appendixB() {
        #expect(PKCE.verify(verifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
                            challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", method: .s256))
    }

    @Test("§4.1: verifier length 43...128 of unreserved characters", arguments: [
        (String(repeating: "f", count: 42), false), (String(repeating: "f", count: 43), true),
        (String(repeating: "f", count: 128), true), (String(repeating: "f", count: 129), false),
        (String(repeating: "f", count: 42) + "&", false), (String(repeating: "a", count: 40) + "-._~", true),
    ])
    func syntax(_ value: String, _ ok: Bool) { #expect(PKCE.isWellFormed(value) == ok) }

    @Test("§4.6: a code issued with a challenge needs the verifier")
    func missingVerifier() {
        #expect(throws: OAuthError.invalidGrant("code_verifier required")) {
            try PKCE.check(verifier: nil, challenge: String(repeating: "a", count: 43), method: .s256)
        }
    }

    @Test("RFC 9700 §2.1.1: a verifier for a code issued without a challenge is refused (downgrade)")
    func downgrade() {
        #expect(throws: OAuthError.self) { try PKCE.check(verifier: String(repeating: "a", count: 43), challenge: nil, method: nil) }
    }

    @Test("§4.3: unknown method and method without challenge are invalid_request")
    func challengeParsing() {
        #expect(throws: OAuthError.self) { try PKCE.parseChallenge(challenge: String(repeating: "a", count: 43), method: "S512") }
        #expect(throws: OAuthError.self) { try PKCE.parseChallenge(challenge: nil, method: "S256") }
        #expect(throws: OAuthError.self) { try PKCE.parseChallenge(challenge: "short", method: "S256") }
    }
}

@Suite("Redirect URI registration and matching (RFC 6749 §3.1.2, RFC 9700 §2.1, RFC 8252 §7.3)")
struct RedirectURITests {
    static let registered = ["https://client.example.com/cb", "http://127.0.0.1/native", "https://c.example/cb?x=1"]

    @Test("exact match only", arguments: [
        ("https://client.example.com/cb", true),
        ("https://client.example.com/cb/", false),
        ("https://CLIENT.example.com/cb", false),
        ("HTTPS://client.example.com/cb", false),
        ("https://client.example.com/cb?foo=bar", false),
        ("https://client.example.com:443/cb", false),
        ("https://client.example.com@evil.example/cb", false),
        ("https://client.example.com/cb/../evil", false),
        ("http://client.example.com/cb", false),
        ("https://c.example/cb?x=1", true),
    ])
    func exact(_ uri: String, _ ok: Bool) { #expect(RedirectURI.matches(uri, registered: Self.registered) == ok) }

    @Test("RFC 8252 §7.3: loopback http matches any port, nothing else", arguments: [
        ("http://127.0.0.1:51234/native", true),
        ("http://127.0.0.1/native", true),
        ("http://127.0.0.1:51234/other", false),
        ("http://127.0.0.1:51234/native?x=1", false),
        ("http://localhost:51234/native", false),
        ("http://127.0.0.1:80@evil.example/native", false),
        ("http://127.0.0.1:abc/native", false),
    ])
    func loopback(_ uri: String, _ ok: Bool) { #expect(RedirectURI.matches(uri, registered: Self.registered) == ok) }

    @Test("registration refuses what RFC 6749 §3.1.2 and RFC 9700 §2.6 forbid", arguments: [
        "https://a.example/cb#frag", "/relative", "javascript:alert(1)", "JavaScript://x", "data:text/html,x",
        "file:///etc/passwd", "http://a.example/cb", "http://localhost/cb", "https://u@a.example/cb",
        "https://a.example/cb?code=1", "https://a.example/c b",
    ])
    func refused(_ uri: String) { #expect(RedirectURI.registrationProblem(uri) != nil) }

    @Test("registration accepts https and loopback literals", arguments: [
        "https://a.example/cb", "http://127.0.0.1/cb", "http://[::1]:8080/cb", "https://a.example/cb?tenant=1",
    ])
    func accepted(_ uri: String) { #expect(RedirectURI.registrationProblem(uri) == nil) }

    @Test("§3.1.2: response parameters are appended, the URI's own query retained")
    func appending() {
        var p = Parameters()
        p.append("code", "abc")
        p.append("state", "s t")
        #expect(RedirectURI.appending(p, to: "https://c.example/cb?x=1") == "https://c.example/cb?x=1&code=abc&state=s%20t")
    }
}

@Suite("RFC 6749 §3.3 scope")
struct ScopeTests {
    @Test("omitted scope means the client's default")
    func defaults() throws {
        #expect(try Scope.resolve(requested: nil, allowed: ["PRODUCTION", "SANDBOX"], defaults: ["PRODUCTION"]) == ["PRODUCTION"])
    }

    @Test("a scope outside the allowed set is invalid_scope")
    func subset() {
        #expect(throws: OAuthError.self) { try Scope.resolve(requested: "ADMIN", allowed: ["PRODUCTION"], defaults: []) }
    }

    @Test("scope-token characters are checked; repeats collapse")
    func syntax() throws {
        #expect(throws: OAuthError.self) { try Scope.parse("a\"b") }
        #expect(try Scope.parse("a  b a") == ["a", "b"])
    }

    @Test("§6: a refresh may narrow the scope, never widen it")
    func narrow() throws {
        #expect(try Scope.narrow(requested: "a", granted: ["a", "b"]) == ["a"])
        #expect(throws: OAuthError.self) { try Scope.narrow(requested: "a c", granted: ["a", "b"]) }
    }
}

@Suite("RFC 6750 §2.1 Authorization header")
struct BearerTokenTests {
    @Test("parses", arguments: [
        ("Bearer abc.DEF-_~+/=", BearerToken.Parsed.token("abc.DEF-_~+/=")),
        ("bearer abc", .token("abc")),
        ("BEARER abc==", .token("abc==")),
        ("", .missing),
        ("Bearer", .malformed),
        ("Bearer ", .malformed),
        ("Bearer a b", .malformed),
        ("Bearer a=b", .malformed),
        ("Basic abc", .malformed),
        ("Bearer \"abc\"", .malformed),
    ])
    func parse(_ header: String, _ expected: BearerToken.Parsed) { #expect(BearerToken.parse(header) == expected) }
}

@Suite("RFC 6749 §2.3.1 client authentication")
struct ClientAuthenticationTests {
    func basic(_ id: String, _ secret: String) -> String {
        "Basic " + OAuthCryptoBridge.base64("\(Parameters.encode(id)):\(Parameters.encode(secret))")
    }

    @Test("Basic credentials are form-urlencoded before base64")
    func encoded() throws {
        let c = try ClientCredentials.extract(authorization: basic("a:b", "p%&"), body: Parameters())
        #expect(c == .basic(id: "a:b", secret: "p%&"))
    }

    @Test("§2.3: more than one method is invalid_request")
    func twoMethods() throws {
        let body = try Parameters.parse("client_secret=x")
        #expect(throws: ClientAuthenticationError.self) { try ClientCredentials.extract(authorization: basic("a", "b"), body: body) }
    }

    @Test("a body client_id that differs from Basic is refused (GHSA-7984-qgvg-3j9c)")
    func mismatch() throws {
        let body = try Parameters.parse("client_id=other")
        #expect(throws: ClientAuthenticationError.self) { try ClientCredentials.extract(authorization: basic("a", "b"), body: body) }
    }

    @Test("no credentials at all is invalid_client")
    func none() {
        #expect(throws: ClientAuthenticationError.self) { try ClientCredentials.extract(authorization: nil, body: Parameters()) }
    }

    @Test("malformed Basic is invalid_client with the Basic flag (401 + WWW-Authenticate)")
    func malformed() {
        do {
            _ = try ClientCredentials.extract(authorization: "Basic !!!", body: Parameters())
            Issue.record("expected an error")
        } catch {
            #expect(error.challenge && error.error.code == .invalidClient)
            #expect(error.response().status == 401)
            #expect(error.response().header("WWW-Authenticate") != nil)
        }
    }

    @Test("§5.2: a failed client_secret_post is 400 without a challenge")
    func postFailureIs400() {
        let r = ClientAuthenticationError(.invalidClient(), challenge: false).response()
        #expect(r.status == 400 && r.header("WWW-Authenticate") == nil)
    }

    @Test("a confidential client cannot authenticate with its id alone; a wrong secret fails")
    func authenticate() throws {
        let client = Client(id: "c", name: "C", secretHash: Array("s".utf8), redirectURIs: [], grantTypes: [],
                            allowedScopes: ["A"], defaultScopes: ["A"])
        #expect(throws: ClientAuthenticationError.self) { try ClientCredentials.none(id: "c").authenticate(client, now: 0) { Array($0.utf8) } }
        #expect(throws: ClientAuthenticationError.self) {
            try ClientCredentials.post(id: "c", secret: "x").authenticate(client, now: 0) { Array($0.utf8) }
        }
        #expect(try ClientCredentials.post(id: "c", secret: "s").authenticate(client, now: 0) { Array($0.utf8) } == client)
    }

    @Test("§2.3.1 with a rotation overlap: the previous secret works until its expiry, not after")
    func previousSecretOverlap() throws {
        var client = Client(id: "c", name: "C", secretHash: Array("new".utf8), redirectURIs: [], grantTypes: [],
                            allowedScopes: ["A"], defaultScopes: ["A"])
        client.previousSecretHash = Array("old".utf8)
        client.previousSecretExpiresAt = 100
        let hash = { (s: String) in Array(s.utf8) }
        #expect(try ClientCredentials.basic(id: "c", secret: "new").authenticate(client, now: 99, hashSecret: hash) == client)
        #expect(try ClientCredentials.basic(id: "c", secret: "old").authenticate(client, now: 99, hashSecret: hash) == client)
        #expect(throws: ClientAuthenticationError.self) {
            try ClientCredentials.basic(id: "c", secret: "old").authenticate(client, now: 100, hashSecret: hash)
        }
        #expect(throws: ClientAuthenticationError.self) {
            try ClientCredentials.basic(id: "c", secret: "other").authenticate(client, now: 99, hashSecret: hash)
        }
    }
}
