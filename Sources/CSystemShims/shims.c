#define _GNU_SOURCE  // pipe2, ppoll
#include "CSystemShims.h"

#include <errno.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int csys_wifexited(int status) { return WIFEXITED(status); }
int csys_wexitstatus(int status) { return WEXITSTATUS(status); }
int csys_wifsignaled(int status) { return WIFSIGNALED(status); }
int csys_wtermsig(int status) { return WTERMSIG(status); }

// MARK: - master

static int master_pipe_fd = -1;

static void master_handler(int sig) {
    int saved = errno;  // a handler must not clobber errno of the interrupted code
    char c = '?';
    switch (sig) {
        case SIGTERM: c = 'T'; break;
        case SIGINT: c = 'I'; break;
        case SIGQUIT: c = 'Q'; break;
        case SIGHUP: c = 'H'; break;
        case SIGUSR1: c = 'U'; break;
        case SIGCHLD: c = 'C'; break;
    }
    if (master_pipe_fd >= 0) {
        ssize_t ignored = write(master_pipe_fd, &c, 1);  // pipe is non-blocking; a full pipe already wakes the loop
        (void)ignored;
    }
    errno = saved;
}

int csys_install_master_handlers(int write_fd) {
    master_pipe_fd = write_fd;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = master_handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    int sigs[] = {SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGCHLD};
    for (unsigned i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        if (sigaction(sigs[i], &sa, NULL) != 0) return -1;
    }
    signal(SIGPIPE, SIG_IGN);
    return 0;
}

// MARK: - task

static void unblock_master_only_signals(void);

int csys_install_task_handlers(void) {
    master_pipe_fd = -1;
    struct sigaction dfl;
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    int sigs[] = {SIGTERM, SIGINT, SIGQUIT, SIGCHLD};
    for (unsigned i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
        if (sigaction(sigs[i], &dfl, NULL) != 0) return -1;
    }
    signal(SIGHUP, SIG_IGN);
    signal(SIGUSR1, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    csys_block_stop_signals(0);
    unblock_master_only_signals();
    return 0;
}

// MARK: - worker

static volatile sig_atomic_t worker_stop = 0;
static volatile sig_atomic_t worker_reopen = 0;

static void worker_handler(int sig) {
    (void)sig;
    worker_stop = 1;
}

static void worker_reopen_handler(int sig) {
    (void)sig;
    worker_reopen = 1;
}

// The signals a worker takes only while it waits for a connection: the stop signals and
// USR1 (reopen the log). Blocked the rest of its life, so none interrupts a request.
static void worker_signal_set(sigset_t *set) {
    sigemptyset(set);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGQUIT);
    sigaddset(set, SIGUSR1);
}

int csys_install_worker_handlers(void) {
    master_pipe_fd = -1;
    struct sigaction dfl;
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(SIGCHLD, &dfl, NULL);
    signal(SIGHUP, SIG_IGN);  // reload is the master's business
    signal(SIGPIPE, SIG_IGN);

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = worker_handler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: accept() must return EINTR
    if (sigaction(SIGTERM, &sa, NULL) != 0) return -1;
    if (sigaction(SIGINT, &sa, NULL) != 0) return -1;
    if (sigaction(SIGQUIT, &sa, NULL) != 0) return -1;
    // The master forwards USR1 on log rotation: the default action would kill the worker.
    // Installed before FCGX_Init, which puts its own USR1 handler (libfcgi's "shutdown
    // pending" flag) only where it finds SIG_DFL, so ours stays.
    sa.sa_handler = worker_reopen_handler;
    if (sigaction(SIGUSR1, &sa, NULL) != 0) return -1;
    unblock_master_only_signals();
    return 0;
}

int csys_worker_should_stop(void) { return worker_stop != 0; }

int csys_worker_take_reopen(void) {
    // Only called outside the wait, where USR1 is blocked: no handler runs between the two.
    if (!worker_reopen) return 0;
    worker_reopen = 0;
    return 1;
}

void csys_block_stop_signals(int block) {
    sigset_t set;
    worker_signal_set(&set);
    sigprocmask(block ? SIG_BLOCK : SIG_UNBLOCK, &set, NULL);
}

// The master's own signals, which a child must never take with the master's handlers
// (they write to the master's self-pipe): blocked across fork, unblocked by the child
// once its own handlers are in place (a HUP pending then is dropped: SIG_IGN).
static void master_only_signal_set(sigset_t *set) {
    sigemptyset(set);
    sigaddset(set, SIGHUP);
    sigaddset(set, SIGCHLD);
}

void csys_block_fork_signals(int block) {
    sigset_t set;
    worker_signal_set(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGCHLD);
    sigprocmask(block ? SIG_BLOCK : SIG_UNBLOCK, &set, NULL);
}

static void unblock_master_only_signals(void) {
    sigset_t set;
    master_only_signal_set(&set);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
}

