/// A small ordered JSON object writer. Responses here are flat objects of strings, numbers
/// and booleans, so a hand-written writer keeps Foundation's JSONEncoder off the hot path.
public struct JSONObject: Sendable {
    public enum Value: Sendable {
        case string(String), int(Int), bool(Bool), strings([String]), raw(String)
    }

    private var members: [(String, Value)] = []

    public init() {}

    public subscript(key: String) -> String? {
        get { nil }
        set { if let v = newValue { set(key, .string(v)) } }
    }

    public mutating func set(_ key: String, _ value: Value) {
        if let i = members.firstIndex(where: { $0.0 == key }) { members[i].1 = value } else { members.append((key, value)) }
    }

    public mutating func set(_ key: String, _ value: Int) { set(key, .int(value)) }
    public mutating func set(_ key: String, _ value: Bool) { set(key, .bool(value)) }

    public func serialized() -> String { String(decoding: utf8(), as: UTF8.self) }

    /// The serialized object as UTF-8 bytes (for a JWS, which signs bytes).
    public func utf8() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        out.append(UInt8(ascii: "{"))
        for (i, (key, value)) in members.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            JSONObject.appendString(key, to: &out)
            out.append(UInt8(ascii: ":"))
            switch value {
            case .string(let s): JSONObject.appendString(s, to: &out)
            case .int(let n): out += String(n).utf8
            case .bool(let b): out += (b ? "true" : "false").utf8
            case .raw(let r): out += r.utf8
            case .strings(let list):
                out.append(UInt8(ascii: "["))
                for (j, s) in list.enumerated() {
                    if j > 0 { out.append(UInt8(ascii: ",")) }
                    JSONObject.appendString(s, to: &out)
                }
                out.append(UInt8(ascii: "]"))
            }
        }
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// Appends `s` as a JSON string (Swift strings are valid UTF-8, so bytes >= 0x80 pass
    /// through); `<` is escaped so the output is safe inside HTML. Most values (tokens,
    /// ids, scopes) need no escape at all and are copied in one piece.
    static func appendString(_ s: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var s = s
        s.withUTF8 { bytes in
            guard bytes.contains(where: needsEscape) else {
                out.append(contentsOf: bytes)
                return
            }
            for c in bytes {
                switch c {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), c]
                case UInt8(ascii: "\n"): out += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
                case UInt8(ascii: "\r"): out += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
                case UInt8(ascii: "\t"): out += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
                case 0..<0x20, UInt8(ascii: "<"):
                    out += [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hexDigits[Int(c >> 4)],
                            hexDigits[Int(c & 15)]]
                default: out.append(c)
                }
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    private static func needsEscape(_ c: UInt8) -> Bool {
        c < 0x20 || c == UInt8(ascii: "\"") || c == UInt8(ascii: "\\") || c == UInt8(ascii: "<")
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)
}
