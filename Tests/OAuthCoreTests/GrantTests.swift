import Foundation
import MemoryStore
import OAuthCore
import OAuthCrypto
import Testing

/// The grants over the in-memory store, with a clock the test moves and tokens counted
/// out in order ("t1", "t2", …): expiry and grace are tested without sleeping.
final class GrantBench: @unchecked Sendable {
    var now: Int64 = 1_000
    var counter = 0
    var events: [GrantEvent] = []
    let store = MemoryStore()
    private var endpoint: TokenEndpoint?
    let lifetimes = TokenLifetimes(access: 3600, refreshIdle: 86_400, refreshAbsolute: 30 * 86_400, refreshGrace: 10)
    let userID: Int64

    static let confidential = Client(id: "app", name: "App", secretHash: [1], redirectURIs: ["https://app.example/cb"],
                                     grantTypes: [.authorizationCode, .refreshToken, .clientCredentials, .password],
                                     allowedScopes: ["read", "write"], defaultScopes: ["read"])
    static let other = Client(id: "other", name: "Other", secretHash: [2], redirectURIs: ["https://other.example/cb"],
                              grantTypes: [.authorizationCode, .refreshToken], allowedScopes: ["read"], defaultScopes: ["read"])

    init(passwords: any PasswordVerifier = NoPasswords()) throws {
        _ = try store.insertClient(Self.confidential, now: 0)
        _ = try store.insertClient(Self.other, now: 0)
        userID = try #require(try store.insertUser(username: "alice", passwordHash: "-", now: 0))
        let context = GrantContext(store: store, clock: Clock { [unowned self] in self.now },
                               tokens: TokenMint(generate: { [unowned self] in self.counter += 1; return "t\(self.counter)" },
                                                 hash: { Digest.sha256($0) }),
                               lifetimes: lifetimes, report: { [unowned self] in self.events.append($0) })
        endpoint = TokenEndpoint(grants: [AuthorizationCodeGrant(context), RefreshTokenGrant(context),
                                                 ClientCredentialsGrant(context), PasswordGrant(context, passwords: passwords)])
    }

    /// POSTs `form` to /token as `client` (already authenticated).
    func token(_ form: [(String, String)], as client: Client = confidential) throws -> IssuedTokens {
        try endpoint!.issue(TokenRequest(params: Parameters(form), client: client, remoteAddress: "192.0.2.1"))
    }

    /// A code as /authorize stores it, for `client`, valid 60 s from now.
    func code(_ value: String, for client: Client = confidential, redirectURI: String? = "https://app.example/cb",
              challenge: String? = nil) throws {
        try store.insertCode(hash: Digest.sha256(value), AuthorizationCodeRecord(
            clientID: client.id, userID: userID, username: "", scope: ["read"], redirectURI: redirectURI,
            codeChallenge: challenge, codeChallengeMethod: challenge == nil ? nil : .s256, expiresAt: now + 60))
    }

    func lookup(_ token: String) throws -> TokenLookup? { try store.token(hash: Digest.sha256(token)) }

    func exchange(_ code: String, as client: Client = confidential) throws -> IssuedTokens {
        try token([("grant_type", "authorization_code"), ("code", code), ("redirect_uri", "https://app.example/cb")], as: client)
    }

    func refresh(_ token: String, scope: String? = nil, as client: Client = confidential) throws -> IssuedTokens {
        var form = [("grant_type", "refresh_token"), ("refresh_token", token)]
        if let scope { form.append(("scope", scope)) }
        return try self.token(form, as: client)
    }
}

struct NoPasswords: PasswordVerifier {
    func verify(username: String, password: String, address: String) throws -> User? { nil }
}

func expectInvalidGrant(_ body: () throws -> IssuedTokens, sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        let tokens = try body()
        Issue.record("issued \(tokens.accessToken)", sourceLocation: sourceLocation)
    } catch let e as OAuthError {
        #expect(e.code == .invalidGrant, "\(e)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("\(error)", sourceLocation: sourceLocation)
    }
}

@Suite("Grants (RFC 6749 §4, §6; RFC 9700 §4.14) over the memory store, fixed clock")
struct GrantTests {
    @Test("RFC 6749 §4.1.3: a code becomes an access and a refresh token, scope as granted")
    func rfc6749_4_1_3_exchange() throws {
        let bench = try GrantBench()
        try bench.code("c")
        let issued = try bench.exchange("c")
        #expect(issued.accessToken == "t1" && issued.refreshToken == "t2" && issued.scope == ["read"] && issued.expiresIn == 3600)
        #expect(try bench.lookup("t1")?.record.isActive(at: bench.now) == true)
        #expect(try bench.lookup("t1")?.record.expiresAt == bench.now + 3600)
    }

