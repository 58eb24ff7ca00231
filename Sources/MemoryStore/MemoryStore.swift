import Foundation
import OAuthCore

/// The storage contract in one process's memory, behind one lock: every primitive is
/// atomic because it runs whole under the lock. For tests (grant rules with a fixed clock,
/// the contract suite beside SQLite) and as the reference a new backend is checked against.
/// Deletions cascade as the SQL schema's foreign keys do.
public final class MemoryStore: AuthorizationStore, @unchecked Sendable {
    struct Code {
        var record: AuthorizationCodeRecord
        var consumedAt: Int64?
        var familyID: Int64?
    }
    struct Family {
        var clientID: String
        var userID: Int64?
        var scope: [String]
        var createdAt: Int64
        var expiresAt: Int64
        var revokedAt: Int64?
        var refreshGeneration: Int64 = 0
        var authTime: Int64?
    }
    struct Token {
        var kind: TokenKind
        var familyID: Int64?
        var clientID: String
        var userID: Int64?
        var scope: [String]
        var issuedAt: Int64
        var expiresAt: Int64
        var revokedAt: Int64?
        var rotatedAt: Int64?
        var generation: Int64
        var graceUsedAt: Int64?
    }
    struct Session {
        var record: SessionRecord
    }
    struct Throttle {
        var failures: Int
        var windowStart: Int64
        var lockedUntil: Int64 = 0
    }
    struct ConsentKey: Hashable {
        var userID: Int64
        var clientID: String
        var scope: String
    }

    private let lock = NSLock()
    private var clientRows: [String: (client: Client, createdAt: Int64)] = [:]
    private var userRows: [Int64: User] = [:]
    private var nextUserID: Int64 = 1
    private var codes: [[UInt8]: Code] = [:]
    private var families: [Int64: Family] = [:]
    private var nextFamilyID: Int64 = 1
    private var tokens: [[UInt8]: Token] = [:]
    private var sessions: [[UInt8]: Session] = [:]
    private var consents: [ConsentKey: Int64] = [:]
    private var throttles: [String: Throttle] = [:]
    private var keys: [StoredSigningKey] = []

    public init() {}

    /// Rows per table as the SQL schema names them (tests compare what a purge leaves).
    public func rowCount(_ table: String) -> Int {
        locked {
            switch table {
            case "clients": clientRows.count
            case "users": userRows.count
            case "codes": codes.count
            case "families": families.count
            case "tokens": tokens.count
            case "sessions": sessions.count
            case "consents": consents.count
            case "login_failures": throttles.count
            case "signing_keys": keys.count
            default: -1
            }
        }
    }

    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    // MARK: - maintenance

    public func migrate() throws -> Int { 0 }
    public func liveTokenCount(now: Int64) throws -> Int { locked { tokens.values.filter { $0.expiresAt > now }.count } }
    public func schemaVersion() throws -> Int { 0 }

    public func purgeExpired(now: Int64, batch: Int, sessionIdleSeconds: Int64, progress: ((String, Int) -> Void)?) throws
        -> [String: Int]
    {
        locked {
            var counts: [String: Int] = [:]
            let expiredCodes = codes.filter { $0.value.record.expiresAt <= now }.keys
            for h in expiredCodes { codes[h] = nil }
            counts["codes"] = expiredCodes.count
            let expiredTokens = tokens.filter { $0.value.expiresAt <= now }
            for h in expiredTokens.keys { tokens[h] = nil }
            counts["tokens"] = expiredTokens.count
            // A family goes with its last token (see SQLiteStore.purgeExpired), or at its end.
            let referenced = Set(tokens.values.compactMap(\.familyID))
            let emptied = Set(expiredTokens.values.compactMap(\.familyID)).subtracting(referenced)
            let ended = families.filter { $0.value.expiresAt <= now && !referenced.contains($0.key) }.keys
            let gone = emptied.union(ended)
            for id in gone { dropFamily(id) }
            counts["families"] = gone.count
            let idle = sessions.filter { $0.value.record.lastSeenAt <= now - sessionIdleSeconds }.keys
            for h in idle { sessions[h] = nil }
            counts["sessions"] = idle.count
            let stale = throttles.filter { $0.value.lockedUntil <= now && $0.value.windowStart <= now - 86_400 }.keys
            for k in stale { throttles[k] = nil }
            counts["login_failures"] = stale.count
            counts["pages_released"] = 0
            return counts
        }
    }

    /// Deletes a family: its tokens go (cascade), its codes forget it (SET NULL).
    private func dropFamily(_ id: Int64) {
        families[id] = nil
        tokens = tokens.filter { $0.value.familyID != id }
        for (h, c) in codes where c.familyID == id { codes[h]?.familyID = nil }
    }

    // MARK: - clients

