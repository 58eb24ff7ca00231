import ArgumentParser
import Foundation
import OAuthCore

// Entry point; the commands live beside this file, one file per command group.
// Errors are one line on stderr, `gatehouse: error: …`, with a non-zero exit status;
// --help and --version keep ArgumentParser's own output.
// Before anything creates a file (serve and every command): nothing Gatehouse writes is for
// other users (logs hold usernames and client addresses; the pid file, run/). 027 rather than
// 077 keeps group read and traverse: nginx's user reaches the socket through a shared group
// (the socket itself gets `listen_mode` by chmod after bind, whatever the umask), and an
// operators' group may read the logs. The database and the key are 0600 by their own open().
umask(0o027)

do {
    var command = try Gatehouse.parseAsRoot()
    try command.run()
} catch {
    let code = Gatehouse.exitCode(for: error)
    if code == .success { Gatehouse.exit(withError: error) }
    if let exit = error as? ExitCode { Foundation.exit(exit.rawValue) }
    let message = (error as? StorageFailure)?.event == "database_busy"
        ? "the database is busy (another process held its write lock past busy_timeout_ms); try again"
        : Gatehouse.message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
    FileHandle.standardError.write(Data("gatehouse: error: \(message)\n".utf8))
    Foundation.exit(code.rawValue == 0 ? 1 : code.rawValue)
}
