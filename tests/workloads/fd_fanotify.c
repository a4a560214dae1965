/* fd_fanotify.c: three fanotify groups with every kind of mark.
 *   - A: FAN_CLASS_NOTIF | FAN_REPORT_FID | FAN_UNLIMITED_QUEUE |
 *     FAN_NONBLOCK, event fds O_RDONLY | O_LARGEFILE; an inode mark on
 *     fan/watched (FAN_MODIFY | FAN_CLOSE_WRITE, and FAN_OPEN in its ignored
 *     mask, surviving modify), a directory mark on fan/d (FAN_CREATE |
 *     FAN_ONDIR | FAN_EVENT_ON_CHILD);
 *   - B: FAN_CLASS_NOTIF, blocking, FAN_CLOEXEC: a mount mark on /sys
 *     (FAN_OPEN_EXEC: nothing runs from there, so no event comes);
 *   - C: FAN_REPORT_FID: a filesystem mark on the work dir's filesystem
 *     (FAN_FS_ERROR, which a healthy filesystem never sends).
 * Each group's fdinfo (init flags and every mark, order aside) and fd
 * flags must be the same after restore, no event may be waiting, and A
 * must report a write to fan/watched (FAN_MODIFY then, on close,
 * FAN_CLOSE_WRITE, and no FAN_OPEN: it is ignored) and a file created in
 * fan/d (FAN_CREATE, with the directory's file handle). */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef FAN_FS_ERROR
#define FAN_FS_ERROR 0x00008000
#endif

#define NG 3

static int groups[NG];
static char before[NG][4096];

/* The "fanotify" lines of fd's fdinfo, sorted, in out. */
static void marks_of(int fd, char *out, size_t len)
{
	char info[8192], *lines[64], *save;
	int n = 0;

	wl_fdinfo(fd, info, sizeof(info));
	for (char *l = strtok_r(info, "\n", &save); l && n < 64; l = strtok_r(NULL, "\n", &save))
		if (!strncmp(l, "fanotify", 8))
			lines[n++] = l;
	for (int i = 1; i < n; i++) /* few lines: insertion sort */
		for (int j = i; j > 0 && strcmp(lines[j - 1], lines[j]) > 0; j--) {
			char *t = lines[j];
			lines[j] = lines[j - 1];
			lines[j - 1] = t;
		}
	out[0] = '\0';
	for (int i = 0; i < n; i++)
		snprintf(out + strlen(out), len - strlen(out), "%s\n", lines[i]);
}

static void mark(int fd, unsigned flags, uint64_t mask, const char *path)
{
	if (fanotify_mark(fd, FAN_MARK_ADD | flags, mask, AT_FDCWD, path))
		wl_die("fanotify_mark %s (%#llx): %s", path, (unsigned long long)mask,
		       strerror(errno));
}

static void set_up(void)
{
	if (mkdir("fan", 0755) || mkdir("fan/d", 0755))
		wl_die("mkdir: %s", strerror(errno));
	wl_mkfile("fan/watched", "0123", 4, 0644);
	groups[0] =
	    fanotify_init(FAN_CLASS_NOTIF | FAN_REPORT_FID | FAN_UNLIMITED_QUEUE | FAN_NONBLOCK,
			  O_RDONLY | O_LARGEFILE);
	groups[1] = fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC, O_RDONLY);
	groups[2] = fanotify_init(FAN_CLASS_NOTIF | FAN_REPORT_FID, O_RDONLY);
	for (int i = 0; i < NG; i++)
		if (groups[i] < 0)
			wl_die("fanotify_init %d: %s", i, strerror(errno));
	mark(groups[0], 0, FAN_MODIFY | FAN_CLOSE_WRITE, "fan/watched");
	mark(groups[0], FAN_MARK_IGNORED_MASK | FAN_MARK_IGNORED_SURV_MODIFY, FAN_OPEN,
	     "fan/watched");
	mark(groups[0], FAN_MARK_ONLYDIR, FAN_CREATE | FAN_ONDIR | FAN_EVENT_ON_CHILD, "fan/d");
	mark(groups[1], FAN_MARK_MOUNT, FAN_OPEN_EXEC, "/sys");
	mark(groups[2], FAN_MARK_FILESYSTEM, FAN_FS_ERROR, ".");
}

/* The masks of the events waiting in group A, ORed. */
static uint64_t events_of_a(void)
{
	char buf[4096];
	uint64_t seen = 0;
	ssize_t n;

	while ((n = read(groups[0], buf, sizeof(buf))) > 0)
		for (struct fanotify_event_metadata *m = (void *)buf; FAN_EVENT_OK(m, n);
		     m = FAN_EVENT_NEXT(m, n)) {
			seen |= m->mask;
			if (m->fd >= 0)
				close(m->fd);
		}
	return seen;
}

static void check_groups(void)
{
	char now[4096], name[64];

	for (int i = 0; i < NG; i++) {
		int queued = -1;
		marks_of(groups[i], now, sizeof(now));
		snprintf(name, sizeof(name), "group%d_fdinfo", i);
		wl_check(name, !strcmp(now, before[i]), "now:\n%swas:\n%s", now, before[i]);
		snprintf(name, sizeof(name), "group%d_queue_empty", i);
		wl_check(name, !ioctl(groups[i], FIONREAD, &queued) && queued == 0,
			 "FIONREAD %d (%s)", queued, strerror(errno));
	}
	wl_check_fd_flags("group0_flags", groups[0], O_RDWR | O_NONBLOCK, 0);
	wl_check_fd_flags("group1_flags", groups[1], O_RDWR, FD_CLOEXEC);
	wl_check_fd_flags("group2_flags", groups[2], O_RDWR, 0);
}

static void check_events(void)
{
	uint64_t seen;
	int fd = open("fan/watched", O_WRONLY | O_APPEND);

	if (fd < 0 || write(fd, "45", 2) != 2 || close(fd))
		wl_die("writing fan/watched: %s", strerror(errno));
	wl_mkfile("fan/d/new", "x", 1, 0644);
	seen = events_of_a();
	wl_check("group0_modify", seen & FAN_MODIFY, "events %#llx", (unsigned long long)seen);
	wl_check("group0_close_write", seen & FAN_CLOSE_WRITE, "events %#llx",
		 (unsigned long long)seen);
	wl_check("group0_create", seen & FAN_CREATE, "events %#llx", (unsigned long long)seen);
	wl_check("group0_open_ignored", !(seen & FAN_OPEN), "events %#llx",
		 (unsigned long long)seen);
}

int main(void)
{
	wl_init();
	set_up();
	for (int i = 0; i < NG; i++)
		marks_of(groups[i], before[i], sizeof(before[i]));
	check_groups();

	wl_ready();
	wl_wait_go();

	check_groups();
	check_events();
	wl_done();
}
