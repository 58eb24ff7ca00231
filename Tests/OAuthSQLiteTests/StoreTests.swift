import Foundation
import Testing
import OAuthCore
import OAuthCrypto
@testable import OAuthSQLite

/// A path for a database file in a fresh temporary directory.
func temporaryDatabasePath() throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gh-test-\(UUID().uuidString)").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir + "/test.db"
}

/// A real SQLite file in a fresh temporary directory (no mocks).
func temporaryStore() throws -> (SQLiteStore, String) {
    let path = try temporaryDatabasePath()
    let store = try SQLiteStore(path: path)
    try store.migrate()
    return (store, path)
}

func seed(_ store: SQLiteStore) throws -> Int64 {
    let client = Client(id: "c1", name: "C", secretHash: [1], redirectURIs: ["https://c.example/cb"],
                        grantTypes: [.authorizationCode, .refreshToken], allowedScopes: ["A", "B"], defaultScopes: ["A"])
    _ = try store.insertClient(client, now: 0)
    return try store.insertUser(username: "john@org", passwordHash: "x", now: 0)!
}

func plan(_ access: String, _ refresh: String?, now: Int64 = 100) -> NewTokens {
    NewTokens(accessHash: Digest.sha256(access), accessExpiresAt: now + 3600, refreshHash: refresh.map { Digest.sha256($0) },
              refreshExpiresAt: now + 7200, familyExpiresAt: now + 86_400)
}

