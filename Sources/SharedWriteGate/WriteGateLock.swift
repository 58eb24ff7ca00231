import CSystemShims

/// A mutex shared by every process forked after it was made (a robust, process-shared
/// pthread mutex in shared memory), so the pool's workers serialise their database writes
/// without polling SQLite's busy handler.
///
/// Made by the composition root before the master forks; every worker inherits the same
/// mapping. When a holder dies with the gate taken, the next `lock` recovers it
/// (EOWNERDEAD): SQLite has already rolled the dead writer's transaction back.
public final class WriteGateLock: @unchecked Sendable {
    private let pointer: UnsafeMutableRawPointer

    public init() throws {
        guard let pointer = csys_write_gate_create() else { throw WriteGateError() }
        self.pointer = pointer
    }

    /// False when the gate stayed taken for `timeoutMilliseconds`.
    public func lock(timeoutMilliseconds: Int32) -> Bool { csys_write_gate_lock(pointer, timeoutMilliseconds) == 1 }
    public func unlock() { csys_write_gate_unlock(pointer) }
}

public struct WriteGateError: Error, CustomStringConvertible {
    public var description: String { "cannot create the write gate (shared memory)" }
}
