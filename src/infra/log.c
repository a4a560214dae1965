/*
 * Logging and error reporting.
 *
 * Messages at or below the chosen verbosity go to stderr or to the -o log
 * file, each prefixed with the time since start. Errors follow one rule: the
 * place that fails records a message (err_set/err_errno), callers prepend
 * context (err_wrap), and only the command's top level prints it, once.
 * This file holds the only process-wide state in cryo: the log sink, set up
 * once per command, and the pending error text, which is per thread (the
 * page writer's thread records its own; only errno crosses to the caller).
 *
 * A progress line (log_progress) is one line of stderr rewritten in place,
 * only when the log goes to a terminal; a log line printed meanwhile first
 * clears it. Both write under stderr's stdio lock, which also guards
 * progress_shown.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "infra/log.h"

#define ERR_MAX 1024

static struct {
	int verbosity;
	FILE *file; /* NULL: stderr */
	unsigned long long start_us;
	bool progress_shown; /* under stderr's lock */
	char path[4096];     /* the log file's, for log_child */
} log_state;

static __thread char err_buf[ERR_MAX];

static unsigned long long monotonic_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000ULL + ts.tv_nsec / 1000;
}

unsigned long long now_us(void)
{
	return monotonic_us() - log_state.start_us;
}

int log_init(int verbosity, const char *log_file)
{
	log_state.verbosity = verbosity;
	log_state.start_us = monotonic_us();
	err_buf[0] = '\0';
	log_state.file = NULL;
	log_state.path[0] = 0;
	if (log_file && strcmp(log_file, "-") != 0) {
		snprintf(log_state.path, sizeof(log_state.path), "%s", log_file);
		log_state.file = fopen(log_file, "we");
		if (!log_state.file)
			return err_errno("cannot open log file %s", log_file);
		setvbuf(log_state.file, NULL, _IOLBF, 0);
	}
	return 0;
}

void log_fini(void)
{
	if (log_state.file)
		fclose(log_state.file);
	log_state.file = NULL;
}

void log_child(int pid)
{
	char name[sizeof(log_state.path) + 16];

	log_fini();
	if (!pid || !log_state.path[0])
		return;
	snprintf(name, sizeof(name), "%s.%d", log_state.path, pid);
	log_state.file = fopen(name, "we");
	if (log_state.file)
		setvbuf(log_state.file, NULL, _IOLBF, 0);
	pr_info("pid %d: its own part of the restore logs here", pid);
}

static FILE *log_sink(void)
{
	return log_state.file ? log_state.file : stderr;
}

void log_msg(int level, const char *fmt, ...)
{
	static const char *const tags[] = {"Error", "Warn", "", ""};
	unsigned long long t = now_us();
	va_list ap;

	if (level > log_state.verbosity || !fmt)
		return;
	FILE *out = log_sink();
	flockfile(out);
	if (out == stderr && log_state.progress_shown) {
		fputs("\r\033[K", out);
		log_state.progress_shown = false;
	}
	fprintf(out, "(%02llu.%06llu) ", t / 1000000, t % 1000000);
	if (level >= LOG_ERROR && level <= LOG_WARN)
		fprintf(out, "%s: ", tags[level]);
	va_start(ap, fmt);
	vfprintf(out, fmt, ap);
	va_end(ap);
	fputc('\n', out);
	funlockfile(out);
}

bool log_on_terminal(void)
{
	return !log_state.file && log_state.verbosity <= LOG_WARN && isatty(STDERR_FILENO);
}

void log_progress(const char *line)
{
	flockfile(stderr);
	if (line)
		fprintf(stderr, "\r\033[K%s", line);
	else if (log_state.progress_shown)
		fputs("\r\033[K", stderr);
	log_state.progress_shown = line != NULL;
	fflush(stderr);
	funlockfile(stderr);
}

/* Copies src into the error buffer, cut to fit. */
static void err_store(const char *src)
{
	size_t n = strnlen(src, ERR_MAX - 1);

	memcpy(err_buf, src, n);
	err_buf[n] = '\0';
}

int err_set(const char *fmt, ...)
{
	char msg[ERR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	err_store(msg);
	return -1;
}

int err_errno(const char *fmt, ...)
{
	const char *why = strerror(errno);
	char msg[ERR_MAX], full[2 * ERR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(full, sizeof(full), "%s: %s", msg, why);
	err_store(full);
	return -1;
}

int err_wrap(const char *fmt, ...)
{
	char prefix[ERR_MAX], full[2 * ERR_MAX + 8];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	snprintf(full, sizeof(full), "%s: %s", prefix, err_text());
	err_store(full);
	return -1;
}

int err_pending(void)
{
	return err_buf[0] != '\0';
}

const char *err_text(void)
{
	return err_buf[0] ? err_buf : "unknown error";
}

void err_clear(void)
{
	err_buf[0] = '\0';
}

void err_stash(struct err_stash *s)
{
	_Static_assert(sizeof(s->text) == ERR_MAX, "an error fits its stash");
	memcpy(s->text, err_buf, ERR_MAX);
	err_buf[0] = '\0';
}

void err_unstash(const struct err_stash *s)
{
	memcpy(err_buf, s->text, ERR_MAX);
}

void err_report(void)
{
	fprintf(stderr, "cryo: %s\n", err_text());
	if (log_state.file)
		fprintf(log_state.file, "Error: %s\n", err_text());
	err_buf[0] = '\0';
}
