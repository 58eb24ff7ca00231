import Foundation
import OAuthCore
import Testing

/// Clients, users, sessions, consent and login throttling, held to one behaviour on every backend.
@Suite("Storage contract: clients, users, sessions, consent, throttling")
struct AccountStoreContractTests {
    @Test("clients: insert once, read, list in order, update, remove", arguments: Backend.allCases)
    func clients(_ backend: Backend) throws {
        let store = try backend.open().store
        #expect(try store.insertClient(client1, now: 1))
        #expect(try store.insertClient(client1, now: 2) == false)
        #expect(try store.insertClient(client2, now: 3))
        #expect(try store.client(id: "c1") == client1)
        #expect(try store.clients().map(\.id) == ["c1", "c2"])
        var changed = client1
        changed.name = "Renamed"
        changed.previousSecretHash = [9]
        changed.previousSecretExpiresAt = 500
        changed.skipConsent = true
        #expect(try store.updateClient(changed))
        #expect(try store.client(id: "c1") == changed)
        var ghost = client1
        ghost.id = "ghost"
        #expect(try store.updateClient(ghost) == false)
        #expect(try store.removeClient(id: "c2"))
        #expect(try store.client(id: "c2") == nil)
    }

    @Test("users: names are unique; a password reset with endGrants ends sessions and revokes grants",
          arguments: Backend.allCases)
    func users(_ backend: Backend) throws {
        let store = try backend.open().store
        let user = try seed(store)
        #expect(try store.insertUser(username: "john@org", passwordHash: "y", now: 1) == nil)
        #expect(try store.user(named: "john@org")?.id == user)
        #expect(try store.user(id: user)?.username == "john@org")
        _ = try store.insertUser(username: "alice", passwordHash: "z", now: 1)
        #expect(try store.users().map(\.username) == ["alice", "john@org"])
        try grant(store, user: user, plan("at", "rt"))
        #expect(try store.replaceSession(oldIDHash: nil, newIDHash: h("s"), csrf: "k", userID: user, now: 100))
        #expect(try store.setPassword(username: "john@org", passwordHash: "new", endGrants: false, now: 101) == 0)
        #expect(try store.token(hash: h("at"))?.record.revoked == false)
        #expect(try store.setPassword(username: "john@org", passwordHash: "newer", endGrants: true, now: 102) == 1)
        #expect(try store.token(hash: h("at"))?.record.revoked == true)
        #expect(try store.session(idHash: h("s")) == nil)
        #expect(try store.user(named: "john@org")?.passwordHash == "newer")
        #expect(try store.setPassword(username: "nobody", passwordHash: "x", endGrants: true, now: 103) == nil)
        #expect(try store.removeUser(username: "john@org"))
        #expect(try store.token(hash: h("at")) == nil)
        #expect(try store.removeUser(username: "john@org") == false)
    }

