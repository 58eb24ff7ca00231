import Foundation
import Logging
import OAuthPostgres

/// A configuration error, naming the key (and line) so start-up stops with one clear line.
public struct ConfigError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

/// Gatehouse's configuration: `key = value` lines, `#` comments, every key documented in
/// `ServerConfig.defaultFile`. Unknown keys and bad values are errors.
public struct ServerConfig: Sendable {
    public var home: String
    public var listen: String
    public var listenMode: UInt32 = 0o660
    public var workers: Int
    public var maxRequests = 10_000
    public var shutdownTimeout = 30.0
    /// A SQLite file path, or a libpq URI `postgresql://…` (see `usesPostgres`).
    public var database: String
    public var logFile: String? = nil
    public var logFormat = Log.Format.logfmt
    public var issuer = "https://127.0.0.1:8443"
    public var maxBodyBytes = 16_384
    public var busyTimeoutMilliseconds = 5000
    /// `durability = full` (true): critical worker commits are fsynced (`synchronous = FULL`),
    /// the others not; `normal` (false): no worker commit is. See `durability` in the default file.
    public var durableCommits = true
    public var codeLifetime: Int64 = 60
    public var accessTokenLifetime: Int64 = 3600
    public var refreshTokenLifetime: Int64 = 30 * 86_400
    public var refreshTokenIdleLifetime: Int64 = 86_400
    public var refreshGracePeriod: Int64 = 0
    public var sessionIdleTimeout: Int64 = 1800
    public var sessionAbsoluteTimeout: Int64 = 12 * 3600
    public var loginMaxFailures = 5
    public var loginAddressMaxFailures = 50
    public var loginFailureWindow: Int64 = 900
    public var loginLockout: Int64 = 900
    public var templateDirectory: String? = nil
    public var purgeInterval: Int64 = 3600
    /// `password_hash_workers`; nil = auto.
    public var passwordHashWorkersSetting: Int? = nil
    /// How many workers of this host may hash a password at once. Auto: half the workers
    /// and half the cores, at least one, so hashing never holds the whole pool nor, beyond
    /// one core, the whole CPU (both measured in scripts/bench.sh login_flood).
    public var passwordHashWorkers: Int {
        let auto = max(1, min(workers / 2, ProcessInfo.processInfo.activeProcessorCount / 2))
        return min(passwordHashWorkersSetting ?? auto, workers)
    }
    public var secretKeyFile: String

    /// Defaults for an instance directory.
    public init(home: String) {
        self.home = home
        listen = home + "/run/gatehouse.sock"
        database = home + "/gatehouse.db"
        secretKeyFile = home + "/secret.key"
        workers = max(2, 2 * ProcessInfo.processInfo.activeProcessorCount)
    }

    /// The instance directory: `GATEHOUSE_HOME`, else `var/` under the working directory.
    public static func defaultHome() -> String {
        if let h = ProcessInfo.processInfo.environment["GATEHOUSE_HOME"], !h.isEmpty { return absolute(h) }
        return absolute("var")
    }

