import CSQLite
import OAuthCore

/// `gatehouse copy-store` reads a SQLite deployment (see `StoreExport`).
extension SQLiteStore: StoreExport {
    /// Which rows of a table a copy moves; `?1` is now.
    static func liveRows(_ table: CopiedTable) -> String {
        switch table {
        case .clients, .users, .consents, .signingKeys: ""
        case .families:
            """
            WHERE (revoked_at IS NULL AND expires_at > ?1)
               OR id IN (SELECT family_id FROM tokens WHERE revoked_at IS NULL AND expires_at > ?1)
               OR id IN (SELECT family_id FROM codes WHERE expires_at > ?1)
            """
        case .codes: "WHERE expires_at > ?1"
        case .tokens: "WHERE revoked_at IS NULL AND expires_at > ?1"
        }
    }

    static func bindings(_ table: CopiedTable, now: Int64) -> [SQLValue] { liveRows(table).isEmpty ? [] : [.int(now)] }

    public func exportCounts(now: Int64) throws -> [CopiedTable: Int] {
        var counts: [CopiedTable: Int] = [:]
        for t in CopiedTable.allCases {
            counts[t] = Int(try db.queryOne("SELECT count(*) FROM \(t.rawValue) \(Self.liveRows(t))", Self.bindings(t, now: now)) {
                $0.int(0)
            } ?? 0)
        }
        return counts
    }

    public func export(now: Int64, _ row: (CopiedTable, [CopiedValue]) throws -> Void) throws {
        try db.readTransaction {
            for t in CopiedTable.allCases {
                let s = try db.statement("SELECT \(t.columns.joined(separator: ", ")) FROM \(t.rawValue) \(Self.liveRows(t))")
                try s.bind(Self.bindings(t, now: now))
                defer { s.reset() }
                while try s.step() {
                    try row(t, (0..<Int32(t.columns.count)).map { s.copiedValue($0) })
                }
            }
        }
    }
}

extension Statement {
    func copiedValue(_ column: Int32) -> CopiedValue {
        switch sqlite3_column_type(stmt, column) {
        case SQLITE_NULL: .null
        case SQLITE_INTEGER: .int(int(column))
        case SQLITE_BLOB: .blob(blob(column) ?? [])
        default: .text(text(column))
        }
    }
}
