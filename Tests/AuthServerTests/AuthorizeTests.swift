import Foundation
import OAuthCore
import OAuthSQLite
import XCTest

@testable import AuthServer

/// /authorize through `App.handle` over a real SQLite file (no nginx, no FastCGI).
final class AuthorizeTests: XCTestCase {
    var app: App!
    var store: SQLiteStore!

    override func setUpWithError() throws {
        let home = try temporaryHome(self)
        let config = ServerConfig(home: home)
        try Server.prepare(config)
        store = try SQLiteStore(path: config.database)
        let client = Client(id: "app", name: "App", secretHash: [1], redirectURIs: ["https://client.example/cb"],
                            grantTypes: [.authorizationCode], allowedScopes: ["A", "B"], defaultScopes: ["A"])
        _ = try store.insertClient(client, now: 0)
        app = App(config: config, store: store, key: try SecretKey.loadOrCreate(path: config.secretKeyFile),
                  pages: try Pages(directory: nil))
    }

    func get(_ query: String, cookie: String? = nil) -> HTTPResponse {
        app.handle(HTTPRequest(method: "GET", path: "/authorize", query: query,
                               headers: cookie.map { ["cookie": $0] } ?? [:]))
    }

    func header(_ r: HTTPResponse, _ name: String) -> String? { r.headers.first { $0.0 == name }?.1 }

    func testSealRoundTripAndBinding() throws {
        let params = try Parameters.parse("response_type=code&client_id=app&state=x%22%CC%81&prompt=login")
        let sealed = app.seal(params, csrf: "token-1")
        XCTAssertFalse(sealed.contains("state"), "the payload is base64url, never raw")
        let opened = try XCTUnwrap(app.unseal(sealed, csrf: "token-1"))
        XCTAssertEqual(try opened.single("state"), "x\"\u{301}")
        XCTAssertNil(try opened.single("prompt"), "prompt was honoured when shown; it is not carried")
        XCTAssertNil(app.unseal(sealed, csrf: "token-2"), "sealed for another form")
        XCTAssertNil(app.unseal("x" + sealed, csrf: "token-1"))
        XCTAssertNil(app.unseal(sealed.replacingOccurrences(of: ".", with: ""), csrf: "token-1"))
        XCTAssertNil(app.unseal("", csrf: "token-1"))
    }

    func testCookielessGetsWriteNothing() throws {
        let before = try store.db.queryOne("SELECT COUNT(*) FROM sessions", []) { $0.int(0) }
        for _ in 0..<200 {
            let r = get("response_type=code&client_id=app&state=s")
            XCTAssertEqual(r.status, 200)
            XCTAssertTrue(header(r, "Set-Cookie")?.hasPrefix("__Host-gatehouse=p.") == true)
        }
        XCTAssertEqual(try store.db.queryOne("SELECT COUNT(*) FROM sessions", []) { $0.int(0) }, before)
    }

    func testAPreLoginCookieIsReusedAndAForgedOneIsNot() throws {
        let first = get("response_type=code&client_id=app")
        let cookie = try XCTUnwrap(header(first, "Set-Cookie")?.split(separator: ";").first.map(String.init))
        XCTAssertNil(header(get("response_type=code&client_id=app", cookie: cookie), "Set-Cookie"), "two tabs share it")
        for forged in ["__Host-gatehouse=p.99999999999.x", "__Host-gatehouse=p.1.x", "__Host-gatehouse=p.abc"] {
            let r = get("response_type=code&client_id=app", cookie: forged)
            XCTAssertEqual(r.status, 200)
            // An expired or malformed cookie is replaced; one with an unsigned far expiry is
            // harmless (its CSRF token is still the server's HMAC of it), but a new one is fine too.
            if !forged.contains("99999999999") { XCTAssertNotNil(header(r, "Set-Cookie"), forged) }
        }
    }

    func testOverLongStateIsShownNotRedirected() {
        let r = get("response_type=code&client_id=app&state=" + String(repeating: "s", count: 2049))
        XCTAssertEqual(r.status, 400)
        XCTAssertNil(header(r, "Location"))
        let ok = get("response_type=nope&client_id=app&state=" + String(repeating: "s", count: 2048))
        XCTAssertEqual(ok.status, 302)
    }
}
