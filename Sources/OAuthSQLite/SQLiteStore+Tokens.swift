import OAuthCore

extension SQLiteStore {
    // MARK: - codes

    public func insertCode(hash: [UInt8], _ c: AuthorizationCodeRecord) throws {
        // A code forgotten on power loss just fails at /token: not critical.
        try db.writeTransaction(critical: false) { try insertCodeRow(hash: hash, c) }
    }

    func insertCodeRow(hash: [UInt8], _ c: AuthorizationCodeRecord) throws {
        try db.run("""
            INSERT INTO codes (hash, client_id, user_id, scope, redirect_uri, code_challenge, code_challenge_method, expires_at,
                               nonce, auth_time)
            VALUES (?,?,?,?,?,?,?,?,?,?)
            """, [.blob(hash), .text(c.clientID), .int(c.userID), .text(Scope.string(c.scope)), .optional(c.redirectURI),
                  .optional(c.codeChallenge), .optional(c.codeChallengeMethod?.rawValue), .int(c.expiresAt), .optional(c.nonce),
                  .optional(c.authTime)])
    }

    /// Loads the code, lets the core decide, and applies the verdict, in one `BEGIN
    /// IMMEDIATE` transaction: two workers racing on one code cannot both redeem it.
    public func redeemCode(hash: [UInt8], now: Int64, decide: (StoredCode?) throws -> CodeVerdict) throws -> CodeVerdict {
        try db.writeTransaction {
            let stored = try loadCode(hash: hash)
            let verdict = try decide(stored)
            switch verdict {
            case .refuse:
                break
            case .revokeGrant:
                if let family = stored?.familyID { try revokeFamilyRows(family, now: now) }
            case .redeem(let tokens, let scope):
                guard let code = stored?.record else { break }
                let family = try insertFamily(clientID: code.clientID, userID: code.userID, scope: scope, now: now,
                                              expiresAt: max(tokens.familyExpiresAt, tokens.accessExpiresAt), authTime: code.authTime)
                try insertTokens(tokens, family: family, clientID: code.clientID, userID: code.userID, scope: scope,
                                 generation: 0, now: now)
                try db.run("UPDATE codes SET consumed_at = ?, family_id = ? WHERE hash = ?", [.int(now), .int(family), .blob(hash)])
            }
            return verdict
        }
    }

    public func peekCode(hash: [UInt8]) throws -> StoredCode? { try loadCode(hash: hash) }

    private func loadCode(hash: [UInt8]) throws -> StoredCode? {
        try db.queryOne("""
            SELECT c.client_id, c.user_id, u.username, c.scope, c.redirect_uri, c.code_challenge,
                   c.code_challenge_method, c.expires_at, c.consumed_at, c.family_id, u.disabled, c.nonce, c.auth_time,
                   u.subject
            FROM codes c JOIN users u ON u.id = c.user_id WHERE c.hash = ?
            """, [.blob(hash)]) { s in
            StoredCode(record: AuthorizationCodeRecord(
                clientID: s.text(0), userID: s.int(1), username: s.text(2), scope: Self.words(s.text(3)),
                redirectURI: s.optionalText(4), codeChallenge: s.optionalText(5),
                codeChallengeMethod: s.optionalText(6).flatMap(PKCE.Method.init(rawValue:)),
                expiresAt: s.int(7), consumed: s.optionalInt(8) != nil, userDisabled: s.int(10) != 0,
                nonce: s.optionalText(11), authTime: s.optionalInt(12), subject: s.optionalText(13) ?? ""),
                       familyID: s.optionalInt(9))
        }
    }

    // MARK: - issuing

