import OAuthCore

extension PostgresStore {
    // MARK: - codes

    /// A code forgotten in a server crash just fails at /token: not critical.
    public func insertCode(hash: [UInt8], _ c: AuthorizationCodeRecord) throws {
        try db.run("""
            INSERT INTO codes (hash, client_id, user_id, scope, redirect_uri, code_challenge, code_challenge_method, expires_at,
                               nonce, auth_time)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
            """, [.blob(hash), .text(c.clientID), .int(c.userID), .text(Scope.string(c.scope)), .optional(c.redirectURI),
                  .optional(c.codeChallenge), .optional(c.codeChallengeMethod?.rawValue), .int(c.expiresAt), .optional(c.nonce),
                  .optional(c.authTime)], critical: false)
    }

    /// Loads the code under a row lock, lets the core decide, and applies the verdict in the
    /// same transaction: a concurrent redemption on any host waits for the lock, then reads
    /// the code as consumed.
    public func redeemCode(hash: [UInt8], now: Int64, decide: (StoredCode?) throws -> CodeVerdict) throws -> CodeVerdict {
        try db.transaction {
            let stored = try loadCode(hash: hash, forUpdate: true)
            let verdict = try decide(stored)
            switch verdict {
            case .refuse:
                break
            case .revokeGrant:
                if let family = stored?.familyID { try revokeFamilyRows(family, now: now) }
            case .redeem(let tokens, let scope):
                guard let code = stored?.record else { break }
                try insertGrant(tokens, clientID: code.clientID, userID: code.userID, scope: scope, now: now,
                                authTime: code.authTime, consuming: hash)
            }
            return verdict
        }
    }

    public func peekCode(hash: [UInt8]) throws -> StoredCode? { try loadCode(hash: hash, forUpdate: false) }

    /// The code with its user; `forUpdate`: under a row lock, inside the redeeming transaction.
    private func loadCode(hash: [UInt8], forUpdate: Bool) throws -> StoredCode? {
        try db.queryOne("""
            SELECT c.client_id, c.user_id, u.username, c.scope, c.redirect_uri, c.code_challenge,
                   c.code_challenge_method, c.expires_at, c.consumed_at, c.family_id, u.disabled, c.nonce, c.auth_time,
                   u.subject
            FROM codes c JOIN users u ON u.id = c.user_id WHERE c.hash = $1\(forUpdate ? " FOR UPDATE OF c" : "")
            """, [.blob(hash)]) { r in
            StoredCode(record: AuthorizationCodeRecord(
                clientID: r.text(0), userID: r.int(1), username: r.text(2), scope: Self.words(r.text(3)),
                redirectURI: r.optionalText(4), codeChallenge: r.optionalText(5),
                codeChallengeMethod: r.optionalText(6).flatMap(PKCE.Method.init(rawValue:)),
                expiresAt: r.int(7), consumed: r.optionalInt(8) != nil, userDisabled: r.int(10) != 0,
                nonce: r.optionalText(11), authTime: r.optionalInt(12), subject: r.text(13)),
                       familyID: r.optionalInt(9))
        }
    }

    // MARK: - issuing

    /// Starts a grant (client_credentials, password) with its first tokens. Not critical: a
    /// token forgotten in a server crash only stops working. A grant with neither user nor
    /// refresh token (client_credentials) is its access token alone: one INSERT, no family.
    public func issue(_ grant: NewGrant) throws {
        let tokens = grant.tokens
        guard grant.userID != nil || tokens.refreshHash != nil else {
            return try insertTokens(tokens, family: nil, clientID: grant.clientID, userID: nil, scope: grant.scope, generation: 0,
                                    now: grant.now, critical: false)
        }
        try insertGrant(tokens, clientID: grant.clientID, userID: grant.userID, scope: grant.scope, now: grant.now,
                        authTime: grant.authTime, critical: false)
    }

