import CSQLite
#if canImport(Glibc)
import Glibc
#endif

/// An SQLite failure with its extended result code. Never shown to a client:
/// `isTemporary` (busy, or the disk is full) maps to 503 temporarily_unavailable, anything
/// else to 500.
public struct SQLiteError: Error, CustomStringConvertible, Sendable {
    public var code: Int32
    public var message: String
    public var sql: String?

    public var isBusy: Bool { code & 0xFF == SQLITE_BUSY || code & 0xFF == SQLITE_LOCKED }
    public var isConstraint: Bool { code & 0xFF == SQLITE_CONSTRAINT }
    public var isDiskFull: Bool { code & 0xFF == SQLITE_FULL }
    /// A condition that passes without a code change: another writer, or an operator
    /// freeing disk space. The client may retry.
    public var isTemporary: Bool { isBusy || isDiskFull }
    /// The log event for a temporary failure.
    public var event: String { isDiskFull ? "database_full" : isBusy ? "database_busy" : "database_error" }
    public var description: String { "sqlite error \(code): \(message)" + (sql.map { " in \($0)" } ?? "") }
}

/// One connection, owned by one process. Workers open theirs after fork: a connection
/// must never cross a fork (https://www.sqlite.org/howtocorrupt.html §2.6).
public final class Connection {
    let handle: OpaquePointer
    private var cache: [String: Statement] = [:]
    private let busyState: UnsafeMutablePointer<csqlite_busy_state>
    /// Frames in the WAL after this connection's last commit, set by the WAL hook (see
    /// `checkpointIfDue`); 0 once handled.
    private let walFrames: UnsafeMutablePointer<Int32>

    /// Opens `path` with the pragmas every connection needs.
    /// - a busy handler: wait up to `busyTimeoutMilliseconds` for another worker's write lock
    ///   instead of failing at once, retrying every 50 µs to 1 ms (see `csqlite_busy_handler`).
    /// - `foreign_keys`: removing a client or user cascades to its tokens.
    /// - `synchronous=FULL`: in WAL mode NORMAL survives a process crash but can lose the
    ///   last commits on power loss or an OS crash; a lost commit could resurrect a revoked
    ///   token or a rotated refresh token, so critical commits are fsynced
    ///   (https://www.sqlite.org/pragma.html#pragma_synchronous). Writes whose loss fails
    ///   safe ask for NORMAL per transaction (`writeTransaction(critical: false)`); plain
    ///   statements outside `writeTransaction` commit with FULL. `durable: false` (NORMAL
    ///   for everything) is the operator's explicit trade of that guarantee for throughput.
    public init(path: String, busyTimeoutMilliseconds: Int32 = 5000, readOnly: Bool = false, durable: Bool = true) throws {
        var db: OpaquePointer?
        // A new database file is created empty (a valid empty database) with mode 0600:
        // SQLite would create it 0644 minus the umask, and it gives the -wal and -shm files
        // the database's mode. It holds password and token hashes.
        if !readOnly, !path.isEmpty, path != ":memory:", !path.hasPrefix("file:") {
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            if fd >= 0 { close(fd) }  // otherwise it exists, or sqlite3_open_v2 reports why not
        }
        let flags = (readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "cannot open"
            if let db { sqlite3_close_v2(db) }
            throw SQLiteError(code: rc, message: "\(message) (\(path))", sql: nil)
        }
        handle = db
        self.durable = durable
        self.busyTimeoutMilliseconds = busyTimeoutMilliseconds
        busyState = .allocate(capacity: 1)
        busyState.initialize(to: csqlite_busy_state(started_us: 0, timeout_us: Int64(busyTimeoutMilliseconds) * 1000))
        walFrames = .allocate(capacity: 1)
        walFrames.initialize(to: 0)
        sqlite3_extended_result_codes(db, 1)
        csqlite_set_busy_handler(db, busyState)
        // Replaces wal_autocheckpoint (which would checkpoint inside COMMIT, so inside the
        // write gate): only note the WAL's size; `checkpointIfDue` acts on it.
        sqlite3_wal_hook(db, { context, _, _, frames in
            context?.assumingMemoryBound(to: Int32.self).pointee = frames
            return SQLITE_OK
        }, walFrames)
        try execute("PRAGMA foreign_keys = ON")
        try execute(durable ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL")
        begin = try CachedCommand(self, "BEGIN IMMEDIATE")
        commit = try CachedCommand(self, "COMMIT")
        rollback = try CachedCommand(self, "ROLLBACK")
    }

    deinit {
        cache.removeAll()  // finalizes every cached statement before closing
        (begin, commit, rollback) = (nil, nil, nil)
        sqlite3_close_v2(handle)
        busyState.deallocate()
        walFrames.deallocate()
    }

    /// WAL frames past which a commit is followed by a checkpoint (SQLite's own default for
    /// wal_autocheckpoint).
    public var checkpointFrames: Int32 = 1000

    /// Runs one or more statements without results (DDL, pragmas, BEGIN/COMMIT).
    public func execute(_ sql: String) throws {
        var errmsg: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &errmsg)
        if rc != SQLITE_OK {
            let message = errmsg.map { String(cString: $0) } ?? "error"
            sqlite3_free(errmsg)
            throw SQLiteError(code: sqlite3_extended_errcode(handle), message: message, sql: sql)
        }
    }

