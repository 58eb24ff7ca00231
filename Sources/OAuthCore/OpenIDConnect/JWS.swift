import OAuthCrypto

/// Signs with one key of the key set; the core only knows its name and algorithm.
public protocol JWSSigner {
    /// `ES256` or `RS256` (RFC 7518 §3.1).
    var algorithm: String { get }
    /// The key's `kid`, as published in /jwks.
    var keyID: String { get }
    func sign(_ input: [UInt8]) throws -> [UInt8]
}

/// JSON Web Signature compact serialization (RFC 7515 §7.1).
public enum JWS {
    /// `BASE64URL(header) . BASE64URL(payload) . BASE64URL(signature)`; the header names
    /// the algorithm, the key and the media type (`JWT`, or `at+jwt` for RFC 9068).
    public static func compact(payload: JSONObject, type: String = "JWT", signer: any JWSSigner) throws -> String {
        var header = JSONObject()
        header["alg"] = signer.algorithm
        header["kid"] = signer.keyID
        header["typ"] = type
        // Built as bytes in one buffer: the signing input, then the signature appended.
        var out: [UInt8] = []
        out.reserveCapacity(1024)
        Base64URL.append(header.utf8(), to: &out)
        out.append(UInt8(ascii: "."))
        Base64URL.append(payload.utf8(), to: &out)
        let signature = try signer.sign(out)
        out.append(UInt8(ascii: "."))
        Base64URL.append(signature, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// The header and payload of a compact JWS whose signature `verify` accepts, or nil.
    /// The JSON is not parsed here: callers look up members with `member`.
    public static func verified(_ token: String, verify: (_ header: String, _ input: [UInt8], _ signature: [UInt8]) -> Bool)
        -> (header: String, payload: String)?
    {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, token.utf8.count <= 8192,
            let headerBytes = Base64URL.decode(String(parts[0])), let header = String(validating: headerBytes, as: UTF8.self),
            let payloadBytes = Base64URL.decode(String(parts[1])), let payload = String(validating: payloadBytes, as: UTF8.self),
            let signature = Base64URL.decode(String(parts[2]))
        else { return nil }
        guard verify(header, Array((parts[0] + "." + parts[1]).utf8), signature) else { return nil }
        return (header, payload)
    }
}
