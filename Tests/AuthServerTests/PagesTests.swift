import Foundation
import XCTest

@testable import AuthServer

/// Issue 10 item 2: every template value is escaped by Unicode scalar, so no grapheme can
/// carry a markup character past the escaper.
final class HTMLEscaperTests: XCTestCase {
    func testTable() {
        let table: [(String, String, String)] = [
            ("plain", "Acme Expense Reports", "Acme Expense Reports"),
            ("markup", #"<script>alert("x")</script>"#, "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"),
            ("quote + combining acute", "x\"\u{301} onmouseover=alert(1)", "x&quot;\u{301} onmouseover&#61;alert(1)"),
            ("apostrophe + combining", "'\u{308}", "&#39;\u{308}"),
            ("lt + combining overlay", "<\u{338}b", "&lt;\u{338}b"),
            ("ampersand + ZWJ", "&\u{200D}amp;", "&amp;\u{200D}amp;"),
            ("emoji ZWJ sequence kept", "👩‍💻", "👩‍💻"),
            ("RLM and LRM kept", "a\u{200F}b\u{200E}", "a\u{200F}b\u{200E}"),
            ("RLO override replaced", "moc.\u{202E}evil", "moc.\u{FFFD}evil"),
            ("isolates replaced", "\u{2066}x\u{2069}", "\u{FFFD}x\u{FFFD}"),
            ("NUL replaced", "a\u{0}b", "a\u{FFFD}b"),
            ("C0, DEL, C1 replaced", "\u{1}\u{7F}\u{85}", "\u{FFFD}\u{FFFD}\u{FFFD}"),
            ("tab, newline kept", "a\tb\nc\r", "a\tb\nc\r"),
            ("backtick", "`", "&#96;"),
            ("CRLF as one Character", "\r\n\"", "\r\n&quot;"),
        ]
        for (what, input, expected) in table {
            XCTAssertEqual(HTMLEscaper.escape(input), expected, what)
        }
    }

    func testInvalidUTF8ArrivesAsReplacementAndStillEscapes() {
        let decoded = String(decoding: [0xFF, 0x22, 0xC3, 0x3C], as: UTF8.self)
        XCTAssertEqual(HTMLEscaper.escape(decoded), "\u{FFFD}&quot;\u{FFFD}&lt;")
    }

    func testNoMarkupScalarSurvivesInAnyOutput() {
        // A random walk over dangerous scalars and combining marks.
        let pieces = ["\"", "'", "<", ">", "&", "`", "=", "\u{301}", "\u{338}", "\u{200D}", "\u{0}", "a", " "]
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<500 {
            let s = (0..<12).map { _ in pieces.randomElement(using: &rng)! }.joined()
            let out = HTMLEscaper.escape(s).unicodeScalars
            XCTAssertFalse(out.contains { "\"'<>`=\u{0}".unicodeScalars.contains($0) }, s)
        }
    }

    func testBuiltInPagesRenderWithTheScalarEscaper() throws {
        let pages = try Pages(directory: nil)
        let html = String(decoding: pages.render(pages.login, [
            "client_name": "Evil\"\u{301} onfocus=alert(1) x=\"", "csrf": "c", "action": "/authorize", "authz": "a.b",
            "issuer_host": "h",
        ], status: 200, formTarget: nil).body, as: UTF8.self)
        XCTAssertTrue(html.contains("Evil&quot;\u{301} onfocus&#61;alert(1) x&#61;&quot;"), html)
        XCTAssertFalse(html.unicodeScalars.map(String.init).joined().contains("\"\u{301}"))
        XCTAssertFalse(html.contains("{{") || html.contains("CONTENT_TYPE"))
    }

    func testOperatorTemplatesMayNotPrintRawValues() throws {
        let dir = try temporaryHome(self)
        for raw in ["{{{client_name}}}", "{{& client_name}}", "{{=<% %>=}}<%client_name%>", "{{% CONTENT_TYPE: TEXT }}"] {
            for name in ["login", "consent", "error"] {
                try "<p>ok {{authz}}</p>".write(toFile: dir + "/\(name).mustache", atomically: true, encoding: .utf8)
            }
            try "<p>\(raw)</p>".write(toFile: dir + "/login.mustache", atomically: true, encoding: .utf8)
            XCTAssertThrowsError(try Pages(directory: dir), raw) { error in
                XCTAssertTrue("\(error)".contains("escape every value"), "\(error)")
            }
        }
    }

    func testOperatorFormsWithoutTheSealedRequestAreReported() throws {
        let dir = try temporaryHome(self)
        try "<form>{{csrf}}</form>".write(toFile: dir + "/login.mustache", atomically: true, encoding: .utf8)
        try "<form>{{csrf}} {{authz}}</form>".write(toFile: dir + "/consent.mustache", atomically: true, encoding: .utf8)
        try "<p>{{message}}</p>".write(toFile: dir + "/error.mustache", atomically: true, encoding: .utf8)
        XCTAssertEqual(try Pages(directory: dir).formsWithoutRequest, ["login"])
    }
}
