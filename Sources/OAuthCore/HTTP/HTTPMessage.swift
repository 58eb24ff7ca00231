/// One HTTP request as the protocol core sees it: no FastCGI, no sockets.
public struct HTTPRequest: Sendable {
    public var method: String
    /// The path without the query, as nginx decoded it (`DOCUMENT_URI`).
    public var path: String
    public var query: String
    /// Header names in lower case (`authorization`, `cookie`, `content-type`).
    public var headers: [String: String]
    public var body: [UInt8]
    public var remoteAddress: String
    public var isHTTPS: Bool

    public init(method: String, path: String, query: String = "", headers: [String: String] = [:], body: [UInt8] = [],
                remoteAddress: String = "127.0.0.1", isHTTPS: Bool = true) {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.remoteAddress = remoteAddress
        self.isHTTPS = isHTTPS
    }

    public func header(_ name: String) -> String? { headers[name] }

    /// The media type of the body without parameters, lower-cased.
    public var mediaType: String? {
        guard let ct = headers["content-type"] else { return nil }
        return ct.split(separator: ";", maxSplits: 1).first.map { $0.trimmingSpaces().lowercased() }
    }

    /// Cookie value by name (RFC 6265 `cookie-string`). nil if absent or repeated.
    public func cookie(_ name: String) -> String? {
        guard let header = headers["cookie"] else { return nil }
        var found: String? = nil
        for part in header.split(separator: ";") {
            let kv = part.split(separator: "=", maxSplits: 1)
            guard kv.count == 2, kv[0].trimmingSpaces() == name else { continue }
            if found != nil { return nil }
            found = kv[1].trimmingSpaces()
        }
        return found
    }
}

/// One HTTP response value: status, headers in order, body bytes.
public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]

    public init(status: Int, headers: [(String, String)] = [], body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    public func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }

    /// A JSON body with the given status and `Content-Type: application/json`.
    public static func json(_ status: Int, _ body: String, headers: [(String, String)] = []) -> HTTPResponse {
        HTTPResponse(status: status, headers: [("Content-Type", "application/json")] + headers, body: Array(body.utf8))
    }

    /// RFC 6749 §5.1: responses carrying tokens or credentials must not be cached.
    public static let noStoreHeaders: [(String, String)] = [("Cache-Control", "no-store"), ("Pragma", "no-cache")]

    /// The RFC 6749 §5.2 JSON error body for `error`, with `extra` headers.
    public static func oauthError(_ error: OAuthError, headers extra: [(String, String)] = []) -> HTTPResponse {
        var o = JSONObject()
        o["error"] = error.code.rawValue
        o["error_description"] = error.description
        var headers = noStoreHeaders + extra
        if error.code == .temporarilyUnavailable { headers.append(("Retry-After", "1")) }
        return .json(error.status, o.serialized(), headers: headers)
    }

    public static func redirect(_ location: String, status: Int = 302, headers: [(String, String)] = []) -> HTTPResponse {
        HTTPResponse(status: status, headers: [("Location", location), ("Cache-Control", "no-store")] + headers)
    }
}

extension Substring {
    func trimmingSpaces() -> String {
        var s = self[...]
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return String(s)
    }
}

extension String {
    func trimmingSpaces() -> String { self[...].trimmingSpaces() }
}
