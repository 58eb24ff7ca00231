import FastCGI
import Foundation
import OAuthCore
import OAuthSQLite
import Logging
import Prefork
import SharedWriteGate

/// `gatehouse serve`: the composition root where config, store, FastCGI and the
/// pre-forking master meet.
public enum Server {
    /// Runs the master until it is stopped; answers the process exit status.
    public static func run(configPath: String, home: String, workersOverride: Int?) -> Int32 {
        var config: ServerConfig
        do {
            config = try ServerConfig.load(path: configPath, home: home, createIfMissing: true)
            if let w = workersOverride { config.workers = w }
            Log.format = config.logFormat
            try prepare(config)
        } catch {
            FileHandle.standardError.write(Data("gatehouse: error: \(error)\n".utf8))
            return 1
        }
        guard Log.open(path: config.logFile) else {
            FileHandle.standardError.write(Data("gatehouse: error: cannot open log_file \(config.logFile ?? "")\n".utf8))
            return 1
        }
        let listenFD: Int32
        do {
            // A unix socket's folder (`host:port` is TCP: no folder).
            if config.listen.hasPrefix("/") {
                try FileManager.default.createDirectory(atPath: (config.listen as NSString).deletingLastPathComponent,
                                                        withIntermediateDirectories: true)
            }
            listenFD = try FastCGIListener.open(config.listen, mode: mode_t(config.listenMode))
        } catch {
            FileHandle.standardError.write(Data("gatehouse: error: \(error)\n".utf8))
            return 1
        }
        let pidFile = config.home + "/run/gatehouse.pid"
        try? "\(getpid())\n".write(toFile: pidFile, atomically: true, encoding: .utf8)
        defer {
            unlink(pidFile)
            if config.listen.hasPrefix("/") { unlink(config.listen) }
        }
        Log.info("master_starting", ["listen": config.listen, "workers": config.workers, "database": config.database])
        if config.passwordHashWorkers >= config.workers {
            // Allowed (tests, tiny hosts), but a login flood can then hold every worker.
            Log.warn("password_hash_whole_pool", ["workers": config.workers, "password_hash_workers": config.passwordHashWorkers])
        }

        // Made before any fork, so every worker of every generation shares the one gate.
        let writeGate: WriteGateLock
        do {
            writeGate = try WriteGateLock()
        } catch {
            Log.error("master_failed", ["detail": "\(error)"])
            return 1
        }
        var current = config
        var lastPurge = Int64(time(nil))
        let hooks = MasterHooks(
            workerMain: { context in
                workerMain(config: current, listenFD: listenFD, writeGate: writeGate, context: context)
            },
            reload: {
                do {
                    var fresh = try ServerConfig.load(path: configPath, home: home)
                    if let w = workersOverride { fresh.workers = w }
                    guard fresh.listen == current.listen else {
                        throw ConfigError("listen cannot change on reload (restart instead)")
                    }
                    try prepare(fresh)
                    current = fresh
                    Log.format = fresh.logFormat
                    Log.open(path: fresh.logFile)
                    return fresh.workers
                } catch {
                    Log.error("config_invalid", ["detail": "\(error)"])
                    return nil
                }
            },
            reopenLogs: {
                if Log.open(path: current.logFile) {
                    Log.info("log_reopened")
                } else {
                    Log.error("log_reopen_failed", ["path": current.logFile ?? "", "errno": errno])
                }
            },
            tick: { tasks in
                let now = Int64(time(nil))
                guard current.purgeInterval > 0, now - lastPurge >= current.purgeInterval else { return }
                lastPurge = now
                let config = current
                tasks.run("purge") { purge(config) }
            })
        do {
            let master = try Master(workers: config.workers, shutdownTimeout: config.shutdownTimeout, hooks: hooks)
            return master.run()
        } catch {
            Log.error("master_failed", ["detail": "\(error)"])
            return 1
        }
    }

    /// Everything that must hold before forking: migrations applied (by the master, on a
    /// connection it closes before any fork), the key present, templates parseable.
    public static func prepare(_ config: ServerConfig) throws {
        try FileManager.default.createDirectory(atPath: config.home + "/run", withIntermediateDirectories: true)
        InstanceFiles.tightenDatabaseModes(config.database)
        do {
            let store = try StoreBackend.openForTools(config)
            let ran = try store.migrate()
            if ran > 0 { Log.info("migrations_applied", ["steps": ran, "version": try store.schemaVersion()]) }
            // OpenID Connect: a signing key per algorithm on first start (`gatehouse keys` manages them).
            let key = try SecretKey.forDatabase(path: config.secretKeyFile, store: store)
            for made in try SigningKeyRing.ensureKeys(in: store, key: key, now: Int64(time(nil))) {
                Log.info("signing_key_created", ["kid": made.id, "alg": made.algorithm.rawValue])
            }
        }
        for name in try Pages(directory: config.templateDirectory).formsWithoutRequest {
            Log.warn("template_without_authz", ["template": name + ".mustache",
                                                "detail": "its form must carry <input type=\"hidden\" name=\"authz\" value=\"{{authz}}\">"])
        }
    }

