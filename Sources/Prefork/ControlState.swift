/// The master's named states, as php-fpm's `fpm_pctl` has them. Kept on the scoreboard
/// header, so `/gatehouse/status` can show it.
public enum MasterState: Int32, CaseIterable, Sendable {
    /// Workers serve; crashed ones are replaced.
    case running
    /// SIGHUP: new workers serve while the old ones finish their request and leave.
    case reloading
    /// SIGTERM/INT/QUIT: every child is asked to leave; the master exits when none is left.
    case stopping

    public var name: String {
        switch self {
        case .running: return "running"
        case .reloading: return "reloading"
        case .stopping: return "stopping"
        }
    }

    /// What moves the master from one state to another.
    public enum Event: Sendable {
        case stopSignal, reloadSignal
        /// The last worker of the previous generation has exited.
        case drained
    }

    /// The state after `event`, or nil when the event is ignored in this state: a stop
    /// overrides a reload and is never undone; a second stop changes nothing; a reload
    /// during a reload is taken (the newest configuration wins).
    public func after(_ event: Event) -> MasterState? {
        switch (self, event) {
        case (.running, .stopSignal), (.reloading, .stopSignal): return .stopping
        case (.running, .reloadSignal), (.reloading, .reloadSignal): return .reloading
        case (.reloading, .drained): return .running
        case (.stopping, _), (.running, .drained): return nil
        }
    }
}

/// What a worker is doing, as php-fpm's per-process states (Idle, Reading headers,
/// Running, Finishing). Kept in the worker's scoreboard slot.
public enum WorkerState: Int32, CaseIterable, Sendable {
    /// Forked; opening its database connection. A zeroed slot reads as this state.
    case starting
    /// Waiting for a connection on the shared socket.
    case idle
    /// Accepted a connection; reading the request's records from nginx.
    case reading
    /// Handling the request (the endpoint is known).
    case running
    /// Writing the response to nginx and closing the connection.
    case finishing

    public var name: String {
        switch self {
        case .starting: return "starting"
        case .idle: return "idle"
        case .reading: return "reading"
        case .running: return "running"
        case .finishing: return "finishing"
        }
    }

    /// Every state but idle holds the worker: nothing else can be served by it.
    public var isBusy: Bool { self != .idle }

    /// The moves a worker's loop makes; anything else is a bug in the loop.
    public func canMove(to next: WorkerState) -> Bool {
        switch (self, next) {
        case (.starting, .idle), (.idle, .reading), (.reading, .running), (.running, .finishing), (.finishing, .idle):
            return true
        case (.reading, .idle):  // the peer broke off before its request was read
            return true
        default:
            return false
        }
    }
}

/// A worker's state with what it is about: the request's endpoint and start time.
public struct WorkerActivity: Equatable, Sendable {
    public var state: WorkerState
    /// The current request's endpoint name (nginx's GATEHOUSE_ENDPOINT); empty when unknown.
    public var endpoint: String
    /// Monotonic milliseconds its connection was accepted; nil outside a request.
    public var requestStartedMilliseconds: Int64?

    public init(state: WorkerState, endpoint: String = "", requestStartedMilliseconds: Int64? = nil) {
        self.state = state
        self.endpoint = endpoint
        self.requestStartedMilliseconds = requestStartedMilliseconds
    }

    /// The activity after moving to `next` at `now`: a request's clock starts when its
    /// connection is accepted and runs until the worker is idle again; its endpoint is
    /// known once its parameters are read and kept while its response is written.
    public func entering(_ next: WorkerState, endpoint: String? = nil, now: Int64) -> WorkerActivity {
        switch next {
        case .starting, .idle:
            return WorkerActivity(state: next)
        case .reading:
            return WorkerActivity(state: next, requestStartedMilliseconds: now)
        case .running, .finishing:
            return WorkerActivity(state: next, endpoint: endpoint ?? self.endpoint,
                                  requestStartedMilliseconds: requestStartedMilliseconds ?? now)
        }
    }
}
