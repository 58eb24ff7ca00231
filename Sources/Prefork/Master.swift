import CSystemShims
import Logging
import SystemCall
#if canImport(Glibc)
import Glibc
#endif

/// Hooks the master calls; all run in the master process.
public struct MasterHooks {
    /// Runs in the child after fork; must not return.
    public var workerMain: (WorkerContext) -> Never
    /// SIGHUP: re-read the configuration; answers the new worker count, or nil to keep
    /// the running workers (the error was logged).
    public var reload: () -> Int?
    /// SIGUSR1: reopen log files.
    public var reopenLogs: () -> Void
    /// Called about once a second while not stopping (scheduled jobs); starts one-shot
    /// children through the given runner.
    public var tick: (TaskRunner) -> Void

    public init(workerMain: @escaping (WorkerContext) -> Never, reload: @escaping () -> Int?,
                reopenLogs: @escaping () -> Void = {}, tick: @escaping (TaskRunner) -> Void = { _ in }) {
        self.workerMain = workerMain
        self.reload = reload
        self.reopenLogs = reopenLogs
        self.tick = tick
    }
}

/// The pre-forking supervisor, modelled on php-fpm and unicorn: one master, N
/// single-threaded workers sharing a listen socket, and one-shot task children.
///
/// Signals (to the master): TERM, INT, QUIT stop gracefully (workers finish their request,
/// tasks are asked to end, then KILL after `shutdownTimeout`); HUP reloads (new workers
/// first, then the old ones drain); USR1 reopens logs. Handlers only write a byte to a
/// self-pipe.
public final class Master {
    struct Worker {
        var pid: pid_t
        var slot: Int32
        var startedAt: Double
        var draining: Bool = false
        var drainSince: Double = 0
    }

    private var workers: [pid_t: Worker] = [:]
    private var desired: Int
    private var state = MasterState.running
    private let shutdownTimeout: Double
    private let hooks: MasterHooks
    private let scoreboard: Scoreboard
    /// Task children close the master's end of the self-pipe, as workers do.
    private lazy var tasks = TaskRunner(prepareChild: { [unowned self] in close(self.pipeRead) })
    private var pendingRespawns: [(at: Double, slot: Int32)] = []
    private var crashStreak = 0
    private var stopDeadline = 0.0
    private var pipeRead: Int32 = -1

    public init(workers: Int, shutdownTimeout: Double, hooks: MasterHooks) throws {
        self.scoreboard = try Scoreboard()
        self.desired = workers
        self.shutdownTimeout = shutdownTimeout
        self.hooks = hooks
    }

    /// Runs until stopped; answers the exit status for the process.
    public func run() -> Int32 {
        var fds: [Int32] = [0, 0]
        do {
            try SystemCall.run("pipe2") { csys_self_pipe(&fds) }
            try SystemCall.run("sigaction") { csys_install_master_handlers(fds[1]) }
        } catch {
            Log.error("master_signals_failed", ["detail": error.description])
            return 1
        }
        pipeRead = fds[0]
        scoreboard.setMaster(state)
        for _ in 0..<desired { spawn() }
        // Readiness contract: scripts and tests wait for this exact event.
        Log.info("master_ready", ["workers": desired])

        var lastTick = MonotonicClock.seconds()
        while true {
            var pfd = pollfd(fd: pipeRead, events: Int16(POLLIN), revents: 0)
            _ = poll(&pfd, 1, 200)
            for signal in drainPipe() { handle(signal) }
            reap()
            let t = MonotonicClock.seconds()
            maintain(at: t)
            if state == .stopping && workers.isEmpty && tasks.isEmpty {
                Log.info("master_stopped")
                return 0
            }
            if state != .stopping && t - lastTick >= 1 {
                lastTick = t
                hooks.tick(tasks)
            }
        }
    }

    private func enter(_ next: MasterState) {
        state = next
        scoreboard.setMaster(next)
    }

    // MARK: - signals

