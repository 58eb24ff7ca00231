import CFastCGI
import SystemCall
#if canImport(Glibc)
import Glibc
#endif

/// A listening socket error, with errno.
public struct SocketError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// Opens the FastCGI listen socket in the master, before forking, so every worker
/// accepts on the same socket and the kernel hands each connection to one of them.
public enum FastCGIListener {
    /// `address` is a unix socket path (`/…/gatehouse.sock`) or `host:port` for TCP.
    /// A stale unix socket file from a crashed master is replaced; `mode` sets its permissions.
    public static func open(_ address: String, backlog: Int32 = 1024, mode: mode_t = 0o660) throws -> Int32 {
        if address.hasPrefix("/") { return try openUnix(address, backlog: backlog, mode: mode) }
        let fd = FCGX_OpenSocket(address, backlog)
        guard fd >= 0 else { throw SocketError(message: "cannot listen on \(address): \(String(cString: strerror(errno)))") }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        return fd
    }

    static func openUnix(_ path: String, backlog: Int32, mode: mode_t) throws -> Int32 {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: addr.sun_path)
        guard path.utf8.count < capacity else { throw SocketError(message: "socket path too long (\(path.utf8.count) bytes, max \(capacity - 1)): \(path)") }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            raw.copyBytes(from: path.utf8)
            raw[path.utf8.count] = 0
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError(message: "socket(): \(String(cString: strerror(errno)))") }
        unlink(path)
        let rc = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else {
            let e = String(cString: strerror(errno))
            close(fd)
            throw SocketError(message: "cannot bind \(path): \(e)")
        }
        chmod(path, mode)
        guard listen(fd, backlog) == 0 else {
            close(fd)
            throw SocketError(message: "listen(\(path)): \(String(cString: strerror(errno)))")
        }
        return fd
    }
}

/// One raw FastCGI request: the CGI parameters and the body. No HTTP or OAuth meaning here.
public struct FastCGIRequest {
    public var params: [String: String]
    public var body: [UInt8]
    /// True when CONTENT_LENGTH exceeded the configured limit; the body was not read.
    public var bodyTooLarge: Bool
}

/// What waiting for the next connection gave.
public enum AcceptOutcome {
    /// A connection is open: read its request with `readRequest`.
    case connection
    /// Nothing to serve: the wait was interrupted (a signal), or another worker took the
    /// connection.
    case nothing
    /// accept failed for a reason that waiting again does not clear (out of descriptors):
    /// the caller backs off.
    case failed(SystemCallError)
}

/// A worker's side of libfcgi: accept one request at a time on the shared socket.
public final class FastCGIConnection {
    private var request = FCGX_Request()
    private let maxBodyBytes: Int

    private let listenFD: Int32
    private let readTimeoutSeconds: Int

    /// Call after fork. The listen socket is made non-blocking: workers accept themselves
    /// (see `acceptConnection`), and libfcgi's own accept, which it falls back to after a
    /// broken connection, must then return at once instead of blocking with stop signals
    /// masked.
    public init(listenFD: Int32, maxBodyBytes: Int, readTimeoutSeconds: Int = 2) throws(SystemCallError) {
        FCGX_Init()
        FCGX_InitRequest(&request, listenFD, 0)
        self.listenFD = listenFD
        self.maxBodyBytes = maxBodyBytes
        self.readTimeoutSeconds = readTimeoutSeconds
        let flags = try SystemCall.run("fcntl") { fcntl(listenFD, F_GETFL) }
        try SystemCall.run("fcntl") { fcntl(listenFD, F_SETFL, flags | O_NONBLOCK) }
    }

