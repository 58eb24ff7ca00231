import CSystemShims
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// What a forked worker is given.
public struct WorkerContext {
    /// Scoreboard slot index (1-based), stable for this worker's life.
    public let slot: Int32
    public let scoreboard: UnsafeMutablePointer<csys_slot>
    /// Counts one served request on the scoreboard.
    public func countRequest() { csys_scoreboard_add_request(scoreboard, slot) }
    public func setBusy(_ busy: Bool) { scoreboard[Int(slot)].busy = busy ? 1 : 0 }
    /// Takes one of `limit` password-hashing places of the pool (never waits).
    public func tryEnterHashing(limit: Int) -> Bool { csys_hash_enter(scoreboard, slot, Int32(clamping: limit)) == 1 }
    public func leaveHashing() { csys_hash_leave(scoreboard, slot) }
    /// The pool's write gate (see `WriteGateLock`).
    public let writeGate: WriteGateLock
}

/// A mutex shared by all workers of the pool (a robust process-shared pthread mutex in
/// shared memory), for serialising database writers without polling.
public final class WriteGateLock {
    let pointer: UnsafeMutableRawPointer
    init(_ pointer: UnsafeMutableRawPointer) { self.pointer = pointer }
    /// False when the gate stayed taken for `timeoutMilliseconds`.
    public func lock(timeoutMilliseconds: Int32) -> Bool { csys_write_gate_lock(pointer, timeoutMilliseconds) == 1 }
    public func unlock() { csys_write_gate_unlock(pointer) }
}

/// Hooks the master calls; all run in the master process.
public struct MasterHooks {
    /// Runs in the child after fork; must not return.
    public var workerMain: (WorkerContext) -> Never
    /// SIGHUP: re-read the configuration; answers the new worker count, or nil to keep
    /// the running workers (the error was logged).
    public var reload: () -> Int?
    /// SIGUSR1: reopen log files.
    public var reopenLogs: () -> Void
    /// Called about once a second (scheduled jobs).
    public var tick: () -> Void

    public init(workerMain: @escaping (WorkerContext) -> Never, reload: @escaping () -> Int?,
                reopenLogs: @escaping () -> Void = {}, tick: @escaping () -> Void = {}) {
        self.workerMain = workerMain
        self.reload = reload
        self.reopenLogs = reopenLogs
        self.tick = tick
    }
}

/// The pre-forking supervisor, modelled on php-fpm and unicorn: one master, N
/// single-threaded workers sharing a listen socket.
///
/// Signals (to the master): TERM, INT, QUIT stop gracefully (workers finish their request,
/// then KILL after `shutdownTimeout`); HUP reloads (new workers first, then the old ones
/// drain); USR1 reopens logs. Handlers only write a byte to a self-pipe.
public final class Master {
    enum State { case running, stopping }

    struct Worker {
        var pid: pid_t
        var slot: Int32
        var startedAt: Double
        var draining: Bool = false
        var drainSince: Double = 0
    }

    private var workers: [pid_t: Worker] = [:]
    private var desired: Int
    private var state = State.running
    private let shutdownTimeout: Double
    private let hooks: MasterHooks
    private let scoreboard: UnsafeMutablePointer<csys_slot>
    private let writeGate: WriteGateLock
    private let slotCount: Int32 = 512
    private var pendingRespawns: [(at: Double, slot: Int32)] = []
    private var crashStreak = 0
    private var stopDeadline = 0.0
    private var pipeRead: Int32 = -1

    public init(workers: Int, shutdownTimeout: Double, hooks: MasterHooks) throws {
        guard let board = csys_scoreboard_create(512) else { throw PreforkError("cannot map the scoreboard") }
        guard let gate = csys_write_gate_create() else { throw PreforkError("cannot create the write gate") }
        self.scoreboard = board
        self.writeGate = WriteGateLock(gate)
        self.desired = workers
        self.shutdownTimeout = shutdownTimeout
        self.hooks = hooks
    }

    /// Runs until stopped; answers the exit status for the process.
    public func run() -> Int32 {
        var fds: [Int32] = [0, 0]
        guard csys_self_pipe(&fds) == 0, csys_install_master_handlers(fds[1]) == 0 else {
            Log.error("master_signals_failed", ["errno": errno])
            return 1
        }
        pipeRead = fds[0]
        for _ in 0..<desired { spawn() }
        // Readiness contract: scripts and tests wait for this exact event.
        Log.info("master_ready", ["workers": desired])

        var lastTick = now()
        while true {
            var pfd = pollfd(fd: pipeRead, events: Int16(POLLIN), revents: 0)
            _ = poll(&pfd, 1, 200)
            for signal in drainPipe() { handle(signal) }
            reap()
            let t = now()
            maintain(at: t)
            if state == .stopping && workers.isEmpty {
                Log.info("master_stopped")
                return 0
            }
            if state == .running && t - lastTick >= 1 {
                lastTick = t
                hooks.tick()
            }
        }
    }

