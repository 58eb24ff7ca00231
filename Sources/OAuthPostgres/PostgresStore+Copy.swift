import OAuthCore

/// `gatehouse copy-store` writes into an empty PostgreSQL database (see `StoreImport`).
/// Open the store with a `busyTimeoutMilliseconds` long enough for the whole copy: it is one
/// transaction, and that budget bounds a transaction.
extension PostgresStore: StoreImport {
    public func isEmptyForImport() throws -> Bool {
        let any = CopiedTable.allCases.map { "EXISTS (SELECT 1 FROM \($0.rawValue))" }.joined(separator: " OR ")
        return try db.queryOne("SELECT \(any)") { $0.int(0) } == 0
    }

    public func importRows(_ body: (_ insert: (CopiedTable, [CopiedValue]) throws -> Void) throws -> Void) throws {
        let statements = Dictionary(uniqueKeysWithValues: CopiedTable.allCases.map { t in
            (t, "INSERT INTO \(t.rawValue) (\(t.columns.joined(separator: ", "))) VALUES ("
                + (1...t.columns.count).map { "$\($0)" }.joined(separator: ", ") + ")")
        })
        try db.transaction {
            try body { table, row in
                try db.run(statements[table]!, row.map { value in
                    switch value {
                    case .null: .null
                    case .int(let n): .int(n)
                    case .text(let s): .text(s)
                    case .blob(let b): .blob(b)
                    }
                })
            }
            // The identity columns hand out ids after the copied ones.
            for table in ["users", "families"] {
                _ = try db.queryOne("SELECT setval(pg_get_serial_sequence('\(table)', 'id'), max(id)) FROM \(table)") { _ in () }
            }
        }
    }
}