    /// The cached prepared statement for `sql`, prepared once per connection lifetime
    /// (`SQLITE_PREPARE_PERSISTENT`), reset and unbound for reuse.
    public func statement(_ sql: String) throws -> Statement {
        if let s = cache[sql] {
            s.reset()
            return s
        }
        var stmt: OpaquePointer?
        let rc = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &stmt, nil)
        guard rc == SQLITE_OK, let stmt else { throw error(rc, sql: sql) }
        let s = Statement(stmt, connection: self, sql: sql)
        cache[sql] = s
        return s
    }

    /// Rows changed by the last INSERT, UPDATE or DELETE.
    public var changes: Int { Int(sqlite3_changes(handle)) }
    public var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }

    func error(_ rc: Int32, sql: String?) -> SQLiteError {
        SQLiteError(code: sqlite3_extended_errcode(handle), message: String(cString: sqlite3_errmsg(handle)), sql: sql)
    }

    /// Serialises writers of several processes before they reach SQLite's file lock, so a
    /// waiting worker sleeps on a futex and wakes the moment the writer is done, instead of
    /// polling the lock. Optional: SQLite's own locking stays the correctness mechanism.
    public var writeGate: WriteGate?

    private let durable: Bool
    private let busyTimeoutMilliseconds: Int32

    /// Runs `body` in a `BEGIN IMMEDIATE` transaction. Every read-then-write goes through
    /// here: in WAL mode a deferred transaction that reads, then writes after another
    /// process committed, fails with SQLITE_BUSY_SNAPSHOT, which busy_timeout cannot retry.
    ///
    /// `critical: false` marks a write whose loss on power failure fails safe (a token
    /// issued but forgotten stops working; a session or a throttling count is lost): it
    /// commits without fsync even on a `durable` connection. Revocations, code redemptions
    /// and refresh rotations stay critical.
    ///
    /// Group commit: in WAL mode a durable connection commits every transaction with
    /// synchronous=NORMAL, which appends the frames and publishes the commit without an
    /// fsync, and a critical one then fsyncs the WAL itself (`syncWAL`) after releasing the
    /// write lock and the gate, before it returns. The next writer appends its frames while
    /// this one waits for the disk, and concurrent fsyncs of the one file are served by one
    /// flush, instead of every writer holding the lock across its own fsync. This is as
    /// durable as synchronous=FULL for the caller, who answers only after `writeTransaction`
    /// returns, once the frames are on disk:
    /// - fdatasync of the WAL flushes every frame written before it, ours included, and WAL
    ///   frames are only ever appended, each commit's after the previous one's;
    /// - a later commit by another worker that is itself fsynced covers our frames too, and
    ///   recovery (checksums chained frame to frame) keeps our commit if it keeps theirs;
    /// - a checkpoint syncs the WAL before it copies frames into the database and syncs the
    ///   database before it lets the WAL restart (both also with NORMAL), so when a writer
    ///   restarts the WAL and overwrites our frames, they are already durable in the database
    ///   file, and our fsync of the restarted WAL has nothing of ours left to flush.
    /// What changes is only that another worker may read the commit before it is on disk;
    /// anything it writes on the strength of it is appended after it, so is durable only
    /// with it. If the fsync fails the caller gets the error, not a success.
    public func writeTransaction<T>(critical: Bool = true, _ body: () throws -> T) throws -> T {
        // busy_timeout bounds the whole wait for the write lock, gate included: past it the
        // request gets a 503, not an unbounded queue.
        if let gate = writeGate {
            guard gate.lock(timeoutMilliseconds: busyTimeoutMilliseconds) else {
                throw SQLiteError(code: SQLITE_BUSY, message: "database is busy (write gate timed out)", sql: nil)
            }
        }
        var gated = writeGate != nil
        defer { if gated { writeGate?.unlock() } }
        let relax = durable && (!critical || isWAL)
        if relax { try execute("PRAGMA synchronous = NORMAL") }
        defer { if relax { try? execute("PRAGMA synchronous = FULL") } }
        try begin.run()
        let result: T
        do {
            result = try body()
            try commit.run()
        } catch {
            // An I/O or busy error may already have rolled back (sqlite3_get_autocommit).
            if sqlite3_get_autocommit(handle) == 0 { try? rollback.run() }
            throw error
        }
        if gated {
            writeGate?.unlock()
            gated = false
        }
        if durable && critical && relax { try syncWAL() }
        checkpointIfDue()
        return result
    }

    private var begin: CachedCommand!
    private var commit: CachedCommand!
    private var rollback: CachedCommand!

    /// True once the database is seen in WAL mode (persistent in the file: it does not go back).
    private var isWAL: Bool {
        if walSeen { return true }
        walSeen = (try? queryOne("PRAGMA journal_mode") { $0.text(0) }) == "wal"
        return walSeen
    }
    private var walSeen = false

    /// fdatasync of the WAL file (see `writeTransaction`).
    func syncWAL() throws {
        var file: UnsafeMutablePointer<sqlite3_file>?
        let rc = sqlite3_file_control(handle, "main", SQLITE_FCNTL_JOURNAL_POINTER, &file)
        guard rc == SQLITE_OK, let file, let methods = file.pointee.pMethods, let xSync = methods.pointee.xSync else {
            throw SQLiteError(code: rc == SQLITE_OK ? SQLITE_IOERR | (4 << 8) : rc, message: "no WAL file to sync", sql: nil)
        }
        let src = xSync(file, SQLITE_SYNC_NORMAL)
        guard src == SQLITE_OK else { throw SQLiteError(code: src, message: "fsync of the WAL failed", sql: nil) }
    }

    /// Checkpoints once the WAL has passed `checkpointFrames`, outside the write gate: the
    /// copy into the database and its two fsyncs no longer stall every other writer (as
    /// wal_autocheckpoint did, running inside COMMIT). A passive checkpoint cannot restart the
    /// WAL while others keep appending, so a second one runs inside the gate, copying only
    /// the frames appended meanwhile: the next writer then finds the WAL fully copied and
    /// starts it over, and the file stops growing.
    func checkpointIfDue() {
        let frames = walFrames.pointee
        walFrames.pointee = 0
        guard checkpointFrames > 0, frames >= checkpointFrames else { return }
        var log: Int32 = 0, copied: Int32 = 0
        let rc = sqlite3_wal_checkpoint_v2(handle, nil, SQLITE_CHECKPOINT_PASSIVE, &log, &copied)
        guard rc == SQLITE_OK, copied < log || log < 0, let gate = writeGate,
            gate.lock(timeoutMilliseconds: busyTimeoutMilliseconds)
        else { return }
        defer { gate.unlock() }
        _ = sqlite3_wal_checkpoint_v2(handle, nil, SQLITE_CHECKPOINT_PASSIVE, nil, nil)
    }

    /// Runs `body` in a read transaction so several reads see one snapshot.
    public func readTransaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN")
        defer { if sqlite3_get_autocommit(handle) == 0 { try? execute("COMMIT") } }
        return try body()
    }

    /// Convenience for one-off queries: all rows mapped by `map`.
    public func query<T>(_ sql: String, _ bindings: [SQLValue] = [], _ map: (Statement) throws -> T) throws -> [T] {
        let s = try statement(sql)
        try s.bind(bindings)
        var out: [T] = []
        while try s.step() { out.append(try map(s)) }
        return out
    }

    /// The first row mapped by `map`, or nil. The statement is reset at once so no read
    /// transaction stays open (an open reader blocks WAL checkpoints).
    public func queryOne<T>(_ sql: String, _ bindings: [SQLValue] = [], _ map: (Statement) throws -> T) throws -> T? {
        let s = try statement(sql)
        try s.bind(bindings)
        defer { s.reset() }
        return try s.step() ? try map(s) : nil
    }

    /// Runs a statement that returns no rows; answers the number of rows changed.
    @discardableResult
    public func run(_ sql: String, _ bindings: [SQLValue] = []) throws -> Int {
        let s = try statement(sql)
        try s.bind(bindings)
        while try s.step() {}
        return changes
    }
}

