/// Versioned schema changes, applied in order; `PRAGMA user_version` records the last one.
/// The master applies them before forking, and `gatehouse migrate` does on demand.
public enum Migrations {
    /// Append-only: never edit a migration that has shipped.
    static let steps: [String] = [
        // 1: the initial schema.
        """
        CREATE TABLE clients (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            secret_hash BLOB,                 -- HMAC-SHA-256 under the server key; NULL = public client
            redirect_uris TEXT NOT NULL,      -- space-separated (URIs cannot contain spaces)
            grant_types TEXT NOT NULL,        -- space-separated
            scopes TEXT NOT NULL,
            default_scopes TEXT NOT NULL,
            require_pkce INTEGER NOT NULL DEFAULT 0,
            resource_server INTEGER NOT NULL DEFAULT 0,
            created_at INTEGER NOT NULL
        );
        CREATE TABLE users (
            id INTEGER PRIMARY KEY,
            username TEXT NOT NULL UNIQUE,
            password_hash TEXT NOT NULL,      -- pbkdf2-sha256$iterations$salt$hash
            disabled INTEGER NOT NULL DEFAULT 0,
            created_at INTEGER NOT NULL
        );
        -- A family is one grant: every token descending from one code, password or
        -- client_credentials request. Revocation and reuse detection act on families.
        CREATE TABLE families (
            id INTEGER PRIMARY KEY,
            client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
            user_id INTEGER REFERENCES users(id) ON DELETE CASCADE,
            scope TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL,      -- absolute end of the refresh chain
            refresh_generation INTEGER NOT NULL DEFAULT 0,
            revoked_at INTEGER
        );
        CREATE INDEX families_client ON families(client_id);
        CREATE INDEX families_user ON families(user_id);
        CREATE INDEX families_expires ON families(expires_at);
        CREATE TABLE codes (
            hash BLOB PRIMARY KEY,
            client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            scope TEXT NOT NULL,
            redirect_uri TEXT,
            code_challenge TEXT,
            code_challenge_method TEXT,
            expires_at INTEGER NOT NULL,
            consumed_at INTEGER,
            family_id INTEGER REFERENCES families(id) ON DELETE SET NULL
        ) WITHOUT ROWID;
        CREATE INDEX codes_expires ON codes(expires_at);
        CREATE TABLE tokens (
            hash BLOB PRIMARY KEY,            -- HMAC-SHA-256 of the token; the token itself is never stored
            kind INTEGER NOT NULL,            -- 0 access, 1 refresh
            family_id INTEGER NOT NULL REFERENCES families(id) ON DELETE CASCADE,
            client_id TEXT NOT NULL,
            user_id INTEGER,
            scope TEXT NOT NULL,
            issued_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL,
            generation INTEGER NOT NULL DEFAULT 0,
            rotated_at INTEGER,
            grace_used_at INTEGER,            -- the one retry a rotated refresh token may get
            revoked_at INTEGER
        ) WITHOUT ROWID;
        CREATE INDEX tokens_family ON tokens(family_id);
        -- The live refresh token(s) of a family: rotation touches only these, however long
        -- the chain has grown.
        CREATE INDEX tokens_live_refresh ON tokens(family_id) WHERE kind = 1 AND rotated_at IS NULL;
        CREATE INDEX tokens_expires ON tokens(expires_at);
        CREATE TABLE sessions (
            id_hash BLOB PRIMARY KEY,
            csrf TEXT NOT NULL,
            user_id INTEGER REFERENCES users(id) ON DELETE CASCADE,
            authenticated_at INTEGER,
            created_at INTEGER NOT NULL,
            last_seen_at INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX sessions_seen ON sessions(last_seen_at);
        CREATE TABLE consents (
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
            scope TEXT NOT NULL,
            granted_at INTEGER NOT NULL,
            PRIMARY KEY (user_id, client_id, scope)
        ) WITHOUT ROWID;
        CREATE TABLE login_failures (
            key TEXT PRIMARY KEY,             -- 'user:<name>' or 'addr:<ip>'
            failures INTEGER NOT NULL,
            window_start INTEGER NOT NULL,
            locked_until INTEGER NOT NULL DEFAULT 0
        ) WITHOUT ROWID;
        """,
        // 2: secret rotation with an overlap (`client rotate-secret --keep-old-for`): the
        // previous secret keeps working until previous_secret_expires_at. First-party
        // clients whose users are not asked for consent (`--skip-consent`).
        """
        ALTER TABLE clients ADD COLUMN previous_secret_hash BLOB;
        ALTER TABLE clients ADD COLUMN previous_secret_expires_at INTEGER;
        ALTER TABLE clients ADD COLUMN skip_consent INTEGER NOT NULL DEFAULT 0;
        """,
        // 3: deleting a family sets its codes' family_id to NULL (ON DELETE SET NULL); without
        // an index SQLite scans every code for every family the purge deletes (13 s for 1,000
        // families against 50,000 codes, all inside one write transaction). Partial: codes
        // never redeemed have no family.
        """
        CREATE INDEX codes_family ON codes(family_id) WHERE family_id IS NOT NULL;
        """,
        // 4: a client_credentials token needs no family: no refresh chain, no user, nothing
        // to revoke with it. Its family row and that row's three indexes were about two
        // thirds of the pages each such token wrote (8 WAL frames a token, now 2.6). The
        // token now names its client with a foreign key, so removing the client still removes
        // it. SQLite cannot relax NOT NULL in place: the table is rebuilt, rows kept.
        """
        CREATE TABLE tokens_v4 (
            hash BLOB PRIMARY KEY,
            kind INTEGER NOT NULL,
            family_id INTEGER REFERENCES families(id) ON DELETE CASCADE,  -- NULL: client_credentials
            client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
            user_id INTEGER,
            scope TEXT NOT NULL,
            issued_at INTEGER NOT NULL,
            expires_at INTEGER NOT NULL,
            generation INTEGER NOT NULL DEFAULT 0,
            rotated_at INTEGER,
            grace_used_at INTEGER,
            revoked_at INTEGER
        ) WITHOUT ROWID;
        INSERT INTO tokens_v4 (hash, kind, family_id, client_id, user_id, scope, issued_at, expires_at, generation,
                               rotated_at, grace_used_at, revoked_at)
            SELECT hash, kind, family_id, client_id, user_id, scope, issued_at, expires_at, generation,
                   rotated_at, grace_used_at, revoked_at
            FROM tokens WHERE client_id IN (SELECT id FROM clients);
        DROP TABLE tokens;
        ALTER TABLE tokens_v4 RENAME TO tokens;
        CREATE INDEX tokens_family ON tokens(family_id) WHERE family_id IS NOT NULL;
        CREATE INDEX tokens_live_refresh ON tokens(family_id) WHERE kind = 1 AND rotated_at IS NULL;
        CREATE INDEX tokens_expires ON tokens(expires_at);
        """,
        // 5: OpenID Connect. Users get a subject identifier (a random UUID, given to the
        // users already there too) and the attributes scopes release; clients their ID Token
        // algorithm, logout return addresses and access-token format; a code keeps the
        // request's nonce and the login time, a grant the login time; signing keys live here,
        // sealed under the server key, so every worker and host signs with the same ones.
        """
        ALTER TABLE users ADD COLUMN subject TEXT;
        UPDATE users SET subject = lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4'
            || substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + abs(random() % 4), 1)
            || substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6)));
        CREATE UNIQUE INDEX users_subject ON users(subject);
        ALTER TABLE users ADD COLUMN email TEXT;
        ALTER TABLE users ADD COLUMN email_verified INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE users ADD COLUMN name TEXT;
        ALTER TABLE users ADD COLUMN given_name TEXT;
        ALTER TABLE users ADD COLUMN family_name TEXT;
        ALTER TABLE users ADD COLUMN updated_at INTEGER;
        ALTER TABLE clients ADD COLUMN id_token_alg TEXT NOT NULL DEFAULT 'ES256';
        ALTER TABLE clients ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '';
        ALTER TABLE clients ADD COLUMN access_token_format TEXT NOT NULL DEFAULT 'opaque';
        ALTER TABLE codes ADD COLUMN nonce TEXT;
        ALTER TABLE codes ADD COLUMN auth_time INTEGER;
        ALTER TABLE families ADD COLUMN auth_time INTEGER;
        CREATE TABLE signing_keys (
            kid TEXT PRIMARY KEY,
            alg TEXT NOT NULL,
            private_key BLOB NOT NULL,
            created_at INTEGER NOT NULL,
            active_from INTEGER NOT NULL,
            retired_at INTEGER
        ) WITHOUT ROWID;
        """,
    ]

