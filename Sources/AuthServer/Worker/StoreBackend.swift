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