    /// What `gatehouse check-config` verifies, changing nothing (it may run as root beside a
    /// service running as another user): the templates load, the server key (once there is
    /// one) is readable and private, and the database answers with a schema this binary can
    /// run. Returns what an operator should read; throws what would stop a start.
    public static func check(_ config: ServerConfig) throws -> [String] {
        var notes: [String] = []
        for name in try Pages(directory: config.templateDirectory).formsWithoutRequest {
            notes.append("warning: template \(name).mustache: its form must carry <input type=\"hidden\" name=\"authz\" value=\"{{authz}}\">")
        }
        if FileManager.default.fileExists(atPath: config.secretKeyFile) {
            _ = try SecretKey.loadOrCreate(path: config.secretKeyFile)
            notes.append("secret key: \(config.secretKeyFile) readable, mode 0600")
        } else {
            notes.append("secret key: \(config.secretKeyFile) not there yet; the first start creates it")
        }
        let schema = try StoreBackend.inspectSchema(config)
        switch schema.version {
        case nil:
            notes.append("database: not there yet; the first start creates it")
        case let v? where v > schema.latest:
            throw ConfigError("database schema version \(v) is newer than this gatehouse knows (\(schema.latest)): upgrade the binary")
        case let v? where v < schema.latest:
            notes.append("database: schema version \(v); the next start (or `gatehouse migrate`) applies \(schema.latest - v) migration(s)")
        case let v?:
            notes.append("database: schema version \(v), current")
        }
        return notes
    }

    /// A worker: its own SQLite connection opened after fork, then one request at a time.
    static func workerMain(config: ServerConfig, listenFD: Int32, writeGate: WriteGateLock, context: WorkerContext) -> Never {
        WorkerSignals.keepFreedHeap()
        let app: App
        let connection: FastCGIConnection
        do {
            app = try App.open(config, writeGate: PoolWriteGate(writeGate))
            connection = try FastCGIConnection(listenFD: listenFD, maxBodyBytes: config.maxBodyBytes)
        } catch {
            Log.error("worker_init_failed", ["detail": "\(error)"])
            exit(3)
        }
        app.statusProvider = { statusJSON(context.snapshot()) }
        let walFile = config.database.hasPrefix("/") ? config.database + "-wal" : nil
        var liveTokens: (at: Int64, count: Int?) = (0, nil)
        app.metricsProvider = {
            let now = Int64(time(nil))
            if now - liveTokens.at >= 10 { liveTokens = (now, try? app.store.liveTokenCount(now: now)) }
            return Metrics.render(context.metrics(), workers: context.snapshot().workers, walFile: walFile, liveTokens: liveTokens.count)
        }
        app.counter.count = { context.count(event: $0.rawValue) }
        app.passwordHashGate = ScoreboardHashGate(context: context, limit: config.passwordHashWorkers)
        var served = 0
        var backoff = AcceptBackoff()
        WorkerSignals.blockStops()
        context.enter(.idle)
        serving: while served < config.maxRequests {
            switch connection.acceptConnection(waitForConnection: WorkerSignals.waitForConnection) {
            case .nothing:
                if WorkerSignals.stopRequested { break serving }
                continue
            case .failed(let error):
                backoff.failed(error)
                continue
            case .connection:
                backoff.succeeded()
            }
            context.enter(.reading)
            guard let raw = connection.readRequest() else {
                context.enter(.idle)  // the peer broke off
                continue
            }
            serve(raw, app: app, connection: connection, context: context)
            served += 1
            if WorkerSignals.stopRequested { break }
        }
        exit(0)
    }

