#if canImport(Glibc)
import Glibc
#endif

/// One logfmt line per event: `ts=… level=info event=worker_started pid=… slot=…`.
/// Event names are stable; tests and operators grep for them. Never log a secret.
public enum Log {
    nonisolated(unsafe) static var fd: Int32 = 2

    /// Sends later lines to `path` (appending), or to stderr when nil. Returns false on error.
    @discardableResult
    public static func open(path: String?) -> Bool {
        guard let path else { fd = 2; return true }
        let newFD = Glibc.open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        guard newFD >= 0 else { return false }
        if fd != 2 { close(fd) }
        fd = newFD
        return true
    }

    public static func info(_ event: String, _ fields: KeyValuePairs<String, CustomStringConvertible> = [:]) {
        write("info", event, fields)
    }
    public static func warn(_ event: String, _ fields: KeyValuePairs<String, CustomStringConvertible> = [:]) {
        write("warn", event, fields)
    }
    public static func error(_ event: String, _ fields: KeyValuePairs<String, CustomStringConvertible> = [:]) {
        write("error", event, fields)
    }

    static func write(_ level: String, _ event: String, _ fields: KeyValuePairs<String, CustomStringConvertible>) {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var tm = tm()
        var t = ts.tv_sec
        gmtime_r(&t, &tm)
        let stamp = String(format4(Int(tm.tm_year) + 1900)) + "-" + two(Int(tm.tm_mon) + 1) + "-" + two(Int(tm.tm_mday)) + "T"
            + two(Int(tm.tm_hour)) + ":" + two(Int(tm.tm_min)) + ":" + two(Int(tm.tm_sec)) + "." + three(ts.tv_nsec / 1_000_000) + "Z"
        var line = "ts=\(stamp) level=\(level) event=\(event) pid=\(getpid())"
        for (k, v) in fields { line += " \(k)=\(quote(v.description))" }
        line += "\n"
        _ = line.withCString { Glibc.write(fd, $0, strlen($0)) }
    }

    static func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
    static func three(_ n: Int) -> String { n < 10 ? "00\(n)" : n < 100 ? "0\(n)" : "\(n)" }
    static func format4(_ n: Int) -> String { String(n) }

    static func quote(_ s: String) -> String {
        if !s.isEmpty && s.allSatisfy({ $0 != " " && $0 != "\"" && $0 != "=" && $0 != "\n" && !$0.isNewline }) { return s }
        return "\"" + s.replacingAll("\\", "\\\\").replacingAll("\"", "\\\"").replacingAll("\n", "\\n") + "\""
    }
}

extension String {
    func replacingAll(_ a: Character, _ b: String) -> String {
        var out = ""
        for c in self { if c == a { out += b } else { out.append(c) } }
        return out
    }
}
