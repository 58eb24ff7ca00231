import Foundation
import Testing
import OAuthCore
import OAuthCrypto
@testable import OAuthSQLite

/// Migration 5 (OpenID Connect) on a database made by the previous release.
@Suite("OpenID Connect schema (migration 5)")
struct OpenIDSchemaTests {
    @Test("a version-4 database upgrades in place: users get distinct UUID subjects, clients ES256, live tokens keep working")
    func upgradeFromVersion4() throws {
        let path = try temporaryDatabasePath()
        let old = try SQLiteStore(path: path)
        try old.db.execute("PRAGMA journal_mode = WAL")
        try old.db.execute(Migrations.steps[0..<4].joined(separator: ";\n") + "; PRAGMA user_version = 4")
        try old.db.execute("""
            INSERT INTO clients (id, name, secret_hash, redirect_uris, grant_types, scopes, default_scopes, created_at)
                VALUES ('c1', 'C', x'01', 'https://c.example/cb', 'authorization_code refresh_token', 'A', 'A', 0);
            INSERT INTO users (id, username, password_hash, created_at) VALUES (1, 'john@org', 'x', 0), (2, 'ann', 'y', 0);
            INSERT INTO families (id, client_id, user_id, scope, created_at, expires_at) VALUES (1, 'c1', 1, 'A', 100, 9999999);
            INSERT INTO tokens (hash, kind, family_id, client_id, user_id, scope, issued_at, expires_at)
                VALUES (x'01', 0, 1, 'c1', 1, 'A', 100, 9999999), (x'02', 1, 1, 'c1', 1, 'A', 100, 9999999);
            """)
        #expect(try old.migrate() == Migrations.steps.count - 4)
        let store = try SQLiteStore(path: path)
        let users = try store.users()
        let uuid = #/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/#
        #expect(users.count == 2 && Set(users.map(\.subject)).count == 2)
        for u in users { #expect(u.subject.wholeMatch(of: uuid) != nil, "\(u.subject)") }
        let client = try #require(try store.client(id: "c1"))
        #expect(client.idTokenAlgorithm == .es256 && client.accessTokenFormat == .opaque && client.postLogoutRedirectURIs.isEmpty)
        let token = try #require(try store.token(hash: [1]))
        #expect(token.record.isActive(at: 200) && token.record.subject == users.first { $0.username == "john@org" }?.subject)
        #expect(try store.signingKeys().isEmpty)
        #expect(try store.db.queryOne("PRAGMA foreign_key_check") { $0.text(0) } == nil)
    }
}
