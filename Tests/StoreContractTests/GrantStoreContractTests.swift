import Foundation
import OAuthCore
import Testing

/// The atomic primitives of the grants, held to one behaviour on every backend.
@Suite("Storage contract: codes, refresh rotation, revocation, purge")
struct GrantStoreContractTests {
    @Test("RFC 6749 §4.1.2: a code is single-use; a replay revokes the tokens issued from it", arguments: Backend.allCases)
    func codeReplay(_ backend: Backend) throws {
        let store = try backend.open().store
        let user = try seed(store)
        try code(store, "code", user: user)
        #expect(try redeem(store, "code", plan("at1", "rt1")) == .redeem(plan("at1", "rt1"), scope: ["A"]))
        let issued = try #require(try store.token(hash: h("at1")))
        #expect(issued.record.isActive(at: 100) && issued.record.username == "john@org" && issued.record.clientID == "c1")
        guard case .revokeGrant = try redeem(store, "code", now: 101, plan("at2", "rt2")) else { Issue.record("not a replay"); return }
        #expect(try store.token(hash: h("at1"))?.record.revoked == true)
        #expect(try store.token(hash: h("rt1"))?.record.revoked == true)
        #expect(try store.token(hash: h("at2")) == nil)
    }

    @Test("§4.1.3: a refused code writes nothing and stays redeemable; another client's replay revokes nothing",
          arguments: Backend.allCases)
    func refusedCode(_ backend: Backend) throws {
        let store = try backend.open().store
        let user = try seed(store)
        try code(store, "c", user: user)
        #expect(try redeem(store, "c", by: client2, plan("x", nil)) == .refuse(.invalidGrant("the code was issued to another client")))
        #expect(try store.token(hash: h("x")) == nil)
        #expect(try redeem(store, "c", plan("y", "yr")).redeemed)
        #expect(try redeem(store, "c", by: client2, now: 101, plan("z", nil)) == .refuse(.invalidGrant("invalid authorization code")))
        #expect(try store.token(hash: h("y"))?.record.revoked == false)
        #expect(try redeem(store, "unknown", plan("w", nil)) == .refuse(.invalidGrant("invalid authorization code")))
    }

    @Test("peekCode and peekRefreshToken read what the atomic steps read, and change nothing", arguments: Backend.allCases)
    func peeks(_ backend: Backend) throws {
        let store = try backend.open().store
        let user = try seed(store)
        try code(store, "p", user: user)
        let peeked = try #require(try store.peekCode(hash: h("p")))
        #expect(peeked.record.clientID == "c1" && peeked.record.scope == ["A"] && !peeked.record.consumed)
        #expect(try store.peekCode(hash: h("p"))?.record.consumed == false)  // twice: still unspent
        var seen: StoredCode?
        _ = try store.redeemCode(hash: h("p"), now: 100) { stored in
            seen = stored
            return try AuthorizationCodeGrant.decide(stored, client: client1, redirectURI: nil, codeVerifier: nil, now: 100) { _ in
                plan("pa", "pr")
            }
        }
        #expect(seen?.record == peeked.record && seen?.familyID == peeked.familyID)
        #expect(try store.peekCode(hash: h("p"))?.record.consumed == true)
        #expect(try store.peekCode(hash: h("nope")) == nil)

        let token = try #require(try store.peekRefreshToken(hash: h("pr")))
        #expect(token.record.clientID == "c1" && token.familyScope == ["A"] && token.record.rotatedAt == nil)
        #expect(try store.peekRefreshToken(hash: h("pa")) == nil)  // an access token is not a refresh token
        _ = try rotate(store, "pr", now: 110, into: "pa2", "pr2")
        #expect(try store.peekRefreshToken(hash: h("pr"))?.record.rotatedAt == 110)
    }

    @Test("eight connections racing on one code: exactly one redeems it", arguments: Backend.allCases)
    func codeRace(_ backend: Backend) throws {
        let harness = try backend.open()
        let user = try seed(harness.store)
        try code(harness.store, "race", user: user)
        let results = ResultBox()
        let threads = (0..<8).map { i in
            Thread {
                guard let s = try? harness.another() else { results.add("open failed"); return }
                let r = try? redeem(s, "race", plan("at\(i)", "rt\(i)"))
                results.add(r.map { $0.redeemed ? "issued" : "refused" } ?? "error")
            }
        }
        threads.forEach { $0.start() }
        while results.count < 8 { usleep(1000) }
        #expect(results.values.filter { $0 == "issued" }.count == 1)
        #expect(!results.values.contains("error"))
    }