    /// One request, from its parameters to the closed connection, with the worker's state
    /// on the scoreboard at each step.
    static func serve(_ raw: FastCGIRequest, app: App, connection: FastCGIConnection, context: WorkerContext) {
        let started = monotonicMicroseconds()
        let endpoint = raw.params["GATEHOUSE_ENDPOINT"]
        context.enter(.running, endpoint: endpoint ?? "")
        let request = httpRequest(raw)
        let response: HTTPResponse
        if raw.bodyTooLarge {
            response = .json(413, #"{"error":"invalid_request","error_description":"request body too large"}"#)
        } else {
            response = app.handle(request, endpoint: endpoint)
        }
        context.enter(.finishing)
        connection.respond(status: response.status, reason: reason(response.status), headers: response.headers,
                           body: response.body)
        connection.finish()
        context.countRequest()
        context.observe(endpoint: Metrics.endpointIndex(App.endpoint(named: endpoint, path: request.path)),
                        status: response.status, microseconds: monotonicMicroseconds() - started)
        context.enter(.idle)
    }

    static func monotonicMicroseconds() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec) / 1000
    }

    /// CGI parameters to an HTTP request value (RFC 3875 §4.1).
    static func httpRequest(_ raw: FastCGIRequest) -> HTTPRequest {
        var headers: [String: String] = [:]
        for (k, v) in raw.params where k.hasPrefix("HTTP_") {
            // HTTP_X_FORWARDED_FOR -> x-forwarded-for, without Foundation on the hot path.
            let name = k.utf8.dropFirst(5).map { c -> UInt8 in
                c == UInt8(ascii: "_") ? UInt8(ascii: "-") : (c >= 65 && c <= 90 ? c + 32 : c)
            }
            headers[String(decoding: name, as: UTF8.self)] = v
        }
        if let ct = raw.params["CONTENT_TYPE"], !ct.isEmpty { headers["content-type"] = ct }
        // Set by nginx per protected location; a client's own header of that name never counts.
        headers["x-gatehouse-required-scope"] = raw.params["GATEHOUSE_REQUIRED_SCOPE"]
        return HTTPRequest(method: raw.params["REQUEST_METHOD"] ?? "GET",
                           path: raw.params["DOCUMENT_URI"] ?? raw.params["SCRIPT_NAME"] ?? "/",
                           query: raw.params["QUERY_STRING"] ?? "", headers: headers, body: raw.body,
                           remoteAddress: raw.params["REMOTE_ADDR"] ?? "", isHTTPS: raw.params["HTTPS"] == "on")
    }

    /// `/gatehouse/status`: the keys before `master` are the original contract (a worker is
    /// busy in every state but idle); the states, the current request's endpoint and age, and
    /// each worker's start came later (scripts/status.sh shows them).
    static func statusJSON(_ snap: ScoreboardSnapshot) -> String {
        var o = JSONObject()
        o.set("requests_served", Int(snap.requestsServed))
        o.set("workers", snap.workers.count)
        o.set("busy_workers", snap.workers.filter { $0.activity.state.isBusy }.count)
        o.set("password_hashes_in_progress", snap.workers.filter(\.hashing).count)
        let rows = snap.workers.map { worker -> String in
            var row = JSONObject()
            row.set("pid", Int(worker.pid))
            row.set("requests", Int(worker.requests))
            row.set("started_at", Int(worker.startedAt))
            row.set("busy", worker.activity.state.isBusy)
            row.set("state", .string(worker.activity.state.name))
            row.set("endpoint", worker.activity.endpoint.isEmpty ? .raw("null") : .string(worker.activity.endpoint))
            row.set("request_age_ms", worker.requestAgeMilliseconds.map { .int(Int($0)) } ?? .raw("null"))
            return row.serialized()
        }
        o.set("worker_list", .raw("[" + rows.joined(separator: ",") + "]"))
        var master = JSONObject()
        master.set("pid", Int(snap.masterPID))
        master.set("state", .string(snap.masterState.name))
        o.set("master", .raw(master.serialized()))
        return o.serialized()
    }

    /// The purge task: a short-lived child of the master with its own connection, so the
    /// master never holds a database connection across a fork and its loop never waits on
    /// the database. Answers the child's exit status.
    static func purge(_ config: ServerConfig) -> Int32 {
        do {
            let store = try StoreBackend.openForTools(config)
            let counts = try store.purgeExpired(now: Int64(time(nil)), sessionIdleSeconds: config.sessionIdleTimeout)
            Log.info("purge_done", ["codes": counts["codes"] ?? 0, "tokens": counts["tokens"] ?? 0,
                                    "families": counts["families"] ?? 0, "sessions": counts["sessions"] ?? 0])
            return 0
        } catch {
            Log.error("purge_failed", ["detail": "\(error)"])
            return 1
        }
    }

    /// The pool's password-hashing places, counted on the shared scoreboard. The hash runs
    /// on a thread at nice 10, so under load it yields the CPU to /token and auth_request.
    struct ScoreboardHashGate: PasswordHashGate {
        let context: WorkerContext
        let limit: Int
        func run(_ hash: () -> Bool) -> Bool? {
            guard context.tryEnterHashing(limit: limit) else { return nil }
            defer { context.leaveHashing() }
            return BackgroundPriority.run(hash)
        }
    }

    /// Bridges the pool's gate (SharedWriteGate) to the store's protocol (OAuthSQLite), which
    /// know nothing of each other.
    final class PoolWriteGate: WriteGate {
        let gate: WriteGateLock
        init(_ gate: WriteGateLock) { self.gate = gate }
        func lock(timeoutMilliseconds: Int32) -> Bool { gate.lock(timeoutMilliseconds: timeoutMilliseconds) }
        func unlock() { gate.unlock() }
    }

    static func reason(_ status: Int) -> String {
        switch status {
        case 200: return "OK"
        case 302: return "Found"
        case 303: return "See Other"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 413: return "Payload Too Large"
        case 500: return "Internal Server Error"
        case 503: return "Service Unavailable"
        default: return "Status"
        }
    }
}
