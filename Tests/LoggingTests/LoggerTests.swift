import Foundation
import XCTest

@testable import Logging

/// Log values are escaped by Unicode scalar (issue 10, item 2): a request value must never
/// forge a logfmt field, a line break, or hide text behind bidi controls.
final class LoggerTests: XCTestCase {
    func testPlainValuesAreNotQuoted() {
        XCTAssertEqual(Log.quote("abc"), "abc")
    }

    /// (name, input, exact output)
    static let table: [(String, String, String)] = [
        ("plain", "abc", "abc"),
        ("path", "/oauth2/token", "/oauth2/token"),
        ("address", "127.0.0.1", "127.0.0.1"),
        ("punctuation", "a-b_c.d:e/f?g&h", "a-b_c.d:e/f?g&h"),
        ("empty", "", #""""#),
        ("space", "a b", #""a b""#),
        ("equals", "a=b", #""a=b""#),
        ("quotes", #"say "hi""#, #""say \"hi\"""#),
        ("backslash", #"a\b"#, #""a\\b""#),
        ("backslash before quote", #"a\"#, #""a\\""#),
        ("newline", "a\nb", #""a\nb""#),
        ("carriage return", "a\rb", #""a\rb""#),
        ("crlf", "a\r\nb", #""a\r\nb""#),  // one Character, two scalars
        ("tab", "a\tb", #""a\tb""#),
        ("NUL", "a\u{0}b", #""a\u{0000}b""#),
        ("escape sequence", "\u{1B}[31mred", #""\u{001B}[31mred""#),
        ("DEL", "\u{7F}", #""\u{007F}""#),
        ("C1 next line", "a\u{85}b", #""a\u{0085}b""#),
        ("line separator", "a\u{2028}b", #""a\u{2028}b""#),
        ("paragraph separator", "a\u{2029}b", #""a\u{2029}b""#),
        ("no-break space", "a\u{A0}b", #""a\u{00A0}b""#),
        // A quote followed by a combining mark is one Character: Character-wise escaping missed it.
        ("quote + combining acute", "\"\u{301}", #""\"\u{0301}""#),
        ("forged field", "x\"\u{301} level=error event=admin_login", #""x\"\u{0301} level=error event=admin_login""#),
        ("backslash + combining mark", "\\\u{301}", #""\\\u{0301}""#),
        ("combining mark first", "\u{301}abc", #""\u{0301}abc""#),
        ("enclosing mark after quote", "\"\u{20DD}", #""\"\u{20DD}""#),
        ("decomposed e-acute", "caf" + "e\u{301}", #""cafe\u{0301}""#),
        ("precomposed e-acute", "café", #""café""#),
        ("accent on non-ASCII letter stays", "ä\u{301}", "\"ä\u{301}\""),
        ("newline + combining mark", "\n\u{301}", #""\n\u{0301}""#),
        ("ZWJ", "a\u{200D}b", #""a\u{200D}b""#),
        ("ZWJ emoji sequence", "👩\u{200D}💻", "\"👩\\u{200D}💻\""),
        ("ZWNJ", "\u{200C}", #""\u{200C}""#),
        ("right-to-left mark", "a\u{200F}b", #""a\u{200F}b""#),
        ("left-to-right mark", "\u{200E}", #""\u{200E}""#),
        ("RTL override", "\u{202E}gnp.exe", #""\u{202E}gnp.exe""#),
        ("bidi embedding and pop", "\u{202A}x\u{202C}", #""\u{202A}x\u{202C}""#),
        ("bidi isolates", "\u{2066}\u{2067}\u{2068}\u{2069}", #""\u{2066}\u{2067}\u{2068}\u{2069}""#),
        ("BOM", "\u{FEFF}x", #""\u{FEFF}x""#),
        ("emoji", "🔑", "\"🔑\""),
        ("emoji with skin tone", "👍🏽", "\"👍🏽\""),
        ("skin tone after a quote", "\"\u{1F3FD}", #""\"\u{1F3FD}""#),
        ("CJK", "東京", "\"東京\""),
        ("prepended mark", "\u{0D4E}a", #""\u{0D4E}a""#),
    ]

    func testTable() {
        for (name, input, expected) in Self.table {
            XCTAssertEqual(Log.quote(input), expected, name)
        }
    }

    /// Whatever the value, its logfmt form is one field, on one line, that reads back as the value,
    /// whether the reader splits bytes, scalars or grapheme clusters.
    func testEveryValueReadsBackAsOneField() {
        var inputs = Self.table.map(\.1)
        let pieces = ["\"", "\\", "=", " ", "a", "\n", "\u{301}", "\u{200D}", "\u{202E}", "\u{0}", "🔑", "\u{1F3FD}", "é", "\u{0D4E}"]
        for a in pieces { for b in pieces { for c in pieces { inputs.append(a + b + c) } } }
        for input in inputs {
            let out = Log.quote(input)
            let line = "k=" + out + " next=1"
            XCTAssertFalse(line.unicodeScalars.contains { $0 == "\n" || $0 == "\r" }, input.debugDescription)
            XCTAssertEqual(Self.parse(line)?.k, input, "\(input.debugDescription) -> \(out)")
            XCTAssertEqual(Self.parse(line)?.rest, " next=1", out)
            for ch in out where ch.unicodeScalars.count > 1 {
                XCTAssertFalse(ch.unicodeScalars.contains { $0.isASCII }, "grapheme \(ch.debugDescription) in \(out)")
            }
            for s in out.unicodeScalars where !s.isASCII {
                XCTAssertFalse(Log.isInvisible(s), "\(s.escaped(asASCII: true)) literal in \(out)")
            }
        }
    }

    /// A byte-level (scalar) logfmt reader of `k=VALUE…`: the decoded value and what follows it.
    static func parse(_ line: String) -> (k: String, rest: String)? {
        var s = Substring(line).unicodeScalars
        guard s.starts(with: "k=".unicodeScalars) else { return nil }
        s = s.dropFirst(2)
        guard s.first == "\"" else {
            let value = s.prefix { $0 != " " }
            return (String(value), String(s.dropFirst(value.count)))
        }
        s = s.dropFirst()
        var value = String.UnicodeScalarView()
        while let c = s.popFirst() {
            if c == "\"" { return (String(value), String(s)) }
            guard c == "\\" else { value.append(c); continue }
            switch s.popFirst() {
            case "\""?: value.append("\"")
            case "\\"?: value.append("\\")
            case "n"?: value.append("\n")
            case "r"?: value.append("\r")
            case "t"?: value.append("\t")
            case "u"?:
                guard s.popFirst() == "{" else { return nil }
                let hex = s.prefix { $0 != "}" }
                s = s.dropFirst(hex.count + 1)
                guard let v = UInt32(String(hex), radix: 16), let u = Unicode.Scalar(v) else { return nil }
                value.append(u)
            default: return nil
            }
        }
        return nil
    }

    /// `log_format = json`: every input of the logfmt table is a valid JSON string that
    /// decodes to the same text, with control and bidi scalars escaped, never raw.
    func testJSONStringsDecodeToTheInputAndHideNothing() throws {
        for (name, input, _) in LoggerTests.table {
            let encoded = Log.jsonString(input)
            let decoded = try JSONSerialization.jsonObject(with: Data(encoded.utf8), options: [.fragmentsAllowed]) as? String
            XCTAssertEqual(decoded, input, name)
            XCTAssertFalse(encoded.unicodeScalars.contains { $0.value < 0x20 || Log.isInvisible($0) }, name)
        }
        XCTAssertEqual(Log.jsonValue(42), "42")
        XCTAssertEqual(Log.jsonValue(true), "true")
        XCTAssertEqual(Log.jsonValue("42"), #""42""#)
    }
}