/// A lock shared by the processes that write one database (see `Connection.writeGate`).
public protocol WriteGate: AnyObject {
    /// False when the gate stayed taken for `timeoutMilliseconds`.
    func lock(timeoutMilliseconds: Int32) -> Bool
    func unlock()
}

/// A value bound to a statement parameter.
public enum SQLValue: Sendable {
    case int(Int64), text(String), blob([UInt8]), null

    public static func optional(_ s: String?) -> SQLValue { s.map { .text($0) } ?? .null }
    public static func optional(_ n: Int64?) -> SQLValue { n.map { .int($0) } ?? .null }
}

/// A statement without parameters or rows (BEGIN, COMMIT), prepared once: sqlite3_exec
/// would parse it again on every call.
final class CachedCommand {
    let stmt: OpaquePointer
    unowned let connection: Connection
    let sql: String

    init(_ connection: Connection, _ sql: String) throws {
        var stmt: OpaquePointer?
        let rc = sqlite3_prepare_v3(connection.handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &stmt, nil)
        guard rc == SQLITE_OK, let stmt else { throw connection.error(rc, sql: sql) }
        self.stmt = stmt
        self.connection = connection
        self.sql = sql
    }

    deinit { sqlite3_finalize(stmt) }

    func run() throws {
        let rc = sqlite3_step(stmt)
        let failure = rc == SQLITE_DONE || rc == SQLITE_ROW ? nil : connection.error(rc, sql: sql)
        sqlite3_reset(stmt)
        if let failure { throw failure }
    }
}

