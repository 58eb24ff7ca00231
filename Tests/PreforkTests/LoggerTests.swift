import XCTest

@testable import Prefork

final class LoggerTests: XCTestCase {
    func testPlainValuesAreNotQuoted() {
        XCTAssertEqual(Log.quote("abc"), "abc")
    }
}
