/// Moving a deployment from one backend to another (`gatehouse copy-store`): rows cross as
/// they are stored, hashes and ids included, because the grant-level contract cannot
/// recreate them (a token's hash, a rotated refresh token kept for reuse detection, a
/// family's generation). Every backend has the same tables and columns (SQLite's schema
/// version 5, PostgreSQL's 2), so a row is its column values in the order of `columns`.

/// One stored column value.
public enum CopiedValue: Sendable, Equatable {
    case null, int(Int64), text(String), blob([UInt8])
}

/// The tables a copy moves, in an order that satisfies their foreign keys. Sessions and
/// login-failure counters stay behind: users log in again on the new backend.
public enum CopiedTable: String, CaseIterable, Sendable {
    case clients, users, consents, signingKeys = "signing_keys", families, codes, tokens

    public var columns: [String] {
        switch self {
        case .clients:
            ["id", "name", "secret_hash", "redirect_uris", "grant_types", "scopes", "default_scopes", "require_pkce",
             "resource_server", "created_at", "previous_secret_hash", "previous_secret_expires_at", "skip_consent",
             "id_token_alg", "post_logout_redirect_uris", "access_token_format"]
        case .users:
            ["id", "username", "password_hash", "disabled", "created_at", "subject", "email", "email_verified", "name",
             "given_name", "family_name", "updated_at"]
        case .consents: ["user_id", "client_id", "scope", "granted_at"]
        case .signingKeys: ["kid", "alg", "private_key", "created_at", "active_from", "retired_at"]
        case .families:
            ["id", "client_id", "user_id", "scope", "created_at", "expires_at", "refresh_generation", "revoked_at", "auth_time"]
        case .codes:
            ["hash", "client_id", "user_id", "scope", "redirect_uri", "code_challenge", "code_challenge_method", "expires_at",
             "consumed_at", "family_id", "nonce", "auth_time"]
        case .tokens:
            ["hash", "kind", "family_id", "client_id", "user_id", "scope", "issued_at", "expires_at", "generation",
             "rotated_at", "grace_used_at", "revoked_at"]
        }
    }
}

/// A copy's source: every row still of use at `now`. Clients, users, consents and signing
/// keys all; of the grants the live ones: unexpired codes, unexpired unrevoked tokens
/// (rotated refresh tokens too: a replay must still revoke its family), and the families
/// those need or that can still be refreshed.
public protocol StoreExport: AnyObject {
    /// Rows in each table, as `export` will give them (for progress reports).
    func exportCounts(now: Int64) throws -> [CopiedTable: Int]
    /// Calls `row` for every row, table by table in `CopiedTable` order, from one snapshot.
    func export(now: Int64, _ row: (CopiedTable, [CopiedValue]) throws -> Void) throws
}

/// A copy's target.
public protocol StoreImport: AnyObject {
    /// Whether the store holds nothing a copy would write (a copy never merges).
    func isEmptyForImport() throws -> Bool
    /// One transaction: `body` inserts rows with the function it is given; ids are kept, and
    /// the store's id counters move past them. Nothing is written when `body` throws.
    func importRows(_ body: (_ insert: (CopiedTable, [CopiedValue]) throws -> Void) throws -> Void) throws
}
