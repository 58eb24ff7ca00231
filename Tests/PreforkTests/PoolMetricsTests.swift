import Glibc
import Testing

@testable import Prefork

/// The scoreboard's Prometheus counters: per slot, summed at scrape, folded into the
/// master's block when a worker is reaped, so no count is lost or counted twice.
@Suite struct PoolMetricsTests {
    @Test func bucketsFollowTheBoundsAndEndAtInfinity() {
        #expect(PoolMetrics.bucket(microseconds: 0) == 0)
        #expect(PoolMetrics.bucket(microseconds: 5_000) == 0)  // le="0.005" includes 5 ms
        #expect(PoolMetrics.bucket(microseconds: 5_001) == 1)
        #expect(PoolMetrics.bucket(microseconds: 200_000) == 5)  // le="0.25"
        #expect(PoolMetrics.bucket(microseconds: 60_000_000) == Int32(PoolMetrics.durationBounds.count))
    }

    @Test func aForkedWorkersCountsSurviveItsReaping() throws {
        let board = try Scoreboard()
        let slot: Int32 = 3
        let pid = fork()
        if pid == 0 {
            board.claim(slot, pid: getpid())
            for _ in 0..<5 { board.observe(slot: slot, endpoint: 1, status: 200, microseconds: 2_000) }
            board.observe(slot: slot, endpoint: 1, status: 401, microseconds: 300_000)
            board.count(event: 2, slot: slot)
            _exit(0)
        }
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        let live = board.poolMetrics()
        #expect(live.requests[1][1] == 5 && live.requests[1][3] == 1)
        #expect(live.durationBuckets[1][0] == 5 && live.durationBuckets[1][6] == 1)
        #expect(live.durationSumMicroseconds[1] == 310_000)
        #expect(live.events[2] == 1)

        board.release(slot)  // the master reaps it: the slot is free, the counts stay
        board.countRestart(afterCrash: true)
        let after = board.poolMetrics()
        #expect(after.requests[1][1] == 5 && after.requests[1][3] == 1 && after.events[2] == 1)
        #expect(after.durationSumMicroseconds[1] == 310_000 && after.restartsAfterCrash == 1)
        #expect(board.snapshot().workers.isEmpty)
    }
}
