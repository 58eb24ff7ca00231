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

@Suite("SQLite store: migrations, codes, refresh rotation, revocation, purge")
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

    @Test("RFC 6749 §4.1.2: a code is single-use; a replay revokes the tokens issued from it")
    func codeReplay() throws {
        let (store, _) = try temporaryStore()
        let user = try seed(store)
        let record = AuthorizationCodeRecord(clientID: "c1", userID: user, username: "", scope: ["A"], redirectURI: nil,
                                             codeChallenge: nil, codeChallengeMethod: nil, expiresAt: 1000)
        try store.insertCode(hash: Digest.sha256("code"), record)
        let first = try store.redeemCode(hash: Digest.sha256("code"), clientID: "c1", now: 100, tokens: plan("at1", "rt1")) { _ in }
        guard case .issued(let r) = first else { Issue.record("\(first)"); return }
        #expect(r.username == "john@org")
        #expect(try store.token(hash: Digest.sha256("at1"))?.record.isActive(at: 100) == true)
        let second = try store.redeemCode(hash: Digest.sha256("code"), clientID: "c1", now: 101, tokens: plan("at2", "rt2")) { _ in }
        #expect(second == .replayed)
        #expect(try store.token(hash: Digest.sha256("at1"))?.record.revoked == true)
        #expect(try store.token(hash: Digest.sha256("rt1"))?.record.revoked == true)
        #expect(try store.token(hash: Digest.sha256("at2")) == nil)
    }

    @Test("a refused code writes nothing and stays redeemable")
    func refusedCode() throws {
        let (store, _) = try temporaryStore()
        let user = try seed(store)
        try store.insertCode(hash: Digest.sha256("c"), AuthorizationCodeRecord(
            clientID: "c1", userID: user, username: "", scope: ["A"], redirectURI: nil, codeChallenge: nil,
            codeChallengeMethod: nil, expiresAt: 1000))
        #expect(throws: OAuthError.self) {
            try store.redeemCode(hash: Digest.sha256("c"), clientID: "c1", now: 100, tokens: plan("x", nil)) { _ in throw OAuthError.invalidGrant("no") }
        }
        #expect(try store.token(hash: Digest.sha256("x")) == nil)
        guard case .issued = try store.redeemCode(hash: Digest.sha256("c"), clientID: "c1", now: 100, tokens: plan("y", nil), check: { _ in })
        else { Issue.record("not issued"); return }
    }

    @Test("two connections racing on one code: exactly one wins (BEGIN IMMEDIATE)")
    func codeRace() throws {
        let (store, path) = try temporaryStore()
        let user = try seed(store)
        try store.insertCode(hash: Digest.sha256("race"), AuthorizationCodeRecord(
            clientID: "c1", userID: user, username: "", scope: ["A"], redirectURI: nil, codeChallenge: nil,
            codeChallengeMethod: nil, expiresAt: 1000))
        let results = ResultBox()
        let threads = (0..<8).map { i in
            Thread {
                guard let s = try? SQLiteStore(path: path) else { results.add("open failed"); return }
                let r = try? s.redeemCode(hash: Digest.sha256("race"), clientID: "c1", now: 100, tokens: plan("at\(i)", "rt\(i)")) { _ in }
                results.add(r.map { "\($0)".hasPrefix("issued") ? "issued" : "\($0)" } ?? "error")
            }
        }
        threads.forEach { $0.start() }
        while results.count < 8 { usleep(1000) }
        #expect(results.values.filter { $0 == "issued" }.count == 1)
        #expect(!results.values.contains("error"))
    }

    @Test("RFC 6749 §6 / RFC 9700 §4.14.2: rotation, then reuse revokes the family")
    func rotation() throws {
        let (store, _) = try temporaryStore()
        let user = try seed(store)
        try store.issue(clientID: "c1", userID: user, scope: ["A", "B"], tokens: plan("at0", "rt0"), now: 100)
        let ok = try store.rotateRefreshToken(hash: Digest.sha256("rt0"), clientID: "c1", now: 110, graceSeconds: 0, tokens: plan("at1", "rt1", now: 110)) {
            try Scope.narrow(requested: "A", granted: $0.familyScope)
        }
        #expect(ok == .rotated(scope: ["A"], username: "john@org"))
        let reuse = try store.rotateRefreshToken(hash: Digest.sha256("rt0"), clientID: "c1", now: 111, graceSeconds: 0, tokens: plan("at2", "rt2", now: 111)) { $0.familyScope }
        #expect(reuse == .reuseDetected)
        for t in ["at0", "at1", "rt1"] { #expect(try store.token(hash: Digest.sha256(t))?.record.revoked == true) }
    }

    @Test("RFC 6749 §10.4: another client replaying a rotated refresh token revokes nothing")
    func replayByAnotherClient() throws {
        let (store, _) = try temporaryStore()
        let user = try seed(store)
        try store.issue(clientID: "c1", userID: user, scope: ["A"], tokens: plan("at0", "rt0"), now: 100)
        _ = try store.rotateRefreshToken(hash: Digest.sha256("rt0"), clientID: "c1", now: 110, graceSeconds: 0, tokens: plan("at1", "rt1", now: 110)) { $0.familyScope }
        let replay = try store.rotateRefreshToken(hash: Digest.sha256("rt0"), clientID: "c2", now: 111, graceSeconds: 0, tokens: plan("at2", "rt2", now: 111)) { $0.familyScope }
        #expect(replay == .invalid("refresh token was issued to another client"))
        for t in ["at1", "rt1"] { #expect(try store.token(hash: Digest.sha256(t))?.record.revoked == false) }
    }

    @Test("grace window: the preceding generation works once more inside the window, not after")
    func grace() throws {
        let (store, _) = try temporaryStore()
        let user = try seed(store)
        try store.issue(clientID: "c1", userID: user, scope: ["A"], tokens: plan("at0", "rt0"), now: 100)
        _ = try store.rotateRefreshToken(hash: Digest.sha256("rt0"), clientID: "c1", now: 110, graceSeconds: 5, tokens: plan("at1", "rt1", now: 110)) { $0.familyScope }
        let again = try store.rotateRefreshToken(hash: Digest.sha256("rt0"), clientID: "c1", now: 112, graceSeconds: 5, tokens: plan("at2", "rt2", now: 112)) { $0.familyScope }
        #expect(again == .rotated(scope: ["A"], username: "john@org"))
        #expect(try store.token(hash: Digest.sha256("rt1"))?.record.isActive(at: 112) == true)
        let third = try store.rotateRefreshToken(hash: Digest.sha256("rt0"), clientID: "c1", now: 113, graceSeconds: 5, tokens: plan("at4", "rt4", now: 113)) { $0.familyScope }
        #expect(third == .reuseDetected)
    }

    @Test("RFC 7009: revoking another client's token changes nothing; a refresh token takes its family")
    func revoke() throws {
        let (store, _) = try temporaryStore()
        let user = try seed(store)
        try store.issue(clientID: "c1", userID: user, scope: ["A"], tokens: plan("at", "rt"), now: 100)
        #expect(try store.revoke(hash: Digest.sha256("rt"), clientID: "other", now: 101) == false)
        #expect(try store.token(hash: Digest.sha256("at"))?.record.revoked == false)
        #expect(try store.revoke(hash: Digest.sha256("rt"), clientID: "c1", now: 101))
        #expect(try store.token(hash: Digest.sha256("at"))?.record.revoked == true)
    }

    @Test("removing a client removes its tokens; disabling a user revokes theirs")
    func cascades() throws {
        let (store, _) = try temporaryStore()
        let user = try seed(store)
        try store.issue(clientID: "c1", userID: user, scope: ["A"], tokens: plan("at", "rt"), now: 100)
        #expect(try store.setDisabled(username: "john@org", true, now: 101))
        #expect(try store.token(hash: Digest.sha256("at"))?.record.revoked == true)
        #expect(try store.removeClient(id: "c1"))
        #expect(try store.token(hash: Digest.sha256("at")) == nil)
    }

    @Test("purge deletes expired rows in batches and keeps live ones")
    func purge() throws {
        let (store, _) = try temporaryStore()
        let user = try seed(store)
        for i in 0..<25 { try store.issue(clientID: "c1", userID: user, scope: ["A"], tokens: plan("old\(i)", nil, now: 0), now: 0) }
        try store.issue(clientID: "c1", userID: user, scope: ["A"], tokens: plan("live", "liveR", now: 100_000), now: 100_000)
        let counts = try store.purgeExpired(now: 100_000, batch: 10, sessionIdleSeconds: 60)
        #expect(counts["tokens"] == 25)
        #expect(try store.token(hash: Digest.sha256("live")) != nil)
    }

    @Test("purge: a family goes with its last token, not 30 days later; a family with a token left stays")
    func purgeEmptiedFamilies() throws {
        let (store, _) = try temporaryStore()
        let user = try seed(store)
        func count(_ table: String) throws -> Int64 { try store.db.queryOne("SELECT count(*) FROM \(table)") { $0.int(0) } ?? -1 }
        // A client fetching a password-grant token per call: access tokens only (expire at
        // 3700), families whose refresh-chain end (86,500) is far away. (client_credentials
        // tokens have no family at all since migration 4: LeanSchemaTests.)
        for i in 0..<25 { try store.issue(clientID: "c1", userID: user, scope: ["A"], tokens: plan("cc\(i)", nil), now: 100) }
        // Two refresh families, rotated once at 3000: the rotated rt0 (expires 7300) and the new
        // at1/rt1 are still there at 4000; only at0 (3700) has expired.
        for f in ["x", "y"] {
            try store.issue(clientID: "c1", userID: user, scope: ["A"], tokens: plan("\(f)at0", "\(f)rt0"), now: 100)
            let r = try store.rotateRefreshToken(hash: Digest.sha256("\(f)rt0"), clientID: "c1", now: 3000, graceSeconds: 0,
                                                 tokens: plan("\(f)at1", "\(f)rt1", now: 3000)) { $0.familyScope }
            #expect(r == .rotated(scope: ["A"], username: "john@org"))
        }
        // A redeemed code that outlives its tokens (its family_id must not block the purge).
        try store.insertCode(hash: Digest.sha256("code"), AuthorizationCodeRecord(
            clientID: "c1", userID: user, username: "", scope: ["A"], redirectURI: nil, codeChallenge: nil,
            codeChallengeMethod: nil, expiresAt: 100_000))
        guard case .issued = try store.redeemCode(hash: Digest.sha256("code"), clientID: "c1", now: 100, tokens: plan("cat", nil), check: { _ in })
        else { Issue.record("code not issued"); return }
        #expect(try count("families") == 28)

        let counts = try store.purgeExpired(now: 4000, batch: 10, sessionIdleSeconds: 60)
        #expect(counts["tokens"] == 25 + 2 + 1)
        #expect(counts["families"] == 25 + 1)
        #expect(try count("families") == 2)
        #expect(try count("tokens") == 6)
        // The rotated refresh token is still there, so its replay is still detected.
        let replay = try store.rotateRefreshToken(hash: Digest.sha256("xrt0"), clientID: "c1", now: 4001, graceSeconds: 0,
                                                  tokens: plan("xat2", "xrt2", now: 4001)) { $0.familyScope }
        #expect(replay == .reuseDetected)
        #expect(try store.token(hash: Digest.sha256("xrt1"))?.record.revoked == true)
        #expect(try store.token(hash: Digest.sha256("yrt1"))?.record.isActive(at: 4001) == true)
        // A replayed code whose family is gone: refused, nothing to revoke.
        #expect(try store.redeemCode(hash: Digest.sha256("code"), clientID: "c1", now: 4002, tokens: plan("c2", nil), check: { _ in }) == .replayed)

        // Every token expired (rt1: 3000 + 7200), the refresh chains' end (86,500) not yet: the
        // families go with their last tokens.
        let later = try store.purgeExpired(now: 10_300, batch: 10, sessionIdleSeconds: 60)
        #expect(later["tokens"] == 6 && later["families"] == 2)
        #expect(try count("families") == 0 && count("tokens") == 0)
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
                try store.issue(clientID: "c1", userID: nil, scope: ["A"], tokens: plan("t\(i)", "r\(i)"), now: 100)
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
        try store.issue(clientID: "c1", userID: nil, scope: ["A"], tokens: plan("after", nil), now: 100)
        #expect(try store.token(hash: Digest.sha256("after"))?.record.isActive(at: 100) == true)
    }

    @Test("a non-critical write commits without fsync, then the connection is FULL again")
    func relaxedWrite() throws {
        let (store, _) = try temporaryStore()
        let user = try seed(store)
        let inside = try store.db.writeTransaction(critical: false) { try store.db.queryOne("PRAGMA synchronous") { $0.int(0) } }
        #expect(inside == 1)  // NORMAL inside
        try store.issue(clientID: "c1", userID: user, scope: ["A"], tokens: plan("at", nil), now: 100)
        #expect(try store.db.queryOne("PRAGMA synchronous") { $0.int(0) } == 2)
        #expect(try store.revoke(hash: Digest.sha256("at"), clientID: "c1", now: 101))
    }

    @Test("login throttling counts failures atomically and locks the key")
    func throttle() throws {
        let (store, _) = try temporaryStore()
        for _ in 0..<3 { try store.recordLoginFailure(keys: ["user:x"], now: 100, limit: 3, window: 60, lockout: 300) }
        #expect(try store.lockedUntil(keys: ["user:x"], now: 101) == 400)
        #expect(try store.lockedUntil(keys: ["user:x"], now: 401) == nil)
    }
}

final class ResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [String] = []
    func add(_ s: String) { lock.lock(); items.append(s); lock.unlock() }
    var values: [String] { lock.lock(); defer { lock.unlock() }; return items }
    var count: Int { values.count }
}
