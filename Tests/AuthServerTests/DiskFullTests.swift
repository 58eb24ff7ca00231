import Foundation
import OAuthCore
import OAuthSQLite
import XCTest

@testable import AuthServer

/// A full disk, everywhere: the integration tests fill a tmpfs, which needs root and skips
/// elsewhere. Here the database file is real but its connection may not grow past the pages
/// it has (`PRAGMA max_page_count`), so the first write that needs a new page fails with
/// SQLITE_FULL exactly as on a full file system.
final class DiskFullTests: XCTestCase {
    let secret = "a-client-secret-of-28-chars!"
    let callback = "https://app.example/cb"

    /// An App over a real SQLite file with one confidential client, registered as
    /// `gatehouse client add` does (secret stored as its HMAC under the server key).
    func makeApp() throws -> App {
        let home = try temporaryHome(self)
        let config = ServerConfig(home: home)
        let store = try SQLiteStore(path: config.database)
        try store.migrate()
        let key = try SecretKey.loadOrCreate(path: config.secretKeyFile)
        let client = Client(id: "full-client", name: "Full", secretHash: key.hash(secret), redirectURIs: [callback],
                            grantTypes: [.authorizationCode, .clientCredentials], allowedScopes: ["PRODUCTION"],
                            defaultScopes: ["PRODUCTION"])
        XCTAssertTrue(try store.insertClient(client, now: 0))
        return App(config: config, store: store, key: key, pages: try Pages(directory: nil))
    }

    /// From now on the database may not grow by a single page.
    func fillDisk(_ app: App) throws {
        let store = try XCTUnwrap(app.store as? SQLiteStore)
        try store.db.execute("PRAGMA incremental_vacuum")  // no free page left to grow into
        let pages = try XCTUnwrap(try store.db.queryOne("PRAGMA page_count") { $0.int(0) })
        try store.db.execute("PRAGMA max_page_count = \(pages)")
    }

    func freeDisk(_ app: App) throws {
        let store = try XCTUnwrap(app.store as? SQLiteStore)
        try store.db.execute("PRAGMA max_page_count = 1073741823")
    }

    func tokenRequest(_ app: App) -> HTTPResponse {
        let basic = Data("full-client:\(secret)".utf8).base64EncodedString()
        return app.handle(HTTPRequest(method: "POST", path: "/token",
                                      headers: ["content-type": "application/x-www-form-urlencoded", "authorization": "Basic \(basic)"],
                                      body: Array("grant_type=client_credentials".utf8)))
    }

    func introspect(_ app: App, _ token: String) -> String {
        let basic = Data("full-client:\(secret)".utf8).base64EncodedString()
        let r = app.handle(HTTPRequest(method: "POST", path: "/introspect",
                                       headers: ["content-type": "application/x-www-form-urlencoded", "authorization": "Basic \(basic)"],
                                       body: Array("token=\(token)".utf8)))
        return String(decoding: r.body, as: UTF8.self)
    }

    static func json(_ r: HTTPResponse) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(r.body))) as? [String: Any] ?? [:]
    }

    func testTokenEndpointAnswers503TemporarilyUnavailableWhenTheDatabaseIsFull() throws {
        let app = try makeApp()
        try fillDisk(app)
        // The tables' pages fill up request by request; every 200 before that is a stored token.
        var issued: [String] = []
        var full: HTTPResponse?
        for _ in 0..<500 {
            let r = tokenRequest(app)
            if r.status != 200 {
                full = r
                break
            }
            issued.append(try XCTUnwrap(Self.json(r)["access_token"] as? String))
        }
        let r = try XCTUnwrap(full, "500 tokens fitted in the existing pages: max_page_count had no effect")
        let body = String(decoding: r.body, as: UTF8.self)
        XCTAssertEqual(r.status, 503, body)
        XCTAssertTrue(body.contains(#""error":"temporarily_unavailable""#), body)
        XCTAssertEqual(r.header("Retry-After"), "1")
        XCTAssertEqual(r.header("Cache-Control"), "no-store")
        // Still full: still 503, never a 500 and never a token that was not stored.
        XCTAssertEqual(tokenRequest(app).status, 503)
        // Reads go on: every token answered with 200 is there.
        for token in [issued.first, issued.last].compactMap({ $0 }) {
            XCTAssertTrue(introspect(app, token).contains(#""active":true"#))
        }
        // Space again: the same connection writes without a restart.
        try freeDisk(app)
        let again = tokenRequest(app)
        XCTAssertEqual(again.status, 200)
        let token = try XCTUnwrap(Self.json(again)["access_token"] as? String)
        XCTAssertTrue(introspect(app, token).contains(#""active":true"#))
    }

    func testAuthorizeRedirectsWithTemporarilyUnavailableWhenTheDatabaseIsFull() throws {
        let app = try makeApp()
        // A signed-in user whose consent is remembered: each visit stores a new code (an
        // anonymous visit writes nothing at all). Once none fits, the client learns it
        // through its redirect URI (RFC 6749 §4.1.2.1), with state and iss.
        let now = Int64(Date().timeIntervalSince1970)
        let user = try XCTUnwrap(try app.store.insertUser(username: "full-user", passwordHash: "x", now: now))
        XCTAssertTrue(try app.store.replaceSession(oldIDHash: nil, newIDHash: app.key.hash("full-session"), csrf: "c",
                                                   userID: user, now: now))
        try app.store.saveConsent(userID: user, clientID: "full-client", scope: ["PRODUCTION"], now: now)
        try fillDisk(app)
        let query = "response_type=code&client_id=full-client&scope=PRODUCTION&state=xyz&redirect_uri="
            + callback.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
        var full: HTTPResponse?
        for _ in 0..<500 {
            let r = app.handle(HTTPRequest(method: "GET", path: "/authorize", query: query,
                                           headers: ["cookie": "__Host-gatehouse=full-session"]))
            if r.header("Location")?.contains("code=") != true {
                full = r
                break
            }
        }
        let r = try XCTUnwrap(full, "500 codes fitted in the existing pages: max_page_count had no effect")
        XCTAssertEqual(r.status, 302, String(decoding: r.body, as: UTF8.self))
        let location = try XCTUnwrap(r.header("Location"))
        XCTAssertTrue(location.hasPrefix(callback + "?"), location)
        XCTAssertTrue(location.contains("error=temporarily_unavailable"), location)
        XCTAssertTrue(location.contains("state=xyz"), location)
        XCTAssertFalse(location.contains("code="), location)
    }
}