    @Test("RFC 6749 §4.1.3: a code issued to another client is refused and stays redeemable by its own")
    func rfc6749_4_1_3_other_client() throws {
        let bench = try GrantBench()
        try bench.code("c")
        expectInvalidGrant { try bench.exchange("c", as: GrantBench.other) }
        #expect(try bench.exchange("c").accessToken.hasPrefix("t"))
    }

    @Test("RFC 6749 §4.1.2: a code expires (no sleep: the clock moves)")
    func rfc6749_4_1_2_code_expiry() throws {
        let bench = try GrantBench()
        try bench.code("c")
        bench.now += 60
        expectInvalidGrant { try bench.exchange("c") }
    }

    @Test("RFC 6749 §4.1.2: a second use is refused and revokes the tokens issued from the code")
    func rfc6749_4_1_2_replay_revokes() throws {
        let bench = try GrantBench()
        try bench.code("c")
        let first = try bench.exchange("c")
        expectInvalidGrant { try bench.exchange("c") }
        #expect(try bench.lookup(first.accessToken)?.record.revoked == true)
        #expect(try bench.lookup(first.refreshToken!)?.record.revoked == true)
        #expect(bench.events == [.codeReplayed(clientID: "app")])
    }

    @Test("RFC 7636 §4.6: a wrong verifier is refused and the code stays unused")
    func rfc7636_4_6_verifier() throws {
        let bench = try GrantBench()
        let verifier = String(repeating: "v", count: 43)
        let challenge = Base64URL.encode(Digest.sha256(verifier))
        try bench.code("c", challenge: challenge)
        let base = [("grant_type", "authorization_code"), ("code", "c"), ("redirect_uri", "https://app.example/cb")]
        expectInvalidGrant { try bench.token(base + [("code_verifier", String(repeating: "w", count: 43))]) }
        #expect(try bench.token(base + [("code_verifier", verifier)]).scope == ["read"])
    }

