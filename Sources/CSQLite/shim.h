#ifndef GATEHOUSE_CSQLITE_SHIM_H
#define GATEHOUSE_CSQLITE_SHIM_H
#include <sqlite3.h>
#include <stdint.h>
#include <time.h>

/// SQLITE_TRANSIENT is a macro casting -1 to a function pointer, which Swift cannot import.
/// It makes SQLite copy bound text and blobs before the call returns.
static inline sqlite3_destructor_type csqlite_transient(void) { return SQLITE_TRANSIENT; }

static inline int64_t csqlite_monotonic_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/// Busy handler state: when the first wait began, and the limit.
typedef struct { int64_t started_us; int64_t timeout_us; } csqlite_busy_state;

/// sqlite3_busy_timeout's handler sleeps 1, 2, 5, 10 ... 100 ms between retries, so a
/// writer that just missed a lock held for 0.2 ms waits far longer than needed, which is
/// the p99 of every write endpoint with several workers. This one retries after 50 µs,
/// growing to 1 ms, until `timeout_us` has passed since the first retry of this wait.
/// https://www.sqlite.org/c3ref/busy_handler.html
static inline int csqlite_busy_handler(void *arg, int count) {
    csqlite_busy_state *state = (csqlite_busy_state *)arg;
    int64_t now = csqlite_monotonic_us();
    if (count == 0) state->started_us = now;
    if (now - state->started_us >= state->timeout_us) return 0;  // give up: SQLITE_BUSY
    int64_t sleep_us = 50 << (count < 5 ? count : 5);              // 50 µs ... 1.6 ms
    if (sleep_us > 1000) sleep_us = 1000;
    struct timespec ts = { 0, (long)(sleep_us * 1000) };
    nanosleep(&ts, NULL);
    return 1;
}

/// Installs `csqlite_busy_handler` with `state` (owned by the caller for the connection's life).
static inline int csqlite_set_busy_handler(sqlite3 *db, csqlite_busy_state *state) {
    return sqlite3_busy_handler(db, csqlite_busy_handler, state);
}
#endif
