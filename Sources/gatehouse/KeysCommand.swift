import ArgumentParser
import AuthServer
import Foundation
import OAuthCore

/// `gatehouse keys`: the keys that sign ID Tokens and JWT access tokens (README, Signing keys).
struct KeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys", abstract: "List, rotate and retire the OpenID Connect signing keys.",
        subcommands: [List.self, Rotate.self, Retire.self])

    static func json(_ k: StoredSigningKey, now: Int64) -> String {
        var o = JSONObject()
        o["kid"] = k.id
        o["alg"] = k.algorithm.rawValue
        o["status"] = KeySet.status(of: k, at: now).rawValue
        o.set("created_at", Int(k.createdAt))
        o.set("active_from", Int(k.activeFrom))
        if let retired = k.retiredAt { o.set("retired_at", Int(retired)) }
        return o.serialized()
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the keys: active (signing), published (ahead of use) or retired.")
        @OptionGroup var options: ConfigOptions
        @Flag var json = false

        func run() throws {
            let (_, store, _) = try options.open()
            let now = Int64(Date().timeIntervalSince1970)
            let keys = try store.signingKeys()
            if json {
                print("[" + keys.map { KeysCommand.json($0, now: now) }.joined(separator: ",") + "]")
            } else {
                for k in keys {
                    let created = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: TimeInterval(k.createdAt)))
                    print("\(k.id)  \(k.algorithm.rawValue)  \(KeySet.status(of: k, at: now).rawValue)  created \(created)")
                }
            }
        }
    }

    struct Rotate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a new signing key: published in /jwks at once, signing after --publish-ahead seconds.")
        @OptionGroup var options: ConfigOptions
        @Option(help: "ES256 (default) or RS256.") var alg = "ES256"
        @Option(help: "Seconds between publishing the key and signing with it (let relying parties refetch /jwks).")
        var publishAhead: Int64 = 0
        @Flag var json = false

        func run() throws {
            guard let algorithm = SigningAlgorithm(rawValue: alg.uppercased()) else { throw CLIError("--alg must be ES256 or RS256") }
            guard (0...30 * 86_400).contains(publishAhead) else { throw CLIError("--publish-ahead must be 0 to 2592000 seconds") }
            let (config, store, key) = try options.open()
            let now = Int64(Date().timeIntervalSince1970)
            let fresh = try SigningKeyRing.newKey(algorithm, key: key, now: now, publishAhead: publishAhead)
            try store.insertSigningKey(fresh)
            OperatorAudit.record(config, "signing_key_rotated", [("kid", fresh.id), ("alg", algorithm.rawValue),
                                                                 ("publish_ahead_s", publishAhead)])
            if json {
                print(KeysCommand.json(fresh, now: now))
            } else {
                print("new \(algorithm.rawValue) key \(fresh.id): published now, signing " + (publishAhead == 0 ? "now" : "in \(publishAhead) s"))
                print("retire the previous one with: gatehouse keys retire KID (it stays in /jwks until its tokens expire)")
            }
        }
    }

    struct Retire: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stop signing with a key; it stays in /jwks until every token it signed has expired.")
        @OptionGroup var options: ConfigOptions
        // Taken as it comes even when it starts with '-' (keys made before kids avoided a
        // leading '-' have one in 64 times); a `--` before it is allowed too.
        @Argument(parsing: .allUnrecognized, help: ArgumentHelp("The key's kid (from gatehouse keys list).", valueName: "kid"))
        var words: [String] = []
        var kid: String? {
            let given = words.filter { $0 != "--" }
            return given.count == 1 ? given[0] : nil
        }

        func validate() throws {
            guard kid != nil else {
                throw ValidationError(words.isEmpty ? "give the kid of the key to retire (gatehouse keys list shows them)"
                                      : "give exactly one kid (gatehouse keys list shows them), not: \(words.joined(separator: " "))")
            }
        }

        func run() throws {
            guard let kid else { return }
            let (config, store, _) = try options.open()
            let now = Int64(Date().timeIntervalSince1970)
            let keys = try store.signingKeys()
            guard let k = keys.first(where: { $0.id == kid }) else { throw CLIError("no key '\(kid)'") }
            guard k.retiredAt == nil else { throw CLIError("key '\(kid)' is already retired") }
            if KeySet.isLastSigner(keys, id: kid, at: now) {
                throw CLIError("key '\(kid)' is the last active \(k.algorithm.rawValue) key; run gatehouse keys rotate --alg \(k.algorithm.rawValue) first")
            }
            guard try store.retireSigningKey(id: kid, now: now) else { throw CLIError("key '\(kid)' is already retired") }
            OperatorAudit.record(config, "signing_key_retired", [("kid", kid)])
            print("retired key \(kid)")
        }
    }
}
