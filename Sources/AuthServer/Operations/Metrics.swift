import Foundation
import OAuthCore
import Prefork

/// What the application counts for /metrics, beside requests. The raw values are the
/// indices of the scoreboard's event counters: append, never reorder.
public enum MetricEvent: Int, CaseIterable, Sendable {
    case tokensAuthorizationCode, tokensRefreshToken, tokensClientCredentials, tokensPassword
    case codeReplayed, refreshTokenReused, loginFailed, loginLockout, databaseBusy

    static func tokensIssued(_ grant: GrantType) -> MetricEvent {
        switch grant {
        case .authorizationCode: return .tokensAuthorizationCode
        case .refreshToken: return .tokensRefreshToken
        case .clientCredentials: return .tokensClientCredentials
        case .password: return .tokensPassword
        }
    }
}

/// Where the application's events are counted: the worker's scoreboard slot, or nowhere
/// (the CLI, unit tests).
public final class MetricCounter {
    public var count: (MetricEvent) -> Void = { _ in }
    public init() {}
}

/// `/metrics`: the Prometheus text exposition format (version 0.0.4), rendered from the
/// scoreboard's counters summed over the pool, the workers' states, and one stat() of the
/// WAL file, and a count of live tokens over the expiry index that each worker refreshes at
/// most every 10 s, so scrapes never queue on the database.
public enum Metrics {
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    /// The label of each endpoint index the worker loop counts under.
    static let endpointNames: [String] = App.Endpoint.allCases.map(\.rawValue) + ["unknown"]

    static func endpointIndex(_ endpoint: App.Endpoint?) -> Int {
        endpoint.flatMap { App.Endpoint.allCases.firstIndex(of: $0) } ?? endpointNames.count - 1
    }

    public static func render(_ pool: PoolMetrics, workers: [ScoreboardSnapshot.Worker], walFile: String?, liveTokens: Int?)
        -> String
    {
        var out = ""
        func family(_ name: String, _ type: String, _ help: String) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
        }
        func sample(_ name: String, _ labels: String, _ value: String) {
            out += labels.isEmpty ? "\(name) \(value)\n" : "\(name){\(labels)} \(value)\n"
        }
        func event(_ e: MetricEvent) -> String { String(pool.events[e.rawValue]) }

        family("gatehouse_http_requests_total", "counter", "Requests answered by the workers, by endpoint and status class.")
        for (i, name) in endpointNames.enumerated() {
            for c in 2...5 { sample("gatehouse_http_requests_total", "endpoint=\"\(name)\",status=\"\(c)xx\"", String(pool.requests[i][c - 1])) }
        }
        family("gatehouse_http_request_duration_seconds", "histogram",
               "Time from a request's parameters read to its response written, by endpoint.")
        for (i, name) in endpointNames.enumerated() {
            var cumulative: UInt64 = 0
            for (b, bound) in PoolMetrics.durationBounds.enumerated() {
                cumulative += pool.durationBuckets[i][b]
                sample("gatehouse_http_request_duration_seconds_bucket", "endpoint=\"\(name)\",le=\"\(bound)\"", String(cumulative))
            }
            cumulative += pool.durationBuckets[i][PoolMetrics.durationBounds.count]
            sample("gatehouse_http_request_duration_seconds_bucket", "endpoint=\"\(name)\",le=\"+Inf\"", String(cumulative))
            sample("gatehouse_http_request_duration_seconds_sum", "endpoint=\"\(name)\"",
                   String(Double(pool.durationSumMicroseconds[i]) / 1e6))
            sample("gatehouse_http_request_duration_seconds_count", "endpoint=\"\(name)\"", String(cumulative))
        }
        family("gatehouse_tokens_issued_total", "counter", "Token responses from /token, by grant type.")
        for grant in GrantType.allCases {
            sample("gatehouse_tokens_issued_total", "grant_type=\"\(grant.rawValue)\"", event(.tokensIssued(grant)))
        }
        family("gatehouse_code_replays_total", "counter", "Authorization codes presented again (their tokens were revoked).")
        sample("gatehouse_code_replays_total", "", event(.codeReplayed))
        family("gatehouse_refresh_token_reuses_total", "counter", "Rotated refresh tokens presented again (their family was revoked).")
        sample("gatehouse_refresh_token_reuses_total", "", event(.refreshTokenReused))
        family("gatehouse_login_failures_total", "counter", "Failed password checks (login form and password grant), lockouts included.")
        sample("gatehouse_login_failures_total", "", event(.loginFailed))
        family("gatehouse_login_lockouts_total", "counter", "Usernames or client addresses locked out after too many failures.")
        sample("gatehouse_login_lockouts_total", "", event(.loginLockout))
        family("gatehouse_database_busy_total", "counter", "Requests answered 503 because the database was busy or full.")
        sample("gatehouse_database_busy_total", "", event(.databaseBusy))
        family("gatehouse_worker_restarts_total", "counter", "Workers replaced by the master, by reason.")
        sample("gatehouse_worker_restarts_total", "reason=\"crash\"", String(pool.restartsAfterCrash))
        sample("gatehouse_worker_restarts_total", "reason=\"max_requests\"", String(pool.restartsAfterMaxRequests))
        family("gatehouse_workers", "gauge", "Workers of the pool, by state.")
        for state in WorkerState.allCases {
            sample("gatehouse_workers", "state=\"\(state.name)\"", String(workers.filter { $0.activity.state == state }.count))
        }
        if let walFile {
            var st = stat()
            family("gatehouse_database_wal_bytes", "gauge", "Size of the SQLite write-ahead log file.")
            sample("gatehouse_database_wal_bytes", "", String(stat(walFile, &st) == 0 ? Int64(st.st_size) : 0))
        }
        if let liveTokens {
            family("gatehouse_tokens_live", "gauge", "Access and refresh tokens not yet expired (revoked ones until they expire).")
            sample("gatehouse_tokens_live", "", String(liveTokens))
        }
        return out
    }
}
