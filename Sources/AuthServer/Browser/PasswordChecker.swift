import OAuthCore
import OAuthCrypto

/// Verifies passwords for the login form and the password grant, with throttling per
/// username and per client address, under the host's bound on concurrent hashing.
public final class PasswordChecker: PasswordVerifier {
    let store: any UserStore & LoginThrottleStore
    let config: ServerConfig
    let clock: Clock
    let hasher = PasswordHasher()
    /// Set by the worker loop: the host-wide bound on concurrent password hashing.
    var gate: PasswordHashGate
    /// The last check's outcome, for the caller's audit line (it knows the client; the
    /// `PasswordVerifier` contract does not). A worker serves one request at a time.
    private var lastAttempt: LoginAttempt?

    init(store: any UserStore & LoginThrottleStore, config: ServerConfig, clock: Clock, gate: PasswordHashGate) {
        self.store = store
        self.config = config
        self.clock = clock
        self.gate = gate
    }

    /// The outcome of the last `verify`, once.
    func takeAttempt() -> LoginAttempt? {
        defer { lastAttempt = nil }
        return lastAttempt
    }

    /// nil on any failure (unknown user, wrong password, disabled, locked). Unknown and known
    /// names cost the same hash; a locked name or address costs none (locks are kept for
    /// unknown names too, so a fast answer tells nothing about which accounts exist).
    /// Throws `PasswordChecksBusy` when the host's hashing places are all taken.
    public func verify(username: String, password: String, address: String) throws -> User? {
        let keys = ["user:" + username, "addr:" + address]
        let now = clock.now()
        lastAttempt = LoginAttempt(username: username, address: address, outcome: .locked)
        if try store.lockedUntil(keys: keys, now: now) != nil { return nil }
        let user = try store.user(named: username)
        let matched = gate.run {
            guard let user else {
                hasher.verifyDummy(password)  // an unknown name costs the same time as a known one
                return false
            }
            return PasswordHasher.verify(password, against: user.passwordHash)
        }
        guard let matched else {
            lastAttempt = nil  // nothing was tried
            throw PasswordChecksBusy()
        }
        guard matched, let user, !user.disabled else {
            try store.recordLoginFailure(keys: ["user:" + username], now: now, limit: config.loginMaxFailures,
                                         window: config.loginFailureWindow, lockout: config.loginLockout)
            try store.recordLoginFailure(keys: ["addr:" + address], now: now, limit: config.loginAddressMaxFailures,
                                         window: config.loginFailureWindow, lockout: config.loginLockout)
            // Not locked before this failure (checked above): a lock now is this failure's.
            var lockedNow: [LoginAttempt.Subject] = []
            if try store.lockedUntil(keys: keys, now: now) != nil {
                if try store.lockedUntil(keys: [keys[0]], now: now) != nil { lockedNow.append(.username) }
                if try store.lockedUntil(keys: [keys[1]], now: now) != nil { lockedNow.append(.address) }
            }
            let reason: LoginAttempt.Outcome = user == nil ? .unknownUser : user!.disabled && matched ? .disabled : .wrongPassword
            lastAttempt = LoginAttempt(username: username, address: address, outcome: reason, lockedNow: lockedNow)
            return nil
        }
        try store.clearLoginFailures(key: "user:" + username)
        lastAttempt = LoginAttempt(username: username, address: address, outcome: .succeeded)
        return user
    }
}

/// One password check, as the audit log and /metrics tell it. Never holds the password.
struct LoginAttempt {
    enum Outcome: String {
        case succeeded, wrongPassword = "wrong_password", unknownUser = "unknown_user", disabled, locked
    }
    /// What a lockout that this attempt started applies to.
    enum Subject: String { case username, address }

    var username: String
    var address: String
    var outcome: Outcome
    var lockedNow: [Subject] = []
}
