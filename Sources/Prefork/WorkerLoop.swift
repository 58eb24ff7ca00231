import CSystemShims

/// The signal discipline a worker follows around its blocking accept: stop signals are
/// unblocked only while waiting for a connection (so they interrupt accept()), and
/// blocked while a request is served (so it always completes).
public enum WorkerSignals {
    /// Unblocks stop signals; answers false when the worker should exit instead of accepting.
    public static func enterAccept() -> Bool {
        csys_block_stop_signals(0)
        return csys_worker_should_stop() == 0
    }

    /// Blocks stop signals for the request just accepted.
    public static func leaveAccept() { csys_block_stop_signals(1) }

    public static var stopRequested: Bool { csys_worker_should_stop() != 0 }
}
