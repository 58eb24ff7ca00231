import Foundation
import MemoryStore
import OAuthCore
import OAuthCrypto
import Testing

/// A real ES256 key behind the core's signer protocol.
struct TestSigner: JWSSigner {
    let key: SigningKey
    let keyID = "test-kid"
    var algorithm: String { key.algorithm.rawValue }
    func sign(_ input: [UInt8]) throws -> [UInt8] { try key.sign(input) }
}

/// Decodes one part of a compact JWS into a JSON dictionary.
func jwsPart(_ token: String, _ index: Int) throws -> [String: Any] {
    let part = String(token.split(separator: ".")[index])
    let bytes = try #require(Base64URL.decode(part))
    return try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
}

@Suite("OpenID Connect rules (Core 1.0, RFC 9068) in the core")
struct OpenIDConnectTests {
    static let client = Client(id: "rp", name: "RP", secretHash: [1], redirectURIs: ["https://rp.example/cb"],
                               grantTypes: [.authorizationCode, .refreshToken], allowedScopes: ["openid", "profile", "email"],
                               defaultScopes: ["openid"])

    func validate(_ pairs: [(String, String)]) -> AuthorizationValidation {
        AuthorizationEndpoint.validate(Parameters([("response_type", "code"), ("client_id", "rp")] + pairs), client: Self.client)
    }

    @Test("Core §3.1.2.1: an OpenID request without redirect_uri is displayed, never redirected")
    func core_3_1_2_1_redirect_uri_required() {
        guard case .display = validate([("scope", "openid")]) else { Issue.record("not displayed"); return }
        guard case .valid = validate([("scope", "profile")]) else { Issue.record("a plain OAuth request may omit it"); return }
    }

    @Test("Core §3.1.2.1: prompt=none with another value, and a malformed max_age, are invalid_request")
    func core_3_1_2_1_prompt_and_max_age() {
        let base = [("scope", "openid"), ("redirect_uri", "https://rp.example/cb")]
        for bad in [[("prompt", "none login")], [("max_age", "-1")], [("max_age", "1e3")], [("max_age", "+5")]] {
            guard case .redirectError(_, let error, _) = validate(base + bad) else { Issue.record("\(bad) accepted"); continue }
            #expect(error.code == .invalidRequest)
        }
        guard case .valid(let request) = validate(base + [("max_age", "0"), ("nonce", "n"), ("login_hint", "alice")]) else {
            Issue.record("refused")
            return
        }
        #expect(request.maxAge == 0 && request.nonce == "n" && request.loginHint == "alice" && request.isOpenID)
    }

    @Test("Core §3.1.3.6: at_hash is the base64url left half of SHA-256 of the access token")
    func core_3_1_3_6_at_hash() {
        let token = "jHkWEdUXMU1BwAsC4vtUsZwnNljEkNjc"
        #expect(IDTokenClaims.accessTokenHash(token) == Base64URL.encode(Array(Digest.sha256(token).prefix(16))))
        #expect(IDTokenClaims.accessTokenHash(token).count == 22)
    }

    @Test("Core §5.4: profile and email release their claims; unset attributes are left out")
    func core_5_4_scope_claims() throws {
        let user = User(id: 1, username: "alice", passwordHash: "-", disabled: false, subject: "s-1",
                        profile: UserProfile(email: "a@example.com", emailVerified: true, name: "Alice", updatedAt: 99))
        #expect(ScopeClaims.claims(of: user, scope: ["openid"]).serialized() == #"{"sub":"s-1"}"#)
        #expect(ScopeClaims.claims(of: user, scope: ["openid", "profile", "email"]).serialized()
            == #"{"sub":"s-1","name":"Alice","preferred_username":"alice","updated_at":99,"email":"a@example.com","email_verified":true}"#)
        #expect(ScopeClaims.description(of: "email") == "your email address")
    }

