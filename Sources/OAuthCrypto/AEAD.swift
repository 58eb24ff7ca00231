import COpenSSL

/// AES-256-GCM (NIST SP 800-38D) for secrets kept at rest, such as the private signing
/// keys in the database: `seal` answers nonce (12 bytes) || ciphertext || tag (16 bytes),
/// with `context` authenticated alongside so a sealed value cannot be moved to another use.
public enum AEAD {
    public static func seal(_ plaintext: [UInt8], key: [UInt8], context: [UInt8]) throws -> [UInt8] {
        precondition(key.count == 32, "AES-256 needs a 32-byte key")
        let nonce = SecureRandom.bytes(12)
        guard let ctx = EVP_CIPHER_CTX_new() else { throw CryptoError("EVP_CIPHER_CTX_new") }
        defer { EVP_CIPHER_CTX_free(ctx) }
        guard EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nil, key, nonce) == 1 else { throw CryptoError("EVP_EncryptInit_ex") }
        var length: Int32 = 0
        if !context.isEmpty {
            guard EVP_EncryptUpdate(ctx, nil, &length, context, Int32(context.count)) == 1 else { throw CryptoError("AAD") }
        }
        var out = [UInt8](repeating: 0, count: plaintext.count + 16)
        guard EVP_EncryptUpdate(ctx, &out, &length, plaintext, Int32(plaintext.count)) == 1 else { throw CryptoError("EVP_EncryptUpdate") }
        var written = Int(length)
        let finalOK = out.withUnsafeMutableBufferPointer { EVP_EncryptFinal_ex(ctx, $0.baseAddress! + written, &length) }
        guard finalOK == 1 else { throw CryptoError("EVP_EncryptFinal_ex") }
        written += Int(length)
        var tag = [UInt8](repeating: 0, count: 16)
        guard EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, &tag) == 1 else { throw CryptoError("GCM tag") }
        return nonce + out[..<written] + tag
    }

    /// The plaintext, or nil when the value was altered, sealed under another key or for another context.
    public static func open(_ sealed: [UInt8], key: [UInt8], context: [UInt8]) -> [UInt8]? {
        guard key.count == 32, sealed.count >= 28, let ctx = EVP_CIPHER_CTX_new() else { return nil }
        defer { EVP_CIPHER_CTX_free(ctx) }
        let nonce = Array(sealed[..<12])
        let ciphertext = Array(sealed[12..<(sealed.count - 16)])
        var tag = Array(sealed[(sealed.count - 16)...])
        guard EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), nil, key, nonce) == 1 else { return nil }
        var length: Int32 = 0
        if !context.isEmpty {
            guard EVP_DecryptUpdate(ctx, nil, &length, context, Int32(context.count)) == 1 else { return nil }
        }
        var out = [UInt8](repeating: 0, count: ciphertext.count + 16)
        guard EVP_DecryptUpdate(ctx, &out, &length, ciphertext, Int32(ciphertext.count)) == 1 else { return nil }
        let written = Int(length)
        guard EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, &tag) == 1 else { return nil }
        let ok = out.withUnsafeMutableBufferPointer { EVP_DecryptFinal_ex(ctx, $0.baseAddress! + written, &length) }
        guard ok == 1 else { return nil }
        return Array(out[..<(written + Int(length))])
    }
}
