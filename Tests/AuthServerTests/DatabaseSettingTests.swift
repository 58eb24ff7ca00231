import Foundation
import OAuthCore
import OAuthPostgres
import XCTest

@testable import AuthServer

/// `database` is a SQLite file or a PostgreSQL URI; a URI never carries a password, and an
/// unreachable PostgreSQL answers 503, never 500.
final class DatabaseSettingTests: XCTestCase {
    func config(_ line: String) throws -> ServerConfig {
        var c = ServerConfig(home: "/srv/gh")
        try c.apply(line, file: "test.conf")
        return c
    }

    func testAPostgresURIIsKeptAsItIsAndPicksPostgres() throws {
        let uri = "postgresql://gatehouse@db.example:5432/gatehouse?sslmode=verify-full"
        let c = try config("database = \(uri)")
        XCTAssertEqual(c.database, uri)
        XCTAssertTrue(c.usesPostgres)
        XCTAssertTrue(try StoreBackend.openForTools(c) is PostgresStore)
        XCTAssertTrue(try config("database = postgres://h/db").usesPostgres)
        let file = try config("database = data/gh.db")
        XCTAssertEqual(file.database, "/srv/gh/data/gh.db")
        XCTAssertFalse(file.usesPostgres)
    }

    func testAPasswordInTheURIIsRefusedWithoutRepeatingIt() throws {
        for uri in ["postgresql://gatehouse:s3cret@db.example/gatehouse", "postgresql://db.example/gatehouse?password=s3cret",
                    "postgresql://db.example/gatehouse?sslmode=require&pass%77ord=s3cret"] {
            XCTAssertThrowsError(try config("database = \(uri)"), uri) { error in
                XCTAssertFalse("\(error)".contains("s3cret"), "\(error)")
                XCTAssertTrue("\(error)".contains("PGPASSFILE"), "\(error)")
            }
        }
        XCTAssertEqual(PostgresURI.masked("postgresql://u:s3cret@h/db?password=s3cret&sslmode=require"),
                       "postgresql://u:***@h/db?password=***&sslmode=require")
        // An @ in the query is not userinfo.
        XCTAssertFalse(PostgresURI.hasPassword("postgresql://h/db?application_name=a:b@c"))
    }

    func testAnUnreachableServerAnswers503TemporarilyUnavailable() throws {
        let home = try temporaryHome(self)
        var c = ServerConfig(home: home)
        c.database = "postgresql://gatehouse@/gatehouse?host=\(home)/no-such-socket-dir&port=1"
        let app = App(config: c, store: try StoreBackend.open(c, writeGate: nil), key: try SecretKey.loadOrCreate(path: c.secretKeyFile),
                      pages: try Pages(directory: nil))
        let basic = Data("client:secret".utf8).base64EncodedString()
        for _ in 0..<2 {  // the next request tries to connect again, and fails alike
            let r = app.handle(HTTPRequest(method: "POST", path: "/token",
                                           headers: ["content-type": "application/x-www-form-urlencoded",
                                                     "authorization": "Basic \(basic)"],
                                           body: Array("grant_type=client_credentials".utf8)))
            XCTAssertEqual(r.status, 503)
            XCTAssertTrue(String(decoding: r.body, as: UTF8.self).contains(#""error":"temporarily_unavailable""#))
        }
    }
}
