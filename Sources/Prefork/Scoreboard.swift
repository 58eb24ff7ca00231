import CSystemShims
#if canImport(Glibc)
import Glibc
#endif

/// The pool's shared memory (php-fpm's scoreboard): one slot per worker with its state and
/// counters, and a header with the master's state and the pool's totals. Mapped by the
/// master before it forks, so every worker writes its own slot and reads everyone's.
struct Scoreboard: @unchecked Sendable {
    /// Workers get slots 1..<slotCount (0 stays unused); the header lies before slot 0.
    static let slotCount: Int32 = 512
    let base: UnsafeMutablePointer<csys_slot>
    /// Prometheus counters: block i is slot i's, block 0 the master's and the reaped workers'.
    let metrics: UnsafeMutablePointer<csys_metrics>

    init() throws {
        guard let base = csys_scoreboard_create(Scoreboard.slotCount), let metrics = csys_metrics_create(Scoreboard.slotCount)
        else { throw PreforkError("cannot map the scoreboard") }
        self.base = base
        self.metrics = metrics
    }

    /// In the child right after fork: the slot is the new worker's, starting.
    func claim(_ slot: Int32, pid: pid_t) {
        var fresh = csys_slot()
        fresh.pid = pid
        fresh.started_at = Int64(time(nil))
        base[Int(slot)] = fresh
    }

    /// In the master, reaping the worker of `slot`: its counters join the pool's totals.
    func release(_ slot: Int32) {
        csys_hash_release_dead(base, slot)
        csys_metrics_fold(metrics, slot)
        base[Int(slot)].pid = 0
    }

    /// A worker's finished request, on its own slot's counters.
    func observe(slot: Int32, endpoint: Int, status: Int, microseconds: UInt64) {
        csys_metrics_observe(metrics + Int(slot), Int32(endpoint), Int32(status / 100 - 1), PoolMetrics.bucket(microseconds: microseconds),
                             microseconds)
    }

    func count(event: Int, slot: Int32) { csys_metrics_count(metrics + Int(slot), Int32(event)) }

    /// The master replaced a worker: after a crash, or after max_requests.
    func countRestart(afterCrash: Bool) { csys_metrics_count_restart(metrics, afterCrash ? 0 : 1) }

    /// Every counter summed over the master's block and the live slots'.
    func poolMetrics() -> PoolMetrics {
        var live = [UInt8](repeating: 0, count: Int(Scoreboard.slotCount) + 1)
        for i in 1..<Int(Scoreboard.slotCount) where base[i].pid != 0 { live[i] = 1 }
        var sum = csys_metrics()
        csys_metrics_sum(metrics, Scoreboard.slotCount, live, &sum)
        return PoolMetrics(sum)
    }

    func setMaster(_ state: MasterState) { csys_scoreboard_set_master(base, getpid(), state.rawValue) }

    func activity(_ slot: Int32) -> WorkerActivity { Scoreboard.activity(of: base[Int(slot)]) }

    func record(_ activity: WorkerActivity, slot: Int32) {
        csys_slot_set_activity(base, slot, activity.state.rawValue, activity.endpoint, activity.requestStartedMilliseconds ?? 0)
    }

    func countRequest(slot: Int32) { csys_scoreboard_add_request(base, slot) }
    func tryEnterHashing(slot: Int32, limit: Int) -> Bool { csys_hash_enter(base, slot, Int32(clamping: limit)) == 1 }
    func leaveHashing(slot: Int32) { csys_hash_leave(base, slot) }

    func snapshot() -> ScoreboardSnapshot {
        let now = MonotonicClock.milliseconds()
        var workers: [ScoreboardSnapshot.Worker] = []
        for i in 1..<Int(Scoreboard.slotCount) {
            let slot = base[i]
            guard slot.pid != 0 else { continue }
            let activity = Scoreboard.activity(of: slot)
            workers.append(.init(pid: slot.pid, requests: slot.requests, startedAt: slot.started_at, activity: activity,
                                 requestAgeMilliseconds: activity.requestStartedMilliseconds.map { max(0, now - $0) },
                                 hashing: slot.hashing != 0))
        }
        let master = MasterState(rawValue: csys_scoreboard_master_state(base)) ?? .running
        return ScoreboardSnapshot(requestsServed: csys_scoreboard_total(base), masterPID: csys_scoreboard_master_pid(base),
                                  masterState: master, workers: workers)
    }

    private static func activity(of slot: csys_slot) -> WorkerActivity {
        let endpoint = withUnsafeBytes(of: slot.endpoint) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        return WorkerActivity(state: WorkerState(rawValue: slot.state) ?? .starting, endpoint: endpoint,
                              requestStartedMilliseconds: slot.request_started_ms == 0 ? nil : slot.request_started_ms)
    }
}

/// CLOCK_MONOTONIC: one clock for every process of the host (a worker can age another
/// worker's request), which wall-clock jumps do not move.
enum MonotonicClock {
    static func seconds() -> Double {
        let ts = now()
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    static func milliseconds() -> Int64 {
        let ts = now()
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    private static func now() -> timespec {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return ts
    }
}

/// The scoreboard read at one moment, for `/gatehouse/status`.
public struct ScoreboardSnapshot: Sendable {
    public struct Worker: Sendable {
        public var pid: Int32
        public var requests: UInt64
        /// Unix seconds the worker started.
        public var startedAt: Int64
        public var activity: WorkerActivity
        /// How long the current request has been going; nil outside a request.
        public var requestAgeMilliseconds: Int64?
        public var hashing: Bool
    }

    /// Requests served by every worker since the master started.
    public var requestsServed: UInt64
    public var masterPID: Int32
    public var masterState: MasterState
    public var workers: [Worker]
}
