/* fd_inotify_deleted.c: inotify watches on inodes that were deleted while something
 * of the tree still holds them. One instance, wds 1-4: 1 a file deleted while open
 * (O_RDWR, its data kept), 2 a live directory, 3 a directory removed while open, 4 a
 * directory removed while a child's working directory. The kernel keeps such a watch
 * until the inode's last holder lets go. After go: the watches (wd, mask) are those of
 * the dump and nothing is queued; writing and chmod'ing the deleted file give IN_MODIFY
 * and IN_ATTRIB on wd 1, its data is intact, closing it gives IN_CLOSE_WRITE,
 * IN_DELETE_SELF and IN_IGNORED on wd 1; a file made in the live directory gives
 * IN_CREATE on wd 2; closing the removed directory gives IN_DELETE_SELF and IN_IGNORED
 * on wd 3; the child's exit the same on wd 4; a new watch gets wd 5. */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define WATCH_FMT "inotify wd:%llx ino:%*x sdev:%*x mask:%llx"
#define FILE_MASK (IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_DELETE_SELF)
#define DIR_MASK  (IN_CREATE | IN_DELETE_SELF)

/* The events seen are exactly these masks on wd, in order. */
static void check_events(const char *name, const struct wl_inotify_events *s, int wd,
			 const unsigned *want, int n)
{
	bool ok = s->n == n;

	for (int i = 0; ok && i < n; i++)
		ok = s->ev[i].wd == wd && s->ev[i].mask == want[i];
	wl_check(name, ok, "%d events (first wd %d mask %#x), want %d on wd %d (first %#x)", s->n,
		 s->n ? s->ev[0].wd : -1, s->n ? s->ev[0].mask : 0, n, wd, want[0]);
}

/* The child's setup: its working directory is cwdgone. */
static int enter_cwdgone(void *arg)
{
	char p[PATH_MAX];

	(void)arg;
	return chdir(wl_path("cwdgone", p, sizeof(p)));
}

static void drain(int in)
{
	struct wl_inotify_events s;

	wl_inotify_collect(in, &s);
}

int main(void)
{
	char p[PATH_MAX], b[1024], data[16] = {0};
	int in, fd, dfd, n, st;
	struct wl_inotify_events s;
	pid_t kid;

	wl_init();
	if (mkdir("live", 0755) || mkdir("dirgone", 0755) || mkdir("cwdgone", 0755) ||
	    mkdir("later", 0755))
		wl_die("mkdir: %s", strerror(errno));
	kid = wl_fork_ready(enter_cwdgone, NULL, NULL); /* first: it must not hold the others */
	fd = open(wl_path("gone", p, sizeof(p)), O_RDWR | O_CREAT, 0644);
	dfd = open(wl_path("dirgone", p, sizeof(p)), O_RDONLY | O_DIRECTORY);
	if (fd < 0 || dfd < 0 || write(fd, "before", 6) != 6)
		wl_die("open: %s", strerror(errno));
	in = inotify_init1(IN_NONBLOCK);
	if (in < 0)
		wl_die("inotify_init1: %s", strerror(errno));
	if (wl_inotify_watch(in, "gone", FILE_MASK) != 1 ||
	    wl_inotify_watch(in, "live", DIR_MASK) != 2 ||
	    wl_inotify_watch(in, "dirgone", DIR_MASK) != 3 ||
	    wl_inotify_watch(in, "cwdgone", DIR_MASK) != 4)
		wl_die("unexpected wds");
	if (unlink("gone") || rmdir("dirgone") || rmdir("cwdgone"))
		wl_die("remove: %s", strerror(errno));
	drain(in); /* the IN_ATTRIB of the unlink */
	n = wl_fdinfo_table(in, WATCH_FMT, 2, b, sizeof(b));

	wl_ready();
	wl_wait_go();

	wl_check_fd_flags("in", in, O_RDONLY | O_NONBLOCK, 0);
	wl_check_fdinfo_table("watches", in, WATCH_FMT, 2, b, n);
	wl_check("queue_empty", wl_revents(in, POLLIN) == 0, "events queued after restore");
	if (pwrite(fd, "after", 5, 6) != 5 || pread(fd, data, 11, 0) != 11)
		wl_die("pwrite: %s", strerror(errno));
	wl_check("file_data", !memcmp(data, "beforeafter", 11), "the deleted file holds %.11s",
		 data);
	wl_inotify_collect(in, &s);
	check_events("file_modify", &s, 1, (const unsigned[]){IN_MODIFY}, 1);
	if (fchmod(fd, 0600))
		wl_die("fchmod: %s", strerror(errno));
	wl_inotify_collect(in, &s);
	check_events("file_attrib", &s, 1, (const unsigned[]){IN_ATTRIB}, 1);
	close(open(wl_path("live/new", p, sizeof(p)), O_CREAT | O_WRONLY, 0644));
	wl_inotify_collect(in, &s);
	wl_check("live_create", s.n == 1 && s.ev[0].wd == 2 && s.ev[0].mask == IN_CREATE,
		 "%d events on the live directory", s.n);
	close(fd);
	wl_inotify_collect(in, &s);
	check_events("file_close", &s, 1,
		     (const unsigned[]){IN_CLOSE_WRITE, IN_DELETE_SELF, IN_IGNORED}, 3);
	close(dfd);
	wl_inotify_collect(in, &s);
	check_events("dir_close", &s, 3, (const unsigned[]){IN_DELETE_SELF, IN_IGNORED}, 2);
	kill(kid, SIGKILL);
	wl_check("child_reaped", waitpid(kid, &st, 0) == kid, "waitpid: %s", strerror(errno));
	wl_inotify_collect(in, &s);
	check_events("cwd_gone", &s, 4, (const unsigned[]){IN_DELETE_SELF, IN_IGNORED}, 2);
	wl_check("next_wd", wl_inotify_watch(in, "later", IN_DELETE) == 5,
		 "a new watch did not get wd 5");
	wl_done();
}
