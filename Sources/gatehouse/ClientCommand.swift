import ArgumentParser
import AuthServer
import Foundation
import OAuthCore
import OAuthCrypto

struct ClientCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "client", abstract: "Register and manage OAuth clients (applications).",
        subcommands: [Add.self, List.self, Show.self, Update.self, Remove.self, RotateSecret.self])

    /// WSO2-style consumer key or secret: 28 URL-safe characters from 21 random bytes
    /// (168 bits); never starting with '-', so it can be passed as an argument.
    static func generateCredential() -> String { SecureRandom.identifier(byteCount: 21) }

    static func json(_ c: Client, secret: String?) -> String {
        var o = JSONObject()
        o["client_id"] = c.id
        o["client_secret"] = secret
        o["name"] = c.name
        o.set("redirect_uris", .strings(c.redirectURIs))
        o.set("grant_types", .strings(c.grantTypes.map(\.rawValue)))
        o["scope"] = Scope.string(c.allowedScopes)
        o["default_scope"] = Scope.string(c.defaultScopes)
        o.set("public", c.isPublic)
        o.set("require_pkce", c.requirePKCE)
        o.set("resource_server", c.isResourceServer)
        o.set("skip_consent", c.skipConsent)
        o["id_token_alg"] = c.idTokenAlgorithm.rawValue
        o.set("post_logout_redirect_uris", .strings(c.postLogoutRedirectURIs))
        o["access_token_format"] = c.accessTokenFormat.rawValue
        if c.previousSecret(at: Int64(Date().timeIntervalSince1970)) != nil, let until = c.previousSecretExpiresAt {
            o.set("previous_secret_valid_until", Int(until))
        }
        return o.serialized()
    }

    static func describe(_ c: Client) -> String {
        """
        client_id:      \(c.id)
        name:           \(c.name)
        type:           \(c.isPublic ? "public" : "confidential")\(c.isResourceServer ? ", resource server" : "")
        redirect_uris:  \(c.redirectURIs.joined(separator: " "))
        grant_types:    \(c.grantTypes.map(\.rawValue).joined(separator: ","))
        scope:          \(Scope.string(c.allowedScopes))
        default_scope:  \(Scope.string(c.defaultScopes))
        require_pkce:   \(c.mustUsePKCE ? "yes" : "no")
        skip_consent:   \(c.skipConsent ? "yes" : "no")
        id_token_alg:   \(c.idTokenAlgorithm.rawValue)
        access_tokens:  \(c.accessTokenFormat.rawValue)
        post_logout_redirect_uris: \(c.postLogoutRedirectURIs.joined(separator: " "))
        """ + previousSecretLine(c)
    }

    static func previousSecretLine(_ c: Client) -> String {
        guard c.previousSecret(at: Int64(Date().timeIntervalSince1970)) != nil, let until = c.previousSecretExpiresAt else { return "" }
        let date = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: TimeInterval(until)))
        return "\nold secret:     still accepted until \(date)"
    }

    /// Shared validation of a client's settings; every message names the option.
    static func check(_ c: Client) throws {
        guard !c.name.isEmpty else { throw CLIError("--name must not be empty") }
        for uri in c.redirectURIs {
            if let problem = RedirectURI.registrationProblem(uri) { throw CLIError("--redirect-uri \(problem)") }
        }
        for uri in c.postLogoutRedirectURIs {
            if let problem = RedirectURI.registrationProblem(uri) { throw CLIError("--post-logout-redirect-uri \(problem)") }
        }
        if c.allows(.authorizationCode) && c.redirectURIs.isEmpty {
            throw CLIError("--redirect-uri is required for the authorization_code grant")
        }
        if c.isPublic && c.allows(.clientCredentials) { throw CLIError("--public clients cannot use client_credentials") }
        if c.isPublic && c.skipConsent {
            throw CLIError("--skip-consent is for confidential clients (another app can claim a public client's id)")
        }
        guard !c.allowedScopes.isEmpty else { throw CLIError("--scope must name at least one scope") }
        for s in c.defaultScopes where !c.allowedScopes.contains(s) {
            throw CLIError("--default-scope '\(s)' is not in --scope")
        }
    }

    static func parseGrantTypes(_ list: String) throws -> [GrantType] {
        try list.split(separator: ",").map { raw in
            let name = raw.trimmingCharacters(in: .whitespaces)
            guard let g = GrantType(rawValue: name) else {
                throw CLIError("--grant-types: unknown grant type '\(name)' (known: \(GrantType.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            return g
        }
    }

    /// The OpenID Connect settings `client add` and `client update` share.
    struct OpenIDOptions: ParsableArguments {
        @Option(help: "How ID Tokens (and JWT access tokens) are signed: ES256 (default) or RS256.") var idTokenAlg: String?
        @Option(name: .customLong("post-logout-redirect-uri"),
                help: "Where /logout may return the browser (repeatable; replaces the list on update).")
        var postLogoutRedirectURIs: [String] = []
        @Option(help: "opaque (default) or jwt (RFC 9068 access tokens).") var accessTokenFormat: String?

        func apply(to c: inout Client) throws {
            if let idTokenAlg {
                guard let alg = SigningAlgorithm(rawValue: idTokenAlg.uppercased()) else { throw CLIError("--id-token-alg must be ES256 or RS256") }
                c.idTokenAlgorithm = alg
            }
            if !postLogoutRedirectURIs.isEmpty { c.postLogoutRedirectURIs = postLogoutRedirectURIs }
            if let accessTokenFormat {
                guard let format = AccessTokenFormat(rawValue: accessTokenFormat.lowercased()) else {
                    throw CLIError("--access-token-format must be opaque or jwt")
                }
                c.accessTokenFormat = format
            }
        }
    }

    static func parseScope(_ text: String, option: String) throws -> [String] {
        do { return try Scope.parse(text) } catch { throw CLIError("\(option): malformed scope '\(text)'") }
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Register a client. The secret is shown once.",
            discussion: "Existing WSO2 applications keep their keys: pass --client-id and --client-secret to import them.")
        @OptionGroup var options: ConfigOptions
        @Option(help: "Display name, shown on the consent page.") var name: String
        @Option(name: .customLong("redirect-uri"), help: "Registered redirect URI (repeatable); exact https, or http on 127.0.0.1/[::1].")
        var redirectURIs: [String] = []
        @Option(help: "Comma-separated grant types.") var grantTypes = "authorization_code,refresh_token"
        @Option(help: "Scopes the client may request.") var scope = "PRODUCTION"
        @Option(help: "Scopes granted when a request names none (default: all of --scope).") var defaultScope: String?
        @Flag(help: "A public client (no secret; PKCE required).") var `public` = false
        @Flag(help: "Require PKCE even for this confidential client.") var requirePkce = false
        @Flag(help: "May introspect tokens issued to any client.") var resourceServer = false
        @Flag(help: "A first-party application: its users are not asked for consent (confidential clients only).")
        var skipConsent = false
        @Option(help: "Import an existing client id (WSO2 consumer key).") var clientId: String?
        @Option(help: "Import an existing client secret (WSO2 consumer secret).") var clientSecret: String?
        @OptionGroup var openID: OpenIDOptions
        @Flag(help: "Print one JSON object.") var json = false

        func run() throws {
            if `public` && clientSecret != nil { throw CLIError("--client-secret cannot be used with --public") }
            if clientSecret != nil && clientId == nil { throw CLIError("--client-secret needs --client-id") }
            if let id = clientId {
                guard !id.isEmpty, id.utf8.count <= 255, id.allSatisfy({ $0.isASCII && !$0.isWhitespace && !$0.isNewline && $0 != ":" }) else {
                    throw CLIError("--client-id must be 1-255 printable ASCII characters without spaces or ':'")
                }
            }
            if let s = clientSecret, s.utf8.count < 16 {
                // Secrets are not throttled (a lockout keyed by the public client_id would let anyone
                // take a client offline): they must be long enough not to be guessed.
                throw CLIError("--client-secret is too short (at least 16 characters; generated secrets have 28)")
            }
            let (config, store, key) = try options.open()
            let allowed = try parseScope(scope, option: "--scope")
            let secret = `public` ? nil : (clientSecret ?? ClientCommand.generateCredential())
            var client = Client(
                id: clientId ?? ClientCommand.generateCredential(), name: name, secretHash: secret.map(key.hash),
                redirectURIs: redirectURIs, grantTypes: try parseGrantTypes(grantTypes), allowedScopes: allowed,
                defaultScopes: try defaultScope.map { try parseScope($0, option: "--default-scope") } ?? allowed,
                requirePKCE: requirePkce, isResourceServer: resourceServer)
            client.skipConsent = skipConsent
            try openID.apply(to: &client)
            try check(client)
            guard try store.insertClient(client, now: Int64(Date().timeIntervalSince1970)) else {
                throw CLIError("a client with id '\(client.id)' already exists")
            }
            OperatorAudit.record(config, "client_added", [("client", client.id), ("name", client.name), ("public", client.isPublic),
                                                          ("grant_types", client.grantTypes.map(\.rawValue).joined(separator: ",")),
                                                          ("scope", client.allowedScopes.joined(separator: " "))])
            if json {
                print(ClientCommand.json(client, secret: secret))
            } else {
                print(describe(client))
                if let secret { print("client_secret:  \(secret)\n(the secret is shown only now; store it safely)") }
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List clients.")
        @OptionGroup var options: ConfigOptions
        @Flag(help: "Print a JSON array.") var json = false

        func run() throws {
            let (_, store, _) = try options.open()
            let clients = try store.clients()
            if json {
                print("[" + clients.map { ClientCommand.json($0, secret: nil) }.joined(separator: ",") + "]")
            } else {
                for c in clients {
                    print("\(c.id)  \(c.isPublic ? "public" : "confidential")  \(c.name)  [\(c.grantTypes.map(\.rawValue).joined(separator: ","))]")
                }
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one client.")
        @OptionGroup var options: ConfigOptions
        @Argument(help: "Client id.") var clientID: String
        @Flag(help: "Print one JSON object.") var json = false

        func run() throws {
            let (_, store, _) = try options.open()
            guard let c = try store.client(id: clientID) else { throw CLIError("no client '\(clientID)'") }
            print(json ? ClientCommand.json(c, secret: nil) : describe(c))
        }
    }

    struct Update: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Change a client's settings (only the options given).")
        @OptionGroup var options: ConfigOptions
        @Argument(help: "Client id.") var clientID: String
        @Option var name: String?
        @Option(name: .customLong("redirect-uri"), help: "Replaces all redirect URIs (repeatable).") var redirectURIs: [String] = []
        @Option var grantTypes: String?
        @Option var scope: String?
        @Option var defaultScope: String?
        @Option(help: "yes or no") var requirePkce: String?
        @Option(help: "yes or no") var resourceServer: String?
        @Option(help: "yes or no") var skipConsent: String?
        @OptionGroup var openID: OpenIDOptions
        @Flag var json = false

        func run() throws {
            let (config, store, _) = try options.open()
            guard var c = try store.client(id: clientID) else { throw CLIError("no client '\(clientID)'") }
            if let name { c.name = name }
            if !redirectURIs.isEmpty { c.redirectURIs = redirectURIs }
            if let grantTypes { c.grantTypes = try parseGrantTypes(grantTypes) }
            if let scope {
                c.allowedScopes = try parseScope(scope, option: "--scope")
                if defaultScope == nil { c.defaultScopes = c.defaultScopes.filter(c.allowedScopes.contains) }
                if c.defaultScopes.isEmpty { c.defaultScopes = c.allowedScopes }
            }
            if let defaultScope { c.defaultScopes = try parseScope(defaultScope, option: "--default-scope") }
            if let v = requirePkce { c.requirePKCE = try yesNo(v, "--require-pkce") }
            if let v = resourceServer { c.isResourceServer = try yesNo(v, "--resource-server") }
            if let v = skipConsent { c.skipConsent = try yesNo(v, "--skip-consent") }
            try openID.apply(to: &c)
            try check(c)
            _ = try store.updateClient(c)
            OperatorAudit.record(config, "client_updated", [("client", c.id), ("grant_types", c.grantTypes.map(\.rawValue).joined(separator: ",")),
                                                            ("scope", c.allowedScopes.joined(separator: " "))])
            print(json ? ClientCommand.json(c, secret: nil) : describe(c))
        }

        func yesNo(_ v: String, _ option: String) throws -> Bool {
            switch v.lowercased() {
            case "yes", "true", "on", "1": return true
            case "no", "false", "off", "0": return false
            default: throw CLIError("\(option) takes yes or no, got '\(v)'")
            }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove a client and every token issued to it.")
        @OptionGroup var options: ConfigOptions
        @Argument(help: "Client id.") var clientID: String

        func run() throws {
            let (config, store, _) = try options.open()
            guard try store.removeClient(id: clientID) else { throw CLIError("no client '\(clientID)'") }
            OperatorAudit.record(config, "client_removed", [("client", clientID)])
            print("removed client \(clientID)")
        }
    }

    struct RotateSecret: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rotate-secret",
            abstract: "Replace a confidential client's secret; the new one is shown once.",
            discussion: """
                By default the old secret stops working at once. With --keep-old-for SECONDS it keeps \
                working that long beside the new one, so the application's instances can switch one \
                at a time without a failed request. Rotating again ends any earlier overlap.
                """)
        @OptionGroup var options: ConfigOptions
        @Argument(help: "Client id.") var clientID: String
        @Option(help: "Seconds the old secret keeps working (0 to 2592000; default 0).") var keepOldFor: Int64 = 0
        @Flag var json = false

        func run() throws {
            guard (0...2_592_000).contains(keepOldFor) else { throw CLIError("--keep-old-for must be 0 to 2592000 seconds") }
            let (config, store, key) = try options.open()
            guard var c = try store.client(id: clientID) else { throw CLIError("no client '\(clientID)'") }
            guard !c.isPublic else { throw CLIError("client '\(clientID)' is public and has no secret") }
            let secret = ClientCommand.generateCredential()
            c.previousSecretHash = keepOldFor > 0 ? c.secretHash : nil
            c.previousSecretExpiresAt = keepOldFor > 0 ? Int64(Date().timeIntervalSince1970) + keepOldFor : nil
            c.secretHash = key.hash(secret)
            _ = try store.updateClient(c)
            OperatorAudit.record(config, "client_secret_rotated", [("client", c.id), ("old_secret_valid_s", keepOldFor)])
            print(json ? ClientCommand.json(c, secret: secret)
                : "client_id:      \(c.id)\nclient_secret:  \(secret)" + ClientCommand.previousSecretLine(c))
        }
    }
}
