/// RFC 7009 §2.1: a client revokes a token of its own. A refresh token takes its whole
/// family (the access tokens issued from it) along; an access token goes alone. A token
/// of another client, or an unknown one, changes nothing, and the answer is the same
/// (§2.2: 200 either way).
public enum Revocation {
    /// What happened, for the audit line (the HTTP answer is the same in every case).
    public enum Outcome: Equatable, Sendable {
        case unknown
        case revoked(TokenRecord)
        /// Another client's token: nothing changed.
        case notOwned(TokenRecord)
    }

    @discardableResult
    public static func revoke(tokenHash: [UInt8], by client: Client, in store: any GrantStore, now: Int64) throws -> Outcome {
        guard let found = try store.token(hash: tokenHash)?.record else { return .unknown }
        guard found.clientID.sameBytes(as: client.id) else { return .notOwned(found) }
        if found.kind == .refresh, found.familyID != 0 {
            try store.revokeFamily(found.familyID, now: now)
        } else {
            try store.revokeToken(hash: tokenHash, now: now)
        }
        return .revoked(found)
    }
}
