#if canImport(Glibc)
import Glibc
#endif

/// One line per event, logfmt (`ts=… level=info event=worker_started pid=… slot=…`) or a
/// JSON object with the same keys (`log_format`). Event names are stable; tests and
/// operators grep for them. Never log a secret.
public enum Log {
    public enum Format: String, Sendable {
        case logfmt, json
    }

    nonisolated(unsafe) static var fd: Int32 = 2
    /// Set once from the configuration (and on reload); a forked worker inherits it.
    nonisolated(unsafe) public static var format = Format.logfmt
    /// The file lines go to (nil: stderr); a forked worker inherits it with the descriptor.
    nonisolated(unsafe) public private(set) static var path: String?

    /// Sends later lines to `path` (appending; created 0640), or to stderr when nil. Returns
    /// false on error, and then keeps writing where it wrote before.
    @discardableResult
    public static func open(path: String?) -> Bool {
        guard let path else {
            if fd != 2 { close(fd) }
            fd = 2
            self.path = nil
            return true
        }
        let newFD = Glibc.open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        guard newFD >= 0 else { return false }
        if fd != 2 { close(fd) }
        fd = newFD
        self.path = path
        return true
    }

    /// Opens the current log file again (after log rotation renamed it away).
    @discardableResult
    public static func reopen() -> Bool { open(path: path) }

    public static func info(_ event: String, _ fields: KeyValuePairs<String, CustomStringConvertible> = [:]) {
        write("info", event, fields)
    }
    public static func warn(_ event: String, _ fields: KeyValuePairs<String, CustomStringConvertible> = [:]) {
        write("warn", event, fields)
    }
    public static func error(_ event: String, _ fields: KeyValuePairs<String, CustomStringConvertible> = [:]) {
        write("error", event, fields)
    }

    /// The same, with fields assembled at run time (the CLI's audit lines).
    public static func info(_ event: String, fields: [(String, CustomStringConvertible)]) {
        write("info", event, fields)
    }

    static func write(_ level: String, _ event: String, _ fields: KeyValuePairs<String, CustomStringConvertible>) {
        write(level, event, fields.map { ($0.key, $0.value) })
    }

    static func write(_ level: String, _ event: String, _ fields: [(String, CustomStringConvertible)]) {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var tm = tm()
        var t = ts.tv_sec
        gmtime_r(&t, &tm)
        let stamp = String(Int(tm.tm_year) + 1900) + "-" + two(Int(tm.tm_mon) + 1) + "-" + two(Int(tm.tm_mday)) + "T"
            + two(Int(tm.tm_hour)) + ":" + two(Int(tm.tm_min)) + ":" + two(Int(tm.tm_sec)) + "." + three(ts.tv_nsec / 1_000_000) + "Z"
        var line: String
        switch format {
        case .logfmt:
            line = "ts=\(stamp) level=\(level) event=\(event) pid=\(getpid())"
            for (k, v) in fields { line += " \(k)=\(quote(v.description))" }
        case .json:
            line = "{\"ts\":\"\(stamp)\",\"level\":\"\(level)\",\"event\":\(jsonString(event)),\"pid\":\(getpid())"
            for (k, v) in fields { line += ",\(jsonString(k)):\(jsonValue(v))" }
            line += "}"
        }
        line += "\n"
        _ = line.withCString { Glibc.write(fd, $0, strlen($0)) }
    }

    /// Integers and booleans stay JSON numbers and booleans; everything else is a string.
    static func jsonValue(_ v: CustomStringConvertible) -> String {
        switch v {
        case is Bool, is Int, is Int32, is Int64, is UInt64, is UInt32: return v.description
        default: return jsonString(v.description)
        }
    }

    /// A JSON string (RFC 8259 §7) in which, as in `quote`, every invisible or layout
    /// scalar is escaped, so a request value can neither end the line nor hide in it.
    static func jsonString(_ s: String) -> String {
        var out = "\""
        for c in s.unicodeScalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if c.isASCII ? (c.value < 0x20 || c.value == 0x7F) : isInvisible(c) {
                    for unit in String(c).utf16 {
                        let hex = String(unit, radix: 16)
                        out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                    }
                } else {
                    out.unicodeScalars.append(c)
                }
            }
        }
        return out + "\""
    }

    static func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
    static func three(_ n: Int) -> String { n < 10 ? "00\(n)" : n < 100 ? "0\(n)" : "\(n)" }

    /// A logfmt value, decided scalar by scalar (never by `Character`: a `"` followed by a
    /// combining mark is one Character, and a Character-wise check would let a request value
    /// carry an unescaped quote and forge fields).
    ///
    /// - Bare when non-empty and every scalar is printable ASCII (U+0021...U+007E) other than
    ///   `"`, `=` and `\`.
    /// - Otherwise in double quotes, with `\"`, `\\`, `\n`, `\r`, `\t`, and `\u{XXXX}` (uppercase hex,
    ///   at least 4 digits) for every scalar that is invisible or controls layout: C0, DEL, C1,
    ///   format characters (bidi controls U+202A-202E and U+2066-2069, U+200E/U+200F, ZWJ and
    ///   ZWNJ, soft hyphen, BOM, ...), line and paragraph separators, spaces other than U+0020,
    ///   private-use, surrogate and unassigned code points.
    /// - A scalar that would join the ASCII next to it into one grapheme (a combining mark or
    ///   emoji modifier after a quote, an escape or an ASCII letter; any prepended mark, which
    ///   would join what follows) is written `\u{XXXX}` too, so even a reader that splits by grapheme sees every
    ///   quote and escape on its own. Other text (accented letters, CJK, emoji) stays literal.
    static func quote(_ s: String) -> String {
        let scalars = Array(s.unicodeScalars)
        if !scalars.isEmpty && scalars.allSatisfy(isBare) { return s }
        var out = "\""
        var previousIsASCII = true  // the opening quote
        for c in scalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if c.isASCII {
                    if c.value < 0x20 || c.value == 0x7F { out += escaped(c) } else { out.unicodeScalars.append(c) }
                } else if isInvisible(c) {
                    out += escaped(c)
                } else {
                    if (previousIsASCII && joinsPrevious(c)) || joinsNext(c) {
                        out += escaped(c)
                    } else {
                        out.unicodeScalars.append(c)
                        previousIsASCII = false
                        continue
                    }
                }
            }
            previousIsASCII = true
        }
        return out + "\""
    }

    static func isBare(_ c: Unicode.Scalar) -> Bool {
        c.value >= 0x21 && c.value <= 0x7E && c != "\"" && c != "=" && c != "\\"
    }

    static func isInvisible(_ c: Unicode.Scalar) -> Bool {
        if c.value < 0x20 || (0x7F...0x9F).contains(c.value) { return true }
        switch c.properties.generalCategory {
        case .control, .format, .lineSeparator, .paragraphSeparator, .privateUse, .surrogate, .unassigned: return true
        case .spaceSeparator: return c != " "
        default: return false
        }
    }

    /// Would form one grapheme with a printable ASCII scalar before it (Extend, ZWJ, SpacingMark).
    static func joinsPrevious(_ c: Unicode.Scalar) -> Bool {
        ("\"" + String(c)).count == 1
    }

    /// Would form one grapheme with a printable ASCII scalar after it (Prepend, e.g. U+0D4E).
    static func joinsNext(_ c: Unicode.Scalar) -> Bool {
        (String(c) + "\"").count == 1
    }

    static func escaped(_ c: Unicode.Scalar) -> String {
        let hex = String(c.value, radix: 16, uppercase: true)
        return "\\u{" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex + "}"
    }
}
