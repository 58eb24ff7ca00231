import OAuthCore

/// Everything Gatehouse keeps, in a PostgreSQL database shared by several hosts: the same
/// contract and semantics as `SQLiteStore`, each grant-level operation one transaction.
///
/// Atomicity across hosts comes from row locks in READ COMMITTED transactions: code
/// redemption locks the code row, refresh rotation the family row (then reads the token),
/// and every family revocation updates the family row before its tokens, so concurrent
/// steps on one grant queue behind each other and the next sees the committed state. A
/// deadlock (with the purge, which goes token → family) is retried (see
/// `PostgresConnection.transaction`). No SQL lives outside this module.
public final class PostgresStore: AuthorizationStore {
    public let db: PostgresConnection

    public init(uri: String, busyTimeoutMilliseconds: Int = 5000, durable: Bool = true) {
        db = PostgresConnection(uri: uri, busyTimeoutMilliseconds: busyTimeoutMilliseconds, durable: durable)
    }

    @discardableResult
    public func migrate() throws -> Int { try PostgresMigrations.apply(db) }

    public func schemaVersion() throws -> Int {
        guard try db.queryOne("SELECT to_regclass('gatehouse_migrations') IS NOT NULL", [], { $0.int(0) }) == 1 else { return 0 }
        return Int(try PostgresMigrations.version(db))
    }

    static func words(_ s: String) -> [String] { s.split(separator: " ").map(String.init) }
}

// MARK: - clients

extension PostgresStore {
    static let clientColumns = """
        id, name, secret_hash, redirect_uris, grant_types, scopes, default_scopes, require_pkce, resource_server,
        previous_secret_hash, previous_secret_expires_at, skip_consent, id_token_alg, post_logout_redirect_uris,
        access_token_format
        """

    static func client(_ r: PostgresRow) -> Client {
        var c = Client(id: r.text(0), name: r.text(1), secretHash: r.blob(2), redirectURIs: words(r.text(3)),
                       grantTypes: words(r.text(4)).compactMap(GrantType.init(rawValue:)), allowedScopes: words(r.text(5)),
                       defaultScopes: words(r.text(6)), requirePKCE: r.int(7) != 0, isResourceServer: r.int(8) != 0)
        c.previousSecretHash = r.blob(9)
        c.previousSecretExpiresAt = r.optionalInt(10)
        c.skipConsent = r.int(11) != 0
        c.idTokenAlgorithm = SigningAlgorithm(rawValue: r.text(12)) ?? .es256
        c.postLogoutRedirectURIs = words(r.text(13))
        c.accessTokenFormat = AccessTokenFormat(rawValue: r.text(14)) ?? .opaque
        return c
    }

    static func bindings(_ c: Client) -> [PGValue] {
        [.text(c.id), .text(c.name), c.secretHash.map { .blob($0) } ?? .null, .text(c.redirectURIs.joined(separator: " ")),
         .text(c.grantTypes.map(\.rawValue).joined(separator: " ")), .text(c.allowedScopes.joined(separator: " ")),
         .text(c.defaultScopes.joined(separator: " ")), .int(c.requirePKCE ? 1 : 0), .int(c.isResourceServer ? 1 : 0),
         c.previousSecretHash.map { .blob($0) } ?? .null, .optional(c.previousSecretExpiresAt), .int(c.skipConsent ? 1 : 0),
         .text(c.idTokenAlgorithm.rawValue), .text(c.postLogoutRedirectURIs.joined(separator: " ")),
         .text(c.accessTokenFormat.rawValue)]
    }

    public func insertClient(_ c: Client, now: Int64) throws -> Bool {
        try db.run("""
            INSERT INTO clients (\(Self.clientColumns), created_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16)
            ON CONFLICT (id) DO NOTHING
            """, Self.bindings(c) + [.int(now)]) == 1
    }

    public func client(id: String) throws -> Client? {
        try db.queryOne("SELECT \(Self.clientColumns) FROM clients WHERE id = $1", [.text(id)], Self.client)
    }

    public func clients() throws -> [Client] {
        try db.query("SELECT \(Self.clientColumns) FROM clients ORDER BY created_at, id", [], Self.client)
    }

    public func updateClient(_ c: Client) throws -> Bool {
        try db.run("""
            UPDATE clients SET name = $2, secret_hash = $3, redirect_uris = $4, grant_types = $5, scopes = $6,
                default_scopes = $7, require_pkce = $8, resource_server = $9, previous_secret_hash = $10,
                previous_secret_expires_at = $11, skip_consent = $12, id_token_alg = $13, post_logout_redirect_uris = $14,
                access_token_format = $15 WHERE id = $1
            """, Self.bindings(c)) == 1
    }

    /// Its codes, grants and tokens go with it (foreign keys cascade).
    public func removeClient(id: String) throws -> Bool {
        try db.run("DELETE FROM clients WHERE id = $1", [.text(id)]) == 1
    }
}

// MARK: - users

extension PostgresStore {
    static let userColumns = """
        id, username, password_hash, disabled, subject, email, email_verified, name, given_name, family_name, updated_at
        """

