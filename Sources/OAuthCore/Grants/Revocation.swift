/// RFC 7009 §2.1: a client revokes a token of its own. A refresh token takes its whole
/// family (the access tokens issued from it) along; an access token goes alone. A token
/// of another client, or an unknown one, changes nothing, and the answer is the same
/// (§2.2: 200 either way).
public enum Revocation {
    public static func revoke(tokenHash: [UInt8], by client: Client, in store: any GrantStore, now: Int64) throws {
        guard let found = try store.token(hash: tokenHash), found.record.clientID.sameBytes(as: client.id) else { return }
        if found.record.kind == .refresh, found.record.familyID != 0 {
            try store.revokeFamily(found.record.familyID, now: now)
        } else {
            try store.revokeToken(hash: tokenHash, now: now)
        }
    }
}
