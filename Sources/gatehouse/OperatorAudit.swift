import AuthServer
import Foundation
import Logging

/// The audit line of a change made with the CLI, in the server's log (`log_file`, else
/// stderr) and format, naming who ran it: the Unix user, and the one behind sudo. Written
/// after the change succeeded; never a secret or a password.
enum OperatorAudit {
    static func record(_ config: ServerConfig, _ event: String, _ fields: [(String, CustomStringConvertible)]) {
        Log.format = config.logFormat
        if let file = config.logFile, !Log.open(path: file) {
            FileHandle.standardError.write(Data("gatehouse: warning: cannot append to log_file \(file); audit line on stderr\n".utf8))
        }
        var all: [(String, CustomStringConvertible)] = [("by", unixUser)]
        if let sudo = ProcessInfo.processInfo.environment["SUDO_USER"], !sudo.isEmpty { all.append(("sudo_user", sudo)) }
        Log.info(event, fields: fields + all)
    }

    /// The effective user's name (its uid when it has no name).
    static var unixUser: String {
        let uid = geteuid()
        guard let pw = getpwuid(uid), let name = pw.pointee.pw_name else { return String(uid) }
        return String(cString: name)
    }
}
