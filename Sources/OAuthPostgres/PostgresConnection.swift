import CLibPQ
import Foundation

/// A value bound to a statement parameter. Integers and text travel in text format (the
/// server converts them to the column's type); bytea in binary, as it is.
public enum PGValue: Sendable {
    case int(Int64), text(String), blob([UInt8]), null

    public static func optional(_ s: String?) -> PGValue { s.map { .text($0) } ?? .null }
    public static func optional(_ n: Int64?) -> PGValue { n.map { .int($0) } ?? .null }
}

/// One libpq connection, owned by one process: workers open theirs after the fork.
///
/// Every statement is parameterised: the hot ones are prepared once per connection
/// (`PQsendPrepare`) and then run with `PQsendQueryPrepared`; results come back in binary.
/// No call waits past its deadline: the server enforces `statement_timeout` and
/// `lock_timeout` (both `busy_timeout_ms`), and the client waits on the socket with `poll`
/// a second longer, then drops the connection (a dead server or network answers nothing).
/// A lost connection fails the call in progress with a temporary error; the next call
/// reconnects.
public final class PostgresConnection {
    private var conn: OpaquePointer?
    private let uri: String
    /// busy_timeout_ms: lock_timeout, and statement_timeout (at least 1 s: 0 would disable it).
    private let timeoutMilliseconds: Int
    /// `durable: false` commits nothing with `synchronous_commit = on` (see `transaction`).
    private let durable: Bool
    private var prepared: [String: String] = [:]
    /// The session's `synchronous_commit`, as last set.
    private var synchronousCommit: Bool?
    /// The end of the transaction in progress: its statements share one budget.
    private var deadline: Int64?

    /// Connects at the first call, not here: a worker starts while the server is out of
    /// reach, and its requests get 503 until it is back.
    public init(uri: String, busyTimeoutMilliseconds: Int = 5000, durable: Bool = true) {
        self.uri = uri
        timeoutMilliseconds = busyTimeoutMilliseconds
        self.durable = durable
    }

    deinit { if let conn { PQfinish(conn) } }

    private var statementTimeout: Int { max(timeoutMilliseconds, 1000) }

    /// Opens (or reopens) the connection and sets the session's timeouts. The array entries
    /// before `dbname` are defaults the URI may override (libpq processes them in order).
    private func connect() throws {
        if let conn { PQfinish(conn) }
        conn = nil
        prepared = [:]
        synchronousCommit = nil
        let settings = [("connect_timeout", String(max(2, (statementTimeout + 999) / 1000))),
                        ("application_name", "gatehouse"), ("dbname", uri)]
        let keys = settings.map { strdup($0.0) }
        let values = settings.map { strdup($0.1) }
        defer { (keys + values).forEach { free($0) } }
        let c = (keys.map { UnsafePointer($0) } + [nil]).withUnsafeBufferPointer { k in
            (values.map { UnsafePointer($0) } + [nil]).withUnsafeBufferPointer { v in
                PQconnectdbParams(k.baseAddress, v.baseAddress, 1)
            }
        }
        conn = c
        guard let c, PQstatus(c) == CONNECTION_OK else {
            let message = c.map { Self.trimmed(PQerrorMessage($0)) } ?? "out of memory"
            throw PostgresError.unavailable("cannot connect to \(PostgresURI.masked(uri)): \(message)")
        }
        // libpq prints the server's notices (`… already exists, skipping`) on stderr, which is
        // the CLI's error channel and the worker's log: they are not errors, so they go nowhere.
        PQsetNoticeProcessor(c, { _, _ in }, nil)
        _ = try execute("""
            SELECT set_config('statement_timeout', $1, false), set_config('lock_timeout', $2, false),
                   set_config('synchronous_commit', $3, false)
            """, [.text("\(statementTimeout)"), .text("\(max(timeoutMilliseconds, 1))"), .text(durable ? "on" : "off")])
        synchronousCommit = durable
    }

    /// A connection lost since the last call is reopened now.
    private func ready() throws -> OpaquePointer {
        if let conn, PQstatus(conn) == CONNECTION_OK { return conn }
        try connect()
        guard let conn else { throw PostgresError.unavailable("no connection") }
        return conn
    }

    static func trimmed(_ message: UnsafePointer<CChar>?) -> String {
        guard let message else { return "" }
        return String(cString: message).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    static func monotonicMilliseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }

    // MARK: - round trips

