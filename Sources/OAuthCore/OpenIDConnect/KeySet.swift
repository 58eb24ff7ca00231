/// The life of signing keys (rotation without breaking a relying party that caches
/// /jwks): a key is published from its creation, signs from `activeFrom`, and after it
/// is retired stays published until every token it signed has expired.
public enum KeySet {
    public enum Status: String, Sendable {
        /// Signs new tokens.
        case active
        /// In /jwks, not signing yet (published ahead of use).
        case published
        /// Signs no more; in /jwks while tokens it signed may still be presented.
        case retired
    }

    public static func status(of key: StoredSigningKey, at now: Int64) -> Status {
        if key.retiredAt != nil { return .retired }
        return now >= key.activeFrom ? .active : .published
    }

    /// The key that signs for `algorithm` at `now`: the newest active one.
    public static func signingKey(_ keys: [StoredSigningKey], algorithm: SigningAlgorithm, at now: Int64) -> StoredSigningKey? {
        keys.filter { $0.algorithm == algorithm && status(of: $0, at: now) == .active }
            .max { ($0.activeFrom, $0.createdAt, $0.id) < ($1.activeFrom, $1.createdAt, $1.id) }
    }

    /// The keys /jwks lists: every key not retired, and retired keys for `tokenLifetime`
    /// seconds after retirement (the longest a token signed just before can live).
    public static func published(_ keys: [StoredSigningKey], at now: Int64, tokenLifetime: Int64) -> [StoredSigningKey] {
        keys.filter { key in
            guard let retired = key.retiredAt else { return true }
            return now < retired + tokenLifetime
        }
    }

    /// Whether retiring `id` now would leave its algorithm with no key signing (refused:
    /// a key published ahead does not count until it is active).
    public static func isLastSigner(_ keys: [StoredSigningKey], id: String, at now: Int64) -> Bool {
        guard let key = keys.first(where: { $0.id == id }), key.retiredAt == nil else { return false }
        return !keys.contains { $0.id != id && $0.algorithm == key.algorithm && status(of: $0, at: now) == .active }
    }
}
