import CSystemShims

/// Runs CPU-heavy work (a password hash) at a lower CPU priority than request handling, so
/// under load it takes the CPU that /token and auth_request leave over instead of theirs.
public enum BackgroundPriority {
    /// The nice value of the work's thread. Not 19 or SCHED_IDLE: a real user's login must
    /// still finish in seconds on a host that is busy with API traffic.
    public static let nice: Int32 = 10

    /// Runs `work` on a short-lived thread at `nice` and waits for it (the worker stays
    /// single-threaded between requests).
    public static func run(_ work: () -> Bool) -> Bool {
        withoutActuallyEscaping(work) { work in
            let job = BackgroundJob(work)
            csys_run_in_background({ raw in
                let job = Unmanaged<BackgroundJob>.fromOpaque(raw!).takeUnretainedValue()
                job.result = job.work()
            }, Unmanaged.passUnretained(job).toOpaque(), nice)
            return job.result
        }
    }
}

/// One piece of work and its result, handed to the background thread and read back after
/// the join (so never touched by two threads at once).
private final class BackgroundJob: @unchecked Sendable {
    let work: () -> Bool
    var result = false
    init(_ work: @escaping () -> Bool) { self.work = work }
}
