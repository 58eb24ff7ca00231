import CSystemShims

/// The pool's counters for Prometheus, summed over every worker slot at one moment. The
/// dimensions are fixed in C (`csys_metrics`); what an endpoint or event index means is the
/// application's business, except worker restarts, which are the master's.
public struct PoolMetrics: Sendable {
    public static let endpointCount = Int(CSYS_METRIC_ENDPOINTS)
    public static let eventCount = Int(CSYS_METRIC_EVENTS)
    /// Upper bounds (seconds) of the request duration buckets; the last bucket is +Inf.
    /// Prometheus' default set: fast answers to password hashing (~0.2 s) to stuck requests.
    public static let durationBounds: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

    /// [endpoint][status class - 1]
    public var requests: [[UInt64]]
    /// [endpoint][bucket], not cumulative; the last bucket is +Inf.
    public var durationBuckets: [[UInt64]]
    public var durationSumMicroseconds: [UInt64]
    public var events: [UInt64]
    public var restartsAfterCrash: UInt64
    public var restartsAfterMaxRequests: UInt64

    /// The bucket of a request that took `microseconds`.
    static func bucket(microseconds: UInt64) -> Int32 {
        let seconds = Double(microseconds) / 1e6
        return Int32(durationBounds.firstIndex { seconds <= $0 } ?? durationBounds.count)
    }

    init(_ m: csys_metrics) {
        var m = m
        requests = withUnsafeBytes(of: &m.requests) { raw in
            let all = Array(raw.bindMemory(to: UInt64.self))
            let classes = Int(CSYS_METRIC_STATUS_CLASSES)
            return (0..<PoolMetrics.endpointCount).map { Array(all[$0 * classes..<($0 + 1) * classes]) }
        }
        durationBuckets = withUnsafeBytes(of: &m.duration_buckets) { raw in
            let all = Array(raw.bindMemory(to: UInt64.self))
            let n = Int(CSYS_METRIC_BUCKETS)
            return (0..<PoolMetrics.endpointCount).map { Array(all[$0 * n..<($0 + 1) * n]) }
        }
        durationSumMicroseconds = withUnsafeBytes(of: &m.duration_sum_us) { Array($0.bindMemory(to: UInt64.self)) }
        events = withUnsafeBytes(of: &m.events) { Array($0.bindMemory(to: UInt64.self)) }
        restartsAfterCrash = m.worker_restarts.0
        restartsAfterMaxRequests = m.worker_restarts.1
    }
}
