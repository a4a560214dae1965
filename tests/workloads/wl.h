/* wl.h: shared helpers for cryo test workloads (ready/go protocol, checks, and
 * the fd, data, signal and thread helpers several workloads use). */
#ifndef CRYO_WL_H
#define CRYO_WL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ---- protocol and checks ---- */

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
/* Waits for child KID and checks NAME: it exited with status 0 (the
 * message names what waitpid gave: its error, or the status). */
bool wl_check_child(const char *name, pid_t kid);
/* Prints "wl: not covered NAME: detail": a case this machine cannot test
 * (the harness names it next to PASS, never counts it as passed). */
void wl_not_covered(const char *name, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Exits 0 if no check failed, 1 otherwise. */
void wl_done(void) __attribute__((noreturn));
/* Dies at once with a FAIL line (setup errors). */
void wl_die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
/* Monotonic time in seconds. */
double wl_now(void);
/* Checks an elapsed time EL (seconds) of a sleep or wait: "PREFIX_not_early"
 * that EL >= MIN and "PREFIX_not_late" that EL < MAX. */
void wl_check_elapsed(const char *prefix, double el, double min, double max);

/* ---- the checkpoint, as the workload sees it ---- */

/* Whether this run is restored from its checkpoint (the harness's WL_MODE is
 * restore or restore-san) rather than left running by the dump (-R). */
bool wl_restored(void);
/* Starts a thread that reads the clock every 2 ms, so that the workload
 * can tell when it was frozen and when it ran again (wl_gap). */
void wl_gap_watch(void);
/* The longest stretch the watcher went without a tick, the checkpoint: the
 * last tick before it in *START, the first after it in *END (CLOCK_MONOTONIC
 * seconds, as wl_now). False if it never went 5 ms without one. */
bool wl_gap(double *start, double *end);
/* Checks NAME: the time AT is within 100 ms of WANT ("NAME: at +X s, expected
 * +Y s", both after BASE). */
bool wl_check_near(const char *name, double at, double want, double base);

/* ---- test data ---- */

/* Byte I of the data pattern SEED: a hash of (SEED, I), so that distinct seeds
 * give distinct streams and a lost, repeated or moved run of bytes is seen. */
unsigned char wl_pat(int seed, size_t i);
/* Fills BUF with the first N bytes of pattern SEED. */
void wl_fill(void *buf, size_t n, int seed);
/* Index of the first of the N bytes at BUF that is not pattern SEED; N if none. */
size_t wl_first_bad(const void *buf, size_t n, int seed);
/* Checks NAME: the N bytes at BUF are pattern SEED ("byte I is X, expected Y"). */
bool wl_check_pattern(const char *name, const void *buf, size_t n, int seed);
/* Writes the first N bytes of pattern SEED to FD (all of them, in as many
 * writes as it takes); false with errno set if it could not. */
bool wl_write_pattern(int fd, size_t n, int seed);
/* Reads the N bytes queued in FD (blocking or not, until N or EOF) and checks
 * "NAME_len" that all N came, "NAME_data" that they are pattern SEED and
 * "NAME_empty" that nothing more is queued (poll). */
void wl_check_queued(const char *name, int fd, size_t n, int seed);

/* ---- files and fds ---- */

/* Creates (or truncates) PATH with mode MODE holding the LEN bytes at DATA,
 * and closes it; dies on failure. */
void wl_mkfile(const char *path, const void *data, size_t len, mode_t mode);
/* Reads LEN bytes from FD into BUF, in as many reads as it takes, stopping
 * early only at EOF: the number read, or -errno if a read failed. */
ssize_t wl_read_full(int fd, void *buf, size_t len);
/* Writes the LEN bytes at BUF to FD, in as many writes as it takes: LEN, or
 * -errno if a write failed (-EIO if one wrote nothing). */
ssize_t wl_write_full(int fd, const void *buf, size_t len);
/* Reads one 8-byte counter (eventfd, timerfd) from FD: its value, or -errno. */
int64_t wl_read_u64(int fd);
/* The target of /proc/self/fd/FD, into BUF of size LEN ("" if unreadable). */
void wl_fd_link(int fd, char *buf, size_t len);
/* Polls FD once for EVENTS without waiting: the revents (0: none), or -errno. */
int wl_revents(int fd, short events);
/* FIONREAD of FD (bytes queued to read), or -errno. */
int wl_fionread(int fd);
/* The int socket option OPT (level SOL_SOCKET) of FD, or -errno. */
int wl_sockopt(int fd, int opt);
/* Sets the int socket option LEVEL/OPT of FD to V, or dies. */
void wl_setopt(int fd, int level, int opt, int v);
/* Checks NAME: the int socket option LEVEL/OPT of FD is WANT (the message
 * names what it is, or getsockopt's error). */
bool wl_check_opt(const char *name, int fd, int level, int opt, int want);
/* Checks NAME: the F_GETFL flags of FD, masked with MASK, are exactly WANT. */
bool wl_check_fl(const char *name, int fd, int mask, int want);
/* Checks NAME: the F_GETFD flags of FD are exactly WANT (FD_CLOEXEC or 0). */
bool wl_check_fdfl(const char *name, int fd, int want);
/* Checks "NAME_getfl": the access mode and O_NONBLOCK of FD are WANT_FL, and
 * "NAME_getfd": its F_GETFD flags are exactly WANT_FD. */
void wl_check_fd_flags(const char *name, int fd, int want_fl, int want_fd);

/* ---- /proc/self/fdinfo ---- */

/* Reads /proc/self/fdinfo/FD into BUF of size LEN, NUL-terminated: its
 * length, or -1 if it cannot be read. */
int wl_fdinfo(int fd, char *buf, size_t len);
/* The number after KEY (e.g. "sigmask:") in /proc/self/fdinfo/FD, read in
 * BASE as by strtoull, or -1 if the file or the key is missing. */
long long wl_fdinfo_num(int fd, const char *key, int base);
/* The table of /proc/self/fdinfo/FD (epoll targets, inotify watches...): each
 * line that sscanf FMT fully matches, with NVALS (1 to 4) conversions all into
 * unsigned long long (%llx, %llu; skip others with %*), becomes its values in
 * hex joined by '/'; these are sorted and joined by ' ' into OUT of size LEN,
 * so two tables taken at different times compare with strcmp whatever order
 * the kernel lists them in. Returns the number of lines, or -1 if the file
 * cannot be read or OUT is too small. */
int wl_fdinfo_table(int fd, const char *fmt, int nvals, char *out, size_t len);
/* Checks NAME: the wl_fdinfo_table of FD for FMT and NVALS is now readable,
 * has NB lines and equals BEFORE, the table taken with them earlier. */
bool wl_check_fdinfo_table(const char *name, int fd, const char *fmt, int nvals, const char *before,
			   int nb);

/* ---- signals and threads ---- */

/* Installs HANDLER for SIG with SA_RESTART and an empty mask; dies on failure. */
void wl_on_signal(int sig, void (*handler)(int));
/* Arms a one-shot ITIMER_REAL (SIGALRM) to fire in SECONDS; dies on failure. */
void wl_alarm_in(double seconds);
/* For a workload checkpointed in a call that a SIGALRM handler ends:
 * installs HANDLER for SIGALRM (wl_on_signal), creates `ready`, then arms
 * the alarm for SECONDS (wl_alarm_in); returns wl_now() taken just before
 * arming it, to measure the elapsed time from. */
double wl_ready_alarm(void (*handler)(int), double seconds);
/* Waits until *COUNT, read under M, is at least WANT, polling every 1 ms
 * (e.g. until every thread has started and is about to block). */
void wl_wait_count(pthread_mutex_t *m, const int *count, int want);
/* Sets *FLAG to 1 under M and wakes every waiter of C. */
void wl_broadcast_flag(pthread_mutex_t *m, pthread_cond_t *c, int *flag);

/* Waits up to 10 s (1 ms steps) for *word to hold want (it is written by
 * another process or thread, through shared memory); returns whether it does. */
bool wl_wait_u32(volatile uint32_t *word, uint32_t want);

/* Shared memory between the root and one child. mem (size bytes, MAP_SHARED
 * or attached) is split in two halves after a 64-byte control block: the
 * root fills the first with wl_fill(seed 1), a child forked here the second
 * (seed 2). wl_share_start returns the child's pid once both halves are
 * written; after `go` the child checks both halves, writes a token and waits
 * for the root's answer, and its exit status tells. wl_share_check, in the
 * root after `go`, checks both halves through mem and through view (another
 * mapping of the same memory, or mem), answers the token and reaps the child. */
pid_t wl_share_start(unsigned char *mem, size_t size);
void wl_share_check(const unsigned char *mem, const unsigned char *view, size_t size, pid_t kid);

/* Forks a child that runs setup(arg) (nonzero: it failed, the child exits
 * 2), tells the parent it is set up, then runs body(arg), which must not
 * return (NULL: it pauses until killed). Returns its pid once it is set up;
 * dies if the child could not be made or set up. */
pid_t wl_fork_ready(int (*setup)(void *), void (*body)(void *), void *arg);

/* ---- inotify ---- */

struct wl_inotify_events {
	int n;
	struct {
		int wd;
		unsigned mask;
		char name[32];
	} ev[64];
};
/* inotify_add_watch of NAME in the initial work dir; dies on failure. */
int wl_inotify_watch(int in, const char *name, unsigned mask);
/* Reads every event queued on the inotify fd, waiting up to 100 ms for each
 * read (the first 64 kept). */
void wl_inotify_collect(int fd, struct wl_inotify_events *s);

/* ---- unix sockets ---- */

struct sockaddr_un;
/* Fills SA with the path NAME, or the abstract name NAME if ABSTRACT: the
 * address length to pass to bind or connect. */
unsigned wl_unix_addr(struct sockaddr_un *sa, const char *name, bool abstract);
/* Checks NAME: getsockname (getpeername if PEER) of FD is the address SA of
 * length LEN. */
bool wl_check_unix_name(const char *name, int fd, bool peer, const struct sockaddr_un *sa,
			unsigned len);
/* Sends the LEN bytes at DATA on SK with FD attached (SCM_RIGHTS); dies on
 * failure. */
void wl_send_fd(int sk, const void *data, size_t len, int fd);

#endif
