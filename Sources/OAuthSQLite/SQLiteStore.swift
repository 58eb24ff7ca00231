import OAuthCore

/// Everything Gatehouse keeps, behind grant-level operations that are each one
/// transaction. No SQL lives outside this module.
public final class SQLiteStore: AuthorizationStore {
    public let db: Connection

    public init(path: String, busyTimeoutMilliseconds: Int32 = 5000, durable: Bool = true) throws {
        db = try Connection(path: path, busyTimeoutMilliseconds: busyTimeoutMilliseconds, durable: durable)
    }

    /// Applies pending migrations (master before fork, or `gatehouse migrate`).
    @discardableResult
    public func migrate() throws -> Int { try Migrations.apply(db) }

    public func liveTokenCount(now: Int64) throws -> Int {
        Int(try db.queryOne("SELECT count(*) FROM tokens WHERE expires_at > ?", [.int(now)]) { $0.int(0) } ?? 0)
    }

    /// The schema version of the open database.
    public func schemaVersion() throws -> Int { Int(try db.queryOne("PRAGMA user_version") { $0.int(0) } ?? 0) }

    static func words(_ s: String) -> [String] { s.split(separator: " ").map(String.init) }
}

// MARK: - clients

extension SQLiteStore {
    static let clientColumns = """
        id, name, secret_hash, redirect_uris, grant_types, scopes, default_scopes, require_pkce, resource_server,
        previous_secret_hash, previous_secret_expires_at, skip_consent, id_token_alg, post_logout_redirect_uris,
        access_token_format
        """

    static func client(_ s: Statement) -> Client {
        var c = Client(id: s.text(0), name: s.text(1), secretHash: s.blob(2), redirectURIs: words(s.text(3)),
                       grantTypes: words(s.text(4)).compactMap(GrantType.init(rawValue:)), allowedScopes: words(s.text(5)),
                       defaultScopes: words(s.text(6)), requirePKCE: s.int(7) != 0, isResourceServer: s.int(8) != 0)
        c.previousSecretHash = s.blob(9)
        c.previousSecretExpiresAt = s.optionalInt(10)
        c.skipConsent = s.int(11) != 0
        c.idTokenAlgorithm = SigningAlgorithm(rawValue: s.text(12)) ?? .es256
        c.postLogoutRedirectURIs = words(s.text(13))
        c.accessTokenFormat = AccessTokenFormat(rawValue: s.text(14)) ?? .opaque
        return c
    }

    static func bindings(_ c: Client) -> [SQLValue] {
        [.text(c.id), .text(c.name), c.secretHash.map { .blob($0) } ?? .null, .text(c.redirectURIs.joined(separator: " ")),
         .text(c.grantTypes.map(\.rawValue).joined(separator: " ")), .text(c.allowedScopes.joined(separator: " ")),
         .text(c.defaultScopes.joined(separator: " ")), .int(c.requirePKCE ? 1 : 0), .int(c.isResourceServer ? 1 : 0),
         c.previousSecretHash.map { .blob($0) } ?? .null, .optional(c.previousSecretExpiresAt), .int(c.skipConsent ? 1 : 0),
         .text(c.idTokenAlgorithm.rawValue), .text(c.postLogoutRedirectURIs.joined(separator: " ")),
         .text(c.accessTokenFormat.rawValue)]
    }

