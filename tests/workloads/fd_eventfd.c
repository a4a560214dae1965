/* fd_eventfd.c: workload with eventfds (plain blocking with a counter above 32 bits,
 * semaphore non-blocking, empty close-on-exec, one shared by two fds); checks the
 * counters, the semaphore mode, flags and sharing survive checkpoint/restore. */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define BIG	  0x100000005ULL
#define SHARED_FD 20

static int fdinfo_int(int fd, const char *key)
{
	char p[64], buf[1024], *s;
	FILE *f;
	size_t n;

	snprintf(p, sizeof(p), "/proc/self/fdinfo/%d", fd);
	f = fopen(p, "r");
	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	s = strstr(buf, key);
	return s ? atoi(s + strlen(key)) : -1;
}

static void check_flags(const char *name, int fd, int fl_want, int fd_want)
{
	int fl = fcntl(fd, F_GETFL), fdf = fcntl(fd, F_GETFD);
	char n[64];

	snprintf(n, sizeof(n), "%s_getfl", name);
	wl_check(n, fl >= 0 && (fl & (O_ACCMODE | O_NONBLOCK)) == fl_want, "F_GETFL %#x, want %#x",
		 fl, fl_want);
	snprintf(n, sizeof(n), "%s_getfd", name);
	wl_check(n, fdf == fd_want, "F_GETFD %d, want %d", fdf, fd_want);
}

static int64_t rd(int fd)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) != sizeof(v))
		return -errno;
	return (int64_t)v;
}

int main(void)
{
	uint64_t v = BIG - 5;
	int plain = eventfd(5, 0);
	int sem = eventfd(3, EFD_SEMAPHORE | EFD_NONBLOCK);
	int empty = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	int64_t r;

	wl_init();
	if (plain < 0 || sem < 0 || empty < 0)
		wl_die("eventfd: %s", strerror(errno));
	if (write(plain, &v, sizeof(v)) != sizeof(v))
		wl_die("write: %s", strerror(errno));
	if (dup2(plain, SHARED_FD) != SHARED_FD)
		wl_die("dup2: %s", strerror(errno));

	wl_ready();
	wl_wait_go();

	check_flags("plain", plain, O_RDWR, 0);
	check_flags("shared", SHARED_FD, O_RDWR, 0);
	check_flags("sem", sem, O_RDWR | O_NONBLOCK, 0);
	check_flags("empty", empty, O_RDWR | O_NONBLOCK, FD_CLOEXEC);
	wl_check("sem_mode", fdinfo_int(sem, "eventfd-semaphore:") == 1, "semaphore %d",
		 fdinfo_int(sem, "eventfd-semaphore:"));
	wl_check("plain_mode", fdinfo_int(plain, "eventfd-semaphore:") == 0, "semaphore %d",
		 fdinfo_int(plain, "eventfd-semaphore:"));

	r = rd(plain);
	wl_check("plain_value", r == (int64_t)BIG, "read %" PRId64 ", want %llu", r, BIG);
	{
		struct pollfd p = {.fd = plain, .events = POLLIN};
		wl_check("plain_empty", poll(&p, 1, 0) == 0, "still readable after read");
	}
	for (int i = 0; i < 3; i++) {
		r = rd(sem);
		wl_check("sem_read", r == 1, "semaphore read %d gave %" PRId64, i, r);
	}
	r = rd(sem);
	wl_check("sem_drained", r == -EAGAIN, "4th semaphore read gave %" PRId64, r);
	r = rd(empty);
	wl_check("empty_eagain", r == -EAGAIN, "read of the empty eventfd gave %" PRId64, r);

	v = 7;
	wl_check("empty_write", write(empty, &v, sizeof(v)) == sizeof(v), "write: %s",
		 strerror(errno));
	r = rd(empty);
	wl_check("empty_roundtrip", r == 7, "read %" PRId64, r);
	v = 11;
	wl_check("shared_write", write(SHARED_FD, &v, sizeof(v)) == sizeof(v), "write: %s",
		 strerror(errno));
	r = rd(plain);
	wl_check("shared_same", r == 11, "read through fd %d gave %" PRId64, plain, r);
	wl_done();
}
