import CSystemShims
import Logging
#if canImport(Glibc)
import Glibc
#endif

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