    static func user(_ r: PostgresRow) -> User {
        User(id: r.int(0), username: r.text(1), passwordHash: r.text(2), disabled: r.int(3) != 0, subject: r.text(4),
             profile: UserProfile(email: r.optionalText(5), emailVerified: r.int(6) != 0, name: r.optionalText(7),
                                  givenName: r.optionalText(8), familyName: r.optionalText(9), updatedAt: r.optionalInt(10)))
    }

    static func bindings(_ p: UserProfile) -> [PGValue] {
        [.optional(p.email), .int(p.emailVerified ? 1 : 0), .optional(p.name), .optional(p.givenName), .optional(p.familyName),
         .optional(p.updatedAt)]
    }

    /// Adds a user; nil when the name (or subject) is taken. A transaction, so the commit
    /// is durable (`run` alone answers no id).
    public func insertUser(username: String, passwordHash: String, subject: String, profile: UserProfile, now: Int64) throws
        -> Int64?
    {
        try db.transaction {
            try db.queryOne("""
                INSERT INTO users (username, password_hash, created_at, subject, email, email_verified, name, given_name,
                                   family_name, updated_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                ON CONFLICT DO NOTHING RETURNING id
                """, [.text(username), .text(passwordHash), .int(now), .text(subject)] + Self.bindings(profile)) { $0.int(0) }
        }
    }

    public func updateProfile(username: String, _ profile: UserProfile) throws -> Bool {
        try db.run("""
            UPDATE users SET email = $2, email_verified = $3, name = $4, given_name = $5, family_name = $6, updated_at = $7
            WHERE username = $1
            """, [.text(username)] + Self.bindings(profile)) == 1
    }

    public func user(named username: String) throws -> User? {
        try db.queryOne("SELECT \(Self.userColumns) FROM users WHERE username = $1", [.text(username)], Self.user)
    }

    public func user(id: Int64) throws -> User? {
        try db.queryOne("SELECT \(Self.userColumns) FROM users WHERE id = $1", [.int(id)], Self.user)
    }

    public func users() throws -> [User] {
        try db.query("SELECT \(Self.userColumns) FROM users ORDER BY username", [], Self.user)
    }

    /// With `endGrants` (a reset after a compromise, RFC 9700 §4.14.2) the user's sessions
    /// end and grants are revoked in the same transaction.
    public func setPassword(username: String, passwordHash: String, endGrants: Bool, now: Int64) throws -> Int? {
        try db.transaction {
            guard let id = try db.queryOne("UPDATE users SET password_hash = $1 WHERE username = $2 RETURNING id",
                                           [.text(passwordHash), .text(username)], { $0.int(0) })
            else { return nil }
            guard endGrants else { return 0 }
            try db.run("DELETE FROM sessions WHERE user_id = $1", [.int(id)])
            return try revokeFamilies(userID: id, now: now)
        }
    }

    /// Disabling also ends the user's sessions and revokes their grants.
    public func setDisabled(username: String, _ disabled: Bool, now: Int64) throws -> Bool {
        try db.transaction {
            guard let id = try db.queryOne("UPDATE users SET disabled = $1 WHERE username = $2 RETURNING id",
                                           [.int(disabled ? 1 : 0), .text(username)], { $0.int(0) })
            else { return false }
            if disabled {
                try db.run("DELETE FROM sessions WHERE user_id = $1", [.int(id)])
                _ = try revokeFamilies(userID: id, now: now)
            }
            return true
        }
    }

    public func removeUser(username: String) throws -> Bool {
        try db.run("DELETE FROM users WHERE username = $1", [.text(username)]) == 1
    }
}

// MARK: - browser sessions, consent, login throttling

extension PostgresStore {
    public func session(idHash: [UInt8]) throws -> SessionRecord? {
        try db.queryOne("""
            SELECT s.csrf, s.user_id, s.authenticated_at, s.created_at, s.last_seen_at
            FROM sessions s LEFT JOIN users u ON u.id = s.user_id
            WHERE s.id_hash = $1 AND (s.user_id IS NULL OR u.disabled = 0)
            """, [.blob(idHash)]) {
            SessionRecord(csrf: $0.text(0), userID: $0.optionalInt(1), authenticatedAt: $0.optionalInt(2),
                          createdAt: $0.int(3), lastSeenAt: $0.int(4))
        }
    }

    public func touchSession(idHash: [UInt8], now: Int64) throws {
        try db.run("UPDATE sessions SET last_seen_at = $1 WHERE id_hash = $2", [.int(now), .blob(idHash)], critical: false)
    }

    /// Login: the old row is dropped and a new id issued (session fixation, CWE-384). False,
    /// and nothing written, when the old row is already gone (a concurrent submission won:
    /// the DELETE waits for its commit and then finds nothing).
    public func replaceSession(oldIDHash: [UInt8]?, newIDHash: [UInt8], csrf: String, userID: Int64, now: Int64) throws -> Bool {
        try db.transaction(critical: false) {
            if let oldIDHash {
                guard try db.run("DELETE FROM sessions WHERE id_hash = $1", [.blob(oldIDHash)]) == 1 else { return false }
            }
            try db.run("""
                INSERT INTO sessions (id_hash, csrf, user_id, authenticated_at, created_at, last_seen_at)
                VALUES ($1, $2, $3, $4, $4, $4)
                """, [.blob(newIDHash), .text(csrf), .int(userID), .int(now)])
            return true
        }
    }

