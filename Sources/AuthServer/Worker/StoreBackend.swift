import Foundation
import OAuthCore
import OAuthPostgres
import OAuthSQLite

/// The one place that picks a storage backend for a configuration: every other file works
/// with the contract (`AuthorizationStore`). `database = postgresql://…` picks PostgreSQL,
/// anything else is a SQLite file.
public enum StoreBackend {
    /// A worker's store: commits as `durability` says; `writeGate` serialises the writers
    /// of one host's SQLite file. PostgreSQL needs no gate: its row locks order the writers of
    /// every host.
    public static func open(_ config: ServerConfig, writeGate: WriteGate?) throws -> any AuthorizationStore {
        if config.usesPostgres {
            return PostgresStore(uri: config.database, busyTimeoutMilliseconds: config.busyTimeoutMilliseconds,
                                 durable: config.durableCommits)
        }
        let store = try SQLiteStore(path: config.database, busyTimeoutMilliseconds: Int32(config.busyTimeoutMilliseconds),
                                    durable: config.durableCommits)
        store.db.writeGate = writeGate
        return store
    }

    /// The store of a `gatehouse` command, the master's migrations or the purge: every
    /// commit fsynced whatever `durability` says (README, Durability).
    public static func openForTools(_ config: ServerConfig) throws -> any AuthorizationStore {
        if config.usesPostgres {
            return PostgresStore(uri: config.database, busyTimeoutMilliseconds: config.busyTimeoutMilliseconds, durable: true)
        }
        return try SQLiteStore(path: config.database, busyTimeoutMilliseconds: Int32(config.busyTimeoutMilliseconds), durable: true)
    }
}

extension StoreBackend {
    /// The database's schema version and the latest this binary knows, read without writing
    /// anything (for `gatehouse check-config`, which may run as another user than the
    /// service). nil: no database yet; the first start creates it.
    public static func inspectSchema(_ config: ServerConfig) throws -> (version: Int?, latest: Int) {
        if config.usesPostgres {
            let store = PostgresStore(uri: config.database, busyTimeoutMilliseconds: config.busyTimeoutMilliseconds, durable: true)
            return (try store.schemaVersion(), PostgresMigrations.latestVersion)
        }
        let path = config.database
        let fm = FileManager.default
        guard fm.fileExists(atPath: path) else { return (nil, Migrations.latestVersion) }
        // With a -wal or -shm beside it the file may lag the WAL: ask SQLite, read-only (it
        // creates nothing while those files exist). Without them the header is current, and
        // reading it opens nothing SQLite would create as this user.
        if fm.fileExists(atPath: path + "-wal") || fm.fileExists(atPath: path + "-shm") {
            let connection = try Connection(path: path, readOnly: true)
            return (Int(try connection.queryOne("PRAGMA user_version") { $0.int(0) } ?? 0), Migrations.latestVersion)
        }
        guard let header = FileHandle(forReadingAtPath: path).flatMap({ try? $0.read(upToCount: 100) }) else {
            throw ConfigError("cannot read database file \(path)")
        }
        if header.isEmpty { return (0, Migrations.latestVersion) }  // created empty, never migrated
        // SQLite file format §1.3: the magic string, and user_version big-endian at offset 60.
        guard header.count == 100, header.starts(with: Array("SQLite format 3\0".utf8)) else {
            throw ConfigError("\(path) is not a SQLite database")
        }
        let version = header[60..<64].reduce(0) { $0 << 8 | Int($1) }
        return (version, Migrations.latestVersion)
    }
}

extension App {
    /// Opens everything a worker needs (after fork).
    public static func open(_ config: ServerConfig, writeGate: WriteGate?) throws -> App {
        App(config: config, store: try StoreBackend.open(config, writeGate: writeGate),
            key: try SecretKey.loadOrCreate(path: config.secretKeyFile), pages: try Pages(directory: config.templateDirectory))
    }
}

extension ServerConfig {
    /// The lifetimes the grants work with.
    var tokenLifetimes: TokenLifetimes {
        TokenLifetimes(access: accessTokenLifetime, refreshIdle: refreshTokenIdleLifetime, refreshAbsolute: refreshTokenLifetime,
                       refreshGrace: refreshGracePeriod)
    }
}