    /// Waits for every result of what was sent; answers the last one, or throws the first
    /// error. Past the deadline the connection is closed (the next call reconnects).
    private func collect(_ c: OpaquePointer) throws -> PostgresResult {
        let end = deadline ?? Self.monotonicMilliseconds() + Int64(statementTimeout)
        var last: PostgresResult?
        var failure: PostgresError?
        while true {
            while PQisBusy(c) == 1 {
                let left = end + 1000 - Self.monotonicMilliseconds()
                var fds = pollfd(fd: PQsocket(c), events: Int16(POLLIN), revents: 0)
                let ready = left > 0 ? poll(&fds, 1, Int32(min(left, Int64(Int32.max)))) : 0
                if ready == 0 {
                    PQfinish(c)
                    conn = nil
                    throw PostgresError.unavailable("no answer from the server within \(statementTimeout + 1000) ms")
                }
                if ready < 0 && errno == EINTR { continue }
                if ready < 0 || PQconsumeInput(c) == 0 { throw lost(c) }
            }
            guard let r = PQgetResult(c) else { break }
            let result = PostgresResult(r)
            switch PQresultStatus(r) {
            case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY:
                last = result
            default:
                if failure == nil { failure = result.error }
            }
        }
        if let failure {
            if PQstatus(c) != CONNECTION_OK { throw lost(c) }
            throw failure
        }
        guard let last else { throw lost(c) }
        return last
    }

    private func lost(_ c: OpaquePointer) -> PostgresError {
        PostgresError.unavailable("connection lost: \(Self.trimmed(PQerrorMessage(c)))")
    }

    /// Runs `sql` with `bindings`, prepared once per connection.
    func execute(_ sql: String, _ bindings: [PGValue]) throws -> PostgresResult {
        let c = try ready()
        let name: String
        if let known = prepared[sql] {
            name = known
        } else {
            name = "s\(prepared.count + 1)"
            let types: [Oid] = bindings.map {
                switch $0 {
                case .int: 20  // int8
                case .text: 25  // text
                case .blob: 17  // bytea
                case .null: 0  // inferred
                }
            }
            guard PQsendPrepare(c, name, sql, Int32(types.count), types) == 1 else { throw lost(c) }
            _ = try collect(c)
            prepared[sql] = name
        }
        let params = Parameters(bindings)
        defer { params.free() }
        guard PQsendQueryPrepared(c, name, Int32(bindings.count), params.values, params.lengths, params.formats, 1) == 1
        else { throw lost(c) }
        return try collect(c)
    }

    /// Runs statements that take no parameters and are not worth preparing (DDL,
    /// transaction control); several statements separated by `;` run in one round trip.
    public func script(_ sql: String) throws {
        let c = try ready()
        guard PQsendQuery(c, sql) == 1 else { throw lost(c) }
        _ = try collect(c)
    }

    // MARK: - queries

    public func query<T>(_ sql: String, _ bindings: [PGValue] = [], _ map: (PostgresRow) throws -> T) throws -> [T] {
        let result = try execute(sql, bindings)
        return try (0..<result.rowCount).map { try map(PostgresRow(result: result, row: $0)) }
    }

    public func queryOne<T>(_ sql: String, _ bindings: [PGValue] = [], _ map: (PostgresRow) throws -> T) throws -> T? {
        let result = try execute(sql, bindings)
        return result.rowCount > 0 ? try map(PostgresRow(result: result, row: 0)) : nil
    }

    /// Runs a statement; answers the rows it changed. Outside a transaction it commits on
    /// its own, fsynced unless `critical` is false (see `transaction`).
    @discardableResult
    public func run(_ sql: String, _ bindings: [PGValue] = [], critical: Bool = true) throws -> Int {
        if deadline == nil { try setSynchronousCommit(durable && critical) }
        return try execute(sql, bindings).changes
    }

    // MARK: - transactions

    /// Runs `body` in one READ COMMITTED transaction and commits it; rolls back on error.
    /// Read-then-write steps lock the rows they decide on (`SELECT … FOR UPDATE`), so a
    /// concurrent transaction on another worker or host waits for the commit and then
    /// sees the new state. A deadlock (40P01) or serialization failure (40001) rolls back
    /// and runs `body` again, twice at most; it must therefore be free of side effects
    /// outside the database (the core's `decide` closures are pure).
    ///
    /// `critical: false` marks a write whose loss in a server crash fails safe (a token
    /// issued but forgotten stops working; a session or a throttling count is lost): it
    /// commits with `synchronous_commit = off`, without waiting for the WAL flush.
    /// Revocations, code redemptions and refresh rotations stay critical.
    public func transaction<T>(critical: Bool = true, _ body: () throws -> T) throws -> T {
        precondition(deadline == nil, "transactions do not nest")
        var attempt = 0
        // The transaction's synchronous_commit travels with its BEGIN (SET LOCAL, one round
        // trip) when the session's differs: a worker alternating critical and other writes
        // (/authorize stores a code, /token redeems it) no longer pays a set_config each way.
        let wanted = durable && critical
        while true {
            attempt += 1
            deadline = Self.monotonicMilliseconds() + Int64(statementTimeout)
            defer { deadline = nil }
            do {
                try script(synchronousCommit == wanted ? "BEGIN" : "BEGIN; SET LOCAL synchronous_commit TO \(wanted ? "on" : "off")")
                let result = try body()
                try script("COMMIT")
                return result
            } catch {
                if let c = conn, PQstatus(c) == CONNECTION_OK, PQtransactionStatus(c) != PQTRANS_IDLE {
                    try? script("ROLLBACK")
                }
                guard (error as? PostgresError)?.isRetryable == true, attempt < 3 else { throw error }
                usleep(UInt32.random(in: 1000...5000 * UInt32(attempt)))
            }
        }
    }