    /// Waits (with `waitForConnection`, the only place a stop signal may interrupt) and
    /// accepts one connection. The accepted socket gets a read and write timeout (2 s):
    /// nginx buffers the body and sends a whole request at once, so a peer that stalls that
    /// long is broken and must not pin a worker.
    public func acceptConnection(waitForConnection: (Int32) -> Bool) -> AcceptOutcome {
        guard waitForConnection(listenFD) else { return .nothing }
        let fd: Int32
        do {
            fd = try acceptRetryingAborted()
        } catch {
            return error.kind == .wouldBlock ? .nothing : .failed(error)
        }
        var timeout = timeval(tv_sec: readTimeoutSeconds, tv_usec: 0)
        do {
            try SystemCall.run("fcntl") { fcntl(fd, F_SETFD, FD_CLOEXEC) }
            for option in [SO_RCVTIMEO, SO_SNDTIMEO] {
                try SystemCall.run("setsockopt") {
                    setsockopt(fd, SOL_SOCKET, option, &timeout, socklen_t(MemoryLayout<timeval>.size))
                }
            }
        } catch {
            close(fd)  // without its timeouts a stalled peer could hold this worker forever
            return .failed(error)
        }
        // libfcgi reads from an already open ipcFd instead of accepting; keepConnection keeps
        // the Finish at the start of FCGX_Accept_r from closing it (the new request's own
        // flags replace it once its BEGIN_REQUEST record is read).
        request.ipcFd = fd
        request.keepConnection = 1
        return .connection
    }

    /// A connection nginx gave up on before it was accepted is skipped for the next one.
    private func acceptRetryingAborted() throws(SystemCallError) -> Int32 {
        while true {
            do {
                return try SystemCall.run("accept") { Glibc.accept(listenFD, nil, nil) }
            } catch where error.kind == .connectionAborted {
                continue
            }
        }
    }

    /// Lets libfcgi read the accepted connection's request. nil when the peer broke off.
    public func readRequest() -> FastCGIRequest? {
        guard FCGX_Accept_r(&request) >= 0 else { return nil }
        var params: [String: String] = [:]
        if var p = request.envp {
            while let entry = p.pointee {
                if let eq = strchr(entry, Int32(UInt8(ascii: "="))) {
                    let keyLength = eq - entry
                    let key = String(decoding: UnsafeRawBufferPointer(start: entry, count: keyLength), as: UTF8.self)
                    params[key] = String(cString: eq + 1)
                }
                p += 1
            }
        }
        let length = Int(params["CONTENT_LENGTH"] ?? "") ?? 0
        if length > maxBodyBytes { return FastCGIRequest(params: params, body: [], bodyTooLarge: true) }
        var body = [UInt8](repeating: 0, count: max(length, 0))
        if length > 0 {
            let n = body.withUnsafeMutableBufferPointer { buf in
                buf.baseAddress!.withMemoryRebound(to: CChar.self, capacity: length) { FCGX_GetStr($0, Int32(length), request.in) }
            }
            body.removeLast(length - Int(max(n, 0)))
        }
        return FastCGIRequest(params: params, body: body, bodyTooLarge: false)
    }

    /// Writes a CGI response: `Status:` line, headers, blank line, body.
    public func respond(status: Int, reason: String, headers: [(String, String)], body: [UInt8]) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(256 + body.count)
        bytes += "Status: \(status) \(reason)\r\n".utf8
        for (name, value) in headers {
            bytes += name.utf8
            bytes += ": ".utf8
            // Header injection guard: values never carry CR or LF.
            for c in value.utf8 where c != 13 && c != 10 { bytes.append(c) }
            bytes += "\r\n".utf8
        }
        bytes += "Content-Length: \(body.count)\r\n\r\n".utf8
        bytes += body
        bytes.withUnsafeBufferPointer { buf in
            buf.baseAddress!.withMemoryRebound(to: CChar.self, capacity: buf.count) {
                _ = FCGX_PutStr($0, Int32(buf.count), request.out)
            }
        }
    }

    /// Ends the current request: flushes and closes the connection to nginx, even if nginx
    /// asked to keep it (`fastcgi_keep_conn`): a one-request-at-a-time worker must go back
    /// to the shared socket rather than wait on one idle connection (README, Performance).
    public func finish() {
        request.keepConnection = 0
        FCGX_Finish_r(&request)
    }
}
