#ifndef GATEHOUSE_CSYSTEMSHIMS_H
#define GATEHOUSE_CSYSTEMSHIMS_H
// Process-control pieces Swift cannot express safely: signal handlers (they must be
// async-signal-safe C), the wait-status macros (not imported), and a scoreboard of
// per-worker states and counters in shared memory that survives fork.
#include <stdint.h>
#include <sys/types.h>

// MARK: - wait status macros
int csys_wifexited(int status);
int csys_wexitstatus(int status);
int csys_wifsignaled(int status);
int csys_wtermsig(int status);

// MARK: - master signals (self-pipe)
/// Installs handlers for TERM, INT, QUIT, HUP, USR1 and CHLD that each write one byte
/// ('T', 'I', 'Q', 'H', 'U', 'C') to `write_fd`. SIGPIPE is ignored.
int csys_install_master_handlers(int write_fd);

// MARK: - task signals
/// For a one-shot task child of the master: TERM, INT and QUIT back to their default
/// (the task ends at once; SQLite rolls back an unfinished transaction), HUP and USR1
/// ignored (they are the master's business), and nothing written to the master's pipe.
/// Unblocks the stop signals the master blocked around fork.
int csys_install_task_handlers(void);

// MARK: - worker signals
/// Restores the master's handlers to defaults and installs handlers that only set a flag:
/// TERM/INT/QUIT the stop flag, USR1 the reopen-log flag. They are installed without
/// SA_RESTART so a blocking wait returns EINTR; callers block the signals while serving a
/// request.
int csys_install_worker_handlers(void);
/// 1 once the worker was asked to stop.
int csys_worker_should_stop(void);
/// 1 (once) if USR1 arrived since the last call: the worker should reopen its log file.
int csys_worker_take_reopen(void);
/// Blocks (1) or unblocks (0) TERM, INT, QUIT and USR1 for the calling process.
void csys_block_stop_signals(int block);
/// Blocks (1) or unblocks (0) what may not land between fork and a child's own handlers:
/// the stop signals, USR1, HUP and CHLD. The child's handler installer unblocks HUP and
/// CHLD; the stop signals and USR1 stay as the child's discipline wants them.
void csys_block_fork_signals(int block);
/// Waits until `fd` is readable, with TERM, INT, QUIT and USR1 (otherwise blocked)
/// deliverable only during the wait: ppoll swaps the mask atomically, so a stop or a log
/// reopen lands either before a connection is taken or after its request is answered.
/// 1 readable, 0 interrupted, -1 error.
int csys_wait_readable(int fd);
/// Asks the kernel to send SIGTERM when the parent dies (PR_SET_PDEATHSIG), so no worker
/// outlives a master killed with SIGKILL. Returns -1 if `parent` is already gone.
int csys_die_with_parent(pid_t parent);

// MARK: - scoreboard
/// Bytes kept of a request's endpoint name (with the terminating NUL).
#define CSYS_ENDPOINT_SIZE 24

typedef struct {
    int32_t pid;          // 0 = free slot
    int32_t state;        // what the worker does (Prefork's WorkerState); 0 = starting
    uint64_t requests;    // requests served by this worker
    int64_t started_at;   // unix seconds the worker started
    int32_t hashing;      // 1 while holding a password-hashing place
    int32_t reserved;
    int64_t request_started_ms;          // CLOCK_MONOTONIC ms the current request was accepted; 0 = none
    char endpoint[CSYS_ENDPOINT_SIZE];   // the current request's endpoint name, NUL-terminated
} csys_slot;

/// Maps `count` zeroed slots shared with every child forked after it. NULL on failure.
csys_slot *csys_scoreboard_create(int count);
/// Publishes what the worker in slot `index` does: its state, the current request's
/// endpoint (cut to fit; NULL for none) and start time. Written field by field: a reader
/// racing a change can see a mix, which is fine for a status page.
void csys_slot_set_activity(csys_slot *board, int index, int32_t state, const char *endpoint, int64_t request_started_ms);
/// The master's pid and state (Prefork's MasterState), kept in the board's header.
void csys_scoreboard_set_master(csys_slot *board, int32_t pid, int32_t state);
int32_t csys_scoreboard_master_pid(csys_slot *board);
int32_t csys_scoreboard_master_state(csys_slot *board);
/// Adds one to the process-wide total of served requests kept in the board's header.
void csys_scoreboard_add_request(csys_slot *board, int index);
uint64_t csys_scoreboard_total(csys_slot *board);
/// Takes one of `limit` password-hashing places for the worker in slot `index`: 1 taken,
/// 0 all taken (never waits). The header counts the places in use.
int csys_hash_enter(csys_slot *board, int index, int limit);
void csys_hash_leave(csys_slot *board, int index);
/// The master, reaping the worker of slot `index`: gives back a place it died holding.
void csys_hash_release_dead(csys_slot *board, int index);