    static func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
    }

    /// `database` names a PostgreSQL database shared by several hosts, not a SQLite file.
    public var usesPostgres: Bool { PostgresURI.isURI(database) }

    /// Reads `path` (written with the defaults if missing and `createIfMissing`), then applies
    /// the environment overrides `GATEHOUSE_WORKERS`, `GATEHOUSE_DATABASE` and `GATEHOUSE_HTTPS_PORT`.
    public static func load(path: String, home: String, createIfMissing: Bool = false) throws -> ServerConfig {
        var config = ServerConfig(home: home)
        if !FileManager.default.fileExists(atPath: path) {
            guard createIfMissing else { throw ConfigError("config file \(path) does not exist") }
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                    withIntermediateDirectories: true)
            try defaultFile.write(toFile: path, atomically: true, encoding: .utf8)
        }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw ConfigError("cannot read \(path)") }
        try config.apply(text, file: path)
        let env = ProcessInfo.processInfo.environment
        if let w = env["GATEHOUSE_WORKERS"], !w.isEmpty { try config.set("workers", w, where: "GATEHOUSE_WORKERS") }
        if let d = env["GATEHOUSE_DATABASE"], !d.isEmpty { try config.set("database", d, where: "GATEHOUSE_DATABASE") }
        if let p = env["GATEHOUSE_HTTPS_PORT"], !p.isEmpty {
            guard let port = Int(p), (1...65535).contains(port) else { throw ConfigError("GATEHOUSE_HTTPS_PORT: '\(p)' is not a port") }
            if config.issuer == "https://127.0.0.1:8443" { config.issuer = "https://127.0.0.1:\(port)" }
        }
        return config
    }

    mutating func apply(_ text: String, file: String) throws {
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let eq = line.firstIndex(of: "=") else { throw ConfigError("\(file):\(n + 1): expected 'key = value'") }
            let key = line[..<eq].trimmingCharacters(in: .whitespaces)
            let value = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            try set(key, value, where: "\(file):\(n + 1)")
        }
    }

    mutating func set(_ key: String, _ value: String, where location: String) throws {
        func int(_ range: ClosedRange<Int>) throws -> Int {
            guard let n = Int(value), range.contains(n) else {
                throw ConfigError("\(location): \(key) must be an integer in \(range.lowerBound)...\(range.upperBound), got '\(value)'")
            }
            return n
        }
        func seconds(_ range: ClosedRange<Int> = 1...(10 * 365 * 86_400)) throws -> Int64 { Int64(try int(range)) }
        func path() -> String { value.hasPrefix("/") ? value : home + "/" + value }
        switch key {
        case "listen": listen = value.hasPrefix("/") || value.contains(":") ? value : path()
        case "listen_mode":
            guard let m = UInt32(value, radix: 8), m <= 0o777 else { throw ConfigError("\(location): listen_mode must be octal like 0660, got '\(value)'") }
            listenMode = m
        case "workers": workers = try int(1...256)
        case "max_requests": maxRequests = try int(1...Int(Int32.max))
        case "shutdown_timeout": shutdownTimeout = Double(try int(1...3600))
        case "database":
            guard PostgresURI.isURI(value) else { database = path(); break }
            // The configuration and the log lines that name the database must not hold a secret.
            guard !PostgresURI.hasPassword(value) else {
                throw ConfigError("\(location): database URI must not contain a password (\(PostgresURI.masked(value))); "
                                  + "put it in ~/.pgpass or the file PGPASSFILE names")
            }
            database = value
        case "log_file": logFile = value.isEmpty ? nil : path()
        case "log_format":
            guard let f = Log.Format(rawValue: value) else { throw ConfigError("\(location): log_format must be 'logfmt' or 'json', got '\(value)'") }
            logFormat = f
        case "issuer":
            guard value.hasPrefix("https://"), !value.contains("?"), !value.contains("#"), !value.hasSuffix("/") else {
                throw ConfigError("\(location): issuer must be an https URL without query, fragment or trailing slash (RFC 8414 §2), got '\(value)'")
            }
            issuer = value
        case "max_body_bytes": maxBodyBytes = try int(1024...(16 << 20))
        case "busy_timeout_ms": busyTimeoutMilliseconds = try int(0...600_000)
        case "durability":
            switch value {
            case "full": durableCommits = true
            case "normal": durableCommits = false
            default: throw ConfigError("\(location): durability must be 'full' or 'normal', got '\(value)'")
            }
        case "code_lifetime": codeLifetime = try seconds(1...600)
        case "access_token_lifetime": accessTokenLifetime = try seconds()
        case "refresh_token_lifetime": refreshTokenLifetime = try seconds()
        case "refresh_token_idle_lifetime": refreshTokenIdleLifetime = try seconds()
        case "refresh_grace_period": refreshGracePeriod = try seconds(0...300)
        case "session_idle_timeout": sessionIdleTimeout = try seconds()
        case "session_absolute_timeout": sessionAbsoluteTimeout = try seconds()
        case "login_max_failures": loginMaxFailures = try int(1...1000)
        case "login_address_max_failures": loginAddressMaxFailures = try int(1...100_000)
        case "login_failure_window": loginFailureWindow = try seconds()
        case "login_lockout": loginLockout = try seconds()
        case "template_dir": templateDirectory = value.isEmpty ? nil : path()
        case "purge_interval": purgeInterval = try seconds(0...(30 * 86_400))
        case "password_hash_workers": passwordHashWorkersSetting = value == "auto" ? nil : try int(1...256)
        case "secret_key_file": secretKeyFile = path()
        default: throw ConfigError("\(location): unknown key '\(key)'")
        }
    }

    /// The documented default file written into a new instance directory.
    public static let defaultFile = """
        # Gatehouse configuration. `key = value`; relative paths are relative to the instance
        # directory (GATEHOUSE_HOME, default var/). Every key is shown with its default.
        # Environment overrides: GATEHOUSE_WORKERS (workers), GATEHOUSE_DATABASE (database),
        # GATEHOUSE_HTTPS_PORT (issuer port).

        # FastCGI listen socket: a unix socket path, or host:port for TCP. nginx's
        # fastcgi_pass must point here. listen_mode sets the unix socket's permissions.
        listen = run/gatehouse.sock
        listen_mode = 0660

        # Worker processes (default: 2 x CPU cores). Each serves one request at a time.
        #workers = 4
        # A worker exits and is replaced after this many requests (contains leaks).
        max_requests = 10000
        # Seconds a stopping or reloading worker may take to finish its request before KILL.
        shutdown_timeout = 30

        # The SQLite database (WAL mode, shared by all workers) and the key that hashes
        # tokens and client secrets (created on first start; keep it with your backups,
        # without it every stored secret and token stops matching). Several hosts share a
        # PostgreSQL database instead: database = postgresql://user@host/dbname?sslmode=verify-full
        # (a libpq URI without password: libpq reads it from ~/.pgpass or PGPASSFILE).
        database = gatehouse.db
        secret_key_file = secret.key
        # Milliseconds a worker waits for another's write lock before answering 503.
        busy_timeout_ms = 5000
        # What survives a power cut or an OS crash (a crash of Gatehouse itself, even kill -9,
        # loses nothing either way). full: code redemption, refresh rotation, revocation and
        # every gatehouse command are fsynced before the answer, so nothing revoked, rotated
        # or redeemed comes back. Issuing codes and client_credentials/password tokens,
        # sessions, consent and login-throttling counts are not fsynced (they become durable
        # with the next fsynced commit or checkpoint): a power cut can forget a token the
        # client already received (it authenticates again) or a few failed-login counts.
        # normal: no worker commit is fsynced; a power cut can also bring back a revoked
        # token, a rotated refresh token or a redeemed code. normal writes faster on disks
        # with slow fsync (see README, Durability and Performance).
        durability = full

        # Log file, one line per event (security events included: logins, lockouts, consent,
        # revocations, replays, CLI changes); empty = stderr. USR1 reopens it (logrotate).
        log_file =
        # logfmt (key=value) or json (one object per line, the same keys).
        log_format = logfmt

        # The issuer identifier (RFC 8414, RFC 9207 iss): the public https URL of this server.
        issuer = https://127.0.0.1:8443

        # Largest request body accepted (bytes); nginx's client_max_body_size should match.
        max_body_bytes = 16384

        # Lifetimes, in seconds.
        code_lifetime = 60
        access_token_lifetime = 3600
        # A refresh chain ends this long after the first grant, whatever the rotations ...
        refresh_token_lifetime = 2592000
        # ... and each refresh token expires this long after it was issued unless used
        # (86400, as WSO2's refresh token validity; every rotation starts a new one).
        refresh_token_idle_lifetime = 86400
        # Seconds a just-rotated refresh token stays usable once more (parallel tabs, a retry
        # after a timeout). 0 = off: any reuse revokes the whole token family. Turning it on
        # lets a thief who races the client inside the window get tokens too.
        refresh_grace_period = 0

        # Browser login sessions at /authorize.
        session_idle_timeout = 1800
        session_absolute_timeout = 43200

        # Failed-login throttling, shared by every worker (per username and per client address).
        login_max_failures = 5
        login_address_max_failures = 50
        login_failure_window = 900
        login_lockout = 900

        # How many workers may check a password (PBKDF2, ~0.2 s of a core) at once; past
        # that a login gets a fast 503 page and the password grant 503
        # temporarily_unavailable, so a login flood never occupies the whole pool that also
        # answers /token and nginx's auth_request. The hash also runs at a lower CPU
        # priority (nice 10) than requests. auto = half the workers and half the cores, at
        # least 1.
        password_hash_workers = auto

        # A folder with login.mustache, consent.mustache and error.mustache to replace the
        # built-in pages; empty = built-in.
        template_dir =

        # Seconds between automatic purges of expired codes, tokens and sessions; 0 = off.
        purge_interval = 3600

        """
}
