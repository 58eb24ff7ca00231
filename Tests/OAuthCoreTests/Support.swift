import OAuthCrypto

/// Test-side bridge to helpers from OAuthCrypto.
enum OAuthCryptoBridge {
    static func base64(_ s: String) -> String { Base64URL.encodeStandard(Array(s.utf8)) }
}
