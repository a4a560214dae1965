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
 * A watch on an inode that was deleted (a file or directory removed while
 * something still holds it: the kernel keeps the watch on the inode until
 * its last holder lets go, then reports IN_DELETE_SELF and IN_IGNORED) has
 * no path. The dump finds the process of the tree that holds the inode (an
 * fd of a deleted file, directory, device node or memfd, or its working
 * directory) and saves that holder; a watch whose inode no process of the
 * tree holds stops the dump. Such an instance is made late (open_late),
 * once every process of the tree has its fds and cwd: the watch is added
 * through /proc/PID/fd/N (or /proc/PID/cwd), which leads to the inode the
 * restore made again, so the same wd goes on reporting what is done to it
 * (IN_MODIFY, IN_ATTRIB...) and its IN_DELETE_SELF when its holder closes
 * it. It is then the holding process's own: an instance with such a watch
 * shared by several processes is refused.
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

/* Fills the path of the watched inode and checks that it leads there: 0,
 * or 1 for a deleted inode (path: the name it had). */
static int watch_path(struct dump_ctx *ctx, int fd, const struct watch_info *w, char *path,
		      size_t len)
{
	int r = fhandle_path_or_deleted(&w->h, path, len);

	if (r < 0)
		return err_wrap("fd %d of pid %d (inotify): wd %u", fd, ctx->pid, w->wd);
	return r;
}

static int add_wd(InotifyEntry *in, const struct watch_info *w, const char *path, dev_t dev,
		  bool deleted)
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
	e->has_holder_pid = e->has_holder_fd = deleted; /* found by find_holders */
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
		int deleted = watch_path(ctx, fd, &w, path, sizeof(path));
		if (deleted < 0 || add_wd(in, &w, path, fhandle_dev(w.h.sdev), deleted))
			return -1;
	}
	for (size_t i = 0; i < in->n_wds; i++)
		if (in->wds[i]->wd > in->n_wds + MAX_WD_GAP)
			return err_set("fd %d of pid %d (inotify): wd %u is too far above the "
				       "others to be given out again",
				       fd, ctx->pid, in->wds[i]->wd);
	return 0;
}

/* ---- deleted inodes: who holds them ---- */

static bool same_inode(int fd, const char *path, const InotifyWdEntry *e)
{
	struct stat st;

	if (path ? stat(path, &st) : fstat(fd, &st))
		return false;
	return st.st_ino == e->ino && st.st_dev == e->dev;
}

/* The kinds of description that make a deleted inode again. */
static bool remakes_inode(FileKind k)
{
	return k == FILE_KIND__GHOST || k == FILE_KIND__GHOST_NODE || k == FILE_KIND__MEMFD ||
	       k == FILE_KIND__OPATH;
}

/* The fd (or cwd: fd -1) of a process of the tree that holds e's inode. */
static int find_holder(const struct dump_tree *tree, InotifyWdEntry *e)
{
	char cwd[64];

	for (int i = 0; i < tree->nr_files; i++) {
		const struct dump_file *f = &tree->files[i];
		if (remakes_inode(f->entry.kind) && f->first_fd >= 0 &&
		    same_inode(f->local_fd, NULL, e)) {
			e->holder_pid = f->first_pid;
			e->holder_fd = f->first_fd;
			return 0;
		}
	}
	for (int i = 0; i < tree->nr_procs; i++) {
		snprintf(cwd, sizeof(cwd), "/proc/%d/cwd", tree->procs[i]->pid);
		if (!tree->procs[i]->zombie && same_inode(-1, cwd, e)) {
			e->holder_pid = tree->procs[i]->pid;
			e->holder_fd = -1;
			return 0;
		}
	}
	return -1;
}

