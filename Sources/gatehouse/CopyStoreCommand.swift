import ArgumentParser
import Foundation
import OAuthCore
import OAuthPostgres
import OAuthSQLite

/// `gatehouse copy-store`: moves a SQLite deployment to PostgreSQL (README, PostgreSQL).
struct CopyStore: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "copy-store",
        abstract: "Copy a SQLite database into an empty PostgreSQL database.",
        discussion: """
            Copies clients, users (subjects and attributes), remembered consent, signing keys and
            the live grants: unexpired codes, tokens and their families. Sessions and login-failure
            counters are not copied (users log in again). The target must be empty; the copy is
            one transaction. Stop the old instance first, and give every new host its secret.key:
            tokens, secrets and signing keys are only usable with it.
            """)
    @Option(help: "The SQLite database file to read (its schema must be current: run `gatehouse migrate` on it first).")
    var from: String
    @Option(help: "The target: a libpq URI postgresql://… without a password (libpq reads it from ~/.pgpass or PGPASSFILE).")
    var to: String

    func run() throws {
        guard PostgresURI.isURI(to) else { throw CLIError("--to must be a postgresql:// URI") }
        guard !PostgresURI.hasPassword(to) else {
            throw CLIError("--to must not contain a password (\(PostgresURI.masked(to))); use ~/.pgpass or PGPASSFILE")
        }
        guard FileManager.default.isReadableFile(atPath: from) else { throw CLIError("cannot read \(from)") }
        let source = try SQLiteStore(path: from)
        let version = try source.schemaVersion()
        guard version == Migrations.latestVersion else {
            throw CLIError("\(from) has schema version \(version), this binary \(Migrations.latestVersion): run `gatehouse migrate` on it first")
        }
        // The copy is one transaction, and the busy timeout bounds a transaction: a day.
        let target = PostgresStore(uri: to, busyTimeoutMilliseconds: 86_400_000)
        try target.migrate()
        guard try target.isEmptyForImport() else {
            throw CLIError("\(PostgresURI.masked(to)) already holds clients, users, keys or grants; copy into an empty database")
        }
        let now = Int64(Date().timeIntervalSince1970)
        let expected = try source.exportCounts(now: now)
        var copied: [CopiedTable: Int] = [:]
        var lastReport = Date()
        try target.importRows { insert in
            copied = [:]
            try source.export(now: now) { table, row in
                try insert(table, row)
                let n = copied[table, default: 0] + 1
                copied[table] = n
                if n % 1000 == 0, Date().timeIntervalSince(lastReport) >= 1 {
                    lastReport = Date()
                    FileHandle.standardError.write(Data("copying \(table.rawValue): \(n) of \(expected[table] ?? 0) rows…\n".utf8))
                }
            }
        }
        for table in CopiedTable.allCases {
            print("\(table.rawValue): \(copied[table] ?? 0) copied")
        }
        FileHandle.standardError.write(Data("done: give every host using \(PostgresURI.masked(to)) the secret.key of the old instance\n".utf8))
    }
}
