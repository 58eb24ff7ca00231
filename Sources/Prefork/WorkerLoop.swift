import CSystemShims

/// The signal discipline of a worker: stop signals stay blocked for its whole life except
/// inside the wait for the next connection (`waitForConnection`), so a stop or a reload
/// lands between requests and never cuts one that was already accepted.
public enum WorkerSignals {
    /// Blocks stop signals; call once when the worker starts.
    public static func blockStops() { csys_block_stop_signals(1) }

    /// Waits until `listenFD` has a connection to accept. False when the worker should stop.
    public static func waitForConnection(_ listenFD: Int32) -> Bool {
        while !stopRequested {
            switch csys_wait_readable(listenFD) {
            case 1: return true
            case 0: continue  // a signal: the loop re-checks the stop flag
            default: return false
            }
        }
        return false
    }

    public static var stopRequested: Bool { csys_worker_should_stop() != 0 }
}
