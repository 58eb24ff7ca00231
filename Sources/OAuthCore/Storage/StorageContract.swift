import OAuthCrypto

/// What the grants, the endpoints and the CLI need from storage, by need. Every backend
/// (SQLite today, memory for tests, PostgreSQL next) implements all of them and passes one
/// contract test suite. The protocol rules are not here: a backend loads the stored state,
/// hands it to a pure decision of the core (`decide`), and applies the verdict atomically.

/// Registered clients.
public protocol ClientStore: AnyObject {
    /// Adds a client; false when the id is taken.
    func insertClient(_ client: Client, now: Int64) throws -> Bool
    func client(id: String) throws -> Client?
    /// Every client, oldest first.
    func clients() throws -> [Client]
    /// Replaces a client's settings (and secret hash); false when it does not exist.
    func updateClient(_ client: Client) throws -> Bool
    /// Removes a client; its codes, grants and tokens go with it.
    func removeClient(id: String) throws -> Bool
}

/// Resource owners.
public protocol UserStore: AnyObject {
    /// Adds a user; nil when the name (or, never in practice, the subject) is taken, else
    /// the new user's id.
    func insertUser(username: String, passwordHash: String, subject: String, profile: UserProfile, now: Int64) throws -> Int64?
    /// Replaces a user's OpenID Connect attributes; false when there is no such user.
    func updateProfile(username: String, _ profile: UserProfile) throws -> Bool
    func user(named username: String) throws -> User?
    func user(id: Int64) throws -> User?
    /// Every user, by name.
    func users() throws -> [User]
    /// Sets a password. With `endGrants` the user's sessions end and grants are revoked in the
    /// same atomic step. nil when there is no such user, else the number of grants revoked.
    func setPassword(username: String, passwordHash: String, endGrants: Bool, now: Int64) throws -> Int?
    /// Disabling also ends the user's sessions and revokes their grants. False: no such user.
    func setDisabled(username: String, _ disabled: Bool, now: Int64) throws -> Bool
    func removeUser(username: String) throws -> Bool
}

/// Codes, grants (token families) and tokens: the atomic primitives of the grants.
public protocol GrantStore: AnyObject {
    /// Stores a new authorization code under its hash.
    func insertCode(hash: [UInt8], _ code: AuthorizationCodeRecord) throws
    /// One atomic step: loads the code (nil when unknown), asks `decide`, applies the
    /// verdict (see `CodeVerdict`), and answers it. Two redemptions of one code never both
    /// get `.redeem` applied. When `decide` throws, nothing is written.
    func redeemCode(hash: [UInt8], now: Int64, decide: (StoredCode?) throws -> CodeVerdict) throws -> CodeVerdict
    /// One atomic step: loads the refresh token (nil when unknown or not a refresh token),
    /// asks `decide`, applies the verdict (see `RefreshVerdict`), and answers it. When
    /// `decide` throws, nothing is written.
    func rotateRefreshToken(hash: [UInt8], now: Int64, decide: (StoredRefreshToken?) throws -> RefreshVerdict) throws
        -> RefreshVerdict
    /// The code as `redeemCode` would load it, read without a lock and without writing:
    /// lets a grant do slow work (signing a JWT access token) before the atomic step, which
    /// loads the code again and uses that work only if nothing it depends on changed.
    func peekCode(hash: [UInt8]) throws -> StoredCode?
    /// The refresh token as `rotateRefreshToken` would load it, read without a lock (as
    /// `peekCode`).
    func peekRefreshToken(hash: [UInt8]) throws -> StoredRefreshToken?
    /// Starts a grant with its first tokens. A grant with neither user nor refresh token
    /// (client_credentials) is its access token alone: no family.
    func issue(_ grant: NewGrant) throws
    /// One indexed lookup by hash, no write: validation, introspection, revocation.
    func token(hash: [UInt8]) throws -> TokenLookup?
    /// Revokes one token. False when it was unknown or already revoked.
    @discardableResult func revokeToken(hash: [UInt8], now: Int64) throws -> Bool
    /// Revokes a grant and every token in it.
    func revokeFamily(_ id: Int64, now: Int64) throws
    /// Operator revocation: every grant of a client (its client_credentials tokens included)
    /// or of a user. Answers the grants revoked.
    func revokeAll(clientID: String?, username: String?, now: Int64) throws -> Int
}

