import Glibc
import Testing

import SharedWriteGate

/// The gate is shared by forked processes and survives a holder that dies holding it.
@Suite struct WriteGateTests {
    @Test func aLiveHolderMakesOthersTimeOut() throws {
        let gate = try WriteGateLock()
        let child = try holdInChild(gate, thenSleepMicroseconds: 500_000)
        #expect(!gate.lock(timeoutMilliseconds: 50))
        #expect(waitForExit(child) == 0)
        #expect(gate.lock(timeoutMilliseconds: 1_000), "the child left without unlocking: recovered")
        gate.unlock()
    }

    /// A worker killed mid-transaction (kill -9) must not stall the pool: the next lock
    /// recovers the gate (EOWNERDEAD), and it keeps working after that.
    @Test func aDeadHoldersGateIsRecovered() throws {
        let gate = try WriteGateLock()
        let child = try holdInChild(gate, thenSleepMicroseconds: 10_000_000)
        kill(child, SIGKILL)
        #expect(waitForExit(child) == -SIGKILL)
        #expect(gate.lock(timeoutMilliseconds: 1_000))
        gate.unlock()
        #expect(gate.lock(timeoutMilliseconds: 1_000))
        gate.unlock()
    }

    /// Forks a child that takes the gate, says so through a pipe, sleeps and exits without
    /// unlocking.
    private func holdInChild(_ gate: WriteGateLock, thenSleepMicroseconds pause: UInt32) throws -> pid_t {
        var fds: [Int32] = [0, 0]
        try #require(pipe(&fds) == 0)
        let pid = fork()
        if pid == 0 {
            _exit(gate.lock(timeoutMilliseconds: 1_000) && write(fds[1], "l", 1) == 1 && usleep(pause) == 0 ? 0 : 1)
        }
        defer {
            close(fds[0])
            close(fds[1])
        }
        var byte: UInt8 = 0
        try #require(pid > 0 && read(fds[0], &byte, 1) == 1)
        return pid
    }
}
