import Foundation
import MemoryStore
import OAuthCore
import OAuthCrypto
import OAuthPostgres
import OAuthSQLite
import Testing

/// A backend under test. Every contract test runs once per case.
enum Backend: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case sqlite, memory, postgresql

    /// PostgreSQL runs when `GATEHOUSE_TEST_POSTGRES` is a libpq URI of a database the suite
    /// may fill with schemas (scripts/test.sh starts a throwaway cluster and sets it).
    static let postgresURI = ProcessInfo.processInfo.environment["GATEHOUSE_TEST_POSTGRES"].flatMap { $0.isEmpty ? nil : $0 }

    static var allCases: [Backend] { postgresURI == nil ? [.sqlite, .memory] : [.sqlite, .memory, .postgresql] }

    var testDescription: String { rawValue }

    /// A fresh, migrated, empty store.
    func open() throws -> Harness {
        switch self {
        case .sqlite:
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gh-contract-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            let path = dir + "/test.db"
            let store = try SQLiteStore(path: path)
            try store.migrate()
            return Harness(store: store, another: { try SQLiteStore(path: path) }, rows: { table in
                try store.db.queryOne("SELECT count(*) FROM \(table)") { Int($0.int(0)) } ?? -1
            })
        case .memory:
            let store = MemoryStore()
            return Harness(store: store, another: { store }, rows: { store.rowCount($0) })
        case .postgresql:
            // Each test in a schema of its own, so tests run in parallel on one database.
            let base = try #require(Self.postgresURI)
            let schema = "gh_contract_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
            try PostgresStore(uri: base).db.script("CREATE SCHEMA \(schema)")
            let uri = base + (base.contains("?") ? "&" : "?") + "options=-csearch_path%3D" + schema
            let store = PostgresStore(uri: uri)
            try store.migrate()
            return Harness(store: store, another: { PostgresStore(uri: uri) }, rows: { table in
                try store.db.queryOne("SELECT count(*) FROM \(table)") { Int($0.int(0)) } ?? -1
            })
        }
    }
}

/// A store, a way to reach the same data from another connection (another worker), and
/// row counts for the tests that check what a purge leaves.
struct Harness: @unchecked Sendable {
    let store: any AuthorizationStore
    let another: () throws -> any AuthorizationStore
    let rows: (String) throws -> Int
}

let client1 = Client(id: "c1", name: "C", secretHash: [1], redirectURIs: ["https://c.example/cb"],
                     grantTypes: [.authorizationCode, .refreshToken, .password, .clientCredentials], allowedScopes: ["A", "B"],
                     defaultScopes: ["A"])
let client2 = Client(id: "c2", name: "C2", secretHash: [2], redirectURIs: ["https://c2.example/cb"],
                     grantTypes: [.authorizationCode, .refreshToken], allowedScopes: ["A"], defaultScopes: ["A"])

/// Two clients and one user; answers the user's id.
func seed(_ store: any AuthorizationStore) throws -> Int64 {
    _ = try store.insertClient(client1, now: 0)
    _ = try store.insertClient(client2, now: 0)
    return try #require(try store.insertUser(username: "john@org", passwordHash: "x", now: 0))
}

func h(_ token: String) -> [UInt8] { Digest.sha256(token) }

func plan(_ access: String, _ refresh: String?, now: Int64 = 100, familyEnd: Int64? = nil) -> NewTokens {
    NewTokens(accessHash: h(access), accessExpiresAt: now + 3600, refreshHash: refresh.map(h), refreshExpiresAt: now + 7200,
              familyExpiresAt: familyEnd ?? now + 86_400)
}

func grant(_ store: any AuthorizationStore, user: Int64?, _ tokens: NewTokens, client: String = "c1", scope: [String] = ["A"],
           now: Int64 = 100) throws {
    try store.issue(NewGrant(clientID: client, userID: user, scope: scope, tokens: tokens, now: now))
}

func code(_ store: any AuthorizationStore, _ name: String, user: Int64, expiresAt: Int64 = 1000) throws {
    try store.insertCode(hash: h(name), AuthorizationCodeRecord(
        clientID: "c1", userID: user, username: "", scope: ["A"], redirectURI: nil, codeChallenge: nil,
        codeChallengeMethod: nil, expiresAt: expiresAt))
}

/// Redeems a code under the core's rules (AuthorizationCodeGrant.decide).
func redeem(_ store: any AuthorizationStore, _ name: String, by client: Client = client1, now: Int64 = 100,
            _ tokens: NewTokens) throws -> CodeVerdict {
    try store.redeemCode(hash: h(name), now: now) {
        try AuthorizationCodeGrant.decide($0, client: client, redirectURI: nil, codeVerifier: nil, now: now) { _ in tokens }
    }
}

/// Rotates a refresh token under the core's rules (RefreshTokenGrant.decide).
func rotate(_ store: any AuthorizationStore, _ name: String, by client: Client = client1, now: Int64, grace: Int64 = 0,
            scope: String? = nil, into access: String, _ refresh: String) throws -> RefreshVerdict {
    try store.rotateRefreshToken(hash: h(name), now: now) {
        try RefreshTokenGrant.decide($0, client: client, requestedScope: scope, now: now, graceSeconds: grace) { stored, _ in
            plan(access, refresh, now: now, familyEnd: stored.familyExpiresAt)
        }
    }
}

extension CodeVerdict {
    var redeemed: Bool { if case .redeem = self { true } else { false } }
}

extension RefreshVerdict {
    var rotatedScope: [String]? { if case .rotate(let r) = self { r.scope } else { nil } }
    var revokedFamily: Bool { if case .revokeFamily = self { true } else { false } }
}

final class ResultBox: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [String] = []
    func add(_ s: String) { lock.lock(); items.append(s); lock.unlock() }
    var values: [String] { lock.lock(); defer { lock.unlock() }; return items }
    var count: Int { values.count }
}
