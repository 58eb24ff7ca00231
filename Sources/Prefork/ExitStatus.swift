import CSystemShims

/// Wait statuses and lifetimes in log lines, alike for workers and tasks.
enum ExitStatus {
    /// `status=N` for an exit, `signal=N` for a death by signal.
    static func describe(_ status: Int32) -> String {
        csys_wifsignaled(status) != 0 ? "signal=\(csys_wtermsig(status))" : "status=\(csys_wexitstatus(status))"
    }

    static func isClean(_ status: Int32) -> Bool { csys_wifexited(status) != 0 && csys_wexitstatus(status) == 0 }

    static func rounded(_ seconds: Double) -> String { String(Double(Int(seconds * 1000)) / 1000) }
}
