/*
 * Logging: one error line per failure, reported once, at the top.
 *
 * Code deep in the stack records what went wrong with err_set()/pr_perror-
 * style helpers that return -1; callers add context with err_wrap() as the
 * error travels up, and the command prints the single resulting line.
 * Informational output goes through pr_info()/pr_debug() and only appears
 * with -v; every line carries a timestamp relative to the start.
 */
#ifndef CRYO_LOG_H
#define CRYO_LOG_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>

/* LOG_NOTE: always printed, untagged (cryo run's own lines) */
enum { LOG_NOTE = -1, LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

int log_init(int verbosity, const char *log_file);
void log_fini(void);
/* In a process forked by cryo: lets go of cryo's log; with pid (restore
 * --log-pid) logs to LOG_FILE.PID from then on (nothing without a file). */
void log_child(int pid);
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Whether the log goes to a terminal, at most warnings: a progress line
 * may be shown then. */
bool log_on_terminal(void);
/* Shows line as the progress line (rewritten in place), or clears it (NULL). */
void log_progress(const char *line);

#define pr_note(...)  log_msg(LOG_NOTE, __VA_ARGS__)
#define pr_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define pr_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define pr_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

/* Record the error message (replacing any earlier one); returns -1. */
int err_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Record the message followed by ": strerror(errno)"; returns -1. */
int err_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prefix the recorded error with more context ("restoring pid 5: ..."); returns -1. */
int err_wrap(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Is an error recorded and not yet reported? */
int err_pending(void);
/* The recorded error, or "unknown error". */
const char *err_text(void);
/* Forget the recorded error (a failure that turned out to be expected). */
void err_clear(void);
/* The pending error, put aside while a cleanup that may fail itself runs
 * (its failures are warnings), then put back as the one to report. */
struct err_stash {
	char text[1024];
};
void err_stash(struct err_stash *s);
void err_unstash(const struct err_stash *s);
/* Print "cryo: <error>" once to stderr (and the log file); clears it. */
void err_report(void);

/* Monotonic microseconds since log_init(), for timings and stats. */
unsigned long long now_us(void);

#endif
