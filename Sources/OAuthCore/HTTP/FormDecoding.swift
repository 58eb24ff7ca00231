/// Why a query string or form body was refused. Each case becomes a 400.
public enum FormDecodingError: Error, Equatable, Sendable {
    case invalidPercentEncoding
    case invalidUTF8
    case tooManyParameters
}

/// Decoded `application/x-www-form-urlencoded` pairs, in order, repeats kept, so RFC 6749
/// §3.1 ("Request and response parameters MUST NOT be included more than once") can be
/// enforced in one place.
public struct Parameters: Sendable, Equatable {
    public private(set) var pairs: [(name: String, value: String)]

    public static let maximumCount = 256

    public init(_ pairs: [(name: String, value: String)] = []) { self.pairs = pairs }

    public static func == (a: Parameters, b: Parameters) -> Bool {
        a.pairs.elementsEqual(b.pairs) { $0.name == $1.name && $0.value == $1.value }
    }

    /// Parses `a=1&b=two+words&c=%2E`. `+` is a space, `%XX` is a byte, the bytes must be
    /// UTF-8. Empty segments (`a=1&&b=2`) are skipped; `;` is not a separator.
    public static func parse(_ encoded: String) throws(FormDecodingError) -> Parameters {
        var pairs: [(name: String, value: String)] = []
        for segment in encoded.utf8.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            if pairs.count == maximumCount { throw .tooManyParameters }
            if let eq = segment.firstIndex(of: UInt8(ascii: "=")) {
                pairs.append((try decode(segment[segment.startIndex..<eq]), try decode(segment[segment.index(after: eq)...])))
            } else {
                pairs.append((try decode(segment[...]), ""))
            }
        }
        return Parameters(pairs)
    }

    /// Percent-decodes one name or value, `+` as space.
    public static func decode(_ bytes: Substring.UTF8View.SubSequence) throws(FormDecodingError) -> String {
        try decode(ArraySlice(bytes))
    }

    public static func decode(_ bytes: ArraySlice<UInt8>) throws(FormDecodingError) -> String {
        var out = [UInt8]()
        out.reserveCapacity(bytes.count)
        var i = bytes.startIndex
        while i < bytes.endIndex {
            let c = bytes[i]
            if c == UInt8(ascii: "+") {
                out.append(UInt8(ascii: " "))
            } else if c == UInt8(ascii: "%") {
                guard i + 2 < bytes.endIndex,
                    let hi = hexValue(bytes[i + 1]), let lo = hexValue(bytes[i + 2])
                else { throw .invalidPercentEncoding }
                out.append(hi << 4 | lo)
                i += 2
            } else {
                out.append(c)
            }
            i += 1
        }
        guard let text = String(validating: out, as: UTF8.self) else { throw .invalidUTF8 }
        return text
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// The value of `name`, or nil when absent or empty (RFC 6749 §3.1: "Parameters sent
    /// without a value MUST be treated as if they were omitted from the request").
    /// Throws when the parameter is repeated.
    public func single(_ name: String) throws(OAuthError) -> String? {
        var found: String? = nil
        var seen = false
        for pair in pairs where pair.name == name {
            if seen { throw OAuthError.invalidRequest("parameter '\(name)' included more than once") }
            seen = true
            found = pair.value
        }
        guard let value = found, !value.isEmpty else { return nil }
        return value
    }

    /// Like `single` but the value must be present.
    public func required(_ name: String) throws(OAuthError) -> String {
        guard let value = try single(name) else { throw OAuthError.invalidRequest("missing parameter '\(name)'") }
        return value
    }

    /// True when `name` appears (even empty).
    public func contains(_ name: String) -> Bool { pairs.contains { $0.name == name } }

    /// True when `name` appears more than once.
    public func isRepeated(_ name: String) -> Bool { pairs.lazy.filter { $0.name == name }.count > 1 }

    public mutating func append(_ name: String, _ value: String) { pairs.append((name, value)) }

    /// Serialises back to `application/x-www-form-urlencoded`.
    public func encoded() -> String {
        pairs.map { "\(Parameters.encode($0.name))=\(Parameters.encode($0.value))" }.joined(separator: "&")
    }

    /// Percent-encodes everything but the RFC 3986 unreserved characters.
    public static func encode(_ text: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out = [UInt8]()
        out.reserveCapacity(text.utf8.count)
        for c in text.utf8 {
            switch c {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: "~"):
                out.append(c)
            default:
                out += [UInt8(ascii: "%"), hex[Int(c >> 4)], hex[Int(c & 15)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
