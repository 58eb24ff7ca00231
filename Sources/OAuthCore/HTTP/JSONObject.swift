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

    public func serialized() -> String {
        var out = "{"
        for (i, (key, value)) in members.enumerated() {
            if i > 0 { out += "," }
            JSONObject.appendString(key, to: &out)
            out += ":"
            switch value {
            case .string(let s): JSONObject.appendString(s, to: &out)
            case .int(let n): out += String(n)
            case .bool(let b): out += b ? "true" : "false"
            case .raw(let r): out += r
            case .strings(let list):
                out += "["
                for (j, s) in list.enumerated() {
                    if j > 0 { out += "," }
                    JSONObject.appendString(s, to: &out)
                }
                out += "]"
            }
        }
        return out + "}"
    }

    static func appendString(_ s: String, to out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "<": out += "\\u003c"  // safe to embed in HTML
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }
}
