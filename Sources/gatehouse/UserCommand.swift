import ArgumentParser
import AuthServer
import Foundation
import OAuthCore
import OAuthCrypto

struct UserCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user", abstract: "Manage resource owners (the people who log in).",
        subcommands: [Add.self, List.self, Passwd.self, Disable.self, Enable.self, Remove.self])

    /// One line from stdin; the newline is not part of the password.
    static func readPassword() throws -> String {
        guard let line = Swift.readLine(strippingNewline: true) else { throw CLIError("--password-stdin: no password on stdin") }
        let password = line.hasSuffix("\r") ? String(line.dropLast()) : line
        guard !password.isEmpty else { throw CLIError("--password-stdin: the password is empty") }
        guard password.utf8.count <= 1024 else { throw CLIError("--password-stdin: the password is longer than 1024 bytes") }
        return password
    }

    static func checkUsername(_ name: String) throws {
        // Tenant-qualified WSO2 names (john@org) are fine; ':' would break Basic credentials.
        guard !name.isEmpty, name.utf8.count <= 255,
            name.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value != 0x7F && $0 != ":" })
        else { throw CLIError("--username must be 1-255 characters without spaces, control characters or ':'") }
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a user; the password is read from stdin.")
        @OptionGroup var options: ConfigOptions
        @Option var username: String
        @Flag(help: "Read the password (one line) from standard input.") var passwordStdin = false
        @Flag var json = false

        func run() throws {
            guard passwordStdin else { throw CLIError("--password-stdin is required (passwords are never taken as arguments)") }
            try checkUsername(username)
            let password = try readPassword()
            let (_, store, _) = try options.open()
            guard try store.insertUser(username: username, passwordHash: PasswordHasher().hash(password),
                                       now: Int64(Date().timeIntervalSince1970)) != nil
            else { throw CLIError("user '\(username)' already exists") }
            if json {
                var o = JSONObject()
                o["username"] = username
                print(o.serialized())
            } else {
                print("added user \(username)")
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List users.")
        @OptionGroup var options: ConfigOptions
        @Flag var json = false

        func run() throws {
            let (_, store, _) = try options.open()
            let users = try store.users()
            if json {
                print("[" + users.map { u in
                    var o = JSONObject()
                    o["username"] = u.username
                    o.set("disabled", u.disabled)
                    return o.serialized()
                }.joined(separator: ",") + "]")
            } else {
                for u in users { print(u.username + (u.disabled ? "  (disabled)" : "")) }
            }
        }
    }

    struct Passwd: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set a user's password (read from stdin); their sessions end and their tokens are revoked.")
        @OptionGroup var options: ConfigOptions
        @Argument var username: String
        @Flag var passwordStdin = false
        @Flag(help: "Keep the user's sessions and tokens (a routine change, not a reset after a compromise).")
        var keepTokens = false

        func run() throws {
            guard passwordStdin else { throw CLIError("--password-stdin is required") }
            let password = try readPassword()
            let (_, store, _) = try options.open()
            guard let revoked = try store.setPassword(username: username, passwordHash: PasswordHasher().hash(password),
                                                      endGrants: !keepTokens, now: Int64(Date().timeIntervalSince1970))
            else { throw CLIError("no user '\(username)'") }
            print(keepTokens ? "password changed for \(username)"
                             : "password changed for \(username); sessions ended, \(revoked) grant(s) revoked")
        }
    }

    struct Disable: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Disable a user: sessions end and tokens stop working at once.")
        @OptionGroup var options: ConfigOptions
        @Argument var username: String

        func run() throws {
            let (_, store, _) = try options.open()
            guard try store.setDisabled(username: username, true, now: Int64(Date().timeIntervalSince1970)) else {
                throw CLIError("no user '\(username)'")
            }
            print("disabled \(username)")
        }
    }

    struct Enable: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Enable a disabled user.")
        @OptionGroup var options: ConfigOptions
        @Argument var username: String

        func run() throws {
            let (_, store, _) = try options.open()
            guard try store.setDisabled(username: username, false, now: Int64(Date().timeIntervalSince1970)) else {
                throw CLIError("no user '\(username)'")
            }
            print("enabled \(username)")
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a user and everything issued to them.")
        @OptionGroup var options: ConfigOptions
        @Argument var username: String

        func run() throws {
            let (_, store, _) = try options.open()
            guard try store.removeUser(username: username) else { throw CLIError("no user '\(username)'") }
            print("removed user \(username)")
        }
    }
}

struct TokenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token", abstract: "Operator actions on issued tokens.", subcommands: [Revoke.self])

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke every token of a client or of a user.")
        @OptionGroup var options: ConfigOptions
        @Option var client: String?
        @Option var user: String?

        func validate() throws {
            guard (client == nil) != (user == nil) else { throw ValidationError("give exactly one of --client or --user") }
        }

        func run() throws {
            let (_, store, _) = try options.open()
            let now = Int64(Date().timeIntervalSince1970)
            if let client {
                guard try store.client(id: client) != nil else { throw CLIError("no client '\(client)'") }
            }
            if let user {
                guard try store.user(named: user) != nil else { throw CLIError("no user '\(user)'") }
            }
            let n = try store.revokeAll(clientID: client, username: user, now: now)
            print("revoked \(n) grant(s)")
        }
    }
}