    private func drainPipe() -> [UInt8] {
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 64)
        while true {
            do {
                let n = try SystemCall.run("read") { read(pipeRead, &buf, buf.count) }
                if n == 0 { break }
                out += buf[0..<n]
            } catch {
                if error.kind != .wouldBlock { Log.error("self_pipe_failed", ["detail": error.description]) }
                break
            }
        }
        return out
    }

    private func handle(_ signal: UInt8) {
        switch signal {
        case UInt8(ascii: "T"), UInt8(ascii: "I"), UInt8(ascii: "Q"):
            guard let next = state.after(.stopSignal) else { return }
            enter(next)
            stopDeadline = MonotonicClock.seconds() + shutdownTimeout
            pendingRespawns.removeAll()
            Log.info("master_stopping", ["workers": workers.count, "timeout_s": shutdownTimeout])
            for pid in workers.keys { kill(pid, SIGTERM) }
            tasks.stop(with: SIGTERM)
        case UInt8(ascii: "H"):
            guard let next = state.after(.reloadSignal) else { return }
            enter(next)
            reload()
        case UInt8(ascii: "U"):
            // Workers reopen theirs between requests (see WorkerSignals), each logging it.
            hooks.reopenLogs()
            for pid in workers.keys { kill(pid, SIGUSR1) }
        default:
            break  // 'C': reaping happens every loop
        }
    }

    /// New workers start before the old ones are asked to finish, so capacity never drops
    /// and the shared listen socket never stops accepting: no request fails during a reload.
    /// The master stays `reloading` until the old ones are gone (a failed reload has none).
    private func reload() {
        Log.info("master_reloading")
        guard let count = hooks.reload() else {
            Log.warn("reload_failed", ["keeping_workers": workers.count])
            return
        }
        let old = workers.filter { !$0.value.draining }.map(\.key)
        desired = count
        pendingRespawns.removeAll()
        for _ in 0..<count { spawn() }
        let t = MonotonicClock.seconds()
        for pid in old {
            workers[pid]?.draining = true
            workers[pid]?.drainSince = t
            kill(pid, SIGTERM)
        }
        Log.info("master_reloaded", ["workers": count, "draining": old.count])
    }

    // MARK: - workers

    private func freeSlot() -> Int32? {
        let used = Set(workers.values.map(\.slot) + pendingRespawns.map(\.slot))
        return (1..<Scoreboard.slotCount).first { !used.contains($0) }
    }

    private func spawn(slot wanted: Int32? = nil) {
        guard let slot = wanted ?? freeSlot() else {
            Log.error("no_free_slot")
            return
        }
        csys_block_fork_signals(1)  // no signal lands between fork and the child's own handlers
        defer { csys_block_fork_signals(0) }
        let master = getpid()
        let pid: pid_t
        do {
            pid = try SystemCall.run("fork") { fork() }
        } catch {
            Log.error("fork_failed", ["detail": error.description])
            pendingRespawns.append((MonotonicClock.seconds() + 1, slot))
            return
        }
        if pid == 0 {
            close(pipeRead)
            scoreboard.claim(slot, pid: getpid())
            _ = csys_install_worker_handlers()
            // An orphan would keep serving unsupervised on a socket a new master replaces.
            if csys_die_with_parent(master) != 0 { exit(0) }
            hooks.workerMain(WorkerContext(slot: slot, scoreboard: scoreboard))
        }
        workers[pid] = Worker(pid: pid, slot: slot, startedAt: MonotonicClock.seconds())
        Log.info("worker_started", ["worker": pid, "slot": slot])
    }

    private func reap() {
        while true {
            var status: Int32 = 0
            let pid: pid_t
            do {
                pid = try SystemCall.run("waitpid") { waitpid(-1, &status, WNOHANG) }
            } catch {
                if error.kind != .noChildren { Log.error("waitpid_failed", ["detail": error.description]) }
                return
            }
            if pid == 0 { return }
            if tasks.reaped(pid, status: status) { continue }
            guard let w = workers.removeValue(forKey: pid) else { continue }
            scoreboard.release(w.slot)
            let lived = MonotonicClock.seconds() - w.startedAt
            let how = ExitStatus.describe(status)
            if w.draining || state == .stopping {
                Log.info("worker_exited", ["worker": pid, "exit": how, "after_s": ExitStatus.rounded(lived)])
                continue
            }
            // A worker exiting 0 on its own has reached max_requests: replace it at once.
            if ExitStatus.isClean(status) {
                Log.info("worker_recycled", ["worker": pid, "after_s": ExitStatus.rounded(lived)])
                crashStreak = 0
                scoreboard.countRestart(afterCrash: false)
                spawn(slot: w.slot)
                continue
            }
            // Crash: back off exponentially while workers keep dying young (no fork bomb).
            crashStreak = lived < 2 ? crashStreak + 1 : 0
            let delay = crashStreak == 0 ? 0 : min(0.1 * Double(1 << min(crashStreak, 7)), 10)
            Log.warn("worker_exited", ["worker": pid, "exit": how, "after_s": ExitStatus.rounded(lived), "respawn_in_s": delay])
            scoreboard.countRestart(afterCrash: true)
            pendingRespawns.append((MonotonicClock.seconds() + delay, w.slot))
        }
    }

    private func maintain(at t: Double) {
        if state != .stopping {
            let due = pendingRespawns.filter { $0.at <= t }
            pendingRespawns.removeAll { $0.at <= t }
            for r in due { spawn(slot: r.slot) }
        }
        if state == .reloading, !workers.values.contains(where: \.draining), let next = state.after(.drained) {
            enter(next)
        }
        // Re-signal workers that should be leaving: a TERM that landed just before accept()
        // is otherwise only noticed at the next request. Harmless mid-request, where the
        // worker blocks the signal.
        for w in workers.values where w.draining || state == .stopping {
            let deadline = state == .stopping ? stopDeadline : w.drainSince + shutdownTimeout
            if t >= deadline {
                Log.warn("worker_killed", ["worker": w.pid, "reason": "shutdown_timeout"])
                kill(w.pid, SIGKILL)
            } else {
                kill(w.pid, SIGTERM)
            }
        }
        // A task takes TERM at once (default action); KILL is for one stuck in a system call.
        if state == .stopping && t >= stopDeadline { tasks.stop(with: SIGKILL) }
    }
}

public struct PreforkError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}