    /// A new family with its first tokens and, for a redeemed code, the code marked consumed
    /// by it, in one statement: atomic on its own, and one round trip instead of three (each
    /// round trip is a wake-up of the worker and of its server process).
    func insertGrant(_ t: NewTokens, clientID: String, userID: Int64?, scope: [String], now: Int64, authTime: Int64?,
                     consuming code: [UInt8]? = nil, critical: Bool = true) throws {
        var bindings: [PGValue] = [.text(clientID), .optional(userID), .text(Scope.string(scope)), .int(now),
                                   .int(max(t.familyExpiresAt, t.accessExpiresAt)), .optional(authTime),
                                   .blob(t.accessHash), .int(t.accessExpiresAt)]
        var rows = "($7, 0, $8)"
        if let refresh = t.refreshHash {
            bindings += [.blob(refresh), .int(t.refreshExpiresAt)]
            rows += ", ($9, 1, $10)"
        }
        var sql = """
            WITH f AS (INSERT INTO families (client_id, user_id, scope, created_at, expires_at, auth_time)
                       VALUES ($1, $2, $3, $4, $5, $6) RETURNING id)
            """
        if let code {
            bindings.append(.blob(code))
            sql += ",\n     c AS (UPDATE codes SET consumed_at = $4, family_id = f.id FROM f WHERE hash = $\(bindings.count))"
        }
        sql += """

            INSERT INTO tokens (hash, kind, family_id, client_id, user_id, scope, issued_at, expires_at, generation)
            SELECT v.hash, v.kind, f.id, $1, $2, $3, $4, v.expires_at, 0 FROM f, (VALUES \(rows)) AS v (hash, kind, expires_at)
            """
        try db.run(sql, bindings, critical: critical)
    }

    /// The access token and, if any, the refresh token, in one statement. `before`: data-
    /// modifying CTEs (`WITH … `) that run in the same statement, one round trip; their
    /// parameters come first.
    func insertTokens(_ t: NewTokens, family: Int64?, clientID: String, userID: Int64?, scope: [String], generation: Int64,
                      now: Int64, critical: Bool = true, before: (sql: String, bindings: [PGValue]) = ("", [])) throws {
        let n = before.bindings.count
        func p(_ i: Int) -> String { "$\(n + i)" }
        var bindings = before.bindings + [.blob(t.accessHash), .optional(family), .text(clientID), .optional(userID),
                                          .text(Scope.string(scope)), .int(now), .int(t.accessExpiresAt), .int(generation)]
        var rows = "(\(p(1)), 0, \(p(2)), \(p(3)), \(p(4)), \(p(5)), \(p(6)), \(p(7)), \(p(8)))"
        if let refresh = t.refreshHash {
            bindings += [.blob(refresh), .int(t.refreshExpiresAt)]
            rows += ", (\(p(9)), 1, \(p(2)), \(p(3)), \(p(4)), \(p(5)), \(p(6)), \(p(10)), \(p(8)))"
        }
        try db.run("""
            \(before.sql)INSERT INTO tokens (hash, kind, family_id, client_id, user_id, scope, issued_at, expires_at, generation)
            VALUES \(rows)
            """, bindings, critical: critical)
    }

    // MARK: - refresh rotation

    /// Locks the token's family row first, then reads the token (locked too) and its family,
    /// lets the core decide (RFC 6749 §6, RFC 9700 §4.14.2), and applies the verdict in the
    /// same transaction. Every rotation and family revocation takes the family row first,
    /// so two hosts rotating tokens of one family queue, and the second reads the first's
    /// result.
    public func rotateRefreshToken(hash: [UInt8], now: Int64, decide: (StoredRefreshToken?) throws -> RefreshVerdict) throws
        -> RefreshVerdict
    {
        try db.transaction {
            let locked = try db.queryOne("""
                SELECT id FROM families WHERE id = (SELECT family_id FROM tokens WHERE hash = $1 AND kind = 1) FOR UPDATE
                """, [.blob(hash)]) { $0.int(0) }
            guard locked != nil else { return try decide(nil) }
            let stored = try loadRefreshToken(hash: hash, forUpdate: true)
            let verdict = try decide(stored)
            switch verdict {
            case .refuse:
                break
            case .revokeFamily:
                if let family = stored?.record.familyID { try revokeFamilyRows(family, now: now) }
            case .rotate(let r):
                guard let stored else { break }
                let family = stored.record.familyID
                // Rotation: the previous refresh tokens marked rotated and the family's generation
                // moved in the new tokens' statement (its CTEs see the rows as they were before
                // it, so the new refresh token is not among those marked).
                let rotation: (String, [PGValue]) = r.withinGrace ? ("", []) : ("""
                    WITH r AS (UPDATE tokens SET rotated_at = $1 WHERE family_id = $2 AND kind = 1 AND rotated_at IS NULL),
                         g AS (UPDATE families SET refresh_generation = $3 WHERE id = $2)

                    """, [.int(now), .int(family), .int(r.generation)])
                if r.withinGrace {
                    try db.run("UPDATE tokens SET grace_used_at = $1 WHERE hash = $2", [.int(now), .blob(hash)])
                }
                try insertTokens(r.tokens, family: family, clientID: stored.record.clientID, userID: stored.userID,
                                 scope: r.scope, generation: r.generation, now: now, before: rotation)
            }
            return verdict
        }
    }

