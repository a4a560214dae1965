/* wl.c: shared helpers for cryo test workloads (ready/go protocol, checks, and
 * the fd, data, signal and thread helpers several workloads use). */
#include "wl.h"

#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
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

void wl_check_elapsed(const char *prefix, double el, double min, double max)
{
	char name[64];

	snprintf(name, sizeof(name), "%s_not_early", prefix);
	wl_check(name, el >= min, "returned after %.3f s, expected at least %.3f s", el, min);
	snprintf(name, sizeof(name), "%s_not_late", prefix);
	wl_check(name, el < max, "returned after %.3f s, expected under %.3f s", el, max);
}

void wl_not_covered(const char *name, const char *fmt, ...)
{
	va_list ap;

	printf("wl: not covered %s: ", name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

/* ---- the checkpoint, as the workload sees it ---- */

bool wl_restored(void)
{
	const char *mode = getenv("WL_MODE");

	return mode && !strncmp(mode, "restore", 7);
}

static struct {
	pthread_mutex_t lock;
	double start, end;
} wl_gap_seen = {PTHREAD_MUTEX_INITIALIZER, 0, 0};

static void *gap_watcher(void *arg)
{
	struct timespec tick = {0, 2 * 1000 * 1000};
	double last = wl_now();

	(void)arg;
	for (;;) {
		nanosleep(&tick, NULL);
		double now = wl_now();
		pthread_mutex_lock(&wl_gap_seen.lock);
		if (now - last > wl_gap_seen.end - wl_gap_seen.start) {
			wl_gap_seen.start = last;
			wl_gap_seen.end = now;
		}
		pthread_mutex_unlock(&wl_gap_seen.lock);
		last = now;
	}
	return NULL;
}

void wl_gap_watch(void)
{
	pthread_t t;

	if (pthread_create(&t, NULL, gap_watcher, NULL))
		wl_die("pthread_create: cannot start the gap watcher");
	pthread_detach(t);
}

bool wl_gap(double *start, double *end)
{
	pthread_mutex_lock(&wl_gap_seen.lock);
	*start = wl_gap_seen.start;
	*end = wl_gap_seen.end;
	pthread_mutex_unlock(&wl_gap_seen.lock);
	return *end - *start > 0.005;
}

bool wl_check_near(const char *name, double at, double want, double base)
{
	return wl_check(name, at > want - 0.1 && at < want + 0.1, "at +%.3f s, expected +%.3f s",
			at - base, want - base);
}

/* ---- test data ---- */

unsigned char wl_pat(int seed, size_t i)
{
	/* splitmix64's finalizer over (seed, i); + 1 keeps (0, 0) off the all-zero input */
	uint64_t x = ((uint64_t)i + ((uint64_t)(unsigned)seed << 40) + 1) * 0x9e3779b97f4a7c15ULL;

	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return (unsigned char)(x ^ (x >> 31));
}

void wl_fill(void *buf, size_t n, int seed)
{
	unsigned char *b = buf;

	for (size_t i = 0; i < n; i++)
		b[i] = wl_pat(seed, i);
}

size_t wl_first_bad(const void *buf, size_t n, int seed)
{
	const unsigned char *b = buf;
	size_t i = 0;

	while (i < n && b[i] == wl_pat(seed, i))
		i++;
	return i;
}

bool wl_check_pattern(const char *name, const void *buf, size_t n, int seed)
{
	size_t i = wl_first_bad(buf, n, seed);

	return wl_check(name, i == n, "byte %zu of %zu is %#x, expected %#x", i, n,
			i < n ? ((const unsigned char *)buf)[i] : 0, i < n ? wl_pat(seed, i) : 0);
}

bool wl_write_pattern(int fd, size_t n, int seed)
{
	unsigned char *buf = malloc(n ? n : 1);
	ssize_t r;

	if (!buf)
		wl_die("malloc %zu: %s", n, strerror(errno));
	wl_fill(buf, n, seed);
	r = wl_write_full(fd, buf, n);
	free(buf);
	if (r < 0)
		errno = (int)-r;
	return r == (ssize_t)n;
}

void wl_check_queued(const char *name, int fd, size_t n, int seed)
{
	unsigned char *buf = calloc(1, n ? n : 1);
	char tag[64];
	ssize_t got;
	int ev;

	if (!buf)
		wl_die("malloc %zu: %s", n, strerror(errno));
	got = wl_read_full(fd, buf, n);
	snprintf(tag, sizeof(tag), "%s_len", name);
	wl_check(tag, got == (ssize_t)n, "read %zd of %zu bytes from fd %d (%s)", got, n, fd,
		 got < 0 ? strerror((int)-got) : "EOF or short");
	snprintf(tag, sizeof(tag), "%s_data", name);
	wl_check_pattern(tag, buf, n, seed);
	snprintf(tag, sizeof(tag), "%s_empty", name);
	ev = wl_revents(fd, POLLIN);
	wl_check(tag, ev == 0, "fd %d still has revents %#x after its %zu bytes: extra data", fd,
		 ev, n);
	free(buf);
}

/* ---- files and fds ---- */

void wl_mkfile(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	ssize_t r = fd < 0 ? -errno : wl_write_full(fd, data, len);

	if (r != (ssize_t)len || close(fd))
		wl_die("create %s: %s", path, strerror(r < 0 ? (int)-r : errno));
}

ssize_t wl_read_full(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t r = read(fd, (char *)buf + got, len - got);
		if (r < 0)
			return -errno;
		if (r == 0)
			break;
		got += r;
	}
	return got;
}

ssize_t wl_write_full(int fd, const void *buf, size_t len)
{
	size_t put = 0;

	while (put < len) {
		ssize_t r = write(fd, (const char *)buf + put, len - put);
		if (r < 0)
			return -errno;
		if (r == 0)
			return -EIO;
		put += r;
	}
	return put;
}

int64_t wl_read_u64(int fd)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) != sizeof(v))
		return -errno;
	return (int64_t)v;
}