int csys_wait_readable(int fd) {
    sigset_t during;
    sigprocmask(SIG_SETMASK, NULL, &during);
    sigdelset(&during, SIGTERM);  // the members of worker_signal_set
    sigdelset(&during, SIGINT);
    sigdelset(&during, SIGQUIT);
    sigdelset(&during, SIGUSR1);
    struct pollfd p = {.fd = fd, .events = POLLIN, .revents = 0};
    int rc = ppoll(&p, 1, NULL, &during);
    if (rc < 0) return errno == EINTR ? 0 : -1;
    return 1;
}

int csys_die_with_parent(pid_t parent) {
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0) return -1;
    return getppid() == parent ? 0 : -1;  // the parent died before prctl: too late to be told
}

// MARK: - scoreboard
// Layout: slot[0] is a header whose `requests` is the pool-wide total, `hashing` the
// password-hashing places in use, `pid` and `state` the master's; workers use 1...count.

_Static_assert(sizeof(csys_slot) == 64, "a slot is one cache line; Swift reads its fields by name");

csys_slot *csys_scoreboard_create(int count) {
    size_t size = sizeof(csys_slot) * (size_t)(count + 1);
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    memset(p, 0, size);
    return (csys_slot *)p + 1;
}

void csys_slot_set_activity(csys_slot *board, int index, int32_t state, const char *endpoint, int64_t request_started_ms) {
    csys_slot *slot = &board[index];
    size_t n = endpoint ? strnlen(endpoint, CSYS_ENDPOINT_SIZE - 1) : 0;
    if (n > 0) memcpy(slot->endpoint, endpoint, n);
    memset(slot->endpoint + n, 0, CSYS_ENDPOINT_SIZE - n);
    __atomic_store_n(&slot->request_started_ms, request_started_ms, __ATOMIC_RELAXED);
    __atomic_store_n(&slot->state, state, __ATOMIC_RELEASE);
}

void csys_scoreboard_set_master(csys_slot *board, int32_t pid, int32_t state) {
    __atomic_store_n(&(board - 1)->pid, pid, __ATOMIC_RELAXED);
    __atomic_store_n(&(board - 1)->state, state, __ATOMIC_RELEASE);
}

int32_t csys_scoreboard_master_pid(csys_slot *board) { return __atomic_load_n(&(board - 1)->pid, __ATOMIC_RELAXED); }
int32_t csys_scoreboard_master_state(csys_slot *board) { return __atomic_load_n(&(board - 1)->state, __ATOMIC_ACQUIRE); }

void csys_scoreboard_add_request(csys_slot *board, int index) {
    __atomic_fetch_add(&board[index].requests, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&(board - 1)->requests, 1, __ATOMIC_RELAXED);
}

uint64_t csys_scoreboard_total(csys_slot *board) {
    return __atomic_load_n(&(board - 1)->requests, __ATOMIC_RELAXED);
}

// MARK: - password-hashing places
// A worker's flag goes up before the count and comes down after it, so a worker killed
// between the two steps can only leave the count one too low (one extra hash allowed),
// never a place lost for good; the master clears a dead worker's flag and gives its
// place back.

int csys_hash_enter(csys_slot *board, int index, int limit) {
    __atomic_store_n(&board[index].hashing, 1, __ATOMIC_SEQ_CST);
    int32_t n = __atomic_add_fetch(&(board - 1)->hashing, 1, __ATOMIC_SEQ_CST);
    if (n <= limit) return 1;
    __atomic_sub_fetch(&(board - 1)->hashing, 1, __ATOMIC_SEQ_CST);
    __atomic_store_n(&board[index].hashing, 0, __ATOMIC_SEQ_CST);
    return 0;
}

void csys_hash_leave(csys_slot *board, int index) {
    if (__atomic_load_n(&board[index].hashing, __ATOMIC_SEQ_CST) == 0) return;
    __atomic_sub_fetch(&(board - 1)->hashing, 1, __ATOMIC_SEQ_CST);
    __atomic_store_n(&board[index].hashing, 0, __ATOMIC_SEQ_CST);
}

