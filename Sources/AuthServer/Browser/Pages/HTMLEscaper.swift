import Mustache

/// HTML escaping by Unicode scalar, for every `{{value}}` in the page templates.
///
/// swift-mustache's own escaper compares Swift `Character`s, and a `"` followed by a
/// combining mark (U+0301) is one Character that is not equal to `"`: the quote came out
/// raw and ended the attribute (attribute injection). Here each scalar is looked at alone,
/// so no grapheme can hide a markup character.
public enum HTMLEscaper {
    public static func escape(_ text: String) -> String {
        var out = String.UnicodeScalarView()
        out.reserveCapacity(text.unicodeScalars.count)
        for s in text.unicodeScalars {
            switch s.value {
            case 0x26: out.append(contentsOf: "&amp;".unicodeScalars)
            case 0x3C: out.append(contentsOf: "&lt;".unicodeScalars)
            case 0x3E: out.append(contentsOf: "&gt;".unicodeScalars)
            case 0x22: out.append(contentsOf: "&quot;".unicodeScalars)
            case 0x27: out.append(contentsOf: "&#39;".unicodeScalars)
            case 0x60: out.append(contentsOf: "&#96;".unicodeScalars)  // old IE treated ` as a quote
            case 0x3D: out.append(contentsOf: "&#61;".unicodeScalars)  // harmless in quotes; stops an unquoted attribute
            case 0x09, 0x0A, 0x0D: out.append(s)
            // NUL and other controls (C0, DEL, C1) have no business in a page: the
            // replacement character shows that something was there.
            case 0x00...0x1F, 0x7F...0x9F: out.append(Unicode.Scalar(0xFFFD)!)
            // Bidi embedding/override/isolate controls can reverse how a client name or
            // host reads ("moc.evil" shown as "live.com"); marks (U+200E/F) are kept.
            case 0x202A...0x202E, 0x2066...0x2069: out.append(Unicode.Scalar(0xFFFD)!)
            default: out.append(s)
            }
        }
        return String(out)
    }
}

/// The content type every template is rendered with (registered once, named by the
/// pragma `Pages` puts at the top of each template).
struct ScalarHTMLContentType: MustacheContentType {
    static let name = "GATEHOUSE_HTML"
    func escapeText(_ text: String) -> String { HTMLEscaper.escape(text) }
}
