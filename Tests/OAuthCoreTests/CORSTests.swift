import Testing
@testable import OAuthCore

@Suite("CORS for browser clients (Fetch standard origins; allowed = origins of the redirect URIs)")
struct CORSTests {
    @Test("an origin is scheme://host[:port], lower case, without the default port", arguments: [
        ("https://App.Example.com/cb?x=1", "https://app.example.com"),
        ("https://app.example.com:443/cb", "https://app.example.com"),
        ("https://app.example.com:8443/cb", "https://app.example.com:8443"),
        ("http://127.0.0.1:3000/callback", "http://127.0.0.1:3000"),
        ("http://[::1]/cb", "http://[::1]"),
    ])
    func origins(uri: String, origin: String) {
        #expect(CORS.origin(of: uri) == origin)
    }

    @Test("only the origins of the client's own redirect URIs are allowed")
    func allows() {
        let spa = Client(id: "spa", name: "SPA", secretHash: nil,
                         redirectURIs: ["https://app.example.com/cb", "http://127.0.0.1:3000/cb"], grantTypes: [],
                         allowedScopes: [], defaultScopes: [])
        #expect(CORS.allows("https://app.example.com", client: spa))
        #expect(CORS.allows("http://127.0.0.1:3000", client: spa))
        for origin in ["https://evil.example.com", "https://app.example.com:444", "http://app.example.com", "null",
                       "https://app.example.com.evil.example", "http://127.0.0.1:3001", ""] {
            #expect(!CORS.allows(origin, client: spa), "\(origin)")
        }
    }
}
