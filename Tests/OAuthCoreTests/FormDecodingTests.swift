import Testing
@testable import OAuthCore

@Suite("application/x-www-form-urlencoded and query parsing (RFC 6749 §3.1, Appendix B)")
struct FormDecodingTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let input: String
        let expected: [String]?  // "name=value" pairs after decoding; nil = error
        var testDescription: String { "'\(input)'" }
    }

    static let cases: [Case] = [
        Case(input: "a=1&b=2", expected: ["a=1", "b=2"]),
        Case(input: "a=two+words", expected: ["a=two words"]),  // + is a space in forms
        Case(input: "a=%2B", expected: ["a=+"]),
        Case(input: "redirect_uri=https%3A%2F%2Fclient%2Eexample%2Ecom%2Fcb", expected: ["redirect_uri=https://client.example.com/cb"]),
        Case(input: "a=%c3%a9", expected: ["a=é"]),
        Case(input: "", expected: []),
        Case(input: "a=1&&b=2", expected: ["a=1", "b=2"]),
        Case(input: "flag", expected: ["flag="]),
        Case(input: "a=1;b=2", expected: ["a=1;b=2"]),  // ';' is not a separator
        Case(input: "a=b=c", expected: ["a=b=c"]),
        Case(input: "a=%", expected: nil),
        Case(input: "a=%2", expected: nil),
        Case(input: "a=%zz", expected: nil),
        Case(input: "a=%C3%28", expected: nil),  // invalid UTF-8
        Case(input: "a=%FF", expected: nil),
        Case(input: "%=1", expected: nil),
        Case(input: "a=%00", expected: ["a=\u{0}"]),
    ]

    @Test("decodes by the real rules", arguments: cases)
    func decodes(_ c: Case) {
        let parsed = try? Parameters.parse(c.input)
        #expect(parsed?.pairs.map { "\($0.name)=\($0.value)" } == c.expected)
    }

    @Test("RFC 6749 §3.1: a repeated parameter is refused")
    func repeated() throws {
        let p = try Parameters.parse("scope=a&scope=b")
        #expect(throws: OAuthError.self) { try p.single("scope") }
        #expect(p.isRepeated("scope"))
    }

    @Test("RFC 6749 §3.1: a parameter without a value is treated as omitted")
    func emptyIsOmitted() throws {
        #expect(try Parameters.parse("state=").single("state") == nil)
    }

    @Test("caps the number of parameters")
    func tooMany() {
        let body = (0...300).map { "p\($0)=x" }.joined(separator: "&")
        #expect(throws: FormDecodingError.tooManyParameters) { try Parameters.parse(body) }
    }

    @Test("encodes and decodes back")
    func roundTrip() throws {
        var p = Parameters()
        p.append("state", "a b&c=d/é%")
        #expect(try Parameters.parse(p.encoded()).single("state") == "a b&c=d/é%")
    }
}

@Suite("JSON writer")
struct JSONObjectTests {
    @Test("escapes quotes, backslashes, control characters and '<'; keeps UTF-8")
    func escaping() {
        var o = JSONObject()
        o["a"] = "q\"b\\n\nt\t<é\u{1}"
        o.set("n", 3)
        o.set("b", true)
        o.set("l", .strings(["x", "y"]))
        #expect(o.serialized() == #"{"a":"q\"b\\n\nt\t\u003cé\u0001","n":3,"b":true,"l":["x","y"]}"#)
    }
}