void wl_fd_link(int fd, char *buf, size_t len)
{
	char p[64];
	ssize_t n;

	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	n = readlink(p, buf, len - 1);
	buf[n < 0 ? 0 : n] = 0;
}

int wl_revents(int fd, short events)
{
	struct pollfd pf = {.fd = fd, .events = events};
	int r = poll(&pf, 1, 0);

	return r < 0 ? -errno : pf.revents;
}

int wl_fionread(int fd)
{
	int n;

	return ioctl(fd, FIONREAD, &n) < 0 ? -errno : n;
}

int wl_sockopt(int fd, int opt)
{
	int v = -12345;
	socklen_t len = sizeof(v);

	if (getsockopt(fd, SOL_SOCKET, opt, &v, &len))
		return -errno;
	return v;
}

void wl_setopt(int fd, int level, int opt, int v)
{
	if (setsockopt(fd, level, opt, &v, sizeof(v)))
		wl_die("setsockopt %d/%d: %s", level, opt, strerror(errno));
}

bool wl_check_opt(const char *name, int fd, int level, int opt, int want)
{
	int v = -12345;
	socklen_t len = sizeof(v);

	if (getsockopt(fd, level, opt, &v, &len))
		return wl_check(name, false, "getsockopt %d/%d: %s", level, opt, strerror(errno));
	return wl_check(name, v == want, "%d, expected %d", v, want);
}

bool wl_check_fl(const char *name, int fd, int mask, int want)
{
	int fl = fcntl(fd, F_GETFL);

	return wl_check(name, fl >= 0 && (fl & mask) == want,
			"fd %d F_GETFL %#o (%#o under mask %#o), expected %#o", fd, fl, fl & mask,
			mask, want);
}

bool wl_check_fdfl(const char *name, int fd, int want)
{
	int fl = fcntl(fd, F_GETFD);

	return wl_check(name, fl == want, "fd %d F_GETFD %d, expected %d", fd, fl, want);
}

void wl_check_fd_flags(const char *name, int fd, int want_fl, int want_fd)
{
	char n[64];

	snprintf(n, sizeof(n), "%s_getfl", name);
	wl_check_fl(n, fd, O_ACCMODE | O_NONBLOCK, want_fl);
	snprintf(n, sizeof(n), "%s_getfd", name);
	wl_check_fdfl(n, fd, want_fd);
}

/* ---- /proc/self/fdinfo ---- */

int wl_fdinfo(int fd, char *buf, size_t len)
{
	char p[64];
	FILE *f;
	size_t n;

	snprintf(p, sizeof(p), "/proc/self/fdinfo/%d", fd);
	f = fopen(p, "r");
	if (!f)
		return -1;
	n = fread(buf, 1, len - 1, f);
	fclose(f);
	buf[n] = 0;
	return (int)n;
}