    public func insertClient(_ client: Client, now: Int64) throws -> Bool {
        locked {
            guard clientRows[client.id] == nil else { return false }
            clientRows[client.id] = (client, now)
            return true
        }
    }

    public func client(id: String) throws -> Client? { locked { clientRows[id]?.client } }

    public func clients() throws -> [Client] {
        locked {
            clientRows.values.sorted { ($0.createdAt, $0.client.id) < ($1.createdAt, $1.client.id) }.map(\.client)
        }
    }

    public func updateClient(_ client: Client) throws -> Bool {
        locked {
            guard let row = clientRows[client.id] else { return false }
            clientRows[client.id] = (client, row.createdAt)
            return true
        }
    }

    public func removeClient(id: String) throws -> Bool {
        locked {
            guard clientRows.removeValue(forKey: id) != nil else { return false }
            codes = codes.filter { $0.value.record.clientID != id }
            for (fid, f) in families where f.clientID == id { dropFamily(fid) }
            tokens = tokens.filter { $0.value.clientID != id }
            consents = consents.filter { $0.key.clientID != id }
            return true
        }
    }

    // MARK: - users

    public func insertUser(username: String, passwordHash: String, subject: String, profile: UserProfile, now: Int64) throws
        -> Int64?
    {
        locked {
            guard !userRows.values.contains(where: { $0.username == username || $0.subject == subject }) else { return nil }
            let id = nextUserID
            nextUserID += 1
            userRows[id] = User(id: id, username: username, passwordHash: passwordHash, disabled: false, subject: subject,
                                profile: profile)
            return id
        }
    }

    public func updateProfile(username: String, _ profile: UserProfile) throws -> Bool {
        locked {
            guard let user = userNamed(username) else { return false }
            userRows[user.id]?.profile = profile
            return true
        }
    }

    public func user(named username: String) throws -> User? { locked { userNamed(username) } }
    public func user(id: Int64) throws -> User? { locked { userRows[id] } }
    public func users() throws -> [User] { locked { userRows.values.sorted { $0.username < $1.username } } }

    private func userNamed(_ username: String) -> User? { userRows.values.first { $0.username == username } }

    public func setPassword(username: String, passwordHash: String, endGrants: Bool, now: Int64) throws -> Int? {
        locked {
            guard let user = userNamed(username) else { return nil }
            userRows[user.id]?.passwordHash = passwordHash
            guard endGrants else { return 0 }
            sessions = sessions.filter { $0.value.record.userID != user.id }
            return revokeFamilies(now: now) { $0.userID == user.id }
        }
    }

    public func setDisabled(username: String, _ disabled: Bool, now: Int64) throws -> Bool {
        locked {
            guard let user = userNamed(username) else { return false }
            userRows[user.id]?.disabled = disabled
            if disabled {
                sessions = sessions.filter { $0.value.record.userID != user.id }
                _ = revokeFamilies(now: now) { $0.userID == user.id }
            }
            return true
        }
    }

    public func removeUser(username: String) throws -> Bool {
        locked {
            guard let user = userNamed(username) else { return false }
            userRows[user.id] = nil
            codes = codes.filter { $0.value.record.userID != user.id }
            for (fid, f) in families where f.userID == user.id { dropFamily(fid) }
            tokens = tokens.filter { $0.value.userID != user.id }
            sessions = sessions.filter { $0.value.record.userID != user.id }
            consents = consents.filter { $0.key.userID != user.id }
            return true
        }
    }

    // MARK: - grants

    public func insertCode(hash: [UInt8], _ code: AuthorizationCodeRecord) throws {
        locked { codes[hash] = Code(record: code) }
    }

    public func redeemCode(hash: [UInt8], now: Int64, decide: (StoredCode?) throws -> CodeVerdict) throws -> CodeVerdict {
        try locked {
            let stored = storedCode(hash)
            let verdict = try decide(stored)
            switch verdict {
            case .refuse:
                break
            case .revokeGrant:
                if let family = stored?.familyID { revokeFamilyLocked(family, now: now) }
            case .redeem(let new, let scope):
                guard let code = stored?.record else { break }
                let family = insertFamily(clientID: code.clientID, userID: code.userID, scope: scope, now: now,
                                          expiresAt: max(new.familyExpiresAt, new.accessExpiresAt), authTime: code.authTime)
                insertTokens(new, family: family, clientID: code.clientID, userID: code.userID, scope: scope, generation: 0,
                             now: now)
                codes[hash]?.consumedAt = now
                codes[hash]?.familyID = family
            }
            return verdict
        }
    }

    public func peekCode(hash: [UInt8]) throws -> StoredCode? { locked { storedCode(hash) } }