    /// Adds a client; false when the id is taken.
    public func insertClient(_ c: Client, now: Int64) throws -> Bool {
        do {
            try db.run("INSERT INTO clients (\(Self.clientColumns), created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                       Self.bindings(c) + [.int(now)])
            return true
        } catch let e as SQLiteError where e.isConstraint {
            return false
        }
    }

    public func client(id: String) throws -> Client? {
        try db.queryOne("SELECT \(Self.clientColumns) FROM clients WHERE id = ?", [.text(id)], Self.client)
    }

    public func clients() throws -> [Client] {
        try db.query("SELECT \(Self.clientColumns) FROM clients ORDER BY created_at, id", [], Self.client)
    }

    /// Replaces a client's settings (and secret hash); false when it does not exist.
    public func updateClient(_ c: Client) throws -> Bool {
        try db.run("""
            UPDATE clients SET name = ?2, secret_hash = ?3, redirect_uris = ?4, grant_types = ?5, scopes = ?6,
                default_scopes = ?7, require_pkce = ?8, resource_server = ?9, previous_secret_hash = ?10,
                previous_secret_expires_at = ?11, skip_consent = ?12, id_token_alg = ?13, post_logout_redirect_uris = ?14,
                access_token_format = ?15 WHERE id = ?1
            """, Self.bindings(c)) == 1
    }

    /// Removes a client; its codes, grants and tokens go with it (foreign keys cascade).
    public func removeClient(id: String) throws -> Bool {
        try db.writeTransaction { try db.run("DELETE FROM clients WHERE id = ?", [.text(id)]) == 1 }
    }
}

// MARK: - users

extension SQLiteStore {
    static let userColumns = """
        id, username, password_hash, disabled, subject, email, email_verified, name, given_name, family_name, updated_at
        """

    static func user(_ s: Statement) -> User {
        User(id: s.int(0), username: s.text(1), passwordHash: s.text(2), disabled: s.int(3) != 0, subject: s.optionalText(4) ?? "",
             profile: UserProfile(email: s.optionalText(5), emailVerified: s.int(6) != 0, name: s.optionalText(7),
                                  givenName: s.optionalText(8), familyName: s.optionalText(9), updatedAt: s.optionalInt(10)))
    }

    static func bindings(_ p: UserProfile) -> [SQLValue] {
        [.optional(p.email), .int(p.emailVerified ? 1 : 0), .optional(p.name), .optional(p.givenName), .optional(p.familyName),
         .optional(p.updatedAt)]
    }

    /// Adds a user; nil when the name is taken.
    public func insertUser(username: String, passwordHash: String, subject: String, profile: UserProfile, now: Int64) throws
        -> Int64?
    {
        do {
            try db.run("""
                INSERT INTO users (username, password_hash, created_at, subject, email, email_verified, name, given_name,
                                   family_name, updated_at)
                VALUES (?,?,?,?,?,?,?,?,?,?)
                """, [.text(username), .text(passwordHash), .int(now), .text(subject)] + Self.bindings(profile))
            return db.lastInsertRowID
        } catch let e as SQLiteError where e.isConstraint {
            return nil
        }
    }

    public func updateProfile(username: String, _ profile: UserProfile) throws -> Bool {
        try db.run("""
            UPDATE users SET email = ?2, email_verified = ?3, name = ?4, given_name = ?5, family_name = ?6, updated_at = ?7
            WHERE username = ?1
            """, [.text(username)] + Self.bindings(profile)) == 1
    }

    public func user(named username: String) throws -> User? {
        try db.queryOne("SELECT \(Self.userColumns) FROM users WHERE username = ?", [.text(username)], Self.user)
    }

    public func user(id: Int64) throws -> User? {
        try db.queryOne("SELECT \(Self.userColumns) FROM users WHERE id = ?", [.int(id)], Self.user)
    }

    public func users() throws -> [User] {
        try db.query("SELECT \(Self.userColumns) FROM users ORDER BY username", [], Self.user)
    }

    /// Sets a user's password. With `endGrants` (a reset after a compromise: RFC 9700
    /// §4.14.2 names a password change as a reason to revoke refresh tokens) their sessions
    /// end and their grants are revoked in the same transaction. nil when there is no such
    /// user, else the number of grants revoked.
    public func setPassword(username: String, passwordHash: String, endGrants: Bool, now: Int64) throws -> Int? {
        try db.writeTransaction {
            guard try db.run("UPDATE users SET password_hash = ? WHERE username = ?", [.text(passwordHash), .text(username)]) == 1
            else { return nil }
            guard endGrants else { return 0 }
            try db.run("DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE username = ?)", [.text(username)])
            return try revokeFamilies(where: "user_id = (SELECT id FROM users WHERE username = ?)", [.text(username)], now: now)
        }
    }

