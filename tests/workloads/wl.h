/* wl.h: shared helpers for cryo test workloads (ready/go protocol and checks). */
#ifndef CRYO_WL_H
#define CRYO_WL_H

#include <stdbool.h>
#include <stddef.h>

/* Captures the initial cwd (where `ready` and `go` live) and makes stdout and
 * stderr unbuffered. Called implicitly by the other helpers if not called. */
void wl_init(void);
/* Absolute path of NAME in the initial work dir (static buffer per call site:
 * copies into BUF of size LEN and returns BUF). */
char *wl_path(const char *name, char *buf, size_t len);
/* Creates `ready` in the initial work dir; leaves no fd open. */
void wl_ready(void);
/* Polls for `go` in the initial work dir with nanosleep(5 ms). */
void wl_wait_go(void);
/* Prints "wl: check NAME ok" or "wl: FAIL NAME: detail"; returns cond. */
bool wl_check(const char *name, bool cond, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Number of failed checks so far. */
int wl_failures(void);
/* Exits 0 if no check failed, 1 otherwise. */
void wl_done(void) __attribute__((noreturn));
/* Dies at once with a FAIL line (setup errors). */
void wl_die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
/* Monotonic time in seconds. */
double wl_now(void);

#endif
