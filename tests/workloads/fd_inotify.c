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

/* The fdinfo lines of an inotify fd's watches: wd, mask. */
#define WATCH_FMT "inotify wd:%llx ino:%*x sdev:%*x mask:%llx"

static void touch(const char *name)
{
	char p[PATH_MAX];
	int fd = open(wl_path(name, p, sizeof(p)), O_WRONLY | O_CREAT | O_APPEND, 0644);

	if (fd < 0 || write(fd, "x", 1) != 1)
		wl_die("touch %s: %s", name, strerror(errno));
	close(fd);
}

/* Does s hold an event (wd, mask bit, name)? */
static bool has(const struct wl_inotify_events *s, int wd, unsigned bit, const char *name)
{
	for (int i = 0; i < s->n; i++)
		if (s->ev[i].wd == wd && (s->ev[i].mask & bit) && !strcmp(s->ev[i].name, name))
			return true;
	return false;
}

int main(void)
{
	int in1, in2, w1, w2, w3, w4, w5, v1, n1, n2;
	char b1[1024], b2[1024];
	struct wl_inotify_events s;
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
	w1 = wl_inotify_watch(in1, "d1", IN_CREATE);
	w2 = wl_inotify_watch(in1, "d2", IN_CREATE | IN_DELETE);
	w3 = wl_inotify_watch(in1, "gap", IN_CREATE);
	inotify_rm_watch(in1, w3);
	while (read(in1, buf, sizeof(buf)) > 0) /* the IN_IGNORED of the removal */
		;
	w4 = wl_inotify_watch(in1, "d3", IN_CREATE | IN_ONESHOT);
	w5 = wl_inotify_watch(in1, "f1", IN_MODIFY);
	v1 = wl_inotify_watch(in2, "d1", IN_ALL_EVENTS | IN_EXCL_UNLINK);
	n1 = wl_fdinfo_table(in1, WATCH_FMT, 2, b1, sizeof(b1));
	n2 = wl_fdinfo_table(in2, WATCH_FMT, 2, b2, sizeof(b2));
	if (w1 != 1 || w2 != 2 || w3 != 3 || w4 != 4 || w5 != 5 || v1 != 1)
		wl_die("unexpected wds %d %d %d %d %d %d", w1, w2, w3, w4, w5, v1);

	wl_ready();
	wl_wait_go();

	wl_check_fd_flags("in1", in1, O_RDONLY | O_NONBLOCK, 0);
	wl_check_fd_flags("in2", in2, O_RDONLY, FD_CLOEXEC);
	wl_check_fdinfo_table("in1_watches", in1, WATCH_FMT, 2, b1, n1);
	wl_check_fdinfo_table("in2_watches", in2, WATCH_FMT, 2, b2, n2);
	{
		int q = wl_revents(in1, POLLIN);
		wl_check("in1_queue_empty", q == 0, "events queued after restore (revents %d)", q);
	}

	touch("d1/x1");
	touch("d2/x2");
	touch("d3/x3");
	touch("d3/x4"); /* one-shot: no event for this one */
	touch("f1");
	wl_inotify_collect(in1, &s);
	wl_check("in1_d1", has(&s, w1, IN_CREATE, "x1"), "no IN_CREATE x1 on wd %d (%d events)", w1,
		 s.n);
	wl_check("in1_d2", has(&s, w2, IN_CREATE, "x2"), "no IN_CREATE x2 on wd %d", w2);
	wl_check("in1_d3", has(&s, w4, IN_CREATE, "x3"), "no IN_CREATE x3 on wd %d", w4);
	wl_check("in1_oneshot", !has(&s, w4, IN_CREATE, "x4") && has(&s, w4, IN_IGNORED, ""),
		 "one-shot wd %d went on", w4);
	wl_check("in1_f1", has(&s, w5, IN_MODIFY, ""), "no IN_MODIFY on wd %d", w5);
	wl_check("in1_count", s.n == 5, "%d events, want 5", s.n);
	wl_inotify_collect(in2, &s);
	wl_check("in2_d1", has(&s, v1, IN_CREATE, "x1") && has(&s, v1, IN_CLOSE_WRITE, "x1"),
		 "no IN_CREATE/IN_CLOSE_WRITE x1 on wd %d (%d events)", v1, s.n);
	{
		int w6 = wl_inotify_watch(in1, "later", IN_CREATE);
		wl_check("in1_next_wd", w6 == 6, "new watch got wd %d, want 6", w6);
	}
	if (unlink("d2/x2"))
		wl_die("unlink: %s", strerror(errno));
	wl_inotify_collect(in1, &s);
	wl_check("in1_delete", s.n == 1 && has(&s, w2, IN_DELETE, "x2"), "%d events", s.n);
	wl_done();
}