    /// Under the lock.
    private func storedCode(_ hash: [UInt8]) -> StoredCode? {
        codes[hash].flatMap { code -> StoredCode? in
            guard let user = userRows[code.record.userID] else { return nil }
            var record = code.record
            record.username = user.username
            record.subject = user.subject
            record.userDisabled = user.disabled
            record.consumed = code.consumedAt != nil
            return StoredCode(record: record, familyID: code.familyID)
        }
    }

    public func rotateRefreshToken(hash: [UInt8], now: Int64, decide: (StoredRefreshToken?) throws -> RefreshVerdict) throws
        -> RefreshVerdict
    {
        try locked {
            let stored = storedRefreshToken(hash)
            let verdict = try decide(stored)
            switch verdict {
            case .refuse:
                break
            case .revokeFamily:
                if let family = stored?.record.familyID { revokeFamilyLocked(family, now: now) }
            case .rotate(let r):
                guard let stored else { break }
                let family = stored.record.familyID
                if r.withinGrace {
                    tokens[hash]?.graceUsedAt = now
                } else {
                    for (h, t) in tokens where t.familyID == family && t.kind == .refresh && t.rotatedAt == nil {
                        tokens[h]?.rotatedAt = now
                    }
                    families[family]?.refreshGeneration = r.generation
                }
                insertTokens(r.tokens, family: family, clientID: stored.record.clientID, userID: stored.userID, scope: r.scope,
                             generation: r.generation, now: now)
            }
            return verdict
        }
    }

    public func peekRefreshToken(hash: [UInt8]) throws -> StoredRefreshToken? { locked { storedRefreshToken(hash) } }

    /// Under the lock.
    private func storedRefreshToken(_ hash: [UInt8]) -> StoredRefreshToken? {
        tokens[hash].flatMap { t -> StoredRefreshToken? in
            guard t.kind == .refresh, let fid = t.familyID, let family = families[fid] else { return nil }
            let user = t.userID.flatMap { userRows[$0] }
            return StoredRefreshToken(
                record: TokenRecord(kind: .refresh, clientID: t.clientID, username: user?.username, scope: t.scope,
                                    issuedAt: t.issuedAt, expiresAt: t.expiresAt,
                                    revoked: t.revokedAt != nil || family.revokedAt != nil, familyID: fid,
                                    rotatedAt: t.rotatedAt, subject: user?.subject),
                userID: t.userID, userDisabled: user?.disabled ?? false, generation: t.generation,
                familyGeneration: family.refreshGeneration, familyExpiresAt: family.expiresAt, familyScope: family.scope,
                graceUsed: t.graceUsedAt != nil, authTime: family.authTime)
        }
    }

    public func issue(_ grant: NewGrant) throws {
        locked {
            var family: Int64? = nil
            if grant.userID != nil || grant.tokens.refreshHash != nil {
                family = insertFamily(clientID: grant.clientID, userID: grant.userID, scope: grant.scope, now: grant.now,
                                      expiresAt: max(grant.tokens.familyExpiresAt, grant.tokens.accessExpiresAt),
                                      authTime: grant.authTime)
            }
            insertTokens(grant.tokens, family: family, clientID: grant.clientID, userID: grant.userID, scope: grant.scope,
                         generation: 0, now: grant.now)
        }
    }

    private func insertFamily(clientID: String, userID: Int64?, scope: [String], now: Int64, expiresAt: Int64,
                              authTime: Int64?) -> Int64 {
        let id = nextFamilyID
        nextFamilyID += 1
        families[id] = Family(clientID: clientID, userID: userID, scope: scope, createdAt: now, expiresAt: expiresAt,
                              authTime: authTime)
        return id
    }

    private func insertTokens(_ t: NewTokens, family: Int64?, clientID: String, userID: Int64?, scope: [String],
                              generation: Int64, now: Int64) {
        tokens[t.accessHash] = Token(kind: .access, familyID: family, clientID: clientID, userID: userID, scope: scope,
                                     issuedAt: now, expiresAt: t.accessExpiresAt, generation: generation)
        if let r = t.refreshHash {
            tokens[r] = Token(kind: .refresh, familyID: family, clientID: clientID, userID: userID, scope: scope,
                              issuedAt: now, expiresAt: t.refreshExpiresAt, generation: generation)
        }
    }

    public func token(hash: [UInt8]) throws -> TokenLookup? {
        locked {
            tokens[hash].map { t in
                let user = t.userID.flatMap { userRows[$0] }
                return TokenLookup(record: TokenRecord(kind: t.kind, clientID: t.clientID, username: user?.username, scope: t.scope,
                                                       issuedAt: t.issuedAt, expiresAt: t.expiresAt, revoked: t.revokedAt != nil,
                                                       familyID: t.familyID ?? 0, rotatedAt: t.rotatedAt,
                                                       subject: user?.subject),
                                   userDisabled: user?.disabled ?? false)
            }
        }
    }