    /// Starts a new grant (client_credentials, password) with its first tokens. Not a
    /// critical write: tokens forgotten on power loss only stop working (fail safe). A grant
    /// with neither user nor refresh token (client_credentials) is its access token alone:
    /// no family row (see migration 4).
    public func issue(_ grant: NewGrant) throws {
        let tokens = grant.tokens
        try db.writeTransaction(critical: false) {
            var family: Int64? = nil
            if grant.userID != nil || tokens.refreshHash != nil {
                family = try insertFamily(clientID: grant.clientID, userID: grant.userID, scope: grant.scope, now: grant.now,
                                          expiresAt: max(tokens.familyExpiresAt, tokens.accessExpiresAt), authTime: grant.authTime)
            }
            try insertTokens(tokens, family: family, clientID: grant.clientID, userID: grant.userID, scope: grant.scope,
                             generation: 0, now: grant.now)
        }
    }

    func insertFamily(clientID: String, userID: Int64?, scope: [String], now: Int64, expiresAt: Int64, authTime: Int64?) throws
        -> Int64
    {
        try db.run("INSERT INTO families (client_id, user_id, scope, created_at, expires_at, auth_time) VALUES (?,?,?,?,?,?)",
                   [.text(clientID), .optional(userID), .text(Scope.string(scope)), .int(now), .int(expiresAt),
                    .optional(authTime)])
        return db.lastInsertRowID
    }

    func insertTokens(_ t: NewTokens, family: Int64?, clientID: String, userID: Int64?, scope: [String], generation: Int64,
                      now: Int64) throws {
        let sql = """
            INSERT INTO tokens (hash, kind, family_id, client_id, user_id, scope, issued_at, expires_at, generation)
            VALUES (?,?,?,?,?,?,?,?,?)
            """
        let scopeText = Scope.string(scope)
        try db.run(sql, [.blob(t.accessHash), .int(0), .optional(family), .text(clientID), .optional(userID), .text(scopeText),
                         .int(now), .int(t.accessExpiresAt), .int(generation)])
        if let r = t.refreshHash {
            try db.run(sql, [.blob(r), .int(1), .optional(family), .text(clientID), .optional(userID), .text(scopeText),
                             .int(now), .int(t.refreshExpiresAt), .int(generation)])
        }
    }

    // MARK: - refresh rotation

    /// Loads the refresh token and its family, lets the core decide (RFC 6749 §6, RFC 9700
    /// §4.14.2), and applies the verdict, in one `BEGIN IMMEDIATE` transaction.
    public func rotateRefreshToken(hash: [UInt8], now: Int64, decide: (StoredRefreshToken?) throws -> RefreshVerdict) throws
        -> RefreshVerdict
    {
        try db.writeTransaction {
            let stored = try loadRefreshToken(hash: hash)
            let verdict = try decide(stored)
            switch verdict {
            case .refuse:
                break
            case .revokeFamily:
                if let family = stored?.record.familyID { try revokeFamilyRows(family, now: now) }
            case .rotate(let r):
                guard let stored else { break }
                let family = stored.record.familyID
                if r.withinGrace {
                    try db.run("UPDATE tokens SET grace_used_at = ? WHERE hash = ?", [.int(now), .blob(hash)])
                } else {
                    try db.run("UPDATE tokens SET rotated_at = ? WHERE family_id = ? AND kind = 1 AND rotated_at IS NULL",
                               [.int(now), .int(family)])
                    try db.run("UPDATE families SET refresh_generation = ? WHERE id = ?", [.int(r.generation), .int(family)])
                }
                try insertTokens(r.tokens, family: family, clientID: stored.record.clientID, userID: stored.userID,
                                 scope: r.scope, generation: r.generation, now: now)
            }
            return verdict
        }
    }

    public func peekRefreshToken(hash: [UInt8]) throws -> StoredRefreshToken? { try loadRefreshToken(hash: hash) }