long long wl_fdinfo_num(int fd, const char *key, int base)
{
	char buf[4096], *s;

	if (wl_fdinfo(fd, buf, sizeof(buf)) < 0)
		return -1;
	s = strstr(buf, key);
	return s ? (long long)strtoull(s + strlen(key), NULL, base) : -1;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int wl_fdinfo_table(int fd, const char *fmt, int nvals, char *out, size_t len)
{
	char info[16384], *cur = info, *line, *rows[256], text[256 * 72], *t = text;
	unsigned long long v[4];
	size_t pos = 0;
	int n = 0;

	if (nvals < 1 || nvals > 4 || len == 0)
		wl_die("wl_fdinfo_table: bad arguments");
	out[0] = 0;
	if (wl_fdinfo(fd, info, sizeof(info)) < 0 || strlen(info) == sizeof(info) - 1)
		return -1;
	while ((line = strsep(&cur, "\n"))) {
		if (sscanf(line, fmt, &v[0], &v[1], &v[2], &v[3]) != nvals)
			continue;
		if (n == 256)
			return -1;
		rows[n++] = t;
		for (int i = 0; i < nvals; i++)
			t += sprintf(t, i ? "/%llx" : "%llx", v[i]);
		*t++ = 0;
	}
	qsort(rows, n, sizeof(rows[0]), cmp_str);
	for (int i = 0; i < n; i++) {
		int w = snprintf(out + pos, len - pos, i ? " %s" : "%s", rows[i]);
		if (w < 0 || (size_t)w >= len - pos)
			return -1;
		pos += w;
	}
	return n;
}

bool wl_check_fdinfo_table(const char *name, int fd, const char *fmt, int nvals, const char *before,
			   int nb)
{
	char now[4096];
	int n = wl_fdinfo_table(fd, fmt, nvals, now, sizeof(now));

	return wl_check(name, n >= 0 && n == nb && !strcmp(now, before),
			"fd %d: %d lines (was %d) of '%s', values now [%s], before [%s]", fd, n, nb,
			fmt, now, before);
}

/* ---- signals and threads ---- */

void wl_on_signal(int sig, void (*handler)(int))
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handler;
	sa.sa_flags = SA_RESTART;
	if (sigaction(sig, &sa, NULL))
		wl_die("sigaction %d: %s", sig, strerror(errno));
}

void wl_alarm_in(double seconds)
{
	long us = (long)(seconds * 1e6 + 0.5);
	struct itimerval it = {{0, 0}, {us / 1000000, us % 1000000}};

	if (setitimer(ITIMER_REAL, &it, NULL))
		wl_die("setitimer: %s", strerror(errno));
}

double wl_ready_alarm(void (*handler)(int), double seconds)
{
	double t0;

	wl_on_signal(SIGALRM, handler);
	wl_ready();
	t0 = wl_now();
	wl_alarm_in(seconds);
	return t0;
}

void wl_wait_count(pthread_mutex_t *m, const int *count, int want)
{
	struct timespec tick = {0, 1000 * 1000};

	for (;;) {
		pthread_mutex_lock(m);
		int n = *count;
		pthread_mutex_unlock(m);
		if (n >= want)
			return;
		nanosleep(&tick, NULL);
	}
}

void wl_broadcast_flag(pthread_mutex_t *m, pthread_cond_t *c, int *flag)
{
	pthread_mutex_lock(m);
	*flag = 1;
	pthread_cond_broadcast(c);
	pthread_mutex_unlock(m);
}

bool wl_wait_u32(volatile uint32_t *word, uint32_t want)
{
	struct timespec tick = {0, 1000 * 1000};

	for (int i = 0; i < 10000 && *word != want; i++)
		nanosleep(&tick, NULL);
	return *word == want;
}

#define SHARE_CTL 64

static size_t share_half(size_t size)
{
	return (size - SHARE_CTL) / 2;
}

static bool share_halves_ok(const unsigned char *mem, size_t size)
{
	size_t half = share_half(size);

	return wl_first_bad(mem + SHARE_CTL, half, 1) == half &&
	       wl_first_bad(mem + SHARE_CTL + half, half, 2) == half;
}

pid_t wl_share_start(unsigned char *mem, size_t size)
{
	volatile uint32_t *words = (volatile uint32_t *)mem;
	size_t half = share_half(size);
	pid_t kid;

	wl_fill(mem + SHARE_CTL, half, 1);
	kid = fork();
	if (kid < 0)
		wl_die("fork: %s", strerror(errno));
	if (kid == 0) {
		wl_fill(mem + SHARE_CTL + half, half, 2);
		words[0] = 1;
		wl_wait_go();
		if (!share_halves_ok(mem, size))
			_exit(10);
		words[1] = 0xabc;
		_exit(wl_wait_u32(&words[2], 0xdef) ? 0 : 11);
	}
	if (!wl_wait_u32(&words[0], 1))
		wl_die("the child did not write its half");
	return kid;
}