    /// Disabling a user also ends their sessions and revokes their grants: nothing they
    /// hold keeps working.
    public func setDisabled(username: String, _ disabled: Bool, now: Int64) throws -> Bool {
        try db.writeTransaction {
            guard try db.run("UPDATE users SET disabled = ? WHERE username = ?", [.int(disabled ? 1 : 0), .text(username)]) == 1
            else { return false }
            if disabled {
                try db.run("DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE username = ?)", [.text(username)])
                _ = try revokeFamilies(where: "user_id = (SELECT id FROM users WHERE username = ?)", [.text(username)], now: now)
            }
            return true
        }
    }

    public func removeUser(username: String) throws -> Bool {
        try db.writeTransaction { try db.run("DELETE FROM users WHERE username = ?", [.text(username)]) == 1 }
    }
}

// MARK: - browser sessions, consent, login throttling

extension SQLiteStore {
    func insertSession(idHash: [UInt8], csrf: String, userID: Int64?, now: Int64) throws {
        try db.run("INSERT INTO sessions (id_hash, csrf, user_id, authenticated_at, created_at, last_seen_at) VALUES (?,?,?,?,?,?)",
                   [.blob(idHash), .text(csrf), .optional(userID), .optional(userID == nil ? nil : now), .int(now), .int(now)])
    }

    public func session(idHash: [UInt8]) throws -> SessionRecord? {
        try db.queryOne("""
            SELECT s.csrf, s.user_id, s.authenticated_at, s.created_at, s.last_seen_at
            FROM sessions s LEFT JOIN users u ON u.id = s.user_id
            WHERE s.id_hash = ? AND (s.user_id IS NULL OR u.disabled = 0)
            """, [.blob(idHash)]) {
            SessionRecord(csrf: $0.text(0), userID: $0.optionalInt(1), authenticatedAt: $0.optionalInt(2),
                          createdAt: $0.int(3), lastSeenAt: $0.int(4))
        }
    }

    public func touchSession(idHash: [UInt8], now: Int64) throws {
        _ = try db.writeTransaction(critical: false) {
            try db.run("UPDATE sessions SET last_seen_at = ? WHERE id_hash = ?", [.int(now), .blob(idHash)])
        }
    }

    /// Login: the old session row is dropped and a new id issued (session fixation, CWE-384).
    /// False, and nothing written, when the old row is already gone: a concurrent
    /// submission of the same login form won.
    public func replaceSession(oldIDHash: [UInt8]?, newIDHash: [UInt8], csrf: String, userID: Int64, now: Int64) throws -> Bool {
        try db.writeTransaction(critical: false) {
            if let oldIDHash {
                try db.run("DELETE FROM sessions WHERE id_hash = ?", [.blob(oldIDHash)])
                if db.changes != 1 { return false }
            }
            try insertSession(idHash: newIDHash, csrf: csrf, userID: userID, now: now)
            return true
        }
    }

    /// Replaces the session's CSRF token `old` by `new`, so a submitted form cannot be
    /// submitted again. Compare-and-set in one statement: of two concurrent submissions of
    /// one form, exactly one gets true.
    public func rotateCSRF(idHash: [UInt8], from old: String, to new: String) throws -> Bool {
        try db.writeTransaction(critical: false) {
            try db.run("UPDATE sessions SET csrf = ? WHERE id_hash = ? AND csrf = ?", [.text(new), .blob(idHash), .text(old)])
            return db.changes == 1
        }
    }

    public func deleteSession(idHash: [UInt8]) throws {
        try db.run("DELETE FROM sessions WHERE id_hash = ?", [.blob(idHash)])
    }

