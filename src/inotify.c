/*
 * inotify: the watches of an inotify instance, with their wd numbers.
 *
 * Dump: fdinfo gives, per watch, its wd, mask (with IN_ONESHOT and
 * IN_EXCL_UNLINK) and a file handle of the watched inode, with the inode
 * number and the device. The handle is opened with open_by_handle_at() on
 * a mount of that device (from cryo's mountinfo) and the path read back
 * from /proc/self/fd; it must lead to the same inode. Queued events are
 * not visible in fdinfo and cannot be put back: an instance with events
 * waiting (FIONREAD on cryo's duplicate) stops the dump.
 *
 * Restore: a fresh instance gives out wds 1, 2, 3... in order (the kernel
 * allocates them cyclically, never reusing one at once), so the watches are
 * added in ascending wd order and each gap is skipped by adding and
 * removing a throwaway watch on an inode that is not watched. The
 * IN_IGNORED events that leaves behind, and anything that happened to the
 * watched files during the restore, are read out before the process runs:
 * its queue is empty, as at the dump. A wd that does not come out as
 * expected fails the restore.
 *
 * Not visible anywhere, hence not saved: the next wd the kernel would give
 * for a new watch if watches above the highest remaining one were removed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "anonfd.h"
#include "infra/log.h"

#define MAX_WD_GAP (1 << 20) /* throwaway watches a restore may need at most */
#define WD_FLAGS   (IN_ONESHOT | IN_EXCL_UNLINK)

struct watch_info {
	unsigned wd, mask, sdev, hbytes;
	int htype;
	unsigned long long ino;
	char handle_hex[260];
};

static int parse_watch(const char *p, struct watch_info *w)
{
	if (sscanf(p,
		   " wd:%x ino:%llx sdev:%x mask:%x ignored_mask:%*x fhandle-bytes:%x "
		   "fhandle-type:%x f_handle:%258s",
		   &w->wd, &w->ino, &w->sdev, &w->mask, &w->hbytes, &w->htype, w->handle_hex) != 7)
		return -1;
	if (w->hbytes > 128 || strlen(w->handle_hex) != 2 * w->hbytes)
		return -1;
	return 0;
}

/* The kernel's dev_t (major << 20 | minor) as user space's. */
static dev_t user_dev(unsigned sdev)
{
	return makedev(sdev >> 20, sdev & 0xfffff);
}

static struct file_handle *make_handle(const struct watch_info *w)
{
	struct file_handle *h = malloc(sizeof(*h) + w->hbytes);

	if (!h)
		return NULL;
	h->handle_bytes = w->hbytes;
	h->handle_type = w->htype;
	for (unsigned i = 0; i < w->hbytes; i++) {
		unsigned b;
		sscanf(w->handle_hex + 2 * i, "%2x", &b);
		h->f_handle[i] = b;
	}
	return h;
}

/* Opens the watched inode through every mount of its device until one works. */
static int open_watched(const struct watch_info *w, struct file_handle *h)
{
	char *info, *line, *save = NULL;
	int fd = -1;

	if (proc_read(0, "mountinfo", &info, NULL))
		return -1;
	for (line = strtok_r(info, "\n", &save); line && fd < 0;
	     line = strtok_r(NULL, "\n", &save)) {
		unsigned maj, min;
		char mnt[4096];
		if (sscanf(line, "%*d %*d %u:%u %*s %4095s", &maj, &min, mnt) != 3 ||
		    makedev(maj, min) != user_dev(w->sdev))
			continue;
		int mfd = open(mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC); /* not O_PATH: EBADF */
		if (mfd < 0)
			continue;
		fd = open_by_handle_at(mfd, h, O_PATH | O_CLOEXEC);
		close(mfd);
	}
	free(info);
	return fd;
}