/// A prepared statement, finalized when the connection's cache releases it.
public final class Statement {
    let stmt: OpaquePointer
    unowned let connection: Connection
    let sql: String

    init(_ stmt: OpaquePointer, connection: Connection, sql: String) {
        self.stmt = stmt
        self.connection = connection
        self.sql = sql
    }

    deinit { sqlite3_finalize(stmt) }

    func reset() {
        sqlite3_reset(stmt)
        sqlite3_clear_bindings(stmt)
    }

    /// Binds `values` to parameters 1...n.
    public func bind(_ values: [SQLValue]) throws {
        for (i, v) in values.enumerated() {
            let index = Int32(i + 1)
            let rc: Int32
            switch v {
            case .int(let n): rc = sqlite3_bind_int64(stmt, index, n)
            case .text(let s): rc = sqlite3_bind_text(stmt, index, s, -1, csqlite_transient())
            case .blob(let b):
                rc = b.withUnsafeBytes { sqlite3_bind_blob(stmt, index, $0.baseAddress ?? UnsafeRawPointer(bitPattern: 1), Int32(b.count), csqlite_transient()) }
            case .null: rc = sqlite3_bind_null(stmt, index)
            }
            guard rc == SQLITE_OK else { throw connection.error(rc, sql: sql) }
        }
    }

    /// Advances to the next row; false when done.
    public func step() throws -> Bool {
        let rc = sqlite3_step(stmt)
        if rc == SQLITE_ROW { return true }
        if rc == SQLITE_DONE { return false }
        let e = connection.error(rc, sql: sql)
        sqlite3_reset(stmt)
        throw e
    }

    public func int(_ column: Int32) -> Int64 { sqlite3_column_int64(stmt, column) }
    public func optionalInt(_ column: Int32) -> Int64? {
        sqlite3_column_type(stmt, column) == SQLITE_NULL ? nil : sqlite3_column_int64(stmt, column)
    }
    public func text(_ column: Int32) -> String {
        guard let p = sqlite3_column_text(stmt, column) else { return "" }
        return String(cString: p)
    }
    public func optionalText(_ column: Int32) -> String? {
        sqlite3_column_type(stmt, column) == SQLITE_NULL ? nil : text(column)
    }
    public func blob(_ column: Int32) -> [UInt8]? {
        guard sqlite3_column_type(stmt, column) != SQLITE_NULL else { return nil }
        let n = Int(sqlite3_column_bytes(stmt, column))
        guard n > 0, let p = sqlite3_column_blob(stmt, column) else { return [] }
        return Array(UnsafeRawBufferPointer(start: p, count: n))
    }
}
