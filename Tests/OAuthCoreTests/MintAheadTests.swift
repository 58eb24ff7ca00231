import Foundation
import MemoryStore
import OAuthCore
import OAuthCrypto
import Testing

/// A grant store that knows when a grant's atomic step is running, to check what is signed
/// inside it; `stalePeek` makes its reads before the step answer something else.
final class WatchedGrantStore: GrantStore {
    let inner: MemoryStore
    private(set) var inStep = false
    var stalePeek: ((StoredCode) -> StoredCode)?

    init(_ inner: MemoryStore) { self.inner = inner }

    func insertCode(hash: [UInt8], _ code: AuthorizationCodeRecord) throws { try inner.insertCode(hash: hash, code) }
    func redeemCode(hash: [UInt8], now: Int64, decide: (StoredCode?) throws -> CodeVerdict) throws -> CodeVerdict {
        try inner.redeemCode(hash: hash, now: now) { stored in
            inStep = true
            defer { inStep = false }
            return try decide(stored)
        }
    }
    func rotateRefreshToken(hash: [UInt8], now: Int64, decide: (StoredRefreshToken?) throws -> RefreshVerdict) throws
        -> RefreshVerdict
    {
        try inner.rotateRefreshToken(hash: hash, now: now) { stored in
            inStep = true
            defer { inStep = false }
            return try decide(stored)
        }
    }
    func peekCode(hash: [UInt8]) throws -> StoredCode? {
        let code = try inner.peekCode(hash: hash)
        return code.map { stalePeek?($0) ?? $0 }
    }
    func peekRefreshToken(hash: [UInt8]) throws -> StoredRefreshToken? { try inner.peekRefreshToken(hash: hash) }
    func issue(_ grant: NewGrant) throws { try inner.issue(grant) }
    func token(hash: [UInt8]) throws -> TokenLookup? { try inner.token(hash: hash) }
    func revokeToken(hash: [UInt8], now: Int64) throws -> Bool { try inner.revokeToken(hash: hash, now: now) }
    func revokeFamily(_ id: Int64, now: Int64) throws { try inner.revokeFamily(id, now: now) }
    func revokeAll(clientID: String?, username: String?, now: Int64) throws -> Int {
        try inner.revokeAll(clientID: clientID, username: username, now: now)
    }
}

/// Records, for every signature, whether the store's atomic step was running.
final class StepWatchingSigner: JWSSigner {
    let key: SigningKey
    let store: WatchedGrantStore
    private(set) var signedInStep: [Bool] = []
    let keyID = "rs-kid"
    var algorithm: String { key.algorithm.rawValue }

    init(key: SigningKey, store: WatchedGrantStore) {
        self.key = key
        self.store = store
    }

    func sign(_ input: [UInt8]) throws -> [UInt8] {
        signedInStep.append(store.inStep)
        return try key.sign(input)
    }
}

@Suite("RFC 9068 JWT access tokens are signed before the grant's atomic step")
struct MintAheadTests {
    static let client: Client = {
        var c = Client(id: "api-rp", name: "RP", secretHash: [1], redirectURIs: ["https://rp.example/cb"],
                       grantTypes: [.authorizationCode, .refreshToken], allowedScopes: ["openid", "PRODUCTION"],
                       defaultScopes: ["openid"])
        c.accessTokenFormat = .jwt
        c.idTokenAlgorithm = .rs256
        return c
    }()

    struct Fixture {
        let memory = MemoryStore()
        let store: WatchedGrantStore
        let signer: StepWatchingSigner
        let context: GrantContext
        let userID: Int64

        init() throws {
            store = WatchedGrantStore(memory)
            signer = StepWatchingSigner(key: try SigningKey.generate(.rs256), store: store)
            _ = try memory.insertClient(MintAheadTests.client, now: 0)
            userID = try #require(try memory.insertUser(username: "alice", passwordHash: "-", subject: "sub-alice",
                                                        profile: UserProfile(), now: 0))
            var n = 0
            let signer = self.signer
            context = GrantContext(store: store, clock: .fixed(5000),
                                   tokens: TokenMint(generate: { n += 1; return "t\(n)" }, hash: { Digest.sha256($0) }),
                                   lifetimes: TokenLifetimes(access: 600, refreshIdle: 6000, refreshAbsolute: 60_000, refreshGrace: 0),
                                   openID: OpenIDSigning(issuer: "https://op.example", signer: { _ in signer }))
        }

        func code(_ value: String, scope: [String]) throws {
            try store.insertCode(hash: Digest.sha256(value), AuthorizationCodeRecord(
                clientID: "api-rp", userID: userID, username: "", scope: scope, redirectURI: nil, codeChallenge: nil,
                codeChallengeMethod: nil, expiresAt: 6000, nonce: "n", authTime: 4000))
        }

        func exchange(_ value: String) throws -> IssuedTokens {
            try AuthorizationCodeGrant(context).issue(TokenRequest(
                params: Parameters([("grant_type", "authorization_code"), ("code", value)]), client: MintAheadTests.client,
                remoteAddress: ""))
        }
    }

    @Test("code and refresh grants: the access token (RS256) and the ID Token are both signed outside the atomic step")
    func signedOutsideTheStep() throws {
        let f = try Fixture()
        try f.code("c1", scope: ["openid", "PRODUCTION"])
        let issued = try f.exchange("c1")
        #expect(f.signer.signedInStep == [false, false])  // the access token, then the ID Token
        #expect(try jwsPart(issued.accessToken, 1)["sub"] as? String == "sub-alice")
        #expect(try jwsPart(issued.accessToken, 1)["scope"] as? String == "openid PRODUCTION")
        #expect(try f.memory.token(hash: Digest.sha256(issued.accessToken))?.record.isActive(at: 5000) == true)

        let refreshed = try RefreshTokenGrant(f.context).issue(TokenRequest(
            params: Parameters([("grant_type", "refresh_token"), ("refresh_token", try #require(issued.refreshToken)),
                                ("scope", "openid")]),
            client: Self.client, remoteAddress: ""))
        #expect(f.signer.signedInStep == [false, false, false, false])
        #expect(try jwsPart(refreshed.accessToken, 1)["scope"] as? String == "openid")
        #expect(try f.memory.token(hash: Digest.sha256(refreshed.accessToken))?.record.isActive(at: 5000) == true)
    }

    @Test("a code that differs in the step from the read before it: the early token is dropped, one is made from the step's")
    func staleReadIsNotUsed() throws {
        let f = try Fixture()
        try f.code("c2", scope: ["openid"])
        f.store.stalePeek = { stale in
            var s = stale
            s.record.scope = ["openid", "PRODUCTION"]
            return s
        }
        let issued = try f.exchange("c2")
        #expect(try jwsPart(issued.accessToken, 1)["scope"] as? String == "openid")
        #expect(issued.scope == ["openid"])
        #expect(f.signer.signedInStep == [false, true, false])  // made ahead, dropped; made in the step; ID Token
        #expect(try f.memory.token(hash: Digest.sha256(issued.accessToken))?.record.scope == ["openid"])
    }

    @Test("RFC 6749 §4.1.2: a replayed code signs nothing and revokes what it gave")
    func replaySignsNothing() throws {
        let f = try Fixture()
        try f.code("c3", scope: ["openid"])
        let first = try f.exchange("c3")
        let before = f.signer.signedInStep.count
        #expect(throws: OAuthError.self) { _ = try f.exchange("c3") }
        #expect(f.signer.signedInStep.count == before)
        #expect(try f.memory.token(hash: Digest.sha256(first.accessToken))?.record.isActive(at: 5000) == false)
    }
}
