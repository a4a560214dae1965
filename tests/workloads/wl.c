/* wl.c: shared helpers for cryo test workloads (ready/go protocol and checks). */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char wl_dir[PATH_MAX];
static int wl_inited;
static int wl_fail_count;

void wl_init(void)
{
	if (wl_inited)
		return;
	wl_inited = 1;
	setvbuf(stdout, NULL, _IONBF, 0);
	setvbuf(stderr, NULL, _IONBF, 0);
	if (!getcwd(wl_dir, sizeof(wl_dir)))
		wl_die("getcwd: %s", strerror(errno));
}

char *wl_path(const char *name, char *buf, size_t len)
{
	wl_init();
	snprintf(buf, len, "%s/%s", wl_dir, name);
	return buf;
}

void wl_ready(void)
{
	char p[PATH_MAX + 16];
	int fd;

	wl_path("ready", p, sizeof(p));
	fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		wl_die("create %s: %s", p, strerror(errno));
	close(fd);
}

void wl_wait_go(void)
{
	char p[PATH_MAX + 16];
	struct timespec ts = {0, 5 * 1000 * 1000};
	struct stat st;

	wl_path("go", p, sizeof(p));
	/* stat, not access: access() uses the real uid, which a workload may drop */
	while (stat(p, &st) != 0)
		nanosleep(&ts, NULL);
}

bool wl_check(const char *name, bool cond, const char *fmt, ...)
{
	va_list ap;

	wl_init();
	if (cond) {
		printf("wl: check %s ok\n", name);
		return true;
	}
	wl_fail_count++;
	printf("wl: FAIL %s: ", name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	return false;
}

int wl_failures(void)
{
	return wl_fail_count;
}

void wl_done(void)
{
	wl_init();
	printf("wl: done, %d failure(s)\n", wl_fail_count);
	exit(wl_fail_count ? 1 : 0);
}

void wl_die(const char *fmt, ...)
{
	va_list ap;

	setvbuf(stdout, NULL, _IONBF, 0);
	printf("wl: FAIL setup: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	exit(2);
}

double wl_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}