/// What only SQLite has: migrations, pragmas, the write gate, a full disk. The grant
/// primitives are held to the storage contract in StoreContractTests.
@Suite("SQLite store: migrations, pragmas, write gate, full disk")
struct StoreTests {
    @Test("a write gate that stays taken past busy_timeout is a busy error, and nothing is written")
    func gateTimeout() throws {
        final class TakenGate: WriteGate {
            func lock(timeoutMilliseconds: Int32) -> Bool { false }
            func unlock() { Issue.record("unlock without lock") }
        }
        let (store, _) = try temporaryStore()
        store.db.writeGate = TakenGate()
        #expect(throws: SQLiteError.self) { try store.db.writeTransaction { try store.db.execute("CREATE TABLE t (x)") } }
        do { try store.db.writeTransaction {} } catch let e as SQLiteError { #expect(e.isBusy) }
        store.db.writeGate = nil
        #expect(try store.db.queryOne("SELECT count(*) FROM sqlite_master WHERE name = 't'") { $0.int(0) } == 0)
    }

    @Test("a version-1 database with clients upgrades in place and keeps them")
    func upgradeFromVersion1() throws {
        let store = try SQLiteStore(path: try temporaryDatabasePath())
        try store.db.execute("PRAGMA journal_mode = WAL")
        try store.db.execute(Migrations.steps[0] + "; PRAGMA user_version = 1")
        try store.db.execute("""
            INSERT INTO clients (id, name, secret_hash, redirect_uris, grant_types, scopes, default_scopes, created_at)
            VALUES ('old', 'Old', x'01', '', 'client_credentials', 'A', 'A', 0)
            """)
        #expect(try store.migrate() == Migrations.steps.count - 1)
        let c = try #require(try store.client(id: "old"))
        #expect(c.secretHash == [1] && c.previousSecretHash == nil && c.previousSecretExpiresAt == nil)
    }

    @Test("migrations set WAL and are idempotent")
    func migrations() throws {
        let (store, _) = try temporaryStore()
        #expect(try store.migrate() == 0)
        #expect(try store.schemaVersion() == Migrations.latestVersion)
        #expect(try store.db.queryOne("PRAGMA journal_mode") { $0.text(0) } == "wal")
        #expect(try store.db.queryOne("PRAGMA foreign_keys") { $0.int(0) } == 1)
        #expect(try store.db.queryOne("PRAGMA synchronous") { $0.int(0) } == 2)  // FULL
        #expect(try store.db.queryOne("PRAGMA auto_vacuum") { $0.int(0) } == 2)  // INCREMENTAL
    }

    @Test("a full disk (SQLITE_FULL) is a temporary error logged as database_full; nothing half-written; the connection recovers")
    func diskFull() throws {
        let (store, _) = try temporaryStore()
        _ = try seed(store)
        func count(_ table: String) throws -> Int64 { try store.db.queryOne("SELECT count(*) FROM \(table)") { $0.int(0) } ?? -1 }
        // The file may not grow by one page from here (what a full file system does to it).
        try store.db.execute("PRAGMA incremental_vacuum")
        let pages = try #require(try store.db.queryOne("PRAGMA page_count") { $0.int(0) })
        try store.db.execute("PRAGMA max_page_count = \(pages)")
        var failure: SQLiteError?
        var issued: Int64 = 0
        for i in 0..<500 {
            do {
                try store.issue(NewGrant(clientID: "c1", userID: nil, scope: ["A"], tokens: plan("t\(i)", "r\(i)"), now: 100))
                issued += 1
            } catch let e as SQLiteError {
                failure = e
                break
            }
        }
        let e = try #require(failure, "500 grants fitted in the existing pages: max_page_count had no effect")
        #expect(e.isDiskFull && e.isTemporary && !e.isBusy, "\(e)")
        #expect(e.event == "database_full")
        // The failed grant left no family without tokens and no token without its family.
        #expect(try count("families") == issued && count("tokens") == 2 * issued)
        #expect(try store.db.queryOne("PRAGMA synchronous") { $0.int(0) } == 2)  // FULL again after the relaxed write
        try store.db.execute("PRAGMA max_page_count = 1073741823")
        try store.issue(NewGrant(clientID: "c1", userID: nil, scope: ["A"], tokens: plan("after", nil), now: 100))
        #expect(try store.token(hash: Digest.sha256("after"))?.record.isActive(at: 100) == true)
    }

    @Test("a non-critical write commits without fsync, then the connection is FULL again")
    func relaxedWrite() throws {
        let (store, _) = try temporaryStore()
        let user = try seed(store)
        let inside = try store.db.writeTransaction(critical: false) { try store.db.queryOne("PRAGMA synchronous") { $0.int(0) } }
        #expect(inside == 1)  // NORMAL inside
        try store.issue(NewGrant(clientID: "c1", userID: user, scope: ["A"], tokens: plan("at", nil), now: 100))
        #expect(try store.db.queryOne("PRAGMA synchronous") { $0.int(0) } == 2)
        #expect(try store.revokeToken(hash: Digest.sha256("at"), now: 101))
    }

}

// The grant primitives under the core's own decisions, as the grants call them.

let testClient = Client(id: "c1", name: "C", secretHash: [1], redirectURIs: ["https://c.example/cb"],
                        grantTypes: [.authorizationCode, .refreshToken], allowedScopes: ["A", "B"], defaultScopes: ["A"])

func issue(_ store: SQLiteStore, user: Int64?, _ tokens: NewTokens, now: Int64 = 100) throws {
    try store.issue(NewGrant(clientID: "c1", userID: user, scope: ["A"], tokens: tokens, now: now))
}

func redeem(_ store: SQLiteStore, _ code: String, now: Int64 = 100, _ tokens: NewTokens) throws -> CodeVerdict {
    try store.redeemCode(hash: Digest.sha256(code), now: now) {
        try AuthorizationCodeGrant.decide($0, client: testClient, redirectURI: nil, codeVerifier: nil, now: now) { _ in tokens }
    }
}

func rotate(_ store: SQLiteStore, hash: [UInt8], now: Int64, _ tokens: NewTokens) throws -> RefreshVerdict {
    try store.rotateRefreshToken(hash: hash, now: now) {
        try RefreshTokenGrant.decide($0, client: testClient, requestedScope: nil, now: now, graceSeconds: 0) { _, _ in tokens }
    }
}
