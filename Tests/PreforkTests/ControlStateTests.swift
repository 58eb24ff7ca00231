import Testing

@testable import Prefork

/// The master's and the workers' named states, checked without forking (php-fpm's
/// `fpm_pctl` rules: a stop overrides a reload, a duplicate stop changes nothing).
@Suite struct ControlStateTests {
    @Test func namesAreTheOnesStatusShows() {
        #expect(MasterState.allCases.map(\.name) == ["running", "reloading", "stopping"])
        #expect(WorkerState.allCases.map(\.name) == ["starting", "idle", "reading", "running", "finishing"])
    }

    /// A zeroed scoreboard slot (a worker just forked) reads as starting; a zeroed header as running.
    @Test func zeroIsStartingAndRunning() {
        #expect(WorkerState(rawValue: 0) == .starting)
        #expect(MasterState(rawValue: 0) == .running)
    }

    struct MasterCase: CustomTestStringConvertible, Sendable {
        var from: MasterState
        var event: MasterState.Event
        var to: MasterState?
        var testDescription: String { "\(from.name) + \(event) -> \(to?.name ?? "ignored")" }
    }

    static let masterTable: [MasterCase] = [
        .init(from: .running, event: .stopSignal, to: .stopping),
        .init(from: .running, event: .reloadSignal, to: .reloading),
        .init(from: .running, event: .drained, to: nil),
        .init(from: .reloading, event: .stopSignal, to: .stopping),
        .init(from: .reloading, event: .reloadSignal, to: .reloading),
        .init(from: .reloading, event: .drained, to: .running),
        .init(from: .stopping, event: .stopSignal, to: nil),
        .init(from: .stopping, event: .reloadSignal, to: nil),
        .init(from: .stopping, event: .drained, to: nil),
    ]

    @Test(arguments: masterTable)
    func masterTransition(_ c: MasterCase) {
        #expect(c.from.after(c.event) == c.to)
    }

    /// Exactly the moves of the request loop, and no other.
    @Test func workerMovesAreTheLoopsOnly() {
        let allowed: Set<[WorkerState]> = [
            [.starting, .idle], [.idle, .reading], [.reading, .running], [.reading, .idle],
            [.running, .finishing], [.finishing, .idle],
        ]
        for from in WorkerState.allCases {
            for to in WorkerState.allCases {
                #expect(from.canMove(to: to) == allowed.contains([from, to]), "\(from.name) -> \(to.name)")
            }
        }
    }

    @Test func onlyIdleIsNotBusy() {
        #expect(WorkerState.allCases.filter { !$0.isBusy } == [.idle])
    }

    /// A request's clock starts at accept and runs until idle; its endpoint is known from
    /// running on and kept while finishing.
    @Test func activityFollowsOneRequest() {
        let idle = WorkerActivity(state: .starting).entering(.idle, now: 100)
        #expect(idle == WorkerActivity(state: .idle))
        let reading = idle.entering(.reading, now: 1_000)
        #expect(reading == WorkerActivity(state: .reading, requestStartedMilliseconds: 1_000))
        let running = reading.entering(.running, endpoint: "token", now: 1_005)
        #expect(running == WorkerActivity(state: .running, endpoint: "token", requestStartedMilliseconds: 1_000))
        let finishing = running.entering(.finishing, now: 1_040)
        #expect(finishing == WorkerActivity(state: .finishing, endpoint: "token", requestStartedMilliseconds: 1_000))
        #expect(finishing.entering(.idle, now: 1_050) == WorkerActivity(state: .idle))
    }

    @Test func aNewRequestForgetsThePreviousEndpoint() {
        let finishing = WorkerActivity(state: .finishing, endpoint: "token", requestStartedMilliseconds: 1)
        #expect(finishing.entering(.idle, now: 2).entering(.reading, now: 3).endpoint == "")
    }
}