// MARK: - pool metrics (Prometheus)
// Counters per worker slot, each written by its own worker only (relaxed atomic adds, no
// lock), summed by whoever scrapes. Block 0 holds what the master folded in from reaped
// workers plus the master's own counters, so a dead worker's counts are never lost.
#define CSYS_METRIC_ENDPOINTS 16
/// Status classes 1xx...5xx (index = status / 100 - 1).
#define CSYS_METRIC_STATUS_CLASSES 5
/// Request duration histogram buckets, the last one +Inf (bounds are Swift's).
#define CSYS_METRIC_BUCKETS 12
#define CSYS_METRIC_EVENTS 16

typedef struct {
    uint64_t requests[CSYS_METRIC_ENDPOINTS][CSYS_METRIC_STATUS_CLASSES];
    /// Non-cumulative: a request lands in the first bucket whose bound it does not exceed.
    uint64_t duration_buckets[CSYS_METRIC_ENDPOINTS][CSYS_METRIC_BUCKETS];
    uint64_t duration_sum_us[CSYS_METRIC_ENDPOINTS];
    uint64_t events[CSYS_METRIC_EVENTS];
    /// Block 0 only, written by the master: workers replaced after a crash (0) and after
    /// max_requests (1).
    uint64_t worker_restarts[2];
} csys_metrics;

/// Maps `count + 1` zeroed metric blocks shared with every child forked after it (block i
/// belongs to slot i; block 0 is the folded total). NULL on failure.
csys_metrics *csys_metrics_create(int count);
/// A worker's request: one count by endpoint and status class, one histogram observation.
void csys_metrics_observe(csys_metrics *block, int endpoint, int status_class, int bucket, uint64_t duration_us);
/// One occurrence of event `event` (tokens issued, login failures, ...).
void csys_metrics_count(csys_metrics *block, int event);
/// The master: one more worker replaced for `reason` (0 crash, 1 max_requests).
void csys_metrics_count_restart(csys_metrics *blocks, int reason);
/// The master, reaping the worker of `index`: adds its block into block 0 and zeroes it,
/// inside the fold sequence, so a reader never sees it counted twice or not at all.
void csys_metrics_fold(csys_metrics *blocks, int index);
/// Sums blocks 0 and every index for which `live[index]` is nonzero into `out`; retries
/// while a fold is under way.
void csys_metrics_sum(csys_metrics *blocks, int count, const uint8_t *live, csys_metrics *out);

// MARK: - background CPU priority
typedef void (*csys_work_fn)(void *ctx);
/// Runs fn(ctx) on a new thread whose nice value is `nice` (raised for that thread alone,
/// which needs no privilege, and gone with it), and waits for it. Runs it on the calling
/// thread if no thread can be made. 1 when it ran in the background.
int csys_run_in_background(csys_work_fn fn, void *ctx, int nice);
// MARK: - cross-process write gate
/// A robust, process-shared mutex in shared memory (created before fork), which workers
/// take around their SQLite write transactions. NULL on failure.
void *csys_write_gate_create(void);
/// Locks the gate, waiting at most `timeout_ms`; recovers it if its holder died
/// (EOWNERDEAD). 1 when locked, 0 on timeout.
int csys_write_gate_lock(void *gate, int timeout_ms);
void csys_write_gate_unlock(void *gate);

/// A non-blocking, close-on-exec pipe for the master's self-pipe.
int csys_self_pipe(int fds[2]);

/// glibc's malloc keeps up to `bytes` of freed heap instead of trimming it after every
/// free (mallopt M_TRIM_THRESHOLD; <malloc.h> is not in Swift's Glibc module).
void csys_keep_freed_heap(int bytes);
#endif
