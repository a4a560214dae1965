/*
 * inotify: the watches of an inotify instance, with their wd numbers.
 *
 * Dump: fdinfo gives, per watch, its wd, mask (with IN_ONESHOT and
 * IN_EXCL_UNLINK) and a file handle of the watched inode, with the inode
 * number and the device: fhandle.c finds a path that leads to it. Queued events are
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
#include <unistd.h>

#include "anonfd.h"
#include "fhandle.h"
#include "infra/log.h"

#define MAX_WD_GAP (1 << 20) /* throwaway watches a restore may need at most */
#define WD_FLAGS   (IN_ONESHOT | IN_EXCL_UNLINK)

struct watch_info {
	unsigned wd, mask;
	struct fhandle_info h;
};

static int parse_watch(const char *p, struct watch_info *w)
{
	int n = 0;

	if (sscanf(p, " wd:%x ino:%llx sdev:%x mask:%x ignored_mask:%*x %n", &w->wd, &w->h.ino,
		   &w->h.sdev, &w->mask, &n) != 4 ||
	    !n)
		return -1;
	return fhandle_parse(p + n, &w->h);
}

/* Fills the path of the watched inode and checks that it leads there. */
static int watch_path(struct dump_ctx *ctx, int fd, const struct watch_info *w, char *path,
		      size_t len)
{
	if (fhandle_path(&w->h, path, len))
		return err_wrap("fd %d of pid %d (inotify): wd %u", fd, ctx->pid, w->wd);
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
	e->ino = w->h.ino;
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
		    add_wd(in, &w, path, fhandle_dev(w.h.sdev)))
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