static int find_holders(struct dump_tree *tree)
{
	for (int i = 0; i < tree->nr_files; i++) {
		const struct dump_file *f = &tree->files[i];
		if (f->entry.kind != FILE_KIND__INOTIFY || !f->entry.inotify)
			continue;
		for (size_t w = 0; w < f->entry.inotify->n_wds; w++) {
			InotifyWdEntry *e = f->entry.inotify->wds[w];
			if (e->has_holder_pid && find_holder(tree, e))
				return err_set("fd %d of pid %d (inotify): wd %u watches %s, which "
					       "was deleted and no process of the checkpoint "
					       "holds: it cannot be made again",
					       f->first_fd, f->first_pid, e->wd, e->path);
		}
	}
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

/* The path that leads to the watched inode in the new tree. */
static const char *restore_path(const InotifyWdEntry *e, char *buf, size_t len)
{
	if (!e->has_holder_pid)
		return e->path;
	if (e->holder_fd < 0)
		snprintf(buf, len, "/proc/%d/cwd", e->holder_pid);
	else
		snprintf(buf, len, "/proc/%d/fd/%d", e->holder_pid, e->holder_fd);
	return buf;
}

static bool has_fd(const struct restore_ctx *p, int fd)
{
	for (size_t i = 0; i < p->nr_fds; i++)
		if ((int)p->fds[i]->fd == fd)
			return true;
	return false;
}

static size_t holders_of(const struct restore_tree *tree, uint32_t id)
{
	size_t n = 0;

	for (size_t i = 0; i < tree->nr_procs; i++)
		for (size_t j = 0; j < tree->procs[i]->nr_fds; j++)
			if (tree->procs[i]->fds[j]->file_id == id) {
				n++;
				break;
			}
	return n;
}

static bool watches_deleted(const FileEntry *fe)
{
	for (size_t i = 0; fe->inotify && i < fe->inotify->n_wds; i++)
		if (fe->inotify->wds[i]->has_holder_pid)
			return true;
	return false;
}

/* A deleted inode's holder is in the checkpoint and holds it there. */
static int check_holder(const struct restore_tree *tree, const FileEntry *fe,
			const InotifyWdEntry *e)
{
	const struct restore_ctx *p = ctx_proc(tree, e->holder_pid);

	if (!e->has_holder_fd || !p || p->zombie || e->holder_fd < -1 ||
	    (e->holder_fd >= 0 && !has_fd(p, e->holder_fd)))
		return err_set("wd %u (deleted %s) has a bad holder %d/%d", e->wd, e->path,
			       e->holder_pid, e->has_holder_fd ? e->holder_fd : -2);
	if (holders_of(tree, fe->id) > 1)
		return err_set("an inotify instance watching the deleted %s (wd %u) is shared by "
			       "several processes: not supported",
			       e->path, e->wd);
	return 0;
}

static int check_state(const struct restore_tree *tree, const FileEntry *fe)
{
	const InotifyEntry *in = fe->inotify;

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
		if (e->has_holder_pid ? check_holder(tree, fe, e) : check_inode(e))
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

/* A deleted inode is reached through its holder, following the magic link
 * (no IN_DONT_FOLLOW); it must be deleted still. */
static int add_watch(int fd, const InotifyWdEntry *e)
{
	char buf[64];
	const char *path = restore_path(e, buf, sizeof(buf));
	unsigned follow = e->has_holder_pid ? 0 : IN_DONT_FOLLOW;
	struct stat st;

	if (!e->has_holder_pid && check_inode(e))
		return -1;
	if (e->has_holder_pid && (stat(path, &st) || st.st_nlink))
		return err_set("%s, which holds the deleted %s (wd %u), is not a deleted inode",
			       path, e->path, e->wd);
	int wd = inotify_add_watch(fd, path, e->mask | follow | IN_MASK_CREATE);
	if (wd < 0)
		return err_errno("cannot watch %s (wd %u, mask %#x)", path, e->wd, e->mask);
	if ((unsigned)wd != e->wd)
		return err_set("the watch on %s got wd %d instead of %u", path, wd, e->wd);
	return 0;
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
		if (add_watch(fd, e))
			return -1;
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

static const struct anonfd_type type = {"anon_inode:inotify", "inotify", O_RDONLY, 0};

ANONFD_OPS(type, dump_state, check_state, make)

const struct fd_kind inotify_kind = {
    .name = "inotify",
    .kind = FILE_KIND__INOTIFY,
    .recognise = anon_recognise,
    .dump = anon_dump,
    .dump_finish = find_holders,
    .free_entry = inotify_free,
    .validate = anon_validate,
    .open = anon_open,
    .open_late = anon_open,
    .late_if = watches_deleted,
};
