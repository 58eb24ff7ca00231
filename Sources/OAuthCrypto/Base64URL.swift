/// Base64 (RFC 4648 §4) and base64url (§5) without Foundation, for tokens, PKCE and Basic auth.
public enum Base64URL {
    private static let urlAlphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
    private static let stdAlphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// base64url without padding (RFC 7636 Appendix A).
    public static func encode(_ bytes: [UInt8]) -> String { encode(bytes, alphabet: urlAlphabet, pad: false) }

    /// Standard base64 with padding.
    public static func encodeStandard(_ bytes: [UInt8]) -> String { encode(bytes, alphabet: stdAlphabet, pad: true) }

    /// Appends the base64url form of `bytes` (no padding) to `out`: a JWS is built in one buffer.
    public static func append(_ bytes: [UInt8], to out: inout [UInt8]) { append(bytes, to: &out, alphabet: urlAlphabet, pad: false) }

    private static func encode(_ bytes: [UInt8], alphabet: [UInt8], pad: Bool) -> String {
        var out = [UInt8]()
        append(bytes, to: &out, alphabet: alphabet, pad: pad)
        return String(decoding: out, as: UTF8.self)
    }

    private static func append(_ bytes: [UInt8], to out: inout [UInt8], alphabet: [UInt8], pad: Bool) {
        out.reserveCapacity(out.count + (bytes.count + 2) / 3 * 4)
        var i = 0
        while i + 2 < bytes.count {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
            // append, not `+= [...]`: an array literal per 3 bytes is an allocation each.
            out.append(alphabet[Int(n >> 18 & 63)])
            out.append(alphabet[Int(n >> 12 & 63)])
            out.append(alphabet[Int(n >> 6 & 63)])
            out.append(alphabet[Int(n & 63)])
            i += 3
        }
        let rest = bytes.count - i
        if rest == 1 {
            let n = UInt32(bytes[i]) << 16
            out += [alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)]]
            if pad { out += Array("==".utf8) }
        } else if rest == 2 {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8
            out += [alphabet[Int(n >> 18 & 63)], alphabet[Int(n >> 12 & 63)], alphabet[Int(n >> 6 & 63)]]
            if pad { out += Array("=".utf8) }
        }
    }

    /// Decodes standard base64 (padding required when the length is not a multiple of 4 is
    /// tolerated). Returns nil for any character outside the alphabet.
    public static func decodeStandard(_ text: String) -> [UInt8]? {
        var values = [UInt8]()
        var padding = 0
        for c in text.utf8 {
            if c == UInt8(ascii: "=") { padding += 1; continue }
            if padding > 0 { return nil }  // data after padding
            guard let v = value(of: c, plus: UInt8(ascii: "+"), slash: UInt8(ascii: "/")) else { return nil }
            values.append(v)
        }
        if padding > 2 || (values.count + padding) % 4 != 0 && padding > 0 { return nil }
        return pack(values)
    }

    /// Decodes base64url without padding. Returns nil for any character outside the alphabet.
    public static func decode(_ text: String) -> [UInt8]? {
        var values = [UInt8]()
        values.reserveCapacity(text.utf8.count)
        for c in text.utf8 {
            guard let v = value(of: c, plus: UInt8(ascii: "-"), slash: UInt8(ascii: "_")) else { return nil }
            values.append(v)
        }
        return pack(values)
    }

    private static func value(of c: UInt8, plus: UInt8, slash: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): return c - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): return c - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0") + 52
        case plus: return 62
        case slash: return 63
        default: return nil
        }
    }

    private static func pack(_ values: [UInt8]) -> [UInt8]? {
        if values.count % 4 == 1 { return nil }
        var out = [UInt8]()
        out.reserveCapacity(values.count * 3 / 4)
        var i = 0
        while i < values.count {
            let chunk = values[i..<min(i + 4, values.count)]
            var n: UInt32 = 0
            for (k, v) in chunk.enumerated() { n |= UInt32(v) << (18 - 6 * UInt32(k)) }
            out.append(UInt8(n >> 16 & 0xFF))
            if chunk.count > 2 { out.append(UInt8(n >> 8 & 0xFF)) }
            if chunk.count > 3 { out.append(UInt8(n & 0xFF)) }
            i += 4
        }
        return out
    }
}
