import COpenSSL
#if canImport(Glibc)
import Glibc
#endif

/// A private signing key for JSON Web Signatures: ES256 (ECDSA P-256 with SHA-256) or RS256
/// (RSASSA-PKCS1-v1_5 with SHA-256), RFC 7518 §3.3–§3.4. OpenSSL holds the key; it leaves
/// the process only as PEM for its owner to store encrypted.
public final class SigningKey: @unchecked Sendable {
    public enum Algorithm: String, Sendable, CaseIterable {
        case es256 = "ES256"
        case rs256 = "RS256"
    }

    public let algorithm: Algorithm
    private let key: OpaquePointer  // EVP_PKEY
    /// A signing context initialised once (algorithm fetch, padding, digest type): OpenSSL 3's
    /// per-call EVP_DigestSignInit cost more than the ECDSA signature itself. One caller at a
    /// time (the lock); a worker signs from one thread anyway.
    private var signer: OpaquePointer?  // EVP_PKEY_CTX
    private let lock: UnsafeMutablePointer<pthread_mutex_t>
    /// ES256: nonces (k^-1, r) computed ahead, `nonceBatch` at a time, each used for one
    /// signature and then cleared. A signature in a worker costs ~50 µs of cold-cache
    /// scalar multiplication when made whole, ~30 µs in a batch plus ~4 µs for the rest.
    /// They belong to the process that made them (`noncesOwner`): a forked child drops what
    /// it inherited, since two processes signing with one k would give the private key away.
    private var nonces: [(kinv: OpaquePointer, r: OpaquePointer)] = []
    private var noncesOwner: pid_t = 0
    private var ecKey: OpaquePointer?  // EC_KEY, the view of `key` the nonce calls take
    static let nonceBatch = 16

    private init(algorithm: Algorithm, key: OpaquePointer) {
        self.algorithm = algorithm
        self.key = key
        lock = .allocate(capacity: 1)
        pthread_mutex_init(lock, nil)
    }

    deinit {
        dropNonces()
        if let ecKey { gatehouse_ec_key_free(ecKey) }
        if let signer { EVP_PKEY_CTX_free(signer) }
        EVP_PKEY_free(key)
        pthread_mutex_destroy(lock)
        lock.deallocate()
    }

