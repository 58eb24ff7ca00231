import Testing
@testable import OAuthCrypto

@Suite("Crypto known-answer tests")
struct KnownAnswerTests {
    @Test("FIPS 180-4 SHA-256(\"abc\")")
    func sha256() {
        #expect(Digest.hex(Digest.sha256("abc")) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test("RFC 4231 test case 2 HMAC-SHA-256")
    func hmac() {
        let mac = Digest.hmacSHA256(key: Array("Jefe".utf8), Array("what do ya want for nothing?".utf8))
        #expect(Digest.hex(mac) == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    @Test("base64 and base64url round trips", arguments: ["", "f", "fo", "foo", "foob", "fooba", "foobar"])
    func base64(_ s: String) {
        #expect(Base64URL.decodeStandard(Base64URL.encodeStandard(Array(s.utf8))) == Array(s.utf8))
        #expect(Base64URL.decode(Base64URL.encode(Array(s.utf8))) == Array(s.utf8))
    }

    @Test("RFC 4648 §10 vector")
    func vector() { #expect(Base64URL.encodeStandard(Array("foobar".utf8)) == "Zm9vYmFy") }

    @Test("tokens carry 256 bits and are URL-safe")
    func token() {
        let t = SecureRandom.token()
        #expect(t.count == 43)
        #expect(t.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" })
        #expect(SecureRandom.token() != t)
    }

    @Test("identifiers (client and key ids) never start with '-', which a command line reads as an option")
    func identifier() {
        // One token in 64 starts with '-': 2,000 draws would meet ~31 of them.
        for _ in 0..<2000 {
            let id = SecureRandom.identifier(byteCount: 12)
            #expect(id.count == 16 && !id.hasPrefix("-"))
        }
    }

    @Test("constant-time equality")
    func constantTime() {
        #expect(ConstantTime.equals("abc", "abc"))
        #expect(!ConstantTime.equals("abc", "abd"))
        #expect(!ConstantTime.equals("abc", "abcd"))
    }

    @Test("PBKDF2 password hashes verify, carry their parameters, and differ per salt")
    func passwords() {
        let hasher = PasswordHasher(iterations: 1000)
        let h = hasher.hash("s3cret")
        #expect(h.hasPrefix("pbkdf2-sha256$1000$"))
        #expect(PasswordHasher.verify("s3cret", against: h))
        #expect(!PasswordHasher.verify("s3cret!", against: h))
        #expect(hasher.hash("s3cret") != h)
        #expect(!PasswordHasher.verify("x", against: "garbage"))
    }

    @Test("RFC 6070-style PBKDF2-HMAC-SHA-256 vector (P=password, S=salt, c=1)")
    func pbkdf2Vector() {
        let out = PasswordHasher.pbkdf2(Array("password".utf8), salt: Array("salt".utf8), iterations: 1)
        #expect(Digest.hex(out) == "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b")
    }
}
