import Foundation
import OAuthCore
import OAuthSQLite
import XCTest

@testable import AuthServer

final class SigningKeyRingTests: XCTestCase {
    /// A fresh SQLite store holding two ES256 keys, created at 0 (`old`) and at 10.
    func storeWithTwoKeys() throws -> (dir: URL, store: SQLiteStore, key: SecretKey, old: StoredSigningKey) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ring-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let store = try SQLiteStore(path: dir.appendingPathComponent("gatehouse.db").path)
        try store.migrate()
        let key = SecretKey(bytes: Array(repeating: 7, count: 32))
        let old = try SigningKeyRing.newKey(.es256, key: key, now: 0)
        try store.insertSigningKey(old)
        try store.insertSigningKey(try SigningKeyRing.newKey(.es256, key: key, now: 10))
        return (dir, store, key, old)
    }

    /// A retired key stays in /jwks until every token it signed has expired, counting the
    /// tokens a worker signs with it before its next read of the key list learns of the
    /// retirement (`refreshSeconds`).
    func testARetiredKeyStaysPublishedWhileAWorkerMayStillSignWithIt() throws {
        let (dir, store, key, old) = try storeWithTwoKeys()
        defer { try? FileManager.default.removeItem(at: dir) }
        XCTAssertTrue(try store.retireSigningKey(id: old.id, now: 100))
        func published(at now: Int64) throws -> Bool {
            let ring = SigningKeyRing(store: store, key: key, clock: .fixed(now), tokenLifetime: 600, refreshSeconds: 30)
            return try ring.jwks().contains(old.id)
        }
        XCTAssertTrue(try published(at: 100 + 600 + 29))
        XCTAssertFalse(try published(at: 100 + 600 + 30))
    }

    /// RP-Initiated Logout §2 accepts an expired id_token_hint, but only under a key /jwks
    /// still publishes: a key retired for longer than tokens live (perhaps because it leaked)
    /// signs no hint that ends a session without the user's confirmation.
    func testAHintVerifiesOnlyUnderAKeyStillPublished() throws {
        let (dir, store, key, old) = try storeWithTwoKeys()
        defer { try? FileManager.default.removeItem(at: dir) }
        let issuer = "https://id.example"
        let claims = IDTokenClaims(issuer: issuer, subject: "user-1", audience: "client-1", issuedAt: 50, expiresAt: 650,
                                   authTime: 40, nonce: nil, accessTokenHash: nil)
        let signing = SigningKeyRing(store: store, key: key, clock: .fixed(50), tokenLifetime: 600)
        let oldKey = try XCTUnwrap(signing.publicKey(old.id))
        let hint = try JWS.compact(payload: claims.json, signer: SigningKeyRing.Signer(keyID: old.id, key: oldKey))
        XCTAssertTrue(try store.retireSigningKey(id: old.id, now: 100))
        func verifies(at now: Int64) -> Bool {
            let ring = SigningKeyRing(store: store, key: key, clock: .fixed(now), tokenLifetime: 600, refreshSeconds: 30)
            return ring.verifiedClaims(hint, issuer: issuer).map { $0.subject == "user-1" && $0.audience == "client-1" } ?? false
        }
        XCTAssertTrue(verifies(at: 100 + 600 + 29))  // expired, but its key is still in /jwks
        XCTAssertFalse(verifies(at: 100 + 600 + 30))
    }
}