    /// A new key from OpenSSL's CSPRNG: P-256, or RSA 2048 bits.
    public static func generate(_ algorithm: Algorithm) throws -> SigningKey {
        let name = algorithm == .es256 ? "EC" : "RSA"
        guard let ctx = EVP_PKEY_CTX_new_from_name(nil, name, nil) else { throw CryptoError("EVP_PKEY_CTX_new_from_name") }
        defer { EVP_PKEY_CTX_free(ctx) }
        guard EVP_PKEY_keygen_init(ctx) == 1 else { throw CryptoError("EVP_PKEY_keygen_init") }
        switch algorithm {
        case .es256: guard EVP_PKEY_CTX_set_group_name(ctx, "P-256") == 1 else { throw CryptoError("set_group_name") }
        case .rs256: guard EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, 2048) == 1 else { throw CryptoError("set_rsa_keygen_bits") }
        }
        var key: OpaquePointer? = nil
        guard EVP_PKEY_generate(ctx, &key) == 1, let key else { throw CryptoError("EVP_PKEY_generate") }
        return SigningKey(algorithm: algorithm, key: key)
    }

    /// The key from its PKCS#8 PEM form; throws if it is not a key of `algorithm`.
    public static func load(pem: [UInt8], algorithm: Algorithm) throws -> SigningKey {
        let key: OpaquePointer? = pem.withUnsafeBufferPointer { buffer in
            guard let bio = BIO_new_mem_buf(buffer.baseAddress, Int32(buffer.count)) else { return nil }
            defer { BIO_free(bio) }
            return PEM_read_bio_PrivateKey(bio, nil, nil, nil)
        }
        guard let key else { throw CryptoError("PEM_read_bio_PrivateKey") }
        let expected = algorithm == .es256 ? EVP_PKEY_EC : EVP_PKEY_RSA
        guard EVP_PKEY_get_base_id(key) == expected else {
            EVP_PKEY_free(key)
            throw CryptoError("the key is not a \(algorithm.rawValue) key")
        }
        return SigningKey(algorithm: algorithm, key: key)
    }

    /// The private key as unencrypted PKCS#8 PEM (the caller encrypts it before storing).
    public func pem() throws -> [UInt8] {
        guard let bio = BIO_new(BIO_s_mem()) else { throw CryptoError("BIO_new") }
        defer { BIO_free(bio) }
        guard PEM_write_bio_PKCS8PrivateKey(bio, key, nil, nil, 0, nil, nil) == 1 else { throw CryptoError("PEM_write") }
        var data: UnsafeMutablePointer<CChar>? = nil
        let length = BIO_ctrl(bio, BIO_CTRL_INFO, 0, &data)
        guard length > 0, let data else { throw CryptoError("BIO_get_mem_data") }
        return data.withMemoryRebound(to: UInt8.self, capacity: length) { Array(UnsafeBufferPointer(start: $0, count: length)) }
    }

    /// The JWS signature of `input` (RFC 7515 §5.1): SHA-256 of the input, signed with the
    /// kept context; for ES256 the 64-byte R || S form RFC 7518 §3.4 requires, not OpenSSL's DER.
    public func sign(_ input: [UInt8]) throws -> [UInt8] { try sign(input, processID: getpid()) }

    /// `sign` as process `processID` (tests pretend to be a forked child).
    func sign(_ input: [UInt8], processID: pid_t) throws -> [UInt8] {
        let digest = Digest.sha256(input)
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        if algorithm == .es256, let signature = signWithNonceAhead(digest, processID: processID) { return signature }
        let ctx = try signingContext()
        // The key's maximum signature size (an ECDSA DER signature may come out shorter).
        var length = Int(EVP_PKEY_get_size(key))
        var signature = [UInt8](repeating: 0, count: length)
        guard length > 0, EVP_PKEY_sign(ctx, &signature, &length, digest, digest.count) == 1 else { throw CryptoError("EVP_PKEY_sign") }
        signature.removeSubrange(length...)
        return algorithm == .es256 ? try Self.rawECDSA(der: signature) : signature
    }

    /// ES256 with the next nonce of the pool, refilled when empty; nil if OpenSSL refuses
    /// (the caller then signs the whole way). Under `lock`.
    private func signWithNonceAhead(_ digest: [UInt8], processID: pid_t) -> [UInt8]? {
        if noncesOwner != processID {
            dropNonces()
            noncesOwner = processID
        }
        if ecKey == nil { ecKey = gatehouse_ec_key(key) }
        guard let ecKey else { return nil }
        if nonces.isEmpty {
            for _ in 0..<Self.nonceBatch {
                var kinv: OpaquePointer? = nil
                var r: OpaquePointer? = nil
                guard gatehouse_ecdsa_nonce(ecKey, &kinv, &r) == 1, let kinv, let r else {
                    BN_clear_free(kinv)
                    BN_clear_free(r)
                    ERR_clear_error()
                    return nil
                }
                nonces.append((kinv, r))
            }
        }
        let (kinv, r) = nonces.removeLast()
        defer {
            BN_clear_free(kinv)
            BN_clear_free(r)
        }
        guard let sig = digest.withUnsafeBufferPointer({ gatehouse_ecdsa_sign($0.baseAddress, ecKey, kinv, r) }) else {
            ERR_clear_error()
            return nil
        }
        defer { ECDSA_SIG_free(sig) }
        return Self.raw(sig)
    }

    /// Whose the pooled nonces are and how many are left (tests).
    var pendingNonces: (owner: pid_t, count: Int) {
        pthread_mutex_lock(lock)
        defer { pthread_mutex_unlock(lock) }
        return (noncesOwner, nonces.count)
    }

    /// Clears and frees the pool (under `lock`, or in deinit).
    private func dropNonces() {
        for (kinv, r) in nonces {
            BN_clear_free(kinv)
            BN_clear_free(r)
        }
        nonces.removeAll()
    }

    /// Under `lock`.
    private func signingContext() throws -> OpaquePointer {
        if let signer { return signer }
        guard let ctx = EVP_PKEY_CTX_new_from_pkey(nil, key, nil) else { throw CryptoError("EVP_PKEY_CTX_new_from_pkey") }
        guard EVP_PKEY_sign_init(ctx) == 1, EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) == 1,
            algorithm == .es256 || EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1
        else {
            EVP_PKEY_CTX_free(ctx)
            throw CryptoError("EVP_PKEY_sign_init")
        }
        signer = ctx
        return ctx
    }

    /// Verifies a JWS signature made by this key's public half (tests, and a check after
    /// loading a stored key).
    public func verify(_ signature: [UInt8], of input: [UInt8]) -> Bool {
        guard let der = algorithm == .es256 ? Self.derECDSA(raw: signature) : signature,
            let ctx = EVP_MD_CTX_new()
        else { return false }
        defer { EVP_MD_CTX_free(ctx) }
        guard EVP_DigestVerifyInit(ctx, nil, EVP_sha256(), nil, key) == 1 else { return false }
        return der.withUnsafeBufferPointer { s in
            input.withUnsafeBufferPointer { EVP_DigestVerify(ctx, s.baseAddress, s.count, $0.baseAddress, $0.count) }
        } == 1
    }

    /// The public key's JWK members (RFC 7518 §6.2.1 for EC, §6.3.1 for RSA), base64url.
    public func publicJWK() throws -> [(String, String)] {
        switch algorithm {
        case .es256:
            return [("kty", "EC"), ("crv", "P-256"), ("x", Base64URL.encode(try parameter("qx", width: 32))),
                    ("y", Base64URL.encode(try parameter("qy", width: 32)))]
        case .rs256:
            return [("kty", "RSA"), ("n", Base64URL.encode(try parameter("n", width: nil))),
                    ("e", Base64URL.encode(try parameter("e", width: nil)))]
        }
    }

    private func parameter(_ name: String, width: Int?) throws -> [UInt8] {
        var bn: OpaquePointer? = nil
        guard EVP_PKEY_get_bn_param(key, name, &bn) == 1, let bn else { throw CryptoError("EVP_PKEY_get_bn_param \(name)") }
        defer { BN_free(bn) }
        let count = width ?? Int((BN_num_bits(bn) + 7) / 8)
        var out = [UInt8](repeating: 0, count: count)
        guard BN_bn2binpad(bn, &out, Int32(count)) == Int32(count) else { throw CryptoError("BN_bn2binpad") }
        return out
    }

    static func rawECDSA(der: [UInt8]) throws -> [UInt8] {
        var cursor: UnsafePointer<UInt8>? = nil
        let sig: OpaquePointer? = der.withUnsafeBufferPointer { buffer in
            cursor = buffer.baseAddress
            return d2i_ECDSA_SIG(nil, &cursor, buffer.count)
        }
        guard let sig else { throw CryptoError("d2i_ECDSA_SIG") }
        defer { ECDSA_SIG_free(sig) }
        return raw(sig)
    }

    /// R || S, each left-padded to 32 bytes (RFC 7518 §3.4).
    static func raw(_ sig: OpaquePointer) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 64)
        out.withUnsafeMutableBufferPointer { o in
            _ = BN_bn2binpad(ECDSA_SIG_get0_r(sig), o.baseAddress, 32)
            _ = BN_bn2binpad(ECDSA_SIG_get0_s(sig), o.baseAddress! + 32, 32)
        }
        return out
    }

    static func derECDSA(raw: [UInt8]) -> [UInt8]? {
        guard raw.count == 64, let sig = ECDSA_SIG_new() else { return nil }
        defer { ECDSA_SIG_free(sig) }
        let r = raw.withUnsafeBufferPointer { BN_bin2bn($0.baseAddress, 32, nil) }
        let s = raw.withUnsafeBufferPointer { BN_bin2bn($0.baseAddress! + 32, 32, nil) }
        guard let r, let s, ECDSA_SIG_set0(sig, r, s) == 1 else { return nil }
        var out: UnsafeMutablePointer<UInt8>? = nil
        let length = i2d_ECDSA_SIG(sig, &out)
        guard length > 0, let out else { return nil }
        defer { CRYPTO_free(out, #file, #line) }
        return Array(UnsafeBufferPointer(start: out, count: Int(length)))
    }
}

/// An OpenSSL call that failed, named.
public struct CryptoError: Error, CustomStringConvertible {
    public let description: String
    init(_ what: String) { description = "OpenSSL: \(what) failed" }
}