    public static var latestVersion: Int { steps.count }

    /// Brings the database at `connection` to the latest version; answers how many steps ran.
    /// Sets WAL mode, which is persistent in the file, so every later connection uses it.
    @discardableResult
    public static func apply(_ connection: Connection) throws -> Int {
        // Incremental auto-vacuum lets the purge hand freed pages back to the file system, so
        // the file shrinks after expired tokens go. It must be chosen before the first table,
        // and before the switch to WAL.
        if try connection.queryOne("SELECT count(*) FROM sqlite_master", [], { $0.int(0) }) == 0 {
            try connection.execute("PRAGMA auto_vacuum = INCREMENTAL")
        }
        let mode = try connection.queryOne("PRAGMA journal_mode = WAL") { $0.text(0) }
        guard mode == "wal" else { throw SQLiteError(code: 1, message: "could not enable WAL mode (got \(mode ?? "?"))", sql: nil) }
        return try connection.writeTransaction {
            let current = Int(try connection.queryOne("PRAGMA user_version") { $0.int(0) } ?? 0)
            guard current <= steps.count else {
                throw SQLiteError(code: 1, message: "database schema version \(current) is newer than this binary (\(steps.count))", sql: nil)
            }
            for version in current..<steps.count {
                try connection.execute(steps[version])
                try connection.execute("PRAGMA user_version = \(version + 1)")
            }
            return steps.count - current
        }
    }
}
