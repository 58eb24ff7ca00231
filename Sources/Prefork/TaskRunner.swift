import CSystemShims
import Logging
import SystemCall
#if canImport(Glibc)
import Glibc
#endif

/// One-shot children of the master (the purge), by name: at most one of a name runs at a
/// time, so a task that outlives its interval is not started twice. The master reaps them
/// with its workers, and asks them to leave when it stops.
public final class TaskRunner {
    struct RunningTask {
        var name: String
        var startedAt: Double
    }

    private(set) var running: [pid_t: RunningTask] = [:]
    private var closed = false
    private let prepareChild: () -> Void

    /// `prepareChild` runs in every task child before its body (the master closes its
    /// self-pipe there).
    init(prepareChild: @escaping () -> Void = {}) {
        self.prepareChild = prepareChild
    }

    var isEmpty: Bool { running.isEmpty }

    /// Forks `body` as the task `name`; the child exits with the status `body` answers. Not
    /// started (false) while a task of that name runs, once the master is stopping, or when
    /// fork fails (logged).
    @discardableResult
    public func run(_ name: String, _ body: () -> Int32) -> Bool {
        guard !closed else { return false }
        if let (pid, _) = running.first(where: { $0.value.name == name }) {
            Log.warn("task_still_running", ["task": name, "task_pid": pid])
            return false
        }
        csys_block_fork_signals(1)  // as for workers: no signal lands before the child's own handlers
        let master = getpid()
        let pid: pid_t
        do {
            pid = try SystemCall.run("fork") { fork() }
        } catch {
            csys_block_fork_signals(0)
            Log.error("task_fork_failed", ["task": name, "detail": error.description])
            return false
        }
        if pid == 0 {
            // A task must not make the master act on the task's signals, nor outlive it.
            if csys_install_task_handlers() != 0 || csys_die_with_parent(master) != 0 { _exit(1) }
            prepareChild()
            _exit(body())
        }
        csys_block_fork_signals(0)
        running[pid] = RunningTask(name: name, startedAt: MonotonicClock.seconds())
        Log.info("task_started", ["task": name, "task_pid": pid])
        return true
    }

    /// The master reaped `pid`: true (and its exit logged) when it was a task.
    func reaped(_ pid: pid_t, status: Int32) -> Bool {
        guard let task = running.removeValue(forKey: pid) else { return false }
        let fields: KeyValuePairs<String, CustomStringConvertible> = [
            "task": task.name, "task_pid": pid, "exit": ExitStatus.describe(status),
            "after_s": ExitStatus.rounded(MonotonicClock.seconds() - task.startedAt),
        ]
        if ExitStatus.isClean(status) { Log.info("task_exited", fields) } else { Log.warn("task_exited", fields) }
        return true
    }

    /// Takes no new task, and sends each running one `signal` (TERM first, KILL past the
    /// shutdown timeout).
    func stop(with signal: Int32) {
        closed = true
        for (pid, task) in running {
            if signal == SIGKILL { Log.warn("task_killed", ["task": task.name, "task_pid": pid, "reason": "shutdown_timeout"]) }
            kill(pid, signal)
        }
    }
}