    private func loadRefreshToken(hash: [UInt8]) throws -> StoredRefreshToken? {
        try db.queryOne("""
            SELECT t.client_id, t.user_id, u.username, t.scope, t.issued_at, t.expires_at, t.revoked_at,
                   t.rotated_at, t.family_id, t.generation, f.refresh_generation, f.expires_at, f.revoked_at,
                   f.scope, COALESCE(u.disabled, 0), t.grace_used_at, f.auth_time, u.subject
            FROM tokens t JOIN families f ON f.id = t.family_id LEFT JOIN users u ON u.id = t.user_id
            WHERE t.hash = ? AND t.kind = 1
            """, [.blob(hash)]) { s in
            StoredRefreshToken(
                record: TokenRecord(kind: .refresh, clientID: s.text(0), username: s.optionalText(2),
                                    scope: Self.words(s.text(3)), issuedAt: s.int(4), expiresAt: s.int(5),
                                    revoked: s.optionalInt(6) != nil || s.optionalInt(12) != nil,
                                    familyID: s.int(8), rotatedAt: s.optionalInt(7), subject: s.optionalText(17)),
                userID: s.optionalInt(1), userDisabled: s.int(14) != 0, generation: s.int(9), familyGeneration: s.int(10),
                familyExpiresAt: s.int(11), familyScope: Self.words(s.text(13)), graceUsed: s.optionalInt(15) != nil,
                authTime: s.optionalInt(16))
        }
    }

    // MARK: - lookup, revocation

    /// One indexed lookup by hash, no write: validation and introspection.
    public func token(hash: [UInt8]) throws -> TokenLookup? {
        try db.queryOne("""
            SELECT t.kind, t.client_id, u.username, t.scope, t.issued_at, t.expires_at, t.revoked_at, t.family_id,
                   t.rotated_at, COALESCE(u.disabled, 0), u.subject
            FROM tokens t LEFT JOIN users u ON u.id = t.user_id WHERE t.hash = ?
            """, [.blob(hash)]) { s in
            TokenLookup(record: TokenRecord(kind: s.int(0) == 1 ? .refresh : .access, clientID: s.text(1),
                                            username: s.optionalText(2), scope: Self.words(s.text(3)), issuedAt: s.int(4),
                                            expiresAt: s.int(5), revoked: s.optionalInt(6) != nil, familyID: s.optionalInt(7) ?? 0,
                                            rotatedAt: s.optionalInt(8), subject: s.optionalText(10)),
                        userDisabled: s.int(9) != 0)
        }
    }

    @discardableResult
    public func revokeToken(hash: [UInt8], now: Int64) throws -> Bool {
        try db.writeTransaction {
            try db.run("UPDATE tokens SET revoked_at = ? WHERE hash = ? AND revoked_at IS NULL", [.int(now), .blob(hash)]) == 1
        }
    }

    /// Operator revocation: every grant of a client or of a user. Answers the grants revoked
    /// (families, and a client's client_credentials tokens, which have none).
    public func revokeAll(clientID: String?, username: String?, now: Int64) throws -> Int {
        try db.writeTransaction {
            if let clientID {
                // client_credentials tokens have no family (a scan: an operator command, not a hot path).
                let single = try db.run("UPDATE tokens SET revoked_at = ? WHERE client_id = ? AND family_id IS NULL AND revoked_at IS NULL",
                                        [.int(now), .text(clientID)])
                return try revokeFamilies(where: "client_id = ?", [.text(clientID)], now: now) + single
            }
            if let username {
                return try revokeFamilies(where: "user_id = (SELECT id FROM users WHERE username = ?)", [.text(username)], now: now)
            }
            return 0
        }
    }

    public func revokeFamily(_ id: Int64, now: Int64) throws {
        try db.writeTransaction { try revokeFamilyRows(id, now: now) }
    }

    /// Inside a write transaction.
    func revokeFamilyRows(_ id: Int64, now: Int64) throws {
        try db.run("UPDATE families SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", [.int(now), .int(id)])
        try db.run("UPDATE tokens SET revoked_at = ? WHERE family_id = ? AND revoked_at IS NULL", [.int(now), .int(id)])
    }

    func revokeFamilies(where condition: String, _ bindings: [SQLValue], now: Int64) throws -> Int {
        let ids = try db.query("SELECT id FROM families WHERE revoked_at IS NULL AND \(condition)", bindings) { $0.int(0) }
        for id in ids { try revokeFamilyRows(id, now: now) }
        return ids.count
    }

    // MARK: - purge