    public func revokeToken(hash: [UInt8], now: Int64) throws -> Bool {
        locked {
            guard let t = tokens[hash], t.revokedAt == nil else { return false }
            tokens[hash]?.revokedAt = now
            return true
        }
    }

    public func revokeFamily(_ id: Int64, now: Int64) throws { locked { revokeFamilyLocked(id, now: now) } }

    private func revokeFamilyLocked(_ id: Int64, now: Int64) {
        if families[id]?.revokedAt == nil { families[id]?.revokedAt = now }
        for (h, t) in tokens where t.familyID == id && t.revokedAt == nil { tokens[h]?.revokedAt = now }
    }

    /// Revokes the live families matching `condition`; answers how many.
    private func revokeFamilies(now: Int64, where condition: (Family) -> Bool) -> Int {
        let ids = families.filter { $0.value.revokedAt == nil && condition($0.value) }.keys
        for id in ids { revokeFamilyLocked(id, now: now) }
        return ids.count
    }

    public func revokeAll(clientID: String?, username: String?, now: Int64) throws -> Int {
        locked {
            if let clientID {
                var single = 0
                for (h, t) in tokens where t.clientID == clientID && t.familyID == nil && t.revokedAt == nil {
                    tokens[h]?.revokedAt = now
                    single += 1
                }
                return revokeFamilies(now: now) { $0.clientID == clientID } + single
            }
            if let username {
                guard let user = userNamed(username) else { return 0 }
                return revokeFamilies(now: now) { $0.userID == user.id }
            }
            return 0
        }
    }

    // MARK: - signing keys

    public func signingKeys() throws -> [StoredSigningKey] { locked { keys } }

    public func insertSigningKey(_ key: StoredSigningKey) throws { locked { keys.append(key) } }

    public func retireSigningKey(id: String, now: Int64) throws -> Bool {
        locked {
            guard let i = keys.firstIndex(where: { $0.id == id && $0.retiredAt == nil }) else { return false }
            keys[i].retiredAt = now
            return true
        }
    }

    // MARK: - sessions and consent

    public func session(idHash: [UInt8]) throws -> SessionRecord? {
        locked {
            guard let s = sessions[idHash]?.record else { return nil }
            if let uid = s.userID, userRows[uid]?.disabled != false { return nil }
            return s
        }
    }

    public func touchSession(idHash: [UInt8], now: Int64) throws { locked { sessions[idHash]?.record.lastSeenAt = now } }

    public func replaceSession(oldIDHash: [UInt8]?, newIDHash: [UInt8], csrf: String, userID: Int64, now: Int64) throws -> Bool {
        locked {
            if let oldIDHash {
                guard sessions.removeValue(forKey: oldIDHash) != nil else { return false }
            }
            sessions[newIDHash] = Session(record: SessionRecord(csrf: csrf, userID: userID, authenticatedAt: now, createdAt: now,
                                                                lastSeenAt: now))
            return true
        }
    }

    public func rotateCSRF(idHash: [UInt8], from old: String, to new: String) throws -> Bool {
        locked {
            guard sessions[idHash]?.record.csrf == old else { return false }
            sessions[idHash]?.record.csrf = new
            return true
        }
    }

    public func deleteSession(idHash: [UInt8]) throws { locked { sessions[idHash] = nil } }

    public func hasConsent(userID: Int64, clientID: String, scope: [String]) throws -> Bool {
        locked { consents[ConsentKey(userID: userID, clientID: clientID, scope: scope.sorted().joined(separator: " "))] != nil }
    }

    public func saveConsent(userID: Int64, clientID: String, scope: [String], now: Int64) throws {
        locked { consents[ConsentKey(userID: userID, clientID: clientID, scope: scope.sorted().joined(separator: " "))] = now }
    }

    // MARK: - login throttling

    public func lockedUntil(keys: [String], now: Int64) throws -> Int64? {
        locked { keys.compactMap { throttles[$0]?.lockedUntil }.filter { $0 > now }.max() }
    }

    public func recordLoginFailure(keys: [String], now: Int64, limit: Int, window: Int64, lockout: Int64) throws {
        locked {
            for key in keys {
                var t = throttles[key] ?? Throttle(failures: 0, windowStart: now)
                if t.windowStart <= now - window {
                    t.failures = 1
                    t.windowStart = now
                } else {
                    t.failures += 1
                }
                if t.failures >= limit {
                    t.lockedUntil = now + lockout
                    t.failures = 0
                    t.windowStart = now
                }
                throttles[key] = t
            }
        }
    }

    public func clearLoginFailures(key: String) throws { locked { throttles[key] = nil } }
}