/// Browser sessions (created at login only) and remembered consent.
public protocol SessionStore: AnyObject {
    /// A live session of an enabled user, by the hash of its id.
    func session(idHash: [UInt8]) throws -> SessionRecord?
    func touchSession(idHash: [UInt8], now: Int64) throws
    /// Login: drops the old session (session fixation, CWE-384) and stores the new one.
    /// False, and nothing written, when the old one is already gone (a concurrent
    /// submission of the same form won).
    func replaceSession(oldIDHash: [UInt8]?, newIDHash: [UInt8], csrf: String, userID: Int64, now: Int64) throws -> Bool
    /// Compare-and-set of the session's CSRF token: of two submissions of one form exactly one wins.
    func rotateCSRF(idHash: [UInt8], from old: String, to new: String) throws -> Bool
    func deleteSession(idHash: [UInt8]) throws
    func hasConsent(userID: Int64, clientID: String, scope: [String]) throws -> Bool
    func saveConsent(userID: Int64, clientID: String, scope: [String], now: Int64) throws
}

/// Failed-login counters shared by every worker (and every host).
public protocol LoginThrottleStore: AnyObject {
    /// The time until which any of `keys` is locked out, if one is.
    func lockedUntil(keys: [String], now: Int64) throws -> Int64?
    /// Counts one failure against each key, atomically; a key reaching `limit` failures
    /// within `window` seconds is locked for `lockout` seconds.
    func recordLoginFailure(keys: [String], now: Int64, limit: Int, window: Int64, lockout: Int64) throws
    func clearLoginFailures(key: String) throws
}

/// The keys that sign ID Tokens and JWT access tokens, shared by every worker and host.
public protocol SigningKeyStore: AnyObject {
    /// Every key, oldest first.
    func signingKeys() throws -> [StoredSigningKey]
    func insertSigningKey(_ key: StoredSigningKey) throws
    /// False when there is no such key or it is already retired.
    func retireSigningKey(id: String, now: Int64) throws -> Bool
}

/// Schema and housekeeping, run by the master, a task child or the CLI.
public protocol StoreMaintenance: AnyObject {
    /// Applies pending migrations; answers how many ran.
    @discardableResult func migrate() throws -> Int
    func schemaVersion() throws -> Int
    /// Tokens not yet expired (revoked ones included until they expire): a count over the
    /// expiry index only, cheap enough for a metrics scrape every few seconds.
    func liveTokenCount(now: Int64) throws -> Int
    /// Deletes what has expired, in short batches; answers rows deleted per table.
    func purgeExpired(now: Int64, batch: Int, sessionIdleSeconds: Int64, progress: ((String, Int) -> Void)?) throws
        -> [String: Int]
}

/// Everything a Gatehouse instance keeps.
public typealias AuthorizationStore = ClientStore & UserStore & GrantStore & SessionStore & LoginThrottleStore
    & SigningKeyStore & StoreMaintenance

/// A storage failure the caller can act on, in backend-neutral terms: the one place that
/// turns it into an answer (503 for temporary failures, else 500) needs nothing more.
public protocol StorageFailure: Error, CustomStringConvertible {
    /// Busy, locked, full disk, lost connection: worth retrying later.
    var isTemporary: Bool { get }
    /// A stable log event name (`database_busy`, `disk_full`, …).
    var event: String { get }
}

extension StoreMaintenance {
    /// A purge in batches of 1,000 rows, without progress reports.
    public func purgeExpired(now: Int64, sessionIdleSeconds: Int64) throws -> [String: Int] {
        try purgeExpired(now: now, batch: 1000, sessionIdleSeconds: sessionIdleSeconds, progress: nil)
    }
}

extension UserStore {
    /// Adds a user with a new random subject identifier.
    public func insertUser(username: String, passwordHash: String, profile: UserProfile = UserProfile(), now: Int64) throws
        -> Int64?
    {
        try insertUser(username: username, passwordHash: passwordHash, subject: Subject.generate(), profile: profile, now: now)
    }
}

/// OpenID Connect subject identifiers (Core §2 `sub`): random, unique, never reassigned.
public enum Subject {
    /// A random version-4 UUID (RFC 9562 §5.4) from the CSPRNG.
    public static func generate() -> String {
        var b = SecureRandom.bytes(16)
        b[6] = (b[6] & 0x0F) | 0x40
        b[8] = (b[8] & 0x3F) | 0x80
        let hex = Digest.hex(b)
        let h = Array(hex)
        return String(h[0..<8]) + "-" + String(h[8..<12]) + "-" + String(h[12..<16]) + "-" + String(h[16..<20]) + "-"
            + String(h[20..<32])
    }
}