    @Test("eight connections racing on one refresh token: exactly one rotates it", arguments: Backend.allCases)
    func refreshRace(_ backend: Backend) throws {
        let harness = try backend.open()
        let user = try seed(harness.store)
        try grant(harness.store, user: user, plan("at0", "rt0"))
        let results = ResultBox()
        let threads = (0..<8).map { i in
            Thread {
                guard let s = try? harness.another() else { results.add("open failed"); return }
                let r = try? rotate(s, "rt0", now: 110, into: "at\(i + 1)", "rt\(i + 1)")
                results.add(r.map { $0.rotatedScope != nil ? "rotated" : "refused" } ?? "error")
            }
        }
        threads.forEach { $0.start() }
        while results.count < 8 { usleep(1000) }
        #expect(results.values.filter { $0 == "rotated" }.count == 1)
        #expect(!results.values.contains("error"))
    }

    @Test("RFC 6749 §6 / RFC 9700 §4.14.2: rotation narrows the scope, then reuse revokes the family",
          arguments: Backend.allCases)
    func rotation(_ backend: Backend) throws {
        let store = try backend.open().store
        let user = try seed(store)
        try grant(store, user: user, plan("at0", "rt0"), scope: ["A", "B"])
        #expect(try rotate(store, "rt0", now: 110, scope: "A", into: "at1", "rt1").rotatedScope == ["A"])
        #expect(try store.token(hash: h("rt0"))?.record.rotatedAt == 110)
        #expect(try store.token(hash: h("at1"))?.record.scope == ["A"])
        #expect(try rotate(store, "rt0", now: 111, into: "at2", "rt2").revokedFamily)
        for t in ["at0", "at1", "rt1"] { #expect(try store.token(hash: h(t))?.record.revoked == true) }
        #expect(try store.token(hash: h("at2")) == nil)
    }

    @Test("RFC 6749 §10.4: another client replaying a rotated refresh token revokes nothing", arguments: Backend.allCases)
    func replayByAnotherClient(_ backend: Backend) throws {
        let store = try backend.open().store
        let user = try seed(store)
        try grant(store, user: user, plan("at0", "rt0"))
        _ = try rotate(store, "rt0", now: 110, into: "at1", "rt1")
        #expect(try rotate(store, "rt0", by: client2, now: 111, into: "at2", "rt2")
            == .refuse(.invalidGrant("refresh token was issued to another client")))
        for t in ["at1", "rt1"] { #expect(try store.token(hash: h(t))?.record.revoked == false) }
    }

    @Test("grace window: the preceding generation works once more inside the window, not twice", arguments: Backend.allCases)
    func grace(_ backend: Backend) throws {
        let store = try backend.open().store
        let user = try seed(store)
        try grant(store, user: user, plan("at0", "rt0"))
        _ = try rotate(store, "rt0", now: 110, grace: 5, into: "at1", "rt1")
        #expect(try rotate(store, "rt0", now: 112, grace: 5, into: "at2", "rt2").rotatedScope == ["A"])
        #expect(try store.token(hash: h("rt1"))?.record.isActive(at: 112) == true)
        #expect(try store.token(hash: h("rt2"))?.record.isActive(at: 112) == true)
        #expect(try rotate(store, "rt0", now: 113, grace: 5, into: "at4", "rt4").revokedFamily)
    }

    @Test("a refresh token lives no longer than its family's chain", arguments: Backend.allCases)
    func familyEndCapsRefresh(_ backend: Backend) throws {
        let store = try backend.open().store
        let user = try seed(store)
        try grant(store, user: user, plan("at0", "rt0", familyEnd: 5000))
        #expect(try store.token(hash: h("rt0"))?.record.expiresAt == 5000)
        _ = try rotate(store, "rt0", now: 4000, into: "at1", "rt1")
        #expect(try store.token(hash: h("rt1"))?.record.expiresAt == 5000)
        #expect(try rotate(store, "rt1", now: 5000, into: "at2", "rt2") == .refuse(.invalidGrant("refresh token expired")))
    }

    @Test("RFC 7009: revoking one token, or a family; revokeAll by client and by user", arguments: Backend.allCases)
    func revoke(_ backend: Backend) throws {
        let store = try backend.open().store
        let user = try seed(store)
        try grant(store, user: user, plan("at", "rt"))
        #expect(try store.revokeToken(hash: h("at"), now: 101))
        #expect(try store.revokeToken(hash: h("at"), now: 102) == false)
        #expect(try store.token(hash: h("rt"))?.record.revoked == false)
        let family = try #require(try store.token(hash: h("rt"))?.record.familyID)
        try store.revokeFamily(family, now: 103)
        #expect(try store.token(hash: h("rt"))?.record.revoked == true)

        try grant(store, user: nil, plan("cc", nil))  // client_credentials: no family
        #expect(try store.token(hash: h("cc"))?.record.familyID == 0)
        try grant(store, user: user, plan("at2", "rt2"))
        try grant(store, user: user, plan("at3", "rt3"), client: "c2")
        #expect(try store.revokeAll(clientID: "c1", username: nil, now: 104) == 2)
        #expect(try store.token(hash: h("cc"))?.record.revoked == true)
        #expect(try store.token(hash: h("at3"))?.record.revoked == false)
        #expect(try store.revokeAll(clientID: nil, username: "john@org", now: 105) == 1)
        #expect(try store.token(hash: h("rt3"))?.record.revoked == true)
    }

    @Test("removing a client removes its tokens; disabling a user revokes theirs", arguments: Backend.allCases)
    func cascades(_ backend: Backend) throws {
        let store = try backend.open().store
        let user = try seed(store)
        try grant(store, user: user, plan("at", "rt"))
        #expect(try store.setDisabled(username: "john@org", true, now: 101))
        #expect(try store.token(hash: h("at"))?.record.revoked == true)
        #expect(try store.token(hash: h("at"))?.userDisabled == true)
        #expect(try store.removeClient(id: "c1"))
        #expect(try store.token(hash: h("at")) == nil)
        #expect(try store.removeClient(id: "c1") == false)
    }

    @Test("purge deletes expired rows in batches and keeps live ones", arguments: Backend.allCases)
    func purge(_ backend: Backend) throws {
        let store = try backend.open().store
        let user = try seed(store)
        for i in 0..<25 { try grant(store, user: user, plan("old\(i)", nil, now: 0), now: 0) }
        try grant(store, user: user, plan("live", "liveR", now: 100_000), now: 100_000)
        let counts = try store.purgeExpired(now: 100_000, batch: 10, sessionIdleSeconds: 60, progress: nil)
        #expect(counts["tokens"] == 25)
        #expect(try store.token(hash: h("live")) != nil)
    }

    @Test("purge: a family goes with its last token, not 30 days later; a family with a token left stays",
          arguments: Backend.allCases)
    func purgeEmptiedFamilies(_ backend: Backend) throws {
        let harness = try backend.open()
        let store = harness.store
        let user = try seed(store)
        // A client fetching a password-grant token per call: access tokens only (expire at
        // 3700), families whose refresh-chain end (86,500) is far away.
        for i in 0..<25 { try grant(store, user: user, plan("cc\(i)", nil)) }
        // Two refresh families, rotated once at 3000: the rotated rt0 (expires 7300) and the new
        // at1/rt1 are still there at 4000; only at0 (3700) has expired.
        for f in ["x", "y"] {
            try grant(store, user: user, plan("\(f)at0", "\(f)rt0"))
            #expect(try rotate(store, "\(f)rt0", now: 3000, into: "\(f)at1", "\(f)rt1").rotatedScope == ["A"])
        }
        // A redeemed code that outlives its tokens (its family must not block the purge).
        try code(store, "code", user: user, expiresAt: 100_000)
        #expect(try redeem(store, "code", plan("cat", nil)).redeemed)
        #expect(try harness.rows("families") == 28)

        let counts = try store.purgeExpired(now: 4000, batch: 10, sessionIdleSeconds: 60, progress: nil)
        #expect(counts["tokens"] == 25 + 2 + 1)
        #expect(counts["families"] == 25 + 1)
        #expect(try harness.rows("families") == 2)
        #expect(try harness.rows("tokens") == 6)
        // The rotated refresh token is still there, so its replay is still detected.
        #expect(try rotate(store, "xrt0", now: 4001, into: "xat2", "xrt2").revokedFamily)
        #expect(try store.token(hash: h("xrt1"))?.record.revoked == true)
        #expect(try store.token(hash: h("yrt1"))?.record.isActive(at: 4001) == true)
        // A replayed code whose family is gone: refused, nothing to revoke.
        guard case .revokeGrant = try redeem(store, "code", now: 4002, plan("c2", nil)) else { Issue.record("not a replay"); return }

        // Every token expired (rt1: 3000 + 7200), the refresh chains' end (86,500) not yet: the
        // families go with their last tokens.
        let later = try store.purgeExpired(now: 10_300, batch: 10, sessionIdleSeconds: 60, progress: nil)
        #expect(later["tokens"] == 6 && later["families"] == 2)
        #expect(try harness.rows("families") == 0 && harness.rows("tokens") == 0)
    }
}
