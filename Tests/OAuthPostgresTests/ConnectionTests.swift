import Foundation
import OAuthCore
import OAuthPostgres
import Testing

/// A libpq URI of a database these tests may fill with schemas (scripts/test.sh sets it).
let postgresURI = ProcessInfo.processInfo.environment["GATEHOUSE_TEST_POSTGRES"].flatMap { $0.isEmpty ? nil : $0 }

/// The URI of a new, empty schema of that database.
func freshSchema() throws -> String {
    let base = try #require(postgresURI)
    let schema = "gh_conn_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
    try PostgresStore(uri: base).db.script("CREATE SCHEMA \(schema)")
    return base + (base.contains("?") ? "&" : "?") + "options=-csearch_path%3D" + schema
}

func seeded(_ uri: String) throws -> PostgresStore {
    let store = PostgresStore(uri: uri)
    try store.migrate()
    _ = try store.insertClient(Client(id: "c1", name: "C", secretHash: [1], redirectURIs: ["https://c.example/cb"],
                                      grantTypes: [.authorizationCode], allowedScopes: ["A"], defaultScopes: ["A"]), now: 0)
    let user = try #require(try store.insertUser(username: "u", passwordHash: "x", now: 0))
    try store.insertCode(hash: [1, 2, 3], AuthorizationCodeRecord(clientID: "c1", userID: user, username: "u", scope: ["A"],
                                                                  redirectURI: nil, codeChallenge: nil, codeChallengeMethod: nil,
                                                                  expiresAt: 1000))
    return store
}

func milliseconds(since start: Date) -> Int { Int(Date().timeIntervalSince(start) * 1000) }

@Suite("PostgreSQL: lost connections, timeouts, migrations", .enabled(if: postgresURI != nil))
struct ConnectionTests {
    @Test("a connection the server ends: that call gets a temporary error, the next one reconnects")
    func reconnect() throws {
        let store = try seeded(try freshSchema())
        let pid = try #require(try store.db.queryOne("SELECT pg_backend_pid()") { $0.int(0) })
        let killed = try PostgresStore(uri: try #require(postgresURI)).db
            .queryOne("SELECT pg_terminate_backend($1::int, 5000)::int", [.int(pid)]) { $0.int(0) }
        #expect(killed == 1)
        #expect {
            _ = try store.client(id: "c1")
        } throws: { error in
            (error as? PostgresError).map { $0.isTemporary && $0.event == "database_unavailable" } ?? false
        }
        #expect(try store.client(id: "c1")?.name == "C")
    }

    @Test("a row lock held past busy_timeout_ms: a temporary database_busy error in time, not a wait")
    func lockTimeout() throws {
        let uri = try freshSchema()
        _ = try seeded(uri)
        let locked = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        Thread {
            let holder = PostgresStore(uri: uri)
            try? holder.db.transaction {
                _ = try holder.db.queryOne("SELECT 1 FROM codes WHERE hash = $1 FOR UPDATE", [.blob([1, 2, 3])]) { _ in () }
                locked.signal()
                _ = release.wait(timeout: .now() + 10)
            }
        }.start()
        locked.wait()
        defer { release.signal() }
        let waiter = PostgresStore(uri: uri, busyTimeoutMilliseconds: 300)
        _ = try waiter.client(id: "c1")  // connected before the clock starts
        let start = Date()
        #expect {
            _ = try waiter.redeemCode(hash: [1, 2, 3], now: 100) { _ in .refuse(.invalidGrant("x")) }
        } throws: { error in
            (error as? PostgresError).map { $0.isTemporary && $0.event == "database_busy" } ?? false
        }
        #expect(milliseconds(since: start) < 1500)
    }

    @Test("no server at the address: a temporary error at once, on every call")
    func unreachable() {
        let store = PostgresStore(uri: "postgresql://gatehouse@/gatehouse?host=/nonexistent-gatehouse&port=1")
        for _ in 0..<2 {
            #expect {
                _ = try store.user(named: "u")
            } throws: { error in
                (error as? PostgresError).map { $0.isTemporary && $0.event == "database_unavailable" } ?? false
            }
        }
    }

    @Test("hosts starting together: the migrations run once")
    func migrateOnce() throws {
        let uri = try freshSchema()
        let queue = DispatchQueue.global()
        let counts = Counts()
        let group = DispatchGroup()
        for _ in 0..<4 {
            queue.async(group: group) { counts.add((try? PostgresStore(uri: uri).migrate()) ?? -1) }
        }
        group.wait()
        #expect(counts.values.sorted() == [0, 0, 0, PostgresMigrations.latestVersion])
        #expect(try PostgresStore(uri: uri).schemaVersion() == PostgresMigrations.latestVersion)
    }
}

final class Counts: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [Int] = []
    func add(_ n: Int) { lock.lock(); items.append(n); lock.unlock() }
    var values: [Int] { lock.lock(); defer { lock.unlock() }; return items }
}
