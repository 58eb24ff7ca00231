import ArgumentParser
import AuthServer
import Foundation
import OAuthCore
import OAuthCrypto

struct UserCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user", abstract: "Manage resource owners (the people who log in).",
        subcommands: [Add.self, List.self, Show.self, Update.self, Passwd.self, Disable.self, Enable.self, Remove.self])

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

    /// The OpenID Connect attributes (`profile` and `email` scopes) a user may carry.
    struct ProfileOptions: ParsableArguments {
        @Option(help: "Email address (released with the email scope).") var email: String?
        @Flag(inversion: .prefixedNo, help: "Whether the email address has been verified.") var emailVerified: Bool?
        @Option(help: "Full name (profile scope).") var name: String?
        @Option(help: "Given name (profile scope).") var givenName: String?
        @Option(help: "Family name (profile scope).") var familyName: String?

        /// `profile` with these options applied. A new email clears `email_verified` unless
        /// `--email-verified` comes with it.
        func applied(to profile: UserProfile, now: Int64) throws -> UserProfile {
            var p = profile
            for (option, value) in [("--email", email), ("--name", name), ("--given-name", givenName), ("--family-name", familyName)] {
                if let value, value.utf8.count > 255 || value.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }) {
                    throw CLIError("\(option) must be at most 255 characters without control characters")
                }
            }
            if let email {
                guard email.isEmpty || (email.contains("@") && !email.contains(" ")) else { throw CLIError("--email is not an email address") }
                if email != p.email { p.emailVerified = false }
                p.email = email.isEmpty ? nil : email
            }
            if let emailVerified { p.emailVerified = emailVerified }
            if let name { p.name = name.isEmpty ? nil : name }
            if let givenName { p.givenName = givenName.isEmpty ? nil : givenName }
            if let familyName { p.familyName = familyName.isEmpty ? nil : familyName }
            if p != profile { p.updatedAt = now }
            return p
        }
    }

    static func json(_ u: User) -> String {
        var o = JSONObject()
        o["username"] = u.username
        o["sub"] = u.subject
        o.set("disabled", u.disabled)
        o["email"] = u.profile.email
        o.set("email_verified", u.profile.emailVerified)
        o["name"] = u.profile.name
        o["given_name"] = u.profile.givenName
        o["family_name"] = u.profile.familyName
        return o.serialized()
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a user; the password is read from stdin.")
        @OptionGroup var options: ConfigOptions
        @Option var username: String
        @Flag(help: "Read the password (one line) from standard input.") var passwordStdin = false
        @OptionGroup var profile: ProfileOptions
        @Flag var json = false

        func run() throws {
            guard passwordStdin else { throw CLIError("--password-stdin is required (passwords are never taken as arguments)") }
            try checkUsername(username)
            let now = Int64(Date().timeIntervalSince1970)
            let attributes = try profile.applied(to: UserProfile(), now: now)
            let password = try readPassword()
            let (config, store, _) = try options.open()
            guard let id = try store.insertUser(username: username, passwordHash: PasswordHasher().hash(password),
                                                profile: attributes, now: now),
                let user = try store.user(id: id)
            else { throw CLIError("user '\(username)' already exists") }
            OperatorAudit.record(config, "user_added", [("username", username), ("sub", user.subject)])
            if json {
                var o = JSONObject()
                o["username"] = username  // DESIGN: `user add --json` gives the username; `user show` the rest
                print(o.serialized())
            } else {
                print("added user \(username) (sub \(user.subject))")
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a user's subject identifier and attributes.")
        @OptionGroup var options: ConfigOptions
        @Argument var username: String
        @Flag var json = false

        func run() throws {
            let (_, store, _) = try options.open()
            guard let u = try store.user(named: username) else { throw CLIError("no user '\(username)'") }
            if json {
                print(UserCommand.json(u))
            } else {
                print("username:        \(u.username)\nsub:             \(u.subject)\ndisabled:        \(u.disabled)")
                print("email:           \(u.profile.email ?? "-")\(u.profile.email == nil ? "" : u.profile.emailVerified ? " (verified)" : " (not verified)")")
                print("name:            \(u.profile.name ?? "-")\ngiven_name:      \(u.profile.givenName ?? "-")\nfamily_name:     \(u.profile.familyName ?? "-")")
            }
        }
    }

    struct Update: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change a user's attributes (an empty value removes one).")
        @OptionGroup var options: ConfigOptions
        @Argument var username: String
        @OptionGroup var profile: ProfileOptions
        @Flag var json = false

        func run() throws {
            let (config, store, _) = try options.open()
            guard let u = try store.user(named: username) else { throw CLIError("no user '\(username)'") }
            let updated = try profile.applied(to: u.profile, now: Int64(Date().timeIntervalSince1970))
            guard try store.updateProfile(username: username, updated) else { throw CLIError("no user '\(username)'") }
            OperatorAudit.record(config, "user_updated", [("username", username)])
            var after = u
            after.profile = updated
            print(json ? UserCommand.json(after) : "updated user \(username)")
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
                print("[" + users.map(UserCommand.json).joined(separator: ",") + "]")
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
            let (config, store, _) = try options.open()
            guard let revoked = try store.setPassword(username: username, passwordHash: PasswordHasher().hash(password),
                                                      endGrants: !keepTokens, now: Int64(Date().timeIntervalSince1970))
            else { throw CLIError("no user '\(username)'") }
            OperatorAudit.record(config, "user_password_set", [("username", username), ("grants_revoked", revoked)])
            print(keepTokens ? "password changed for \(username)"
                             : "password changed for \(username); sessions ended, \(revoked) grant(s) revoked")
        }
    }

    struct Disable: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Disable a user: sessions end and tokens stop working at once.")
        @OptionGroup var options: ConfigOptions
        @Argument var username: String

        func run() throws {
            let (config, store, _) = try options.open()
            guard try store.setDisabled(username: username, true, now: Int64(Date().timeIntervalSince1970)) else {
                throw CLIError("no user '\(username)'")
            }
            OperatorAudit.record(config, "user_disabled", [("username", username)])
            print("disabled \(username)")
        }
    }

    struct Enable: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Enable a disabled user.")
        @OptionGroup var options: ConfigOptions
        @Argument var username: String

        func run() throws {
            let (config, store, _) = try options.open()
            guard try store.setDisabled(username: username, false, now: Int64(Date().timeIntervalSince1970)) else {
                throw CLIError("no user '\(username)'")
            }
            OperatorAudit.record(config, "user_enabled", [("username", username)])
            print("enabled \(username)")
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a user and everything issued to them.")
        @OptionGroup var options: ConfigOptions
        @Argument var username: String

        func run() throws {
            let (config, store, _) = try options.open()
            guard try store.removeUser(username: username) else { throw CLIError("no user '\(username)'") }
            OperatorAudit.record(config, "user_removed", [("username", username)])
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
            let (config, store, _) = try options.open()
            let now = Int64(Date().timeIntervalSince1970)
            if let client {
                guard try store.client(id: client) != nil else { throw CLIError("no client '\(client)'") }
            }
            if let user {
                guard try store.user(named: user) != nil else { throw CLIError("no user '\(user)'") }
            }
            let n = try store.revokeAll(clientID: client, username: user, now: now)
            let whose: (String, CustomStringConvertible) = client.map { ("client", $0) } ?? ("username", user ?? "")
            OperatorAudit.record(config, "tokens_revoked_by_operator", [whose, ("grants", n)])
            print("revoked \(n) grant(s)")
        }
    }
}
