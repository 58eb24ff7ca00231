import Foundation
import Testing
import OAuthCore
import OAuthCrypto
@testable import OAuthSQLite

/// How many WAL frames (pages written) one grant step costs: the figure the lean-schema work
/// of issue 11 is to bring down. Counted, not timed: the WAL grows by whole frames
/// (24-byte header + one page), with checkpoints off so nothing is reset in between.
@Suite("WAL frames per token (issue 11 baseline)")
struct WALFramesTests {
    static let tokens = 2000

    func framesPerStep(_ step: (SQLiteStore, Int) throws -> Void) throws -> Double {
        let (store, path) = try temporaryStore()
        _ = try seed(store)
        try store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        try store.db.execute("PRAGMA wal_autocheckpoint = 0")
        let pageSize = try #require(try store.db.queryOne("PRAGMA page_size") { $0.int(0) })
        for i in 0..<Self.tokens { try step(store, i) }
        let walBytes = (try FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? Int) ?? 0
        let frames = Double(max(0, walBytes - 32)) / Double(Int(pageSize) + 24)
        return frames / Double(Self.tokens)
    }

    @Test("client_credentials: one access token and its family per request")
    func clientCredentials() throws {
        let perToken = try framesPerStep { store, i in
            try issue(store, user: nil, plan("a\(i)", nil))
        }
        print("WAL frames per client_credentials token: \(String(format: "%.2f", perToken))")
        // Regression guards: 7.92 frames before migration 4 gave these tokens no family row, 2.6 after; 10.54 per rotation.
        #expect(perToken < 3.5)
    }

    @Test("code exchange: a code redeemed into a family with an access and a refresh token")
    func codeExchange() throws {
        let perStep = try framesPerStep { store, i in
            try store.insertCode(hash: Digest.sha256("code\(i)"), AuthorizationCodeRecord(
                clientID: "c1", userID: 1, username: "", scope: ["A"], redirectURI: nil, codeChallenge: nil,
                codeChallengeMethod: nil, expiresAt: 1000))
            _ = try redeem(store, "code\(i)", plan("a\(i)", "r\(i)"))
        }
        print("WAL frames per code (issue and exchange): \(String(format: "%.2f", perStep))")
        #expect(perStep < 18)  // 16.74 on 2026-11-30; without families_client and families_user 14.65 (not taken: operator commands would scan)
    }

    @Test("refresh rotation: one access and one refresh token per step")
    func refreshRotation() throws {
        var current = "r-seed"
        let perStep = try framesPerStep { store, i in
            if i == 0 {
                try issue(store, user: 1, plan("a-seed", current), now: 100)
            }
            let next = "r\(i)"
            _ = try rotate(store, hash: Digest.sha256(current), now: 100, plan("a\(i)", next))
            current = next
        }
        print("WAL frames per refresh rotation: \(String(format: "%.2f", perStep))")
        #expect(perStep < 11.5)
    }
}
