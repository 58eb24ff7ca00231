extension String {
    /// Byte equality of the UTF-8 forms: how SQLite, clients and other servers compare
    /// identifiers. Swift's `==` is canonical equivalence ("e\u{301}" == "\u{E9}"), so two
    /// clients whose ids differ only in normalisation would pass an `==` ownership check.
    public func sameBytes(as other: String) -> Bool { utf8.elementsEqual(other.utf8) }
}
