import Glibc
import Logging
import SystemCall
import Testing

@testable import Prefork

/// Tests that read the log: `Log` is process-wide, so they run one at a time.
@Suite(.serialized) enum LoggedTests {}

extension LoggedTests {
    /// The runner the master starts the purge with, forking real children.
    @Suite struct TaskRunnerTests {
        @Test func aRunningTaskIsNotStartedTwice() throws {
            try withCapturedLog { log in
                let runner = TaskRunner()
                #expect(runner.run("nap") { usleep(300_000); return 0 })
                let pid = try #require(runner.pid(of: "nap"))
                #expect(!runner.run("nap") { 0 })
                #expect(lines(log(), with: "event=task_still_running", "task=nap", "task_pid=\(pid)") == 1)
                #expect(runner.run("other") { 0 }, "another name is another task")

                var status: Int32 = 0
                waitpid(pid, &status, 0)
                #expect(runner.reaped(pid, status: status))
                #expect(runner.pid(of: "nap") == nil)
                #expect(runner.run("nap") { 0 }, "once reaped, the name is free again")
                reapAll(runner)
            }
        }

        @Test func anExitIsReapedAndLoggedWithItsName() throws {
            try withCapturedLog { log in
                let runner = TaskRunner()
                #expect(runner.run("purge") { 3 })
                let pid = try #require(runner.pid(of: "purge"))
                #expect(lines(log(), with: "level=info event=task_started", "task=purge", "task_pid=\(pid)") == 1)
                var status: Int32 = 0
                waitpid(pid, &status, 0)
                #expect(runner.reaped(pid, status: status))
                #expect(lines(log(), with: "level=warn event=task_exited", "task=purge", "task_pid=\(pid)", #"exit="status=3""#) == 1)
                #expect(!runner.reaped(pid, status: status), "a pid is a task's once")
                #expect(runner.isEmpty)
            }
        }

        /// What the master does on stop: TERM ends a task at once (its default action), and
        /// no task starts afterwards.
        @Test func stopTerminatesTasksAndTakesNoMore() throws {
            try withCapturedLog { log in
                let runner = TaskRunner()
                #expect(runner.run("long") { sleep(30); return 0 })
                let pid = try #require(runner.pid(of: "long"))
                runner.stop(with: SIGTERM)
                var status: Int32 = 0
                waitpid(pid, &status, 0)
                #expect(runner.reaped(pid, status: status))
                #expect(lines(log(), with: "event=task_exited", "task=long", "task_pid=\(pid)", #"exit="signal=\#(SIGTERM)""#) == 1)
                #expect(!runner.run("long") { 0 })
            }
        }

        @Test func theChildRunsPrepareBeforeItsBody() throws {
            try withCapturedLog { _ in
                var fds: [Int32] = [0, 0]
                try #require(pipe(&fds) == 0)
                let runner = TaskRunner(prepareChild: { [fds] in _ = write(fds[1], "p", 1) })
                #expect(runner.run("prepared") { 0 })
                var byte: UInt8 = 0
                #expect(read(fds[0], &byte, 1) == 1 && byte == UInt8(ascii: "p"))
                close(fds[0])
                close(fds[1])
                reapAll(runner)
            }
        }
    }

    @Suite struct AcceptBackoffTests {
        @Test func pausesDoubleFrom10To100Milliseconds() {
            #expect((1...7).map(AcceptBackoff.pauseMilliseconds(afterFailures:)) == [10, 20, 40, 80, 100, 100, 100])
        }

        @Test func logsOncePerBurst() {
            withCapturedLog { log in
                var backoff = AcceptBackoff()
                let emfile = SystemCallError(call: "accept", errno: EMFILE)
                for _ in 0..<3 { backoff.failed(emfile) }
                backoff.succeeded()
                backoff.succeeded()
                backoff.failed(emfile)
                #expect(lines(log(), with: "event=accept_failed", "reason=out_of_descriptors") == 2)
                #expect(lines(log(), with: "event=accept_recovered", "failures=3") == 1)
            }
        }
    }
}

extension TaskRunner {
    func pid(of name: String) -> pid_t? { running.first { $0.value.name == name }?.key }
}

/// Waits for and reaps every task the runner still has.
func reapAll(_ runner: TaskRunner) {
    while let pid = runner.running.keys.first {
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        _ = runner.reaped(pid, status: status)
    }
}

/// How many lines of `log` hold every one of `fragments`.
func lines(_ log: String, with fragments: String...) -> Int {
    log.split(separator: "\n").filter { line in fragments.allSatisfy { line.contains($0) } }.count
}

/// Runs `body` with the log going to a temporary file; `body` reads it with the closure it
/// is given. The log goes back to stderr afterwards.
func withCapturedLog<T>(_ body: (() -> String) throws -> T) rethrows -> T {
    let path = "/tmp/prefork-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).log"
    Log.open(path: path)
    defer {
        Log.open(path: nil)
        unlink(path)
    }
    return try body {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return "" }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while case let n = read(fd, &buffer, buffer.count), n > 0 { bytes += buffer[0..<n] }
        return String(decoding: bytes, as: UTF8.self)
    }
}
