#if canImport(Glibc)
import Glibc
#endif

/// Seconds since the epoch; injected so tests can move time without sleeping.
public struct Clock: Sendable {
    public var now: @Sendable () -> Int64
    public init(now: @escaping @Sendable () -> Int64) { self.now = now }
    public static let system = Clock { Int64(time(nil)) }
    /// A clock that always answers `seconds` (tests).
    public static func fixed(_ seconds: Int64) -> Clock { Clock { seconds } }
}