    /// Compare-and-set in one statement: of two concurrent submissions of one form, the
    /// second waits for the first's row lock, re-checks `csrf` and changes nothing.
    public func rotateCSRF(idHash: [UInt8], from old: String, to new: String) throws -> Bool {
        try db.run("UPDATE sessions SET csrf = $1 WHERE id_hash = $2 AND csrf = $3", [.text(new), .blob(idHash), .text(old)],
                   critical: false) == 1
    }

    public func deleteSession(idHash: [UInt8]) throws {
        try db.run("DELETE FROM sessions WHERE id_hash = $1", [.blob(idHash)])
    }

    public func hasConsent(userID: Int64, clientID: String, scope: [String]) throws -> Bool {
        try db.queryOne("SELECT 1 FROM consents WHERE user_id = $1 AND client_id = $2 AND scope = $3",
                        [.int(userID), .text(clientID), .text(scope.sorted().joined(separator: " "))]) { _ in true } ?? false
    }

    public func saveConsent(userID: Int64, clientID: String, scope: [String], now: Int64) throws {
        try db.run("""
            INSERT INTO consents (user_id, client_id, scope, granted_at) VALUES ($1, $2, $3, $4)
            ON CONFLICT (user_id, client_id, scope) DO UPDATE SET granted_at = excluded.granted_at
            """, [.int(userID), .text(clientID), .text(scope.sorted().joined(separator: " ")), .int(now)], critical: false)
    }

    public func lockedUntil(keys: [String], now: Int64) throws -> Int64? {
        var until: Int64? = nil
        for key in keys {
            if let t = try db.queryOne("SELECT locked_until FROM login_failures WHERE key = $1 AND locked_until > $2",
                                       [.text(key), .int(now)], { $0.int(0) }) {
                until = max(until ?? 0, t)
            }
        }
        return until
    }

    /// Counts one failed login against each key, atomically across workers and hosts: the
    /// upsert locks the key's row, so concurrent failures queue and none is lost. A key that
    /// reaches `limit` failures within `window` seconds is locked for `lockout` seconds.
    public func recordLoginFailure(keys: [String], now: Int64, limit: Int, window: Int64, lockout: Int64) throws {
        try db.transaction(critical: false) {
            // In a fixed order, so two requests counting the same keys cannot deadlock.
            for key in keys.sorted() {
                try db.run("""
                    INSERT INTO login_failures AS f (key, failures, window_start) VALUES ($1, 1, $2)
                    ON CONFLICT (key) DO UPDATE SET
                        failures = CASE WHEN f.window_start <= $2 - $3 THEN 1 ELSE f.failures + 1 END,
                        window_start = CASE WHEN f.window_start <= $2 - $3 THEN $2 ELSE f.window_start END
                    """, [.text(key), .int(now), .int(window)])
                try db.run("""
                    UPDATE login_failures SET locked_until = $2 + $4, failures = 0, window_start = $2
                    WHERE key = $1 AND failures >= $3
                    """, [.text(key), .int(now), .int(Int64(limit)), .int(lockout)])
            }
        }
    }

    public func clearLoginFailures(key: String) throws {
        try db.run("DELETE FROM login_failures WHERE key = $1", [.text(key)], critical: false)
    }
}

// MARK: - signing keys

extension PostgresStore {
    public func signingKeys() throws -> [StoredSigningKey] {
        try db.query("SELECT kid, alg, private_key, created_at, active_from, retired_at FROM signing_keys ORDER BY created_at, kid") { r in
            StoredSigningKey(id: r.text(0), algorithm: SigningAlgorithm(rawValue: r.text(1)) ?? .es256,
                             sealedPrivateKey: r.blob(2) ?? [], createdAt: r.int(3), activeFrom: r.int(4), retiredAt: r.optionalInt(5))
        }
    }

    public func insertSigningKey(_ key: StoredSigningKey) throws {
        try db.transaction {
            _ = try db.run("INSERT INTO signing_keys (kid, alg, private_key, created_at, active_from, retired_at) VALUES ($1,$2,$3,$4,$5,$6)",
                           [.text(key.id), .text(key.algorithm.rawValue), .blob(key.sealedPrivateKey), .int(key.createdAt),
                            .int(key.activeFrom), .optional(key.retiredAt)])
        }
    }

    public func retireSigningKey(id: String, now: Int64) throws -> Bool {
        try db.transaction {
            try db.run("UPDATE signing_keys SET retired_at = $1 WHERE kid = $2 AND retired_at IS NULL", [.int(now), .text(id)]) == 1
        }
    }
}

extension PostgresStore {
    public func liveTokenCount(now: Int64) throws -> Int {
        Int(try db.queryOne("SELECT count(*) FROM tokens WHERE expires_at > $1", [.int(now)]) { $0.int(0) } ?? 0)
    }
}