    @Test("RFC 9700 §4.14.2: a rotated refresh token presented again revokes the whole family")
    func rfc9700_4_14_2_reuse() throws {
        let bench = try GrantBench()
        try bench.code("c")
        let first = try bench.exchange("c")
        bench.now += 100
        let second = try bench.refresh(first.refreshToken!)
        #expect(second.refreshToken != first.refreshToken)
        bench.now += 100  // past the 10 s grace window
        expectInvalidGrant { try bench.refresh(first.refreshToken!) }
        #expect(bench.events == [.refreshTokenReused(clientID: "app")])
        for t in [second.accessToken, second.refreshToken!] { #expect(try bench.lookup(t)?.record.revoked == true) }
    }

    @Test("RFC 9700 §4.14.2 grace: one retry of the previous token inside the window keeps the family alive")
    func rfc9700_4_14_2_grace() throws {
        let bench = try GrantBench()
        try bench.code("c")
        let first = try bench.exchange("c")
        let second = try bench.refresh(first.refreshToken!)
        bench.now += 10
        let retry = try bench.refresh(first.refreshToken!)
        #expect(try bench.lookup(second.refreshToken!)?.record.isActive(at: bench.now) == true)
        #expect(try bench.lookup(retry.refreshToken!)?.record.isActive(at: bench.now) == true)
        expectInvalidGrant { try bench.refresh(first.refreshToken!) }  // a second retry is reuse
        #expect(try bench.lookup(retry.refreshToken!)?.record.revoked == true)
    }

    @Test("RFC 6749 §6 and §10.4: another client's refresh token is refused and revokes nothing")
    func rfc6749_10_4_other_client() throws {
        let bench = try GrantBench()
        try bench.code("c")
        let first = try bench.exchange("c")
        expectInvalidGrant { try bench.refresh(first.refreshToken!, as: GrantBench.other) }
        #expect(try bench.lookup(first.accessToken)?.record.revoked == false)
        #expect(bench.events.isEmpty)
    }

    @Test("RFC 6749 §6: narrowing is allowed, widening is invalid_scope and writes nothing")
    func rfc6749_6_narrow() throws {
        let bench = try GrantBench()
        try bench.store.issue(NewGrant(clientID: "app", userID: bench.userID, scope: ["read", "write"],
                                       tokens: NewTokens(accessHash: Digest.sha256("a0"), accessExpiresAt: bench.now + 10,
                                                         refreshHash: Digest.sha256("r0"), refreshExpiresAt: bench.now + 100,
                                                         familyExpiresAt: bench.now + 1000), now: bench.now))
        do {
            _ = try bench.refresh("r0", scope: "read admin")
            Issue.record("widened")
        } catch let e as OAuthError {
            #expect(e.code == .invalidScope)
        }
        #expect(try bench.lookup("r0")?.record.rotatedAt == nil)
        #expect(try bench.refresh("r0", scope: "read").scope == ["read"])
    }

    @Test("refresh tokens expire when idle and at the end of the chain, whichever is first")
    func refreshExpiry() throws {
        let bench = try GrantBench()
        try bench.code("c")
        let first = try bench.exchange("c")
        bench.now += 86_400  // idle lifetime
        expectInvalidGrant { try bench.refresh(first.refreshToken!) }
        // A chain refreshed daily still ends 30 days after it started.
        let bench2 = try GrantBench()
        try bench2.code("c")
        let start = bench2.now
        var current = try bench2.exchange("c").refreshToken!
        while bench2.now + 86_000 < start + 30 * 86_400 {
            bench2.now += 86_000
            current = try bench2.refresh(current).refreshToken!
        }
        #expect(try bench2.lookup(current)?.record.expiresAt == start + 30 * 86_400)
        bench2.now = start + 30 * 86_400
        expectInvalidGrant { try bench2.refresh(current) }
    }

    @Test("RFC 6749 §4.4.3: client credentials get an access token and no refresh token, alone in its grant")
    func rfc6749_4_4_3_no_refresh() throws {
        let bench = try GrantBench()
        let issued = try bench.token([("grant_type", "client_credentials"), ("scope", "write")])
        #expect(issued.refreshToken == nil && issued.scope == ["write"])
        #expect(try bench.lookup(issued.accessToken)?.record.familyID == 0)
        #expect(bench.store.rowCount("families") == 0)
    }

    @Test("RFC 6749 §4.3.2: the password grant answers invalid_grant on a refused password and 503 when hashing is busy")
    func rfc6749_4_3_2_password() throws {
        struct Busy: PasswordVerifier {
            func verify(username: String, password: String, address: String) throws -> User? { throw PasswordChecksBusy() }
        }
        struct Alice: PasswordVerifier {
            let id: Int64
            func verify(username: String, password: String, address: String) throws -> User? {
                username == "alice" && password == "right" ? User(id: id, username: "alice", passwordHash: "-", disabled: false) : nil
            }
        }
        let form = [("grant_type", "password"), ("username", "alice"), ("password", "wrong")]
        expectInvalidGrant { try GrantBench().token(form) }
        do {
            _ = try GrantBench(passwords: Busy()).token(form)
            Issue.record("issued while busy")
        } catch let e as OAuthError {
            #expect(e.code == .temporarilyUnavailable)
        }
        let bench = try GrantBench()
        let ok = try GrantBench(passwords: Alice(id: bench.userID)).token(
            [("grant_type", "password"), ("username", "alice"), ("password", "right")])
        #expect(ok.refreshToken != nil && ok.scope == ["read"])
    }

    @Test("RFC 6749 §5.2: a grant type left out of the endpoint's list is unsupported_grant_type")
    func rfc6749_5_2_unlisted_grant() throws {
        let context = GrantContext(store: MemoryStore(), clock: .fixed(0), tokens: TokenMint(generate: { "x" }, hash: { Digest.sha256($0) }),
                                   lifetimes: TokenLifetimes(access: 1, refreshIdle: 1, refreshAbsolute: 1, refreshGrace: 0))
        let endpoint = TokenEndpoint(grants: [ClientCredentialsGrant(context)])
        #expect(endpoint.grantTypes == [.clientCredentials])
        do {
            _ = try endpoint.issue(TokenRequest(params: Parameters([("grant_type", "password")]), client: GrantBench.confidential,
                                                remoteAddress: ""))
            Issue.record("issued")
        } catch let e as OAuthError {
            #expect(e.code == .unsupportedGrantType)
        }
    }
}
