/* fd_epoll.c: workload with two epoll instances: one watching eventfds and a pipe
 * (level-triggered, edge-triggered, one-shot, not ready), one non-blocking instance
 * watching the first (nested) and an eventfd by a second fd number; checks the
 * watched set (fd, events, data), what epoll_wait reports, and fd flags. */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define D_A	 0x1111ULL
#define D_B	 0x2222ULL
#define D_PIPE	 0xdeadbeefcafe0001ULL
#define D_OUT	 0x4444ULL
#define D_NESTED 7ULL
#define D_DUP	 0x30ULL
#define DUP_FD	 30

/* The fdinfo lines of an epoll fd's targets: target fd, events, data. */
#define TFD_FMT "tfd: %llu events: %llx data: %llx"

static void add(int ep, int fd, unsigned events, unsigned long long data)
{
	struct epoll_event ev = {.events = events, .data.u64 = data};

	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev))
		wl_die("epoll_ctl add fd %d: %s", fd, strerror(errno));
}

/* What epoll_wait reports now, as a bit set: bit i for want[i] with events ev[i]. */
static void check_wait(const char *name, int ep, const unsigned long long *want, const unsigned *ev,
		       int nw)
{
	struct epoll_event got[16];
	int n = epoll_wait(ep, got, 16, 0), ok = n == nw;
	char detail[256] = "";

	for (int i = 0; i < n; i++) {
		int found = 0;
		for (int j = 0; j < nw; j++)
			found |= got[i].data.u64 == want[j] && got[i].events == ev[j];
		ok &= found;
		snprintf(detail + strlen(detail), sizeof(detail) - strlen(detail), " %#llx/%#x",
			 (unsigned long long)got[i].data.u64, got[i].events);
	}
	wl_check(name, ok, "epoll_wait gave %d (want %d):%s", n, nw, detail);
}

int main(void)
{
	int a = eventfd(1, EFD_NONBLOCK), b = eventfd(0, EFD_NONBLOCK), p[2];
	int ep1 = epoll_create1(0), ep2 = epoll_create1(EPOLL_CLOEXEC);
	char w1[1024], w2[1024];
	int n1, n2;
	uint64_t one = 1;

	wl_init();
	if (a < 0 || b < 0 || ep1 < 0 || ep2 < 0 || pipe2(p, O_NONBLOCK))
		wl_die("setup: %s", strerror(errno));
	if (write(p[1], "x", 1) != 1 || dup2(a, DUP_FD) != DUP_FD ||
	    fcntl(ep2, F_SETFL, O_NONBLOCK))
		wl_die("setup: %s", strerror(errno));
	add(ep1, a, EPOLLIN, D_A);
	add(ep1, b, EPOLLIN, D_B);
	add(ep1, p[0], EPOLLIN | EPOLLET, D_PIPE);
	add(ep1, p[1], EPOLLOUT | EPOLLONESHOT, D_OUT);
	add(ep2, ep1, EPOLLIN, D_NESTED);
	add(ep2, DUP_FD, EPOLLIN | EPOLLRDHUP, D_DUP);
	n1 = wl_fdinfo_table(ep1, TFD_FMT, 3, w1, sizeof(w1));
	n2 = wl_fdinfo_table(ep2, TFD_FMT, 3, w2, sizeof(w2));

	wl_ready();
	wl_wait_go();

	wl_check_fd_flags("ep1", ep1, O_RDWR, 0);
	wl_check_fd_flags("ep2", ep2, O_RDWR | O_NONBLOCK, FD_CLOEXEC);
	wl_check_fdinfo_table("ep1_targets", ep1, TFD_FMT, 3, w1, n1);
	wl_check_fdinfo_table("ep2_targets", ep2, TFD_FMT, 3, w2, n2);
	wl_check("ep1_count", n1 == 4, "%d targets before", n1);
	{
		unsigned long long w[] = {D_NESTED, D_DUP};
		unsigned e[] = {EPOLLIN, EPOLLIN};
		check_wait("ep2_ready", ep2, w, e, 2);
	}
	{
		unsigned long long w[] = {D_A, D_PIPE, D_OUT};
		unsigned e[] = {EPOLLIN, EPOLLIN, EPOLLOUT};
		check_wait("ep1_ready", ep1, w, e, 3);
	}
	{
		/* edge-triggered and one-shot targets are not reported twice */
		unsigned long long w[] = {D_A};
		unsigned e[] = {EPOLLIN};
		check_wait("ep1_again", ep1, w, e, 1);
	}
	if (write(b, &one, sizeof(one)) != sizeof(one) || write(p[1], "y", 1) != 1)
		wl_die("write: %s", strerror(errno));
	{
		unsigned long long w[] = {D_A, D_B, D_PIPE};
		unsigned e[] = {EPOLLIN, EPOLLIN, EPOLLIN};
		check_wait("ep1_new_events", ep1, w, e, 3);
	}
	{
		uint64_t v;
		char c[4];
		int r1 = read(a, &v, 8), r2 = read(b, &v, 8), r3 = read(p[0], c, 4);
		unsigned long long w[] = {D_NESTED};
		unsigned e[] = {EPOLLIN};
		wl_check("drain", r1 == 8 && r2 == 8 && r3 == 2, "reads %d %d %d", r1, r2, r3);
		check_wait("ep1_empty", ep1, NULL, NULL, 0);
		check_wait("ep2_empty", ep2, w, e, 0);
	}
	wl_done();
}