void wl_share_check(const unsigned char *mem, const unsigned char *view, size_t size, pid_t kid)
{
	volatile uint32_t *words = (volatile uint32_t *)mem;
	size_t half = share_half(size);

	wl_check_pattern("root_half", mem + SHARE_CTL, half, 1);
	wl_check_pattern("child_half", mem + SHARE_CTL + half, half, 2);
	if (view != mem) {
		wl_check_pattern("view_root_half", view + SHARE_CTL, half, 1);
		wl_check_pattern("view_child_half", view + SHARE_CTL + half, half, 2);
	}
	if (wl_check("token", wl_wait_u32(&words[1], 0xabc), "token 0x%x", words[1]))
		words[2] = 0xdef;
	wl_check_child("child", kid);
}

bool wl_check_child(const char *name, pid_t kid)
{
	int st = 0;
	pid_t got = waitpid(kid, &st, 0);

	if (got != kid)
		return wl_check(name, false, "waitpid(%d): %s", kid, strerror(errno));
	return wl_check(name, WIFEXITED(st) && !WEXITSTATUS(st), "child %d ended with status 0x%x",
			kid, st);
}

/* ---- unix sockets ---- */

unsigned wl_unix_addr(struct sockaddr_un *sa, const char *name, bool abstract)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (abstract) {
		strcpy(sa->sun_path + 1, name);
		return offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name);
	}
	strcpy(sa->sun_path, name);
	return offsetof(struct sockaddr_un, sun_path) + strlen(name) + 1;
}

bool wl_check_unix_name(const char *name, int fd, bool peer, const struct sockaddr_un *sa,
			unsigned len)
{
	struct sockaddr_un got;
	socklen_t glen = sizeof(got);
	int r = peer ? getpeername(fd, (struct sockaddr *)&got, &glen)
		     : getsockname(fd, (struct sockaddr *)&got, &glen);

	return wl_check(name, r == 0 && glen == len && !memcmp(&got, sa, len),
			"r %d len %u (want %u) path '%s'%s", r, glen, len,
			got.sun_path[0] ? got.sun_path : got.sun_path + 1,
			got.sun_path[0] ? "" : " (abstract)");
}

void wl_send_fd(int sk, const void *data, size_t len, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))] = {0};
	struct iovec iov = {(void *)data, len};
	struct msghdr mh = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	if (sendmsg(sk, &mh, 0) != (ssize_t)len)
		wl_die("sendmsg SCM_RIGHTS: %s", strerror(errno));
}

pid_t wl_fork_ready(int (*setup)(void *), void (*body)(void *), void *arg)
{
	int sync[2];
	char c;
	pid_t pid;

	if (pipe(sync))
		wl_die("pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		wl_die("fork: %s", strerror(errno));
	if (pid == 0) {
		close(sync[0]);
		if ((setup && setup(arg)) || write(sync[1], "x", 1) != 1)
			_exit(2);
		close(sync[1]);
		if (body)
			body(arg);
		for (;;)
			pause();
	}
	close(sync[1]);
	if (read(sync[0], &c, 1) != 1)
		wl_die("the child did not start");
	close(sync[0]);
	return pid;
}

void wl_inotify_collect(int fd, struct wl_inotify_events *s)
{
	char buf[8192] __attribute__((aligned(8)));
	struct pollfd p = {.fd = fd, .events = POLLIN};
	ssize_t len;

	s->n = 0;
	while (poll(&p, 1, 100) == 1 && (len = read(fd, buf, sizeof(buf))) > 0)
		for (char *c = buf; c < buf + len;) {
			struct inotify_event *e = (struct inotify_event *)c;
			if (s->n < 64) {
				s->ev[s->n].wd = e->wd;
				s->ev[s->n].mask = e->mask;
				snprintf(s->ev[s->n].name, sizeof(s->ev[0].name), "%s",
					 e->len ? e->name : "");
				s->n++;
			}
			c += sizeof(*e) + e->len;
		}
}

int wl_inotify_watch(int in, const char *name, unsigned mask)
{
	char p[PATH_MAX];
	int wd = inotify_add_watch(in, wl_path(name, p, sizeof(p)), mask);

	if (wd < 0)
		wl_die("inotify_add_watch %s: %s", name, strerror(errno));
	return wd;
}