    public func hasConsent(userID: Int64, clientID: String, scope: [String]) throws -> Bool {
        try db.queryOne("SELECT 1 FROM consents WHERE user_id = ? AND client_id = ? AND scope = ?",
                        [.int(userID), .text(clientID), .text(scope.sorted().joined(separator: " "))]) { _ in true } ?? false
    }

    public func saveConsent(userID: Int64, clientID: String, scope: [String], now: Int64) throws {
        _ = try db.writeTransaction(critical: false) {
            try db.run("INSERT OR REPLACE INTO consents (user_id, client_id, scope, granted_at) VALUES (?,?,?,?)",
                       [.int(userID), .text(clientID), .text(scope.sorted().joined(separator: " ")), .int(now)])
        }
    }

    /// The time until which any of `keys` is locked out, if it is.
    public func lockedUntil(keys: [String], now: Int64) throws -> Int64? {
        var until: Int64? = nil
        for key in keys {
            if let t = try db.queryOne("SELECT locked_until FROM login_failures WHERE key = ? AND locked_until > ?",
                                       [.text(key), .int(now)], { $0.int(0) }) {
                until = max(until ?? 0, t)
            }
        }
        return until
    }

    /// Counts one failed login against each key, atomically across workers; a key that
    /// reaches `limit` failures within `window` seconds is locked for `lockout` seconds.
    public func recordLoginFailure(keys: [String], now: Int64, limit: Int, window: Int64, lockout: Int64) throws {
        try db.writeTransaction(critical: false) {
            for key in keys {
                try db.run("""
                    INSERT INTO login_failures (key, failures, window_start) VALUES (?1, 1, ?2)
                    ON CONFLICT(key) DO UPDATE SET
                        failures = CASE WHEN window_start <= ?2 - ?3 THEN 1 ELSE failures + 1 END,
                        window_start = CASE WHEN window_start <= ?2 - ?3 THEN ?2 ELSE window_start END
                    """, [.text(key), .int(now), .int(window)])
                try db.run("UPDATE login_failures SET locked_until = ?2 + ?4, failures = 0, window_start = ?2 WHERE key = ?1 AND failures >= ?3",
                           [.text(key), .int(now), .int(Int64(limit)), .int(lockout)])
            }
        }
    }

    public func clearLoginFailures(key: String) throws {
        _ = try db.writeTransaction(critical: false) { try db.run("DELETE FROM login_failures WHERE key = ?", [.text(key)]) }
    }
}

// MARK: - signing keys

extension SQLiteStore {
    public func signingKeys() throws -> [StoredSigningKey] {
        try db.query("SELECT kid, alg, private_key, created_at, active_from, retired_at FROM signing_keys ORDER BY created_at, kid") { s in
            StoredSigningKey(id: s.text(0), algorithm: SigningAlgorithm(rawValue: s.text(1)) ?? .es256,
                             sealedPrivateKey: s.blob(2) ?? [], createdAt: s.int(3), activeFrom: s.int(4), retiredAt: s.optionalInt(5))
        }
    }

    public func insertSigningKey(_ key: StoredSigningKey) throws {
        _ = try db.writeTransaction {
            try db.run("INSERT INTO signing_keys (kid, alg, private_key, created_at, active_from, retired_at) VALUES (?,?,?,?,?,?)",
                       [.text(key.id), .text(key.algorithm.rawValue), .blob(key.sealedPrivateKey), .int(key.createdAt),
                        .int(key.activeFrom), .optional(key.retiredAt)])
        }
    }

    public func retireSigningKey(id: String, now: Int64) throws -> Bool {
        try db.writeTransaction {
            try db.run("UPDATE signing_keys SET retired_at = ? WHERE kid = ? AND retired_at IS NULL", [.int(now), .text(id)]) == 1
        }
    }
}

/// Busy, locked and full-disk errors are temporary (503); the rest are server errors.
extension SQLiteError: StorageFailure {}
