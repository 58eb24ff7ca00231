import Foundation
import OAuthCore
import OAuthSQLite
import XCTest

@testable import AuthServer

final class SigningKeyRingTests: XCTestCase {
    /// A retired key stays in /jwks until every token it signed has expired, counting the
    /// tokens a worker signs with it before its next read of the key list learns of the
    /// retirement (`refreshSeconds`).
    func testARetiredKeyStaysPublishedWhileAWorkerMayStillSignWithIt() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ring-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try SQLiteStore(path: dir.appendingPathComponent("gatehouse.db").path)
        try store.migrate()
        let key = SecretKey(bytes: Array(repeating: 7, count: 32))
        let old = try SigningKeyRing.newKey(.es256, key: key, now: 0)
        try store.insertSigningKey(old)
        try store.insertSigningKey(try SigningKeyRing.newKey(.es256, key: key, now: 10))
        XCTAssertTrue(try store.retireSigningKey(id: old.id, now: 100))
        func published(at now: Int64) throws -> Bool {
            let ring = SigningKeyRing(store: store, key: key, clock: .fixed(now), refreshSeconds: 30)
            return try ring.jwks(tokenLifetime: 600).contains(old.id)
        }
        XCTAssertTrue(try published(at: 100 + 600 + 29))
        XCTAssertFalse(try published(at: 100 + 600 + 30))
    }
}
