import Glibc
import Testing

@testable import SystemCall

@Suite struct SystemCallTests {
    static let kinds: [(Int32, SystemCallError.Kind)] = [
        (EAGAIN, .wouldBlock), (EWOULDBLOCK, .wouldBlock), (EMFILE, .outOfDescriptors), (ENFILE, .outOfDescriptors),
        (ECONNABORTED, .connectionAborted), (ECHILD, .noChildren), (EBADF, .other), (ENOMEM, .other),
    ]

    @Test(arguments: kinds)
    func errnoBecomesAKind(_ code: Int32, _ kind: SystemCallError.Kind) {
        #expect(SystemCallError(call: "test", errno: code).kind == kind)
    }

    @Test func successAnswersTheResult() throws {
        #expect(try SystemCall.run("getpid") { getpid() } == getpid())
    }

    @Test func theErrorNamesTheCall() {
        #expect(throws: SystemCallError(call: "close", errno: EBADF)) { try SystemCall.run("close") { close(-1) } }
    }

    /// What a worker sees when another worker took the connection.
    @Test func acceptWithNothingPendingWouldBlock() throws {
        let listener = try Listener()
        defer { listener.close() }
        let error = #expect(throws: SystemCallError.self) { try SystemCall.run("accept") { accept(listener.fd, nil, nil) } }
        #expect(error?.kind == .wouldBlock)
    }

    /// What a worker sees when its process is out of descriptors: accept fails with EMFILE
    /// although a connection waits. The limit is lowered in a child, not in the test runner.
    @Test func acceptOutOfDescriptorsIsOutOfDescriptors() throws {
        let listener = try Listener()
        defer { listener.close() }
        let client = try listener.connect()
        defer { close(client) }
        let pid = fork()
        if pid == 0 {
            var limit = rlimit()
            getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
            limit.rlim_cur = 0
            setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
            do {
                try SystemCall.run("accept") { accept(listener.fd, nil, nil) }
                _exit(2)
            } catch {
                _exit(error.kind == .outOfDescriptors ? 0 : 1)
            }
        }
        #expect(pid > 0)
        #expect(waitForExit(pid) == 0)
    }

    @Test func waitingForNoChildIsNoChildren() {
        var status: Int32 = 0
        let error = #expect(throws: SystemCallError.self) { try SystemCall.run("waitpid") { waitpid(1, &status, WNOHANG) } }
        #expect(error?.kind == .noChildren)
    }
}

/// A non-blocking unix listening socket in a temporary directory.
struct Listener {
    let fd: Int32
    let path: String

    init() throws {
        path = "/tmp/prefork-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var addr = Listener.address(path)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        try #require(fd >= 0 && rc == 0 && listen(fd, 8) == 0)
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
    }

    /// A client connection, pending on the listener until someone accepts it.
    func connect() throws -> Int32 {
        let client = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var addr = Listener.address(path)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(client, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        try #require(client >= 0 && rc == 0)
        return client
    }

    func close() {
        _ = Glibc.close(fd)
        unlink(path)
    }

    static func address(_ path: String) -> sockaddr_un {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            raw.copyBytes(from: path.utf8)
            raw[path.utf8.count] = 0
        }
        return addr
    }
}

/// The child's exit status, or -(signal) when a signal ended it.
func waitForExit(_ pid: pid_t) -> Int32 {
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    let signal = status & 0x7f
    return signal == 0 ? (status >> 8) & 0xff : -signal
}
