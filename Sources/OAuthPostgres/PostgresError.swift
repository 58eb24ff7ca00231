import OAuthCore

/// A PostgreSQL failure. Never shown to a client: `isTemporary` maps to 503
/// temporarily_unavailable (a lost connection, a server shutting down or out of resources,
/// contention past `busy_timeout_ms`), anything else to 500.
public struct PostgresError: StorageFailure, Sendable {
    /// The SQLSTATE the server sent, if it answered.
    public var sqlState: String?
    public var message: String
    /// No answer: the connection was lost, could not be opened, or the server went silent.
    public var connectionLost = false

    public init(sqlState: String?, message: String) {
        self.sqlState = sqlState
        self.message = message
    }

    static func unavailable(_ message: String) -> PostgresError {
        var e = PostgresError(sqlState: nil, message: message)
        e.connectionLost = true
        return e
    }

    /// 40001 serialization_failure, 40P01 deadlock_detected: retried a few times first.
    var isRetryable: Bool { sqlState == "40001" || sqlState == "40P01" }

    /// Contention: a retry, a lock wait past lock_timeout (55P03), a statement past
    /// statement_timeout (57014).
    var isBusy: Bool { isRetryable || sqlState == "55P03" || sqlState == "57014" }

    /// No connection, or a server that cannot serve now: connection exceptions (08),
    /// shutdown or recovery (57P01–57P05), insufficient resources (53: disk, memory,
    /// connections).
    var isUnavailable: Bool {
        guard let s = sqlState else { return connectionLost }
        return s.hasPrefix("08") || s.hasPrefix("57P") || s.hasPrefix("53")
    }

    public var isTemporary: Bool { isBusy || isUnavailable }

    public var event: String {
        if isBusy { return "database_busy" }
        if sqlState == "53100" { return "database_full" }
        return isUnavailable ? "database_unavailable" : "database_error"
    }

    public var description: String { "postgresql error" + (sqlState.map { " \($0)" } ?? "") + ": \(message)" }
}
