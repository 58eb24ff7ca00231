import ArgumentParser
import AuthServer
import Foundation
import OAuthCore

struct Gatehouse: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gatehouse",
        abstract: "An OAuth 2.0 authorization server behind nginx (FastCGI worker pool over SQLite).",
        subcommands: [Serve.self, Migrate.self, CheckConfig.self, ClientCommand.self, UserCommand.self, KeysCommand.self, TokenCommand.self, CopyStore.self,
                      Purge.self])
}

/// `--config`, shared by every command. Default: $GATEHOUSE_HOME/gatehouse.conf (var/ by default).
struct ConfigOptions: ParsableArguments {
    @Option(name: .long, help: "Configuration file (default: $GATEHOUSE_HOME/gatehouse.conf, GATEHOUSE_HOME defaults to var/).")
    var config: String?

    var home: String {
        if let config { return ((config as NSString).deletingLastPathComponent as String).nonEmpty ?? "." }
        return ServerConfig.defaultHome()
    }
    var path: String { config ?? home + "/gatehouse.conf" }

    /// Loads the configuration (writing the default file on first use) and opens the
    /// database with migrations applied.
    func open() throws -> (ServerConfig, any AuthorizationStore, SecretKey) {
        let c = try ServerConfig.load(path: path, home: home, createIfMissing: true)
        try FileManager.default.createDirectory(atPath: c.home, withIntermediateDirectories: true)
        let store = try StoreBackend.openForTools(c)
        try store.migrate()
        return (c, store, try SecretKey.forDatabase(path: c.secretKeyFile, store: store))
    }
}

extension String {
    var nonEmpty: String? { isEmpty ? nil : self }
}

/// A one-line error on stderr (`gatehouse: error: …`) and exit status 1.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the master and its FastCGI workers (foreground; logs to stderr or log_file).",
        discussion: """
            Signals: TERM/INT/QUIT stop gracefully (requests in flight finish, bounded by
            shutdown_timeout); HUP re-reads the configuration and replaces the workers without
            dropping a request; USR1 reopens the log file.
            """)
    @OptionGroup var options: ConfigOptions
    @Option(help: "Number of worker processes (overrides the config and GATEHOUSE_WORKERS).") var workers: Int?

    func validate() throws {
        if let workers, !(1...256).contains(workers) { throw ValidationError("--workers must be between 1 and 256") }
    }

    func run() throws {
        let status = Server.run(configPath: options.path, home: options.home, workersOverride: workers)
        if status != 0 { throw ExitCode(status) }
    }
}

struct Migrate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply pending database migrations.")
    @OptionGroup var options: ConfigOptions

    func run() throws {
        let c = try ServerConfig.load(path: options.path, home: options.home, createIfMissing: true)
        let store = try StoreBackend.openForTools(c)
        let ran = try store.migrate()
        print("database \(c.database): schema version \(try store.schemaVersion()) (\(ran) migration(s) applied)")
    }
}

struct CheckConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config", abstract: "Validate the configuration, templates, server key and database schema, changing nothing; print the effective values.")
    @OptionGroup var options: ConfigOptions

    func run() throws {
        let c = try ServerConfig.load(path: options.path, home: options.home, createIfMissing: false)
        let notes = try Server.check(c)
        for (k, v) in Mirror(reflecting: c).children { print("\(k ?? "?") = \(v)") }
        for note in notes { print(note) }
        print("configuration ok: \(options.path)")
    }
}

struct Purge: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Delete expired codes, tokens, sessions and login-throttling rows, in small batches.")
    @OptionGroup var options: ConfigOptions
    @Option(help: "Rows per transaction (1...100000).") var batch = 1000

    func validate() throws {
        guard (1...100_000).contains(batch) else { throw ValidationError("--batch must be between 1 and 100000, got \(batch)") }
    }

    func run() throws {
        let (c, store, _) = try options.open()
        var last = 0.0
        let counts = try store.purgeExpired(now: Int64(Date().timeIntervalSince1970), batch: batch,
                                            sessionIdleSeconds: c.sessionIdleTimeout) { table, total in
            let t = Date().timeIntervalSince1970
            if t - last >= 1 {
                last = t
                FileHandle.standardError.write(Data("purging \(table): \(total) rows…\n".utf8))
            }
        }
        for table in ["codes", "tokens", "families", "sessions", "login_failures"] {
            print("\(table): \(counts[table] ?? 0) deleted")
        }
        print("pages released: \(counts["pages_released"] ?? 0)")
    }
}
