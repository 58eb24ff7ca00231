import Foundation
import Mustache
import OAuthCore

/// The HTML pages of /authorize (login, consent, error), rendered from Mustache templates:
/// the built-in ones compiled into the binary, or an operator's folder (`template_dir`).
public struct Pages {
    let login: MustacheTemplate
    let consent: MustacheTemplate
    let error: MustacheTemplate
    let logout: MustacheTemplate
    /// Operator templates whose form lacks `{{authz}}` (the sealed request): their logins fail.
    public private(set) var formsWithoutRequest: [String] = []

    public init(directory: String?) throws {
        MustacheContentTypes.register(ScalarHTMLContentType(), named: ScalarHTMLContentType.name)
        var missing: [String] = []
        func load(_ name: String, builtin: [UInt8], optional: Bool = false) throws -> MustacheTemplate {
            var text = String(decoding: builtin, as: UTF8.self)
            if let directory {
                let path = directory + "/" + name + ".mustache"
                // A page added after an operator copied the templates falls back to the built-in one.
                let exists = FileManager.default.fileExists(atPath: path)
                if optional && !exists { return try MustacheTemplate(string: "{{% CONTENT_TYPE: \(ScalarHTMLContentType.name) }}" + text) }
                guard let custom = try? String(contentsOfFile: path, encoding: .utf8) else {
                    throw ConfigError("template_dir: cannot read \(path)")
                }
                text = custom
            }
            if directory != nil, name == "login" || name == "consent", !text.contains("{{authz}}") { missing.append(name) }
            // Every value is escaped, by our escaper: no raw output tags, no other content type.
            for raw in ["{{{", "{{&", "{{=", "CONTENT_TYPE"] where text.contains(raw) {
                throw ConfigError("template \(name).mustache uses '\(raw)': Gatehouse templates escape every value")
            }
            do { return try MustacheTemplate(string: "{{% CONTENT_TYPE: \(ScalarHTMLContentType.name) }}" + text) } catch {
                throw ConfigError("template \(name).mustache does not parse: \(error)")
            }
        }
        login = try load("login", builtin: PackageResources.login_mustache)
        consent = try load("consent", builtin: PackageResources.consent_mustache)
        error = try load("error", builtin: PackageResources.error_mustache)
        logout = try load("logout", builtin: PackageResources.logout_mustache, optional: true)
        formsWithoutRequest = missing
    }

    /// Security headers for every page (RFC 9700 §4.16 clickjacking, §4.2.4 referrer).
    /// `formTarget` is added to `form-action`: browsers apply it to the redirect that
    /// follows a form post, so 'self' alone would block the redirect to the client.
    static func headers(formTarget: String?) -> [(String, String)] {
        var formAction = "'self'"
        if let formTarget, let origin = cspSource(formTarget) { formAction += " " + origin }
        return [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Cache-Control", "no-store"),
            ("Pragma", "no-cache"),
            ("X-Frame-Options", "DENY"),
            ("Content-Security-Policy",
             "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action \(formAction); frame-ancestors 'none'; base-uri 'none'"),
            ("Referrer-Policy", "no-referrer"),
            ("X-Content-Type-Options", "nosniff"),
        ]
    }

    /// scheme://host[:port] of a URI, for a CSP source expression.
    static func cspSource(_ uri: String) -> String? {
        guard let range = uri.range(of: "://") else { return nil }
        let rest = uri[range.upperBound...]
        let end = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex
        let origin = String(uri[..<end])
        guard !origin.contains(" "), !origin.contains(";"), !origin.contains(",") else { return nil }
        return origin
    }

    func render(_ template: MustacheTemplate, _ context: [String: Any], status: Int, formTarget: String?,
                extraHeaders: [(String, String)] = []) -> HTTPResponse {
        HTTPResponse(status: status, headers: Pages.headers(formTarget: formTarget) + extraHeaders,
                     body: Array(template.render(context).utf8))
    }

    public func errorPage(status: Int, title: String, message: String) -> HTTPResponse {
        render(error, ["title": title, "message": message], status: status, formTarget: nil)
    }
}