void csys_hash_release_dead(csys_slot *board, int index) {
    if (__atomic_exchange_n(&board[index].hashing, 0, __ATOMIC_SEQ_CST) == 0) return;
    // Never below zero (the one-too-low case above).
    int32_t n = __atomic_load_n(&(board - 1)->hashing, __ATOMIC_SEQ_CST);
    while (n > 0 && !__atomic_compare_exchange_n(&(board - 1)->hashing, &n, n - 1, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {}
}

// MARK: - pool metrics
// A fold sequence (a seqlock with the master as its only writer) sits in a page of its own
// before block 0: odd while the master moves a reaped worker's block into block 0.

typedef struct { uint64_t seq; } metrics_fold_seq;

static metrics_fold_seq *fold_seq_of(csys_metrics *blocks) {
    return (metrics_fold_seq *)((char *)blocks - 4096);
}

csys_metrics *csys_metrics_create(int count) {
    size_t size = 4096 + sizeof(csys_metrics) * (size_t)(count + 1);
    // Fresh anonymous pages are zero; untouched slots never cost memory.
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    return (csys_metrics *)((char *)p + 4096);
}

void csys_metrics_observe(csys_metrics *block, int endpoint, int status_class, int bucket, uint64_t duration_us) {
    if (endpoint < 0 || endpoint >= CSYS_METRIC_ENDPOINTS) return;
    if (status_class >= 0 && status_class < CSYS_METRIC_STATUS_CLASSES)
        __atomic_fetch_add(&block->requests[endpoint][status_class], 1, __ATOMIC_RELAXED);
    if (bucket >= 0 && bucket < CSYS_METRIC_BUCKETS)
        __atomic_fetch_add(&block->duration_buckets[endpoint][bucket], 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&block->duration_sum_us[endpoint], duration_us, __ATOMIC_RELAXED);
}

void csys_metrics_count(csys_metrics *block, int event) {
    if (event < 0 || event >= CSYS_METRIC_EVENTS) return;
    __atomic_fetch_add(&block->events[event], 1, __ATOMIC_RELAXED);
}

void csys_metrics_count_restart(csys_metrics *blocks, int reason) {
    if (reason < 0 || reason > 1) return;
    __atomic_fetch_add(&blocks[0].worker_restarts[reason], 1, __ATOMIC_RELAXED);
}

void csys_metrics_fold(csys_metrics *blocks, int index) {
    metrics_fold_seq *seq = fold_seq_of(blocks);
    uint64_t *from = (uint64_t *)&blocks[index];
    uint64_t *into = (uint64_t *)&blocks[0];
    size_t n = sizeof(csys_metrics) / sizeof(uint64_t);
    __atomic_fetch_add(&seq->seq, 1, __ATOMIC_SEQ_CST);
    for (size_t i = 0; i < n; i++) {
        uint64_t v = __atomic_exchange_n(&from[i], 0, __ATOMIC_RELAXED);
        if (v) __atomic_fetch_add(&into[i], v, __ATOMIC_RELAXED);
    }
    __atomic_fetch_add(&seq->seq, 1, __ATOMIC_SEQ_CST);
}

void csys_metrics_sum(csys_metrics *blocks, int count, const uint8_t *live, csys_metrics *out) {
    metrics_fold_seq *seq = fold_seq_of(blocks);
    size_t n = sizeof(csys_metrics) / sizeof(uint64_t);
    for (;;) {
        uint64_t before = __atomic_load_n(&seq->seq, __ATOMIC_SEQ_CST);
        if (before & 1) { sched_yield(); continue; }
        uint64_t *sum = (uint64_t *)out;
        memset(out, 0, sizeof(*out));
        for (int b = 0; b <= count; b++) {
            if (b > 0 && !live[b]) continue;
            const uint64_t *from = (const uint64_t *)&blocks[b];
            for (size_t i = 0; i < n; i++) sum[i] += __atomic_load_n(&from[i], __ATOMIC_RELAXED);
        }
        if (__atomic_load_n(&seq->seq, __ATOMIC_SEQ_CST) == before) return;
    }
}

// MARK: - background CPU priority
// A nice value belongs to a thread on Linux: the hash runs on a short-lived thread of its
// own, so the worker itself never needs the privilege to lower its nice value again.

struct background_job { csys_work_fn fn; void *ctx; int nice; };

static void *background_main(void *p) {
    struct background_job *job = p;
    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), job->nice);
    job->fn(job->ctx);
    return NULL;
}

int csys_run_in_background(csys_work_fn fn, void *ctx, int nice) {
    struct background_job job = {fn, ctx, nice};
    pthread_t thread;
    if (pthread_create(&thread, NULL, background_main, &job) != 0) {
        fn(ctx);
        return 0;
    }
    pthread_join(thread, NULL);
    return 1;
}

// pipe2 is a GNU extension that Glibc's Swift overlay does not import.
int csys_self_pipe(int fds[2]) { return pipe2(fds, O_NONBLOCK | O_CLOEXEC); }

// MARK: - write gate

void *csys_write_gate_create(void) {
    void *p = mmap(NULL, sizeof(pthread_mutex_t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    pthread_mutexattr_t attr;
    pthread_mutexattr_init(&attr);
    pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    // A worker killed while holding the gate must not stall the others forever.
    pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    int rc = pthread_mutex_init((pthread_mutex_t *)p, &attr);
    pthread_mutexattr_destroy(&attr);
    if (rc != 0) { munmap(p, sizeof(pthread_mutex_t)); return NULL; }
    return p;
}

int csys_write_gate_lock(void *gate, int timeout_ms) {
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);  // pthread_mutex_timedlock's clock
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) { deadline.tv_sec += 1; deadline.tv_nsec -= 1000000000L; }
    int rc = pthread_mutex_timedlock((pthread_mutex_t *)gate, &deadline);
    if (rc == EOWNERDEAD) {
        // The previous holder died mid-transaction; SQLite already rolled its work back.
        pthread_mutex_consistent((pthread_mutex_t *)gate);
        return 1;
    }
    return rc == 0;
}

void csys_write_gate_unlock(void *gate) { pthread_mutex_unlock((pthread_mutex_t *)gate); }

void csys_keep_freed_heap(int bytes) { mallopt(M_TRIM_THRESHOLD, bytes); }
