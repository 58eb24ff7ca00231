/// Bounds what password hashing may take of a host. A PBKDF2 check costs about 0.2 s of a
/// core, and the pool that runs it also answers /token and nginx's auth_request: without a
/// bound, a login flood takes every protected API down with the login page.
public protocol PasswordHashGate {
    /// Runs `hash` if a hashing place is free, or answers nil at once (never waits).
    func run(_ hash: () -> Bool) -> Bool?
}

/// No bound (tests that build an App directly).
public struct UnboundedPasswordHashGate: PasswordHashGate {
    public init() {}
    public func run(_ hash: () -> Bool) -> Bool? { hash() }
}
