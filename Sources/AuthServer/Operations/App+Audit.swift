import Logging
import OAuthCore

extension App {
    /// The audit line and counters of one password check: `login_succeeded` or
    /// `login_failed` (with its reason), then `login_lockout` for each lock it started.
    /// `via` is `login_form` or `password_grant`. The password never reaches a log line.
    func audit(_ attempt: LoginAttempt, client: String, via: String) {
        if attempt.outcome == .succeeded {
            Log.info("login_succeeded", ["username": attempt.username, "address": attempt.address, "client": client, "via": via])
            return
        }
        counter.count(.loginFailed)
        Log.warn("login_failed", ["username": attempt.username, "address": attempt.address, "client": client, "via": via,
                                  "reason": attempt.outcome.rawValue])
        for subject in attempt.lockedNow {
            counter.count(.loginLockout)
            Log.warn("login_lockout", ["locked": subject.rawValue, "username": attempt.username, "address": attempt.address,
                                       "client": client, "seconds": config.loginLockout])
        }
    }
}
