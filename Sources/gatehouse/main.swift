import ArgumentParser
import Foundation
import OAuthSQLite

// Entry point; the commands live beside this file, one file per command group.
// Errors are one line on stderr, `gatehouse: error: …`, with a non-zero exit status;
// --help and --version keep ArgumentParser's own output.
do {
    var command = try Gatehouse.parseAsRoot()
    try command.run()
} catch {
    let code = Gatehouse.exitCode(for: error)
    if code == .success { Gatehouse.exit(withError: error) }
    if let exit = error as? ExitCode { Foundation.exit(exit.rawValue) }
    let message = (error as? SQLiteError)?.isBusy == true
        ? "the database is busy (another process held its write lock past busy_timeout_ms); try again"
        : Gatehouse.message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
    FileHandle.standardError.write(Data("gatehouse: error: \(message)\n".utf8))
    Foundation.exit(code.rawValue == 0 ? 1 : code.rawValue)
}
