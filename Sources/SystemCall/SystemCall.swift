#if canImport(Glibc)
import Glibc
#endif

/// A failed system call, classified by what its caller can do about it, so no caller reads
/// errno itself.
public struct SystemCallError: Error, Equatable, CustomStringConvertible {
    public enum Kind: Equatable, Sendable {
        /// EAGAIN/EWOULDBLOCK: nothing to do now (another worker took the connection).
        case wouldBlock
        /// EMFILE/ENFILE: the process or the system has no descriptor left; back off, as
        /// trying again at once only spins.
        case outOfDescriptors
        /// ECONNABORTED: the peer left before its connection was accepted; take the next.
        case connectionAborted
        /// ECHILD: no child left to wait for.
        case noChildren
        /// Anything else: a broken environment or a bug, worth a log line with the call's name.
        case other
    }

    /// The call's name, for the log.
    public let call: String
    public let errno: Int32

    public init(call: String, errno: Int32) {
        self.call = call
        self.errno = errno
    }

    public var kind: Kind {
        switch errno {
        case EAGAIN, EWOULDBLOCK: return .wouldBlock
        case EMFILE, ENFILE: return .outOfDescriptors
        case ECONNABORTED: return .connectionAborted
        case ECHILD: return .noChildren
        default: return .other
        }
    }

    public var description: String { "\(call): \(String(cString: strerror(errno))) (errno \(errno))" }
}

/// The one place system calls are made from Swift, as swift-nio's `syscall(blocking:where:)`:
/// interrupted calls are retried, failures come back as a `SystemCallError`.
public enum SystemCall {
    /// Runs `body`, a call that answers a negative value and sets errno on failure, again
    /// for as long as a signal interrupts it (EINTR). Not for `close`, which must not be
    /// retried on Linux.
    @discardableResult
    public static func run<Result: BinaryInteger>(_ call: String, _ body: () -> Result) throws(SystemCallError) -> Result {
        while true {
            let result = body()
            if result >= 0 { return result }
            let code = Glibc.errno
            if code == EINTR { continue }
            throw SystemCallError(call: call, errno: code)
        }
    }
}
