/* fd_epoll_moved.c: an epoll instance whose targets' fd numbers no longer
 * name them.
 *   - eventfd A, added as fd 40, then dup'ed to 41 and fd 40 closed: the
 *     watch lives on (the file is open), fdinfo still says "tfd: 40";
 *   - eventfd B, added as fd 42, dup'ed to 43, then fd 42 made another
 *     eventfd C (dup2), which is added too: two targets "tfd: 42".
 * After restore: the fdinfo lines of the instance are those of before
 * (numbers, events, data, in order), fd 40 is still closed, fd 42 open;
 * epoll_wait reports A when it is written through fd 41, B through 43, C
 * through 42, each alone. */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define D_A 0xaaaaULL
#define D_B 0xbbbbULL
#define D_C 0xccccULL

#define TFD_FMT "tfd: %llu events: %llx data: %llx"

static void add(int ep, int fd, unsigned long long data)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = data};

	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev))
		wl_die("epoll_ctl add fd %d: %s", fd, strerror(errno));
}

static void place(int fd, int at)
{
	if (dup2(fd, at) != at || close(fd))
		wl_die("dup2 to %d: %s", at, strerror(errno));
}

/* Checks NAME: after a write to FD, epoll_wait reports only WANT; then
 * the count is read back, so that it is quiet again. */
static void check_reports(const char *name, int ep, int fd, unsigned long long want)
{
	struct epoll_event got[8];
	uint64_t one = 1;
	int n;

	if (write(fd, &one, 8) != 8)
		wl_die("write fd %d: %s", fd, strerror(errno));
	n = epoll_wait(ep, got, 8, 0);
	wl_check(name, n == 1 && got[0].data.u64 == want, "epoll_wait gave %d, first %#llx", n,
		 n > 0 ? (unsigned long long)got[0].data.u64 : 0ULL);
	if (read(fd, &one, 8) != 8)
		wl_die("read fd %d: %s", fd, strerror(errno));
}

int main(void)
{
	int ep = epoll_create1(0);
	char before[1024], after[1024];
	int nb, na;

	wl_init();
	if (ep < 0)
		wl_die("epoll_create1: %s", strerror(errno));
	place(eventfd(0, EFD_NONBLOCK), 40);
	add(ep, 40, D_A);
	place(dup(40), 41);
	close(40);
	place(eventfd(0, EFD_NONBLOCK), 42);
	add(ep, 42, D_B);
	place(dup(42), 43);
	place(eventfd(0, EFD_NONBLOCK), 42); /* C: 42 names another file now */
	add(ep, 42, D_C);
	nb = wl_fdinfo_table(ep, TFD_FMT, 3, before, sizeof(before));

	wl_ready();
	wl_wait_go();

	na = wl_fdinfo_table(ep, TFD_FMT, 3, after, sizeof(after));
	wl_check("targets", nb == 3 && na == nb && !strcmp(before, after),
		 "before (%d): %s; after (%d): %s", nb, before, na, after);
	wl_check("fd40_closed", fcntl(40, F_GETFD) < 0 && errno == EBADF, "fd 40 is open");
	/* 42 is C, not B: a write to it reports C alone (c_via_42) */
	wl_check("fd42_open", fcntl(42, F_GETFD) == 0, "fd 42: %s", strerror(errno));
	check_reports("a_via_41", ep, 41, D_A);
	check_reports("b_via_43", ep, 43, D_B);
	check_reports("c_via_42", ep, 42, D_C);
	wl_done();
}