    private func setSynchronousCommit(_ on: Bool) throws {
        guard synchronousCommit != on else { return }
        _ = try execute("SELECT set_config('synchronous_commit', $1, false)", [.text(on ? "on" : "off")])
        synchronousCommit = on
    }
}

/// A result, cleared when released.
final class PostgresResult {
    let handle: OpaquePointer
    init(_ handle: OpaquePointer) { self.handle = handle }
    deinit { PQclear(handle) }

    var rowCount: Int { Int(PQntuples(handle)) }
    /// Rows changed by an INSERT, UPDATE or DELETE (0 for other commands).
    var changes: Int { Int(String(cString: PQcmdTuples(handle))) ?? 0 }

    var error: PostgresError {
        let state = PQresultErrorField(handle, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }
        return PostgresError(sqlState: state, message: PostgresConnection.trimmed(PQresultErrorMessage(handle)))
    }
}

/// One row of a binary-format result.
public struct PostgresRow {
    let result: PostgresResult
    let row: Int32

    init(result: PostgresResult, row: Int) {
        self.result = result
        self.row = Int32(row)
    }

    public func isNull(_ column: Int32) -> Bool { PQgetisnull(result.handle, row, column) == 1 }

    private func bytes(_ column: Int32) -> UnsafeBufferPointer<UInt8> {
        let n = Int(PQgetlength(result.handle, row, column))
        return PQgetvalue(result.handle, row, column).withMemoryRebound(to: UInt8.self, capacity: n) {
            UnsafeBufferPointer(start: $0, count: n)
        }
    }

    /// int2, int4, int8 or bool, big-endian in binary format; 0 when NULL.
    public func int(_ column: Int32) -> Int64 {
        guard !isNull(column) else { return 0 }
        let b = bytes(column)
        var v: Int64 = b.first.map { Int64(Int8(bitPattern: $0)) } ?? 0  // sign of the first byte
        for byte in b.dropFirst() { v = v << 8 | Int64(byte) }
        return v
    }

    public func optionalInt(_ column: Int32) -> Int64? { isNull(column) ? nil : int(column) }
    public func text(_ column: Int32) -> String { String(decoding: bytes(column), as: UTF8.self) }
    public func optionalText(_ column: Int32) -> String? { isNull(column) ? nil : text(column) }
    public func blob(_ column: Int32) -> [UInt8]? { isNull(column) ? nil : Array(bytes(column)) }
}

/// The C arrays `PQsendQueryPrepared` reads, alive until `free()`.
private struct Parameters {
    let values: [UnsafePointer<CChar>?]
    let lengths: [Int32]
    let formats: [Int32]
    private let buffers: [UnsafeMutablePointer<CChar>]

    init(_ bindings: [PGValue]) {
        var buffers: [UnsafeMutablePointer<CChar>] = []
        var values: [UnsafePointer<CChar>?] = []
        var lengths: [Int32] = []
        var formats: [Int32] = []
        func copy(_ bytes: [UInt8], terminated: Bool) -> UnsafePointer<CChar> {
            let p = UnsafeMutablePointer<CChar>.allocate(capacity: bytes.count + 1)
            bytes.withUnsafeBytes { raw in
                if let base = raw.baseAddress { UnsafeMutableRawPointer(p).copyMemory(from: base, byteCount: bytes.count) }
            }
            if terminated { p[bytes.count] = 0 }
            buffers.append(p)
            return UnsafePointer(p)
        }
        for b in bindings {
            switch b {
            case .int(let n):
                values.append(copy(Array("\(n)".utf8), terminated: true)); lengths.append(0); formats.append(0)
            case .text(let s):
                // PostgreSQL text cannot hold NUL. A NUL from a request (a username, a CSRF
                // field) becomes U+FFFD, so the lookup simply finds nothing.
                let clean = s.contains("\0") ? s.replacingOccurrences(of: "\0", with: "\u{FFFD}") : s
                values.append(copy(Array(clean.utf8), terminated: true)); lengths.append(0); formats.append(0)
            case .blob(let bytes):
                values.append(copy(bytes, terminated: false)); lengths.append(Int32(bytes.count)); formats.append(1)
            case .null:
                values.append(nil); lengths.append(0); formats.append(0)
            }
        }
        self.values = values
        self.lengths = lengths
        self.formats = formats
        self.buffers = buffers
    }

    func free() { buffers.forEach { $0.deallocate() } }
}
