/* fd_inotify.c: workload with two inotify instances: a non-blocking one whose wds are
 * 1, 2, 4, 5 (3 was removed) on three directories (one IN_ONESHOT) and a file, and a
 * blocking close-on-exec one on a directory with IN_EXCL_UNLINK; checks the watches
 * (wd, mask), that files touched after restore give events with the same wds, the
 * next wd given out, and fd flags. */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

struct watch {
	int wd;
	unsigned mask;
};

/* The wd/mask pairs of an inotify fd's fdinfo, sorted by wd. */
static int watches(int fd, struct watch *w, int max)
{
	char p[64], line[1024];
	FILE *f;
	int n = 0;

	snprintf(p, sizeof(p), "/proc/self/fdinfo/%d", fd);
	f = fopen(p, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f) && n < max)
		if (sscanf(line, "inotify wd:%x ino:%*x sdev:%*x mask:%x", &w[n].wd, &w[n].mask) ==
		    2)
			n++;
	fclose(f);
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && w[j - 1].wd > w[j].wd; j--) {
			struct watch x = w[j];
			w[j] = w[j - 1];
			w[j - 1] = x;
		}
	return n;
}

static void check_watches(const char *name, int fd, const struct watch *before, int nb)
{
	struct watch now[16];
	int n = watches(fd, now, 16), i = 0;

	if (n == nb)
		for (i = 0; i < n; i++)
			if (now[i].wd != before[i].wd || now[i].mask != before[i].mask)
				break;
	wl_check(name, n == nb && i == n,
		 "%d watches (was %d), first difference at %d: wd %d "
		 "mask %#x",
		 n, nb, i, i < n ? now[i].wd : 0, i < n ? now[i].mask : 0);
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

static int watch(int in, const char *name, unsigned mask)
{
	char p[PATH_MAX];
	int wd = inotify_add_watch(in, wl_path(name, p, sizeof(p)), mask);

	if (wd < 0)
		wl_die("inotify_add_watch %s: %s", name, strerror(errno));
	return wd;
}

static void touch(const char *name)
{
	char p[PATH_MAX];
	int fd = open(wl_path(name, p, sizeof(p)), O_WRONLY | O_CREAT | O_APPEND, 0644);

	if (fd < 0 || write(fd, "x", 1) != 1)
		wl_die("touch %s: %s", name, strerror(errno));
	close(fd);
}

/* Does the queue of fd hold an event (wd, mask bit, name)? Reads everything queued. */
struct seen {
	int n;
	struct {
		int wd;
		unsigned mask;
		char name[32];
	} ev[64];
};

static void collect(int fd, struct seen *s)
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
				snprintf(s->ev[s->n].name, 32, "%s", e->len ? e->name : "");
				s->n++;
			}
			c += sizeof(*e) + e->len;
		}
}

static bool has(const struct seen *s, int wd, unsigned bit, const char *name)
{
	for (int i = 0; i < s->n; i++)
		if (s->ev[i].wd == wd && (s->ev[i].mask & bit) && !strcmp(s->ev[i].name, name))
			return true;
	return false;
}

int main(void)
{
	int in1, in2, w1, w2, w3, w4, w5, v1, n1, n2;
	struct watch b1[16], b2[16];
	struct seen s;
	char buf[256];

	wl_init();
	if (mkdir("d1", 0755) || mkdir("d2", 0755) || mkdir("d3", 0755) || mkdir("gap", 0755) ||
	    mkdir("later", 0755))
		wl_die("mkdir: %s", strerror(errno));
	touch("f1");
	in1 = inotify_init1(IN_NONBLOCK);
	in2 = inotify_init1(IN_CLOEXEC);
	if (in1 < 0 || in2 < 0)
		wl_die("inotify_init1: %s", strerror(errno));
	w1 = watch(in1, "d1", IN_CREATE);
	w2 = watch(in1, "d2", IN_CREATE | IN_DELETE);
	w3 = watch(in1, "gap", IN_CREATE);
	inotify_rm_watch(in1, w3);
	while (read(in1, buf, sizeof(buf)) > 0) /* the IN_IGNORED of the removal */
		;
	w4 = watch(in1, "d3", IN_CREATE | IN_ONESHOT);
	w5 = watch(in1, "f1", IN_MODIFY);
	v1 = watch(in2, "d1", IN_ALL_EVENTS | IN_EXCL_UNLINK);
	n1 = watches(in1, b1, 16);
	n2 = watches(in2, b2, 16);
	if (w1 != 1 || w2 != 2 || w3 != 3 || w4 != 4 || w5 != 5 || v1 != 1)
		wl_die("unexpected wds %d %d %d %d %d %d", w1, w2, w3, w4, w5, v1);

	wl_ready();
	wl_wait_go();

	check_flags("in1", in1, O_RDONLY | O_NONBLOCK, 0);
	check_flags("in2", in2, O_RDONLY, FD_CLOEXEC);
	check_watches("in1_watches", in1, b1, n1);
	check_watches("in2_watches", in2, b2, n2);
	{
		int q = -1;
		struct pollfd p = {.fd = in1, .events = POLLIN};
		wl_check("in1_queue_empty", poll(&p, 1, 0) == 0, "events queued after restore (%d)",
			 q);
	}

	touch("d1/x1");
	touch("d2/x2");
	touch("d3/x3");
	touch("d3/x4"); /* one-shot: no event for this one */
	touch("f1");
	collect(in1, &s);
	wl_check("in1_d1", has(&s, w1, IN_CREATE, "x1"), "no IN_CREATE x1 on wd %d (%d events)", w1,
		 s.n);
	wl_check("in1_d2", has(&s, w2, IN_CREATE, "x2"), "no IN_CREATE x2 on wd %d", w2);
	wl_check("in1_d3", has(&s, w4, IN_CREATE, "x3"), "no IN_CREATE x3 on wd %d", w4);
	wl_check("in1_oneshot", !has(&s, w4, IN_CREATE, "x4") && has(&s, w4, IN_IGNORED, ""),
		 "one-shot wd %d went on", w4);
	wl_check("in1_f1", has(&s, w5, IN_MODIFY, ""), "no IN_MODIFY on wd %d", w5);
	wl_check("in1_count", s.n == 5, "%d events, want 5", s.n);
	collect(in2, &s);
	wl_check("in2_d1", has(&s, v1, IN_CREATE, "x1") && has(&s, v1, IN_CLOSE_WRITE, "x1"),
		 "no IN_CREATE/IN_CLOSE_WRITE x1 on wd %d (%d events)", v1, s.n);
	{
		int w6 = watch(in1, "later", IN_CREATE);
		wl_check("in1_next_wd", w6 == 6, "new watch got wd %d, want 6", w6);
	}
	if (unlink("d2/x2"))
		wl_die("unlink: %s", strerror(errno));
	collect(in1, &s);
	wl_check("in1_delete", s.n == 1 && has(&s, w2, IN_DELETE, "x2"), "%d events", s.n);
	wl_done();
}