    @Test("sessions: replace once (CWE-384), CSRF compare-and-set, a disabled user's session is gone",
          arguments: Backend.allCases)
    func sessions(_ backend: Backend) throws {
        let store = try backend.open().store
        let user = try seed(store)
        #expect(try store.replaceSession(oldIDHash: nil, newIDHash: h("s1"), csrf: "k1", userID: user, now: 100))
        #expect(try store.session(idHash: h("s1")) == SessionRecord(csrf: "k1", userID: user, authenticatedAt: 100,
                                                                     createdAt: 100, lastSeenAt: 100))
        #expect(try store.replaceSession(oldIDHash: h("s1"), newIDHash: h("s2"), csrf: "k2", userID: user, now: 101))
        #expect(try store.replaceSession(oldIDHash: h("s1"), newIDHash: h("s3"), csrf: "k3", userID: user, now: 102) == false)
        #expect(try store.session(idHash: h("s1")) == nil && store.session(idHash: h("s3")) == nil)
        #expect(try store.rotateCSRF(idHash: h("s2"), from: "k2", to: "k4"))
        #expect(try store.rotateCSRF(idHash: h("s2"), from: "k2", to: "k5") == false)
        try store.touchSession(idHash: h("s2"), now: 150)
        #expect(try store.session(idHash: h("s2"))?.lastSeenAt == 150)
        #expect(try store.purgeExpired(now: 200, batch: 10, sessionIdleSeconds: 60, progress: nil)["sessions"] == 0)
        #expect(try store.setDisabled(username: "john@org", true, now: 160))
        #expect(try store.session(idHash: h("s2")) == nil)
        #expect(try store.replaceSession(oldIDHash: nil, newIDHash: h("s6"), csrf: "k", userID: user, now: 170))
        #expect(try store.setDisabled(username: "john@org", false, now: 171))
        try store.deleteSession(idHash: h("s6"))
        #expect(try store.session(idHash: h("s6")) == nil)
    }

    @Test("consent is remembered per user, client and scope set (order-free)", arguments: Backend.allCases)
    func consent(_ backend: Backend) throws {
        let store = try backend.open().store
        let user = try seed(store)
        #expect(try store.hasConsent(userID: user, clientID: "c1", scope: ["A", "B"]) == false)
        try store.saveConsent(userID: user, clientID: "c1", scope: ["B", "A"], now: 100)
        #expect(try store.hasConsent(userID: user, clientID: "c1", scope: ["A", "B"]))
        #expect(try store.hasConsent(userID: user, clientID: "c1", scope: ["A"]) == false)
        #expect(try store.hasConsent(userID: user, clientID: "c2", scope: ["A", "B"]) == false)
    }

    @Test("login throttling counts failures in a window and locks the key", arguments: Backend.allCases)
    func throttle(_ backend: Backend) throws {
        let store = try backend.open().store
        for _ in 0..<2 { try store.recordLoginFailure(keys: ["user:x"], now: 100, limit: 3, window: 60, lockout: 300) }
        #expect(try store.lockedUntil(keys: ["user:x"], now: 101) == nil)
        // The window restarts after 60 s: two old failures do not count.
        try store.recordLoginFailure(keys: ["user:x"], now: 170, limit: 3, window: 60, lockout: 300)
        #expect(try store.lockedUntil(keys: ["user:x"], now: 171) == nil)
        for _ in 0..<2 { try store.recordLoginFailure(keys: ["user:x", "addr:1"], now: 171, limit: 3, window: 60, lockout: 300) }
        #expect(try store.lockedUntil(keys: ["addr:9", "user:x"], now: 172) == 471)
        #expect(try store.lockedUntil(keys: ["user:x"], now: 471) == nil)
        try store.clearLoginFailures(key: "user:x")
        try store.recordLoginFailure(keys: ["user:x"], now: 472, limit: 3, window: 60, lockout: 300)
        #expect(try store.lockedUntil(keys: ["user:x"], now: 473) == nil)
    }

    @Test("OpenID Connect: a user keeps a unique subject and attributes; signing keys are listed and retired once",
          arguments: Backend.allCases)
    func openID(_ backend: Backend) throws {
        let store = try backend.open().store
        let user = try seed(store)
        let subject = try #require(try store.user(id: user)?.subject)
        #expect(!subject.isEmpty)
        #expect(try store.insertUser(username: "bob", passwordHash: "x", subject: subject, profile: UserProfile(), now: 1) == nil)
        let profile = UserProfile(email: "j@example.com", emailVerified: true, name: "John", givenName: "J", familyName: "D",
                                  updatedAt: 5)
        #expect(try store.updateProfile(username: "john@org", profile))
        #expect(try store.user(named: "john@org")?.profile == profile)
        #expect(try store.updateProfile(username: "nobody", profile) == false)

        let key = StoredSigningKey(id: "k1", algorithm: .rs256, sealedPrivateKey: [1, 2, 3], createdAt: 10, activeFrom: 20)
        try store.insertSigningKey(key)
        #expect(try store.signingKeys() == [key])
        #expect(try store.retireSigningKey(id: "k1", now: 30))
        #expect(try store.retireSigningKey(id: "k1", now: 31) == false)
        #expect(try store.signingKeys().first?.retiredAt == 30)
    }

    @Test("OpenID Connect: a code keeps nonce and login time; its grant keeps the login time for refreshes",
          arguments: Backend.allCases)
    func codeKeepsAuthentication(_ backend: Backend) throws {
        let store = try backend.open().store
        let user = try seed(store)
        try store.insertCode(hash: h("oidc"), AuthorizationCodeRecord(
            clientID: "c1", userID: user, username: "", scope: ["A"], redirectURI: nil, codeChallenge: nil,
            codeChallengeMethod: nil, expiresAt: 1000, nonce: "n-1", authTime: 90))
        var seen: StoredCode?
        _ = try store.redeemCode(hash: h("oidc"), now: 100) { stored in
            seen = stored
            return .redeem(plan("oat", "ort"), scope: ["A"])
        }
        #expect(seen?.record.nonce == "n-1" && seen?.record.authTime == 90)
        #expect(seen?.record.subject == (try store.user(id: user)?.subject))
        var refresh: StoredRefreshToken?
        _ = try store.rotateRefreshToken(hash: h("ort"), now: 110) { stored in
            refresh = stored
            return .refuse(.invalidGrant("look only"))
        }
        #expect(refresh?.authTime == 90 && refresh?.record.subject == seen?.record.subject)
        #expect(try store.token(hash: h("oat"))?.record.subject == seen?.record.subject)
    }
}
