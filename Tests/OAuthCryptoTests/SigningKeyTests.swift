import Testing

@testable import OAuthCrypto

@Suite("JWS signing keys (RFC 7518 §3.3, §3.4) and AES-256-GCM")
struct SigningKeyTests {
    @Test("a key signs, verifies, survives PEM, and refuses another's signature", arguments: SigningKey.Algorithm.allCases)
    func roundTrip(_ algorithm: SigningKey.Algorithm) throws {
        let key = try SigningKey.generate(algorithm)
        let input = Array("header.payload".utf8)
        let signature = try key.sign(input)
        if algorithm == .es256 { #expect(signature.count == 64) }  // §3.4: R || S, not DER
        #expect(key.verify(signature, of: input))
        #expect(!key.verify(signature, of: Array("header.payloaD".utf8)))
        let again = try SigningKey.load(pem: try key.pem(), algorithm: algorithm)
        #expect(again.verify(signature, of: input))
        #expect(try again.publicJWK().map(\.1) == key.publicJWK().map(\.1))
        let other = try SigningKey.generate(algorithm)
        #expect(!other.verify(signature, of: input))
        #expect(throws: CryptoError.self) {
            try SigningKey.load(pem: try key.pem(), algorithm: algorithm == .es256 ? .rs256 : .es256)
        }
    }

    @Test("ES256 with nonces computed ahead: every signature verifies and no two share r (so no k is used twice)")
    func noncePool() throws {
        let key = try SigningKey.generate(.es256)
        let input = Array("header.payload".utf8)
        var seen = Set<[UInt8]>()
        for _ in 0..<(3 * SigningKey.nonceBatch + 1) {
            let signature = try key.sign(input)
            #expect(signature.count == 64 && key.verify(signature, of: input))
            #expect(seen.insert(Array(signature.prefix(32))).inserted)
        }
        // And its public half, loaded elsewhere, agrees.
        let verifier = try SigningKey.load(pem: try key.pem(), algorithm: .es256)
        #expect(verifier.verify(try key.sign(Array("other".utf8)), of: Array("other".utf8)))
    }

    @Test("ES256: a forked worker never signs with a nonce its parent computed")
    func nonceOwnership() throws {
        let key = try SigningKey.generate(.es256)
        let input = Array("header.payload".utf8)
        _ = try key.sign(input, processID: 100)
        #expect(key.pendingNonces == (owner: 100, count: SigningKey.nonceBatch - 1))
        // The child (another process ID) finds the parent's nonces: it drops them all and
        // computes its own; the parent, signing again, cannot meet the child's.
        let child = try key.sign(input, processID: 200)
        #expect(key.pendingNonces == (owner: 200, count: SigningKey.nonceBatch - 1))
        #expect(key.verify(child, of: input))
        _ = try key.sign(input, processID: 100)
        #expect(key.pendingNonces == (owner: 100, count: SigningKey.nonceBatch - 1))
    }

    @Test("RFC 7518 §6.2.1: an EC public JWK has 32-byte x and y")
    func ecJWK() throws {
        let jwk = Dictionary(uniqueKeysWithValues: try SigningKey.generate(.es256).publicJWK())
        #expect(jwk["kty"] == "EC" && jwk["crv"] == "P-256")
        #expect(Base64URL.decode(jwk["x"]!)?.count == 32 && Base64URL.decode(jwk["y"]!)?.count == 32)
    }

    @Test("AES-256-GCM: opens what it sealed; a changed byte, key or context opens nothing")
    func aead() throws {
        let key = SecureRandom.bytes(32)
        let sealed = try AEAD.seal(Array("private key".utf8), key: key, context: Array("kid-1".utf8))
        #expect(AEAD.open(sealed, key: key, context: Array("kid-1".utf8)) == Array("private key".utf8))
        #expect(AEAD.open(sealed, key: key, context: Array("kid-2".utf8)) == nil)
        #expect(AEAD.open(sealed, key: SecureRandom.bytes(32), context: Array("kid-1".utf8)) == nil)
        var altered = sealed
        altered[14] ^= 1
        #expect(AEAD.open(altered, key: key, context: Array("kid-1".utf8)) == nil)
    }
}
