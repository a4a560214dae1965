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

struct tfd {
	unsigned fd, events;
	unsigned long long data;
};

/* The tfd/events/data triples of an epoll fd's fdinfo, sorted by data. */
static int watched(int ep, struct tfd *t, int max)
{
	char p[64], line[512];
	FILE *f;
	int n = 0;

	snprintf(p, sizeof(p), "/proc/self/fdinfo/%d", ep);
	f = fopen(p, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f) && n < max)
		if (sscanf(line, "tfd: %u events: %x data: %llx", &t[n].fd, &t[n].events,
			   &t[n].data) == 3)
			n++;
	fclose(f);
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && t[j - 1].data > t[j].data; j--) {
			struct tfd x = t[j];
			t[j] = t[j - 1];
			t[j - 1] = x;
		}
	return n;
}

static void check_watched(const char *name, int ep, const struct tfd *before, int nb)
{
	struct tfd now[16];
	int n = watched(ep, now, 16), i = 0;

	if (n == nb)
		for (i = 0; i < n; i++)
			if (now[i].fd != before[i].fd || now[i].events != before[i].events ||
			    now[i].data != before[i].data)
				break;
	wl_check(name, n == nb && i == n,
		 "%d targets (was %d), first difference at %d: fd %u "
		 "events %#x data %#llx",
		 n, nb, i, i < n ? now[i].fd : 0, i < n ? now[i].events : 0,
		 i < n ? now[i].data : 0);
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
	struct tfd w1[16], w2[16];
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
	n1 = watched(ep1, w1, 16);
	n2 = watched(ep2, w2, 16);

	wl_ready();
	wl_wait_go();

	check_flags("ep1", ep1, O_RDWR, 0);
	check_flags("ep2", ep2, O_RDWR | O_NONBLOCK, FD_CLOEXEC);
	check_watched("ep1_targets", ep1, w1, n1);
	check_watched("ep2_targets", ep2, w2, n2);
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
