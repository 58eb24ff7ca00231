import Foundation
import Testing
import OAuthCore
import OAuthCrypto
@testable import OAuthSQLite

/// Migration 4: a client_credentials token is stored without a family row.
@Suite("Lean schema: client_credentials tokens without a family (migration 4)")
struct LeanSchemaTests {
    @Test("a client_credentials token writes no family; revocation, introspection, purge and client removal still work")
    func familyless() throws {
        let (store, _) = try temporaryStore()
        _ = try seed(store)
        let families = { try store.db.queryOne("SELECT count(*) FROM families") { $0.int(0) } ?? -1 }
        try store.issue(clientID: "c1", userID: nil, scope: ["A"], tokens: plan("cc1", nil), now: 100)
        try store.issue(clientID: "c1", userID: nil, scope: ["A"], tokens: plan("cc2", nil), now: 100)
        #expect(try families() == 0)
        let found = try #require(try store.token(hash: Digest.sha256("cc1")))
        #expect(found.record.isActive(at: 200) && found.record.familyID == 0 && found.record.clientID == "c1")
        // RFC 7009: revoking one revokes that one.
        #expect(try store.revoke(hash: Digest.sha256("cc1"), clientID: "c1", now: 150))
        #expect(try store.token(hash: Digest.sha256("cc1"))?.record.revoked == true)
        #expect(try store.token(hash: Digest.sha256("cc2"))?.record.revoked == false)
        // Another client cannot revoke it.
        #expect(try !store.revoke(hash: Digest.sha256("cc2"), clientID: "c2", now: 150))
        // The operator's "revoke everything of this client" reaches it.
        #expect(try store.revokeAll(clientID: "c1", now: 160) == 1)
        #expect(try store.token(hash: Digest.sha256("cc2"))?.record.revoked == true)
        // A grant with a user or a refresh token still has its family.
        try store.issue(clientID: "c1", userID: 1, scope: ["A"], tokens: plan("pw", "pwr"), now: 100)
        #expect(try families() == 1)
        // Purge takes expired familyless tokens like any other.
        let counts = try store.purgeExpired(now: 100 + 3600, sessionIdleSeconds: 1800)
        #expect(counts["tokens"] == 3)  // cc1, cc2 and the password grant's access token
        #expect(try store.token(hash: Digest.sha256("cc2")) == nil)
        // Removing the client removes its familyless tokens too (foreign key).
        try store.issue(clientID: "c1", userID: nil, scope: ["A"], tokens: plan("cc3", nil, now: 5000), now: 5000)
        #expect(try store.removeClient(id: "c1"))
        #expect(try store.token(hash: Digest.sha256("cc3")) == nil)
        #expect(try store.db.queryOne("SELECT count(*) FROM tokens") { $0.int(0) } == 0)
    }

    @Test("a version-3 database with live tokens upgrades in place: every token keeps working")
    func upgradeFromVersion3() throws {
        let path = try temporaryDatabasePath()
        let old = try SQLiteStore(path: path)
        try old.db.execute("PRAGMA journal_mode = WAL")
        try old.db.execute(Migrations.steps[0..<3].joined(separator: ";\n") + "; PRAGMA user_version = 3")
        try old.db.execute("""
            INSERT INTO clients (id, name, secret_hash, redirect_uris, grant_types, scopes, default_scopes, created_at)
                VALUES ('c1', 'C', x'01', 'https://c.example/cb', 'authorization_code refresh_token client_credentials', 'A', 'A', 0);
            INSERT INTO users (id, username, password_hash, created_at) VALUES (1, 'john@org', 'x', 0);
            INSERT INTO families (id, client_id, user_id, scope, created_at, expires_at) VALUES (1, 'c1', NULL, 'A', 100, 9999999);
            INSERT INTO families (id, client_id, user_id, scope, created_at, expires_at) VALUES (2, 'c1', 1, 'A', 100, 9999999);
            INSERT INTO tokens (hash, kind, family_id, client_id, user_id, scope, issued_at, expires_at)
                VALUES (x'01', 0, 1, 'c1', NULL, 'A', 100, 9999999),
                       (x'02', 0, 2, 'c1', 1, 'A', 100, 9999999),
                       (x'03', 1, 2, 'c1', 1, 'A', 100, 9999999);
            """)
        #expect(try old.migrate() == Migrations.steps.count - 3)
        let store = try SQLiteStore(path: path)
        for hash in [[UInt8(1)], [2], [3]] {
            let t = try #require(try store.token(hash: hash))
            #expect(t.record.isActive(at: 200))
        }
        #expect(try store.token(hash: [3])?.record.familyID == 2)
        // The upgraded refresh token still rotates, and its reuse still revokes the family.
        let rotated = try store.rotateRefreshToken(hash: [3], clientID: "c1", now: 300, graceSeconds: 0,
                                                   tokens: plan("a-new", "r-new", now: 300)) { $0.familyScope }
        #expect(rotated == .rotated(scope: ["A"], username: "john@org"))
        let reused = try store.rotateRefreshToken(hash: [3], clientID: "c1", now: 301, graceSeconds: 0,
                                                  tokens: plan("a-x", "r-x", now: 301)) { $0.familyScope }
        #expect(reused == .reuseDetected)
        #expect(try store.token(hash: [2])?.record.revoked == true)
        #expect(try store.db.queryOne("PRAGMA foreign_key_check") { $0.text(0) } == nil)
    }
}
