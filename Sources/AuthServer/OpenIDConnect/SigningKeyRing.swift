import OAuthCore
import OAuthCrypto

/// The signing keys as a worker uses them: read from the store, opened with the server key,
/// kept in memory, and read again at most every `refreshSeconds` so a `gatehouse keys
/// rotate` reaches every worker and host without a reload.
public final class SigningKeyRing {
    let store: any SigningKeyStore
    let sealingKey: [UInt8]
    let clock: Clock
    let refreshSeconds: Int64
    /// How long an ID Token or JWT access token lives: how long a retired key stays published.
    let tokenLifetime: Int64
    private var stored: [StoredSigningKey] = []
    private var opened: [String: SigningKey] = [:]
    private var readAt: Int64?

    public init(store: any SigningKeyStore, key: SecretKey, clock: Clock, tokenLifetime: Int64, refreshSeconds: Int64 = 30) {
        self.store = store
        sealingKey = key.derived("signing-keys")
        self.clock = clock
        self.tokenLifetime = tokenLifetime
        self.refreshSeconds = refreshSeconds
    }

    /// The signer for `algorithm` now, or a server error when no key of it is active.
    public func signer(for algorithm: SigningAlgorithm) throws -> any JWSSigner {
        let now = clock.now()
        try refresh(now)
        guard let key = KeySet.signingKey(stored, algorithm: algorithm, at: now) else {
            throw OAuthError.serverError("no active \(algorithm.rawValue) signing key (gatehouse keys rotate --alg \(algorithm.rawValue))")
        }
        return Signer(keyID: key.id, key: try open(key))
    }

    /// The JWK Set of /jwks (RFC 7517 §5): public parts only. Read from the store every
    /// time, so a key any worker or host signs with is listed wherever /jwks is answered.
    public func jwks() throws -> String {
        let now = clock.now()
        try refresh(now, force: true)
        let keys = try published(at: now).map { stored -> String in
            var o = JSONObject()
            for (name, value) in try open(stored).publicJWK() { o[name] = value }
            o["kid"] = stored.id
            o["use"] = "sig"
            o["alg"] = stored.algorithm.rawValue
            return o.serialized()
        }
        return "{\"keys\":[" + keys.joined(separator: ",") + "]}"
    }

    /// A key of /jwks by `kid` (its private half verifies too). A key retired for longer
    /// than tokens live verifies nothing more, as relying parties no longer can: whoever
    /// has it (the reason to retire it, perhaps) cannot sign a logout hint we accept.
    func publicKey(_ kid: String) throws -> SigningKey? {
        let now = clock.now()
        try refresh(now)
        // Made by another worker or host since this one's last read: read again, as /jwks does.
        if !stored.contains(where: { $0.id == kid }) { try refresh(now, force: true) }
        guard let stored = published(at: now).first(where: { $0.id == kid }) else { return nil }
        return try open(stored)
    }

    /// The keys /jwks lists at `now`. A worker learns of a retirement at its next read, up to
    /// `refreshSeconds` later, and may sign with the retired key until then: the key stays
    /// published that much longer.
    private func published(at now: Int64) -> [StoredSigningKey] {
        KeySet.published(stored, at: now, tokenLifetime: tokenLifetime + refreshSeconds)
    }

    private func refresh(_ now: Int64, force: Bool = false) throws {
        if !force, let readAt, now - readAt < refreshSeconds, !stored.isEmpty { return }
        stored = try store.signingKeys()
        readAt = now
    }

    private func open(_ key: StoredSigningKey) throws -> SigningKey {
        if let cached = opened[key.id] { return cached }
        guard let pem = AEAD.open(key.sealedPrivateKey, key: sealingKey, context: Array(key.id.utf8)) else {
            throw OAuthError.serverError("signing key \(key.id) cannot be opened with this server key")
        }
        let signing = try SigningKey.load(pem: pem, algorithm: key.algorithm == .es256 ? .es256 : .rs256)
        opened[key.id] = signing
        return signing
    }

    /// Whether `key` is the server key `stored` was sealed under.
    static func opens(_ stored: StoredSigningKey, with key: SecretKey) -> Bool {
        AEAD.open(stored.sealedPrivateKey, key: key.derived("signing-keys"), context: Array(stored.id.utf8)) != nil
    }

    /// Makes a new key, sealed under the server key; the caller stores it.
    public static func newKey(_ algorithm: SigningAlgorithm, key: SecretKey, now: Int64, publishAhead: Int64 = 0) throws
        -> StoredSigningKey
    {
        let signing = try SigningKey.generate(algorithm == .es256 ? .es256 : .rs256)
        let id = SecureRandom.identifier(byteCount: 12)
        let sealed = try AEAD.seal(try signing.pem(), key: key.derived("signing-keys"), context: Array(id.utf8))
        return StoredSigningKey(id: id, algorithm: algorithm, sealedPrivateKey: sealed, createdAt: now, activeFrom: now + publishAhead)
    }

    /// On first start: one active key per algorithm, so every client can be served.
    public static func ensureKeys(in store: any SigningKeyStore, key: SecretKey, now: Int64) throws -> [StoredSigningKey] {
        let existing = try store.signingKeys()
        var made: [StoredSigningKey] = []
        for algorithm in SigningAlgorithm.allCases where !existing.contains(where: { $0.algorithm == algorithm && $0.retiredAt == nil }) {
            let fresh = try newKey(algorithm, key: key, now: now)
            try store.insertSigningKey(fresh)
            made.append(fresh)
        }
        return made
    }

    struct Signer: JWSSigner {
        let keyID: String
        let key: SigningKey
        var algorithm: String { key.algorithm.rawValue }
        func sign(_ input: [UInt8]) throws -> [UInt8] { try key.sign(input) }
    }
}