    @Test("Core §3.1.3.3 and §2: the code grant's ID Token carries iss, sub, aud, nonce, auth_time and at_hash, signed")
    func core_3_1_3_3_id_token_from_code() throws {
        let store = MemoryStore()
        _ = try store.insertClient(Self.client, now: 0)
        let userID = try #require(try store.insertUser(username: "alice", passwordHash: "-", subject: "sub-alice",
                                                       profile: UserProfile(), now: 0))
        let signer = TestSigner(key: try SigningKey.generate(.es256))
        var n = 0
        let context = GrantContext(store: store, clock: .fixed(5000),
                                   tokens: TokenMint(generate: { n += 1; return "tok\(n)" }, hash: { Digest.sha256($0) }),
                                   lifetimes: TokenLifetimes(access: 600, refreshIdle: 6000, refreshAbsolute: 60_000, refreshGrace: 0),
                                   openID: OpenIDSigning(issuer: "https://op.example", signer: { _ in signer }))
        try store.insertCode(hash: Digest.sha256("c"), AuthorizationCodeRecord(
            clientID: "rp", userID: userID, username: "", scope: ["openid"], redirectURI: nil, codeChallenge: nil,
            codeChallengeMethod: nil, expiresAt: 6000, nonce: "n-0S6", authTime: 4000))
        let issued = try AuthorizationCodeGrant(context).issue(TokenRequest(
            params: Parameters([("grant_type", "authorization_code"), ("code", "c")]), client: Self.client, remoteAddress: ""))
        let idToken = try #require(issued.idToken)
        let header = try jwsPart(idToken, 0)
        #expect(header["alg"] as? String == "ES256" && header["kid"] as? String == "test-kid" && header["typ"] as? String == "JWT")
        let claims = try jwsPart(idToken, 1)
        #expect(claims["iss"] as? String == "https://op.example" && claims["sub"] as? String == "sub-alice")
        #expect(claims["aud"] as? String == "rp" && claims["nonce"] as? String == "n-0S6")
        #expect(claims["auth_time"] as? Int == 4000 && claims["iat"] as? Int == 5000 && claims["exp"] as? Int == 5600)
        #expect(claims["at_hash"] as? String == IDTokenClaims.accessTokenHash(issued.accessToken))
        let parts = idToken.split(separator: ".")
        #expect(signer.key.verify(try #require(Base64URL.decode(String(parts[2]))), of: Array((parts[0] + "." + parts[1]).utf8)))

        // §12.2: the refresh's ID Token keeps sub and auth_time, has no nonce.
        let refreshed = try RefreshTokenGrant(context).issue(TokenRequest(
            params: Parameters([("grant_type", "refresh_token"), ("refresh_token", try #require(issued.refreshToken))]),
            client: Self.client, remoteAddress: ""))
        let again = try jwsPart(try #require(refreshed.idToken), 1)
        #expect(again["sub"] as? String == "sub-alice" && again["auth_time"] as? Int == 4000 && again["nonce"] == nil)
    }

    @Test("RFC 9068 §2: a JWT access token is typed at+jwt, names client and scope, and is stored like an opaque one")
    func rfc9068_2_jwt_access_token() throws {
        let store = MemoryStore()
        var client = Self.client
        client.grantTypes = [.clientCredentials]
        client.accessTokenFormat = .jwt
        _ = try store.insertClient(client, now: 0)
        let signer = TestSigner(key: try SigningKey.generate(.es256))
        let context = GrantContext(store: store, clock: .fixed(100), tokens: TokenMint(generate: { "jti-1" }, hash: { Digest.sha256($0) }),
                                   lifetimes: TokenLifetimes(access: 60, refreshIdle: 1, refreshAbsolute: 1, refreshGrace: 0),
                                   openID: OpenIDSigning(issuer: "https://op.example", signer: { _ in signer }))
        let issued = try ClientCredentialsGrant(context).issue(TokenRequest(
            params: Parameters([("grant_type", "client_credentials"), ("scope", "profile")]), client: client, remoteAddress: ""))
        #expect(try jwsPart(issued.accessToken, 0)["typ"] as? String == "at+jwt")
        let claims = try jwsPart(issued.accessToken, 1)
        #expect(claims["sub"] as? String == "rp" && claims["client_id"] as? String == "rp" && claims["aud"] as? String == "rp")
        #expect(claims["scope"] as? String == "profile" && claims["jti"] as? String == "jti-1" && claims["exp"] as? Int == 160)
        #expect(try store.token(hash: Digest.sha256(issued.accessToken))?.record.isActive(at: 100) == true)
    }

    @Test("key rotation: published before use, the newest active key signs, a retired key stays published while its tokens live")
    func keyRotation() {
        func key(_ id: String, created: Int64, active: Int64, retired: Int64? = nil) -> StoredSigningKey {
            StoredSigningKey(id: id, algorithm: .es256, sealedPrivateKey: [], createdAt: created, activeFrom: active, retiredAt: retired)
        }
        let keys = [key("old", created: 0, active: 0), key("new", created: 100, active: 400)]
        #expect(KeySet.status(of: keys[1], at: 200) == .published)
        #expect(KeySet.signingKey(keys, algorithm: .es256, at: 200)?.id == "old")
        #expect(KeySet.signingKey(keys, algorithm: .es256, at: 400)?.id == "new")
        #expect(KeySet.signingKey(keys, algorithm: .rs256, at: 400) == nil)
        #expect(KeySet.isLastSigner(keys, id: "old", at: 200))  // "new" is not signing yet
        #expect(!KeySet.isLastSigner(keys, id: "old", at: 400))
        let retired = [key("old", created: 0, active: 0, retired: 500), keys[1]]
        #expect(KeySet.published(retired, at: 500 + 3599, tokenLifetime: 3600).map(\.id) == ["old", "new"])
        #expect(KeySet.published(retired, at: 500 + 3600, tokenLifetime: 3600).map(\.id) == ["new"])
    }
}