    // MARK: - signals

    private func drainPipe() -> [UInt8] {
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 64)
        while true {
            let n = read(pipeRead, &buf, buf.count)
            if n <= 0 { break }
            out += buf[0..<n]
        }
        return out
    }

    private func handle(_ signal: UInt8) {
        switch signal {
        case UInt8(ascii: "T"), UInt8(ascii: "I"), UInt8(ascii: "Q"):
            guard state == .running else { return }
            state = .stopping
            stopDeadline = now() + shutdownTimeout
            pendingRespawns.removeAll()
            Log.info("master_stopping", ["workers": workers.count, "timeout_s": shutdownTimeout])
            for pid in workers.keys { kill(pid, SIGTERM) }
        case UInt8(ascii: "H"):
            guard state == .running else { return }
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
        let t = now()
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
        return (1..<slotCount).first { !used.contains($0) }
    }

    private func spawn(slot wanted: Int32? = nil) {
        guard let slot = wanted ?? freeSlot() else {
            Log.error("no_free_slot")
            return
        }
        csys_block_stop_signals(1)  // no signal lands between fork and the child's own handlers
        let master = getpid()
        let pid = fork()
        if pid == 0 {
            close(pipeRead)
            var fresh = csys_slot()
            fresh.pid = getpid()
            fresh.started_at = Int64(time(nil))
            scoreboard[Int(slot)] = fresh
            _ = csys_install_worker_handlers()
            // An orphan would keep serving unsupervised on a socket a new master replaces.
            if csys_die_with_parent(master) != 0 { exit(0) }
            hooks.workerMain(WorkerContext(slot: slot, scoreboard: scoreboard, writeGate: writeGate))
        }
        csys_block_stop_signals(0)
        if pid < 0 {
            Log.error("fork_failed", ["errno": errno])
            pendingRespawns.append((now() + 1, slot))
            return
        }
        workers[pid] = Worker(pid: pid, slot: slot, startedAt: now())
        Log.info("worker_started", ["worker": pid, "slot": slot])
    }

    private func reap() {
        while true {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, WNOHANG)
            if pid <= 0 { return }
            guard let w = workers.removeValue(forKey: pid) else { continue }
            csys_hash_release_dead(scoreboard, w.slot)
            scoreboard[Int(w.slot)].pid = 0
            let lived = now() - w.startedAt
            let how: String
            if csys_wifsignaled(status) != 0 {
                how = "signal=\(csys_wtermsig(status))"
            } else {
                how = "status=\(csys_wexitstatus(status))"
            }
            let clean = csys_wifexited(status) != 0 && csys_wexitstatus(status) == 0
            if w.draining || state == .stopping {
                Log.info("worker_exited", ["worker": pid, "exit": how, "after_s": rounded(lived)])
                continue
            }
            // A worker exiting 0 on its own has reached max_requests: replace it at once.
            if clean {
                Log.info("worker_recycled", ["worker": pid, "after_s": rounded(lived)])
                crashStreak = 0
                spawn(slot: w.slot)
                continue
            }
            // Crash: back off exponentially while workers keep dying young (no fork bomb).
            crashStreak = lived < 2 ? crashStreak + 1 : 0
            let delay = crashStreak == 0 ? 0 : min(0.1 * Double(1 << min(crashStreak, 7)), 10)
            Log.warn("worker_exited", ["worker": pid, "exit": how, "after_s": rounded(lived), "respawn_in_s": delay])
            pendingRespawns.append((now() + delay, w.slot))
        }
    }

    private func maintain(at t: Double) {
        if state == .running {
            let due = pendingRespawns.filter { $0.at <= t }
            pendingRespawns.removeAll { $0.at <= t }
            for r in due { spawn(slot: r.slot) }
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
    }

    private func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    private func rounded(_ x: Double) -> String { String(Double(Int(x * 1000)) / 1000) }

    /// Pool-wide served requests and per-worker rows, for /status.
    public static func snapshot(_ board: UnsafeMutablePointer<csys_slot>) -> (total: UInt64, workers: [csys_slot]) {
        var rows: [csys_slot] = []
        for i in 1..<512 where board[i].pid != 0 { rows.append(board[i]) }
        return (csys_scoreboard_total(board), rows)
    }
}

public struct PreforkError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}