/* Fills the path of the watched inode and checks that it leads there. */
static int watch_path(struct dump_ctx *ctx, int fd, const struct watch_info *w, char *path,
		      size_t len)
{
	struct file_handle *h = make_handle(w);
	struct stat st, st2;
	char name[32];
	int ofd;

	if (!h)
		return err_set("out of memory");
	ofd = open_watched(w, h);
	free(h);
	if (ofd < 0)
		return err_errno("fd %d of pid %d (inotify): cannot open the inode of wd %u "
				 "(ino %llu on %u:%u) by its handle",
				 fd, ctx->pid, w->wd, w->ino, major(user_dev(w->sdev)),
				 minor(user_dev(w->sdev)));
	snprintf(name, sizeof(name), "fd/%d", ofd);
	int bad = fstat(ofd, &st) || proc_readlink(0, name, path, len);
	close(ofd);
	if (bad)
		return err_wrap("fd %d of pid %d (inotify): wd %u", fd, ctx->pid, w->wd);
	if (st.st_ino != w->ino || path[0] != '/' || strstr(path, " (deleted)") ||
	    stat(path, &st2) || st2.st_ino != st.st_ino || st2.st_dev != st.st_dev)
		return err_set("fd %d of pid %d (inotify): the inode watched by wd %u (%s) has "
			       "no path that leads to it",
			       fd, ctx->pid, w->wd, path);
	return 0;
}

static int add_wd(InotifyEntry *in, const struct watch_info *w, const char *path, dev_t dev)
{
	InotifyWdEntry **grown = realloc(in->wds, (in->n_wds + 1) * sizeof(*grown));
	InotifyWdEntry *e = malloc(sizeof(*e));
	size_t at;

	if (grown)
		in->wds = grown;
	if (!grown || !e || !(path = strdup(path))) {
		free(e);
		return err_set("out of memory");
	}
	inotify_wd_entry__init(e);
	e->wd = w->wd;
	e->mask = w->mask;
	e->path = (char *)path;
	e->ino = w->ino;
	e->dev = dev;
	/* keep them in ascending wd order */
	for (at = in->n_wds; at > 0 && in->wds[at - 1]->wd > e->wd; at--)
		in->wds[at] = in->wds[at - 1];
	in->wds[at] = e;
	in->n_wds++;
	return 0;
}

static int check_queue(struct dump_ctx *ctx, struct dump_file *f, int fd)
{
	int queued = 0;

	if (ioctl(f->local_fd, FIONREAD, &queued))
		return err_errno("fd %d of pid %d (inotify): FIONREAD", fd, ctx->pid);
	if (queued)
		return err_set("fd %d of pid %d (inotify) has %d bytes of unread events, which "
			       "cannot be restored",
			       fd, ctx->pid, queued);
	return 0;
}

static int dump_state(struct dump_ctx *ctx, struct dump_file *f, int fd, const char *info)
{
	InotifyEntry *in = malloc(sizeof(*in));
	static char path[4096];

	if (!in)
		return err_set("out of memory");
	inotify_entry__init(in);
	f->entry.inotify = in;
	if (check_queue(ctx, f, fd))
		return -1;
	for (const char *p = anonfd_field(info, "inotify"); p; p = anonfd_field(p, "inotify")) {
		struct watch_info w;
		if (parse_watch(p, &w))
			return err_set("fd %d of pid %d (inotify): cannot parse its fdinfo", fd,
				       ctx->pid);
		if (watch_path(ctx, fd, &w, path, sizeof(path)) ||
		    add_wd(in, &w, path, user_dev(w.sdev)))
			return -1;
	}
	for (size_t i = 0; i < in->n_wds; i++)
		if (in->wds[i]->wd > in->n_wds + MAX_WD_GAP)
			return err_set("fd %d of pid %d (inotify): wd %u is too far above the "
				       "others to be given out again",
				       fd, ctx->pid, in->wds[i]->wd);
	return 0;
}

static void inotify_free(FileEntry *fe)
{
	InotifyEntry *in = fe->inotify;

	if (!in)
		return;
	for (size_t i = 0; i < in->n_wds; i++) {
		free(in->wds[i]->path);
		free(in->wds[i]);
	}
	free(in->wds);
	free(in);
	fe->inotify = NULL;
}

static int check_inode(const InotifyWdEntry *e)
{
	struct stat st;

	if (stat(e->path, &st))
		return err_errno("watched path %s (wd %u) is not available", e->path, e->wd);
	if (st.st_ino != e->ino || st.st_dev != e->dev)
		return err_set("watched path %s (wd %u) is no longer the same inode", e->path,
			       e->wd);
	return 0;
}

