/// Bounds how many workers of a host hash passwords at once. A PBKDF2 check costs about
/// 0.2 s of a core, and the pool that runs it also answers /token and nginx's
/// auth_request: without a bound, a login flood takes every protected API down with the
/// login page. Past the bound a login gets a fast 503 instead of a queue.
public protocol PasswordHashGate {
    /// Takes a hashing place; false (at once, never waiting) when all are taken.
    func tryEnter() -> Bool
    func leave()
}

/// No bound (the CLI, tests that build an App directly).
public struct UnboundedPasswordHashGate: PasswordHashGate {
    public init() {}
    public func tryEnter() -> Bool { true }
    public func leave() {}
}

/// Thrown by `App.checkPassword` when no hashing place is free.
struct PasswordChecksBusy: Error {}
