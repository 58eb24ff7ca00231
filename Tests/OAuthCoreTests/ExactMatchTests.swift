import Testing
@testable import OAuthCore

@Suite("Identifiers compare by bytes, not by Swift's canonical equivalence")
struct ExactMatchTests {
    @Test("NFC and NFD spellings of one string are equal to Swift, different to us")
    func sameBytes() {
        let nfc = "caf\u{E9}", nfd = "cafe\u{301}"
        #expect(nfc == nfd)
        #expect(!nfc.sameBytes(as: nfd))
        #expect(nfc.sameBytes(as: "caf\u{E9}"))
    }

    @Test("RFC 9700 §2.1: redirect URIs match exactly, byte for byte")
    func redirectBytes() {
        #expect(!RedirectURI.matches("https://client.example/cafe\u{301}", registered: ["https://client.example/caf\u{E9}"]))
        #expect(RedirectURI.matches("https://client.example/cb", registered: ["https://client.example/cb"]))
    }

    @Test("RFC 6749 §4.1.3: a code is redeemed only by the client it was issued to, by bytes")
    func codeOwner() throws {
        let client = Client(id: "cafe\u{301}", name: "C", secretHash: [1], redirectURIs: ["https://c.example/cb"],
                            grantTypes: [.authorizationCode], allowedScopes: ["A"], defaultScopes: ["A"])
        let code = AuthorizationCodeRecord(clientID: "caf\u{E9}", userID: 1, username: "u", scope: ["A"], redirectURI: nil,
                                           codeChallenge: nil, codeChallengeMethod: nil, expiresAt: 100)
        #expect(throws: OAuthError.self) {
            try TokenRules.checkCode(code, client: client, redirectURI: nil, codeVerifier: nil, now: 0)
        }
    }

    @Test("registered redirect URIs are at most 2048 bytes (every Location fits nginx's buffer)")
    func registrationLength() {
        #expect(RedirectURI.registrationProblem("https://c.example/" + String(repeating: "a", count: 2100)) != nil)
        #expect(RedirectURI.registrationProblem("https://c.example/cb") == nil)
    }
}