    public func peekRefreshToken(hash: [UInt8]) throws -> StoredRefreshToken? { try loadRefreshToken(hash: hash, forUpdate: false) }

    /// The refresh token with its family and user; `forUpdate`: the token row locked too.
    private func loadRefreshToken(hash: [UInt8], forUpdate: Bool) throws -> StoredRefreshToken? {
        try db.queryOne("""
            SELECT t.client_id, t.user_id, u.username, t.scope, t.issued_at, t.expires_at, t.revoked_at,
                   t.rotated_at, t.family_id, t.generation, f.refresh_generation, f.expires_at, f.revoked_at,
                   f.scope, COALESCE(u.disabled, 0), t.grace_used_at, f.auth_time, u.subject
            FROM tokens t JOIN families f ON f.id = t.family_id LEFT JOIN users u ON u.id = t.user_id
            WHERE t.hash = $1 AND t.kind = 1\(forUpdate ? " FOR UPDATE OF t" : "")
            """, [.blob(hash)]) { r in
            StoredRefreshToken(
                record: TokenRecord(kind: .refresh, clientID: r.text(0), username: r.optionalText(2),
                                    scope: Self.words(r.text(3)), issuedAt: r.int(4), expiresAt: r.int(5),
                                    revoked: r.optionalInt(6) != nil || r.optionalInt(12) != nil,
                                    familyID: r.int(8), rotatedAt: r.optionalInt(7), subject: r.optionalText(17)),
                userID: r.optionalInt(1), userDisabled: r.int(14) != 0, generation: r.int(9), familyGeneration: r.int(10),
                familyExpiresAt: r.int(11), familyScope: Self.words(r.text(13)), graceUsed: r.optionalInt(15) != nil,
                authTime: r.optionalInt(16))
        }
    }

    // MARK: - lookup, revocation

    public func token(hash: [UInt8]) throws -> TokenLookup? {
        try db.queryOne("""
            SELECT t.kind, t.client_id, u.username, t.scope, t.issued_at, t.expires_at, t.revoked_at, t.family_id,
                   t.rotated_at, COALESCE(u.disabled, 0), u.subject
            FROM tokens t LEFT JOIN users u ON u.id = t.user_id WHERE t.hash = $1
            """, [.blob(hash)]) { r in
            TokenLookup(record: TokenRecord(kind: r.int(0) == 1 ? .refresh : .access, clientID: r.text(1),
                                            username: r.optionalText(2), scope: Self.words(r.text(3)), issuedAt: r.int(4),
                                            expiresAt: r.int(5), revoked: r.optionalInt(6) != nil, familyID: r.optionalInt(7) ?? 0,
                                            rotatedAt: r.optionalInt(8), subject: r.optionalText(10)),
                        userDisabled: r.int(9) != 0)
        }
    }

    /// One statement: durable (synchronous commit) when it answers.
    @discardableResult
    public func revokeToken(hash: [UInt8], now: Int64) throws -> Bool {
        try db.run("UPDATE tokens SET revoked_at = $1 WHERE hash = $2 AND revoked_at IS NULL", [.int(now), .blob(hash)]) == 1
    }

