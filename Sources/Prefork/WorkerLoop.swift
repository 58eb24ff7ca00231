import CSystemShims
import Logging
import SystemCall
#if canImport(Glibc)
import Glibc
#endif

/// What a forked worker is given: its scoreboard slot.
public struct WorkerContext: Sendable {
    /// Scoreboard slot index (1-based), stable for this worker's life.
    public let slot: Int32
    let scoreboard: Scoreboard

    /// Counts one served request on the scoreboard.
    public func countRequest() { scoreboard.countRequest(slot: slot) }

    /// Counts a finished request for /metrics: `endpoint` is the application's index
    /// (below `PoolMetrics.endpointCount`), `status` the HTTP status.
    public func observe(endpoint: Int, status: Int, microseconds: UInt64) {
        scoreboard.observe(slot: slot, endpoint: endpoint, status: status, microseconds: microseconds)
    }

    /// Counts one application event for /metrics (index below `PoolMetrics.eventCount`).
    public func count(event: Int) { scoreboard.count(event: event, slot: slot) }

    /// Every pool counter now.
    public func metrics() -> PoolMetrics { scoreboard.poolMetrics() }

    /// Publishes the worker's new state; `endpoint` names the request once it is read.
    public func enter(_ state: WorkerState, endpoint: String? = nil) {
        let current = scoreboard.activity(slot)
        assert(current.state.canMove(to: state), "worker state \(current.state.name) -> \(state.name)")
        scoreboard.record(current.entering(state, endpoint: endpoint, now: MonotonicClock.milliseconds()), slot: slot)
    }

    /// Takes one of `limit` password-hashing places of the pool (never waits).
    public func tryEnterHashing(limit: Int) -> Bool { scoreboard.tryEnterHashing(slot: slot, limit: limit) }
    public func leaveHashing() { scoreboard.leaveHashing(slot: slot) }

    /// The whole pool as the scoreboard shows it now.
    public func snapshot() -> ScoreboardSnapshot { scoreboard.snapshot() }
}

/// The signal discipline of a worker: stop signals and USR1 stay blocked for its whole life
/// except inside the wait for the next connection (`waitForConnection`), so a stop, a reload
/// or a log reopen lands between requests and never cuts one that was already accepted.
public enum WorkerSignals {
    /// Blocks stop signals and USR1; call once when the worker starts.
    public static func blockStops() { csys_block_stop_signals(1) }

    /// Waits until `listenFD` has a connection to accept. False when the worker should stop.
    /// Reopens the log file first when the master forwarded USR1 (log rotation).
    public static func waitForConnection(_ listenFD: Int32) -> Bool {
        while !stopRequested {
            reopenLogIfAsked()
            switch csys_wait_readable(listenFD) {
            case 1: return true
            case 0: continue  // a signal: the loop re-checks the stop and reopen flags
            default: return false
            }
        }
        return false
    }

    public static var stopRequested: Bool { csys_worker_should_stop() != 0 }

    /// Keeps up to `bytes` of freed heap in the process instead of handing it back to the
    /// kernel after each request (a brk pair per request showed in the profile); a worker
    /// is recycled after max_requests anyway.
    public static func keepFreedHeap(bytes: Int32 = 64 << 20) { csys_keep_freed_heap(bytes) }

    /// Between requests only: the log file the worker inherited may have been renamed away.
    static func reopenLogIfAsked() {
        guard csys_worker_take_reopen() != 0 else { return }
        if Log.reopen() {
            Log.info("log_reopened")
        } else {
            Log.error("log_reopen_failed", ["path": Log.path ?? "", "errno": errno])
        }
    }
}

/// A worker whose accept fails for a reason that waiting does not clear (out of
/// descriptors, most often): the listen socket stays readable, so without a pause the
/// wait-and-accept loop would spin at 100 % CPU. Pauses 10 ms, doubling up to 100 ms, and
/// logs once per burst of failures, not once per try.
public struct AcceptBackoff {
    private(set) var failures = 0

    public init() {}

    /// Logs the first failure of a burst, then pauses (stop signals stay blocked: at most
    /// 100 ms late).
    public mutating func failed(_ error: SystemCallError) {
        failures += 1
        let pause = AcceptBackoff.pauseMilliseconds(afterFailures: failures)
        if failures == 1 {
            let reason = error.kind == .outOfDescriptors ? "out_of_descriptors" : "other"
            Log.warn("accept_failed", ["reason": reason, "detail": error.description, "pause_ms": pause])
        }
        usleep(UInt32(pause) * 1000)
    }

    /// An accept worked: ends a burst, logging how long it was.
    public mutating func succeeded() {
        guard failures > 0 else { return }
        Log.info("accept_recovered", ["failures": failures])
        failures = 0
    }

    static func pauseMilliseconds(afterFailures failures: Int) -> Int {
        min(10 << min(max(failures - 1, 0), 4), 100)
    }
}
