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
        try issue(store, user: nil, plan("cc1", nil), now: 100)
        try issue(store, user: nil, plan("cc2", nil), now: 100)
        #expect(try families() == 0)
        let found = try #require(try store.token(hash: Digest.sha256("cc1")))
        #expect(found.record.isActive(at: 200) && found.record.familyID == 0 && found.record.clientID == "c1")
        // RFC 7009: revoking one revokes that one.
        try Revocation.revoke(tokenHash: Digest.sha256("cc1"), by: testClient, in: store, now: 150)
        #expect(try store.token(hash: Digest.sha256("cc1"))?.record.revoked == true)
        #expect(try store.token(hash: Digest.sha256("cc2"))?.record.revoked == false)
        // Another client cannot revoke it.
        var other = testClient
        other.id = "c2"
        try Revocation.revoke(tokenHash: Digest.sha256("cc2"), by: other, in: store, now: 150)
        #expect(try store.token(hash: Digest.sha256("cc2"))?.record.revoked == false)
        // The operator's "revoke everything of this client" reaches it.
        #expect(try store.revokeAll(clientID: "c1", username: nil, now: 160) == 1)
        #expect(try store.token(hash: Digest.sha256("cc2"))?.record.revoked == true)
        // A grant with a user or a refresh token still has its family.
        try issue(store, user: 1, plan("pw", "pwr"), now: 100)
        #expect(try families() == 1)
        // Purge takes expired familyless tokens like any other.
        let counts = try store.purgeExpired(now: 100 + 3600, sessionIdleSeconds: 1800)
        #expect(counts["tokens"] == 3)  // cc1, cc2 and the password grant's access token
        #expect(try store.token(hash: Digest.sha256("cc2")) == nil)
        // Removing the client removes its familyless tokens too (foreign key).
        try issue(store, user: nil, plan("cc3", nil, now: 5000), now: 5000)
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
        guard case .rotate(let rotated) = try rotate(store, hash: [3], now: 300, plan("a-new", "r-new", now: 300)) else {
            Issue.record("not rotated")
            return
        }
        #expect(rotated.scope == ["A"])
        #expect(try store.token(hash: Digest.sha256("a-new"))?.record.username == "john@org")
        guard case .revokeFamily = try rotate(store, hash: [3], now: 301, plan("a-x", "r-x", now: 301)) else {
            Issue.record("reuse not detected")
            return
        }
        #expect(try store.token(hash: [2])?.record.revoked == true)
        #expect(try store.db.queryOne("PRAGMA foreign_key_check") { $0.text(0) } == nil)
    }
}