    /// Operator revocation: every grant of a client (its client_credentials tokens, which
    /// have no family, included) or of a user. Answers the grants revoked.
    public func revokeAll(clientID: String?, username: String?, now: Int64) throws -> Int {
        try db.transaction {
            if let clientID {
                let single = try db.run("""
                    UPDATE tokens SET revoked_at = $1 WHERE client_id = $2 AND family_id IS NULL AND revoked_at IS NULL
                    """, [.int(now), .text(clientID)])
                let ids = try db.query("SELECT id FROM families WHERE revoked_at IS NULL AND client_id = $1 ORDER BY id",
                                       [.text(clientID)]) { $0.int(0) }
                for id in ids { try revokeFamilyRows(id, now: now) }
                return ids.count + single
            }
            if let username {
                guard let id = try db.queryOne("SELECT id FROM users WHERE username = $1", [.text(username)], { $0.int(0) })
                else { return 0 }
                return try revokeFamilies(userID: id, now: now)
            }
            return 0
        }
    }

    public func revokeFamily(_ id: Int64, now: Int64) throws {
        try db.transaction { try revokeFamilyRows(id, now: now) }
    }

    /// Inside a transaction: the family row first (the lock rotation takes), then its tokens.
    func revokeFamilyRows(_ id: Int64, now: Int64) throws {
        try db.run("UPDATE families SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL", [.int(now), .int(id)])
        try db.run("UPDATE tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL", [.int(now), .int(id)])
    }

    /// Inside a transaction: a user's live grants, in id order (two revocations of one user
    /// lock the families in the same order).
    func revokeFamilies(userID: Int64, now: Int64) throws -> Int {
        let ids = try db.query("SELECT id FROM families WHERE revoked_at IS NULL AND user_id = $1 ORDER BY id", [.int(userID)]) {
            $0.int(0)
        }
        for id in ids { try revokeFamilyRows(id, now: now) }
        return ids.count
    }

    // MARK: - purge

    /// Deletes expired rows in batches of `batch`, each batch its own short transaction, with
    /// the rules of `SQLiteStore.purgeExpired` (a family goes with its last token). Freed
    /// space is PostgreSQL's (autovacuum): `pages_released` is 0.
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
        let limit = PGValue.int(Int64(batch))
        try drain("codes") {
            try db.run("DELETE FROM codes WHERE hash IN (SELECT hash FROM codes WHERE expires_at <= $1 LIMIT $2)", [.int(now), limit])
        }
        var emptied = 0
        try drain("tokens") {
            try db.transaction {
                let families = try db.query("""
                    DELETE FROM tokens WHERE hash IN (SELECT hash FROM tokens WHERE expires_at <= $1 LIMIT $2)
                    RETURNING family_id
                    """, [.int(now), limit]) { $0.optionalInt(0) }
                for id in Set(families.compactMap { $0 }).sorted() {
                    emptied += try db.run("DELETE FROM families WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM tokens WHERE family_id = $1)",
                                          [.int(id)])
                }
                return families.count
            }
        }
        counts["families"] = emptied
        try drain("families") {
            try db.run("""
                DELETE FROM families WHERE id IN (SELECT id FROM families f WHERE expires_at <= $1
                    AND NOT EXISTS (SELECT 1 FROM tokens t WHERE t.family_id = f.id) LIMIT $2)
                """, [.int(now), limit])
        }
        try drain("sessions") {
            try db.run("DELETE FROM sessions WHERE id_hash IN (SELECT id_hash FROM sessions WHERE last_seen_at <= $1 LIMIT $2)",
                       [.int(now - sessionIdleSeconds), limit])
        }
        try drain("login_failures") {
            try db.run("""
                DELETE FROM login_failures WHERE key IN (SELECT key FROM login_failures
                    WHERE locked_until <= $1 AND window_start <= $1 - 86400 LIMIT $2)
                """, [.int(now), limit])
        }
        counts["pages_released"] = 0
        return counts
    }
}