static int check_state(const struct restore_tree *tree, const FileEntry *fe)
{
	const InotifyEntry *in = fe->inotify;

	(void)tree;
	if (!in)
		return err_set("inotify without its state");
	for (size_t i = 0; i < in->n_wds; i++) {
		const InotifyWdEntry *e = in->wds[i];
		if (!e->wd || (i && e->wd <= in->wds[i - 1]->wd) || e->wd > in->n_wds + MAX_WD_GAP)
			return err_set("bad wd %u", e->wd);
		if (!e->mask || (e->mask & ~(IN_ALL_EVENTS | WD_FLAGS)))
			return err_set("wd %u has a bad mask %#x", e->wd, e->mask);
		if (e->path[0] != '/')
			return err_set("wd %u has no absolute path", e->wd);
		if (check_inode(e))
			return -1;
	}
	return 0;
}

/* Reads out every queued event (the instance is non-blocking here). */
static int drain(int fd)
{
	char buf[4096];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
	if (errno != EAGAIN)
		return err_errno("cannot empty the inotify queue");
	return 0;
}

/* A path to an inode none of the watches is on. */
static const char *throwaway_path(const InotifyEntry *in)
{
	static const char *const cand[] = {"/", "/dev", "/proc", "/sys", "/tmp", "/etc", "/usr"};

	for (size_t c = 0; c < sizeof(cand) / sizeof(cand[0]); c++) {
		struct stat st;
		bool used = false;
		if (stat(cand[c], &st))
			continue;
		for (size_t i = 0; i < in->n_wds && !used; i++)
			used = st.st_ino == in->wds[i]->ino && st.st_dev == in->wds[i]->dev;
		if (!used)
			return cand[c];
	}
	return NULL;
}

/* Uses up wd `next` with a watch added and removed at once. */
static int skip_wd(int fd, const char *tmp, unsigned next)
{
	int wd = inotify_add_watch(fd, tmp, IN_DELETE_SELF | IN_DONT_FOLLOW);

	if (wd < 0)
		return err_errno("cannot add a throwaway watch on %s", tmp);
	if ((unsigned)wd != next)
		return err_set("a throwaway watch got wd %d, not %u", wd, next);
	if (inotify_rm_watch(fd, wd))
		return err_errno("cannot remove a throwaway watch");
	return drain(fd);
}

static int add_watches(int fd, const InotifyEntry *in)
{
	const char *tmp = throwaway_path(in);
	unsigned next = 1;

	for (size_t i = 0; i < in->n_wds; i++) {
		const InotifyWdEntry *e = in->wds[i];
		if (e->wd > next && !tmp)
			return err_set("no unwatched inode to skip wds with");
		for (; next < e->wd; next++)
			if (skip_wd(fd, tmp, next))
				return -1;
		if (check_inode(e))
			return -1;
		int wd = inotify_add_watch(fd, e->path, e->mask | IN_DONT_FOLLOW | IN_MASK_CREATE);
		if (wd < 0)
			return err_errno("cannot watch %s (wd %u, mask %#x)", e->path, e->wd,
					 e->mask);
		if ((unsigned)wd != e->wd)
			return err_set("the watch on %s got wd %d instead of %u", e->path, wd,
				       e->wd);
		next++;
	}
	return drain(fd);
}

static int make(struct restore_ctx *ctx, const FileEntry *fe, int *fd)
{
	(void)ctx;
	*fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (*fd < 0)
		return err_errno("cannot create an inotify instance");
	return add_watches(*fd, fe->inotify);
}

static const struct anonfd_type type = {"anon_inode:inotify", "inotify", O_RDONLY};

ANONFD_OPS(type, dump_state, check_state, make)

const struct fd_kind inotify_kind = {
    .name = "inotify",
    .kind = FILE_KIND__INOTIFY,
    .recognise = anon_recognise,
    .dump = anon_dump,
    .free_entry = inotify_free,
    .validate = anon_validate,
    .open = anon_open,
};