    /// Deletes expired rows in batches of `batch`, each batch its own short transaction so
    /// /token never waits long behind the purge. Answers rows deleted per table.
    ///
    /// A family (one grant) goes with its last token: once no token row references it,
    /// nothing can be presented against it any more, so keeping it until the end of the
    /// refresh chain (`families.expires_at`, 30 days) only let a client that fetches a
    /// client_credentials token per call grow the database without bound. What still needs a
    /// family keeps a token row: a rotated refresh token stays (and so does its family) until
    /// it expires, so its replay is still detected and revokes the family; a revoked token
    /// stays until it expires, so it still answers as revoked. A code's `family_id` (replay
    /// revocation) becomes NULL: a replayed code then revokes nothing, and there is nothing
    /// left to revoke. Families are checked in the same transaction as the token batch that
    /// emptied them, so the check costs one index probe per deleted token, never a scan of
    /// every live family; families left empty some other way (older versions, a crash)
    /// still go when `expires_at` passes.
    public func purgeExpired(now: Int64, batch: Int, sessionIdleSeconds: Int64, progress: ((String, Int) -> Void)?)
        throws -> [String: Int]
    {
        precondition(batch > 0, "purge batch must be positive")
        var counts: [String: Int] = [:]
        func drain(_ table: String, _ step: () throws -> Int) throws {
            var total = 0
            while true {
                let n = try step()
                total += n
                if n > 0 { progress?(table, total) }
                if n < batch { break }
            }
            counts[table, default: 0] += total
        }
        let limit = SQLValue.int(Int64(batch))
        try drain("codes") {
            try db.writeTransaction {
                try db.run("DELETE FROM codes WHERE hash IN (SELECT hash FROM codes WHERE expires_at <= ?1 LIMIT ?2)", [.int(now), limit])
            }
        }
        var emptied = 0
        try drain("tokens") {
            try db.writeTransaction {
                let families = try db.query("""
                    DELETE FROM tokens WHERE hash IN (SELECT hash FROM tokens WHERE expires_at <= ?1 LIMIT ?2)
                    RETURNING family_id
                    """, [.int(now), limit]) { $0.optionalInt(0) }
                for id in Set(families.compactMap { $0 }) {
                    emptied += try db.run("DELETE FROM families WHERE id = ?1 AND NOT EXISTS (SELECT 1 FROM tokens WHERE family_id = ?1)",
                                          [.int(id)])
                }
                return families.count
            }
        }
        counts["families"] = emptied
        try drain("families") {
            try db.writeTransaction {
                try db.run("""
                    DELETE FROM families WHERE id IN (SELECT id FROM families f WHERE expires_at <= ?1
                        AND NOT EXISTS (SELECT 1 FROM tokens t WHERE t.family_id = f.id) LIMIT ?2)
                    """, [.int(now), limit])
            }
        }
        try drain("sessions") {
            try db.writeTransaction {
                try db.run("DELETE FROM sessions WHERE id_hash IN (SELECT id_hash FROM sessions WHERE last_seen_at <= ?1 LIMIT ?2)",
                           [.int(now - sessionIdleSeconds), limit])
            }
        }
        try drain("login_failures") {
            try db.writeTransaction {
                try db.run("""
                    DELETE FROM login_failures WHERE key IN (SELECT key FROM login_failures
                        WHERE locked_until <= ?1 AND window_start <= ?1 - 86400 LIMIT ?2)
                    """, [.int(now), limit])
            }
        }
        // Return the freed pages to the file system, a bounded step at a time.
        var pages = 0
        while let free = try db.queryOne("PRAGMA freelist_count", [], { $0.int(0) }), free > 0 {
            try db.execute("PRAGMA incremental_vacuum(\(batch))")
            let left = try db.queryOne("PRAGMA freelist_count", [], { $0.int(0) }) ?? free
            if left >= free { break }  // auto_vacuum is off for this file: nothing to release
            pages += Int(free - left)
            progress?("free pages", pages)
        }
        counts["pages_released"] = pages
        return counts
    }
}
