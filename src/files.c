/*
 * files: the fd table and the open file descriptions behind it.
 *
 * Dump: every fd of /proc/PID/fd is duplicated into cryo with pidfd_getfd,
 * so its description can be examined directly: fstat for its kind, kcmp to
 * find fds that share one description, /proc/PID/fdinfo for offset and
 * flags. Regular files, directories and the harmless character devices are
 * handled here; pipes (pipes.c) and the terminal of a shell job (tty.c)
 * by their own files. Anything else stops the dump with an error naming
 * the fd and what it is: an fd is never silently dropped.
 *
 * files.img holds one record per description, fdinfo-PID.img the fd table.
 * On restore the new process opens each description once, places it on
 * every fd that shared it, positions it and sets its flags.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <linux/kcmp.h>

#include "context.h"
#include "infra/log.h"

/* flags that only matter at open time, or that fcntl() cannot set */
#define OPEN_ONLY_FLAGS (O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY | O_CLOEXEC)

static const struct {
	unsigned major, minor;
} safe_devices[] = {{1, 3}, {1, 5}, {1, 7}, {1, 8}, {1, 9}}; /* null zero full random urandom */

static int read_fdinfo(pid_t pid, int fd, uint64_t *pos, unsigned *flags)
{
	char name[64], *buf, *p;

	snprintf(name, sizeof(name), "fdinfo/%d", fd);
	if (proc_read(pid, name, &buf, NULL))
		return -1;
	p = strstr(buf, "pos:");
	*pos = p ? strtoull(p + 4, NULL, 10) : 0;
	p = strstr(buf, "flags:");
	*flags = p ? strtoul(p + 6, NULL, 8) : 0;
	free(buf);
	if (!p)
		return err_set("cannot parse /proc/%d/fdinfo/%d", pid, fd);
	return 0;
}

static bool is_safe_device(dev_t rdev)
{
	for (size_t i = 0; i < sizeof(safe_devices) / sizeof(safe_devices[0]); i++)
		if (major(rdev) == safe_devices[i].major && minor(rdev) == safe_devices[i].minor)
			return true;
	return false;
}

static int classify(struct dump_ctx *ctx, struct dump_file *f, int fd, const struct stat *st,
		    const char *link)
{
	FileEntry *e = &f->entry;

	if (e->flags & O_PATH) /* any kind of file, reopened by path: ghost.c */
		return opath_dump_file(ctx, f, fd, st, link);
	if (!strncmp(link, "anon_inode:", 11)) /* no file type: anonfd.c tells them apart */
		return anonfd_dump_file(ctx, f, fd, link);
	switch (st->st_mode & S_IFMT) {
	case S_IFREG:
		if (strstr(link, " (deleted)")) /* deleted files and memfds: ghost.c */
			return ghost_dump_file(ctx, f, fd, st, link);
		e->kind = FILE_KIND__REG;
		e->has_size = true;
		e->size = st->st_size;
		break;
	case S_IFDIR:
		e->kind = FILE_KIND__DIR;
		break;
	case S_IFCHR:
		if (tty_is_terminal(major(st->st_rdev)))
			return tty_dump_file(ctx, f, fd);
		if (!is_safe_device(st->st_rdev))
			return err_set("fd %d of pid %d is character device %u:%u (%s): not "
				       "supported yet",
				       fd, ctx->pid, major(st->st_rdev), minor(st->st_rdev), link);
		e->kind = FILE_KIND__CHR;
		e->has_rdev = true;
		e->rdev = st->st_rdev;
		break;
	case S_IFIFO:
		if (strncmp(link, "pipe:", 5))
			return pipes_dump_fifo(ctx, f, st, link);
		return pipes_dump_file(ctx, f, link);
	case S_IFSOCK:
		if (unix_sk_is_unix(f->local_fd))
			return unix_dump_file(ctx, f, fd);
		return err_set("fd %d of pid %d is a socket (%s): not supported yet", fd, ctx->pid,
			       link);
	default:
		return err_set("fd %d of pid %d is %s: not supported yet", fd, ctx->pid, link);
	}
	e->path = f->path;
	snprintf(f->path, sizeof(f->path), "%s", link);
	return 0;
}

/* The id of an already-seen description that local_fd shares, or 0. */
/* The tree's descriptions are kept in the kernel's order of their files
 * (kcmp orders them), so that finding whether an fd shares one takes a
 * binary search, not a kcmp per description: a process with thousands of
 * fds would otherwise make millions of calls. -1: none; *at: where it
 * would go. */
static int find_ordered(const struct dump_tree *tree, int local_fd, int *at)
{
	pid_t self = getpid();
	int lo = 0, hi = tree->nr_files;

	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;
		const struct dump_file *f = &tree->files[tree->file_order[mid]];
		long r = syscall(SYS_kcmp, self, self, KCMP_FILE, local_fd, f->local_fd);
		if (r == 0)
			return tree->file_order[mid];
		if (r == 1)
			hi = mid;
		else if (r == 2)
			lo = mid + 1;
		else
			return -2; /* no order to be had */
	}
	*at = lo;
	return -1;
}

/* The index of the description of the tree local_fd shares, or -1. */
int files_find(const struct dump_tree *tree, int local_fd)
{
	pid_t self = getpid();
	int at, i = find_ordered(tree, local_fd, &at);

	for (int k = 0; i == -2 && k < tree->nr_files; k++)
		if (!syscall(SYS_kcmp, self, self, KCMP_FILE, local_fd, tree->files[k].local_fd))
			i = k;
	return i < 0 ? -1 : i;
}

/* Counts the description just made at files[nr_files], in order. */
static void add_description(struct dump_tree *tree)
{
	int at = tree->nr_files, n = tree->nr_files;

	if (find_ordered(tree, tree->files[n].local_fd, &at) == -2)
		at = n;
	memmove(tree->file_order + at + 1, tree->file_order + at,
		(n - at) * sizeof(*tree->file_order));
	tree->file_order[at] = n;
	tree->nr_files++;
}

/* One fd: a description seen before (in this or another process of the
 * tree) is shared; a new one is classified and saved. */
static int dump_fd(struct dump_ctx *ctx, int fd)
{
	struct dump_file *f = &ctx->tree->files[ctx->tree->nr_files];
	FdEntry *fe = &ctx->fds[ctx->nr_fds];
	char link[4096], name[32];
	unsigned flags;
	uint64_t pos;
	struct stat st;
	int local = syscall(SYS_pidfd_getfd, ctx->pidfd, fd, 0);

	if (local < 0)
		return err_errno("cannot duplicate fd %d of pid %d", fd, ctx->pid);
	snprintf(name, sizeof(name), "fd/%d", fd);
	if (fstat(local, &st) || proc_readlink(ctx->pid, name, link, sizeof(link)) ||
	    read_fdinfo(ctx->pid, fd, &pos, &flags)) {
		close(local);
		return err_wrap("fd %d of pid %d", fd, ctx->pid);
	}
	fd_entry__init(fe);
	fe->fd = fd;
	fe->cloexec = flags & O_CLOEXEC;
	ctx->nr_fds++;
	int shared = files_find(ctx->tree, local);
	if (shared >= 0) {
		fe->file_id = ctx->tree->files[shared].entry.id;
		close(local);
		return 0;
	}
	file_entry__init(&f->entry);
	f->local_fd = local;
	f->first_pid = ctx->pid;
	f->first_fd = fd;
	f->entry.id = fe->file_id = ctx->tree->nr_files + 1;
	f->entry.flags = flags & ~OPEN_ONLY_FLAGS;
	f->entry.pos = pos;
	f->entry.has_mode = true;
	f->entry.mode = st.st_mode;
	add_description(ctx->tree);
	return classify(ctx, f, fd, &st, link);
}

static int write_fdinfo(struct dump_ctx *ctx)
{
	return img_write_array(&ctx->tree->dir, img_name_pid("fdinfo-%d.img", ctx->pid).s,
			       IMG_FDINFO, NULL, ctx->fds, ctx->nr_fds, sizeof(*ctx->fds));
}

/* Room for n more descriptions. A description's entry.path, when set,
 * points into its own path buffer, which moves with the array. */
static int grow_files(struct dump_tree *tree, int n)
{
	struct dump_file *grown = realloc(tree->files, (tree->nr_files + n + 1) * sizeof(*grown));
	int *order =
	    grown ? realloc(tree->file_order, (tree->nr_files + n + 1) * sizeof(*order)) : NULL;

	if (grown)
		tree->files = grown;
	if (!order)
		return err_set("out of memory");
	tree->file_order = order;
	for (int i = 0; i < tree->nr_files; i++)
		if (grown[i].entry.path)
			grown[i].entry.path = grown[i].path;
	memset(grown + tree->nr_files, 0, (n + 1) * sizeof(*grown));
	return 0;
}

/* A description no fd table holds: one in flight in a unix socket of the
 * process, or one only its mappings hold. local is cryo's fd on it (kept
 * open by the tree from now on); it becomes a description of the tree like
 * the others, and the root makes it on restore. */
int files_add_unheld(struct dump_ctx *ctx, int local, uint32_t *id)
{
	struct dump_tree *tree = ctx->tree;
	struct dump_file *f;
	char link[4096], name[32];
	struct stat st;
	ssize_t n;
	int flags;

	snprintf(name, sizeof(name), "/proc/self/fd/%d", local);
	n = readlink(name, link, sizeof(link) - 1);
	if (n < 0 || fstat(local, &st) || (flags = fcntl(local, F_GETFL)) < 0)
		return err_errno("pid %d: cannot examine a file it holds without an fd", ctx->pid);
	link[n] = 0;
	if (grow_files(tree, 1))
		return -1;
	f = &tree->files[tree->nr_files];
	file_entry__init(&f->entry);
	f->local_fd = fcntl(local, F_DUPFD_CLOEXEC, 0);
	if (f->local_fd < 0)
		return err_errno("cannot keep a file pid %d holds without an fd", ctx->pid);
	f->first_pid = ctx->pid;
	f->first_fd = -1;
	f->entry.id = *id = tree->nr_files + 1;
	f->entry.flags = flags & ~OPEN_ONLY_FLAGS;
	f->entry.has_mode = true;
	f->entry.mode = st.st_mode;
	add_description(tree);
	return classify(ctx, f, -1, &st, link);
}

/* One process's fds; descriptions already seen in another process of the
 * tree (kcmp) are shared, not duplicated. */
int files_dump(struct dump_ctx *ctx)
{
	int *fds, n = proc_list_fds(ctx->pid, &fds);

	if (n < 0)
		return -1;
	ctx->fds = calloc(n + 1, sizeof(*ctx->fds));
	if (!ctx->fds || grow_files(ctx->tree, n)) {
		free(fds);
		return err_set("out of memory");
	}
	for (int i = 0; i < n; i++) {
		if (dump_fd(ctx, fds[i])) {
			free(fds);
			return -1;
		}
	}
	free(fds);
	if (locks_dump(ctx))
		return -1;
	return write_fdinfo(ctx) || locks_write(ctx) ? -1 : 0;
}

/* files.img, pipes.img and ghost files, once every process has been seen. */
int files_write(struct dump_tree *tree)
{
	if (unix_dump_finish(tree) || pipes_check_complete(tree) ||
	    img_write_array(&tree->dir, "files.img", IMG_FILES, NULL,
			    tree->nr_files ? &tree->files[0].entry : NULL, tree->nr_files,
			    sizeof(*tree->files)))
		return -1;
	return pipes_write(tree) || ghost_write(tree) ? -1 : 0;
}

void files_dump_free(struct dump_tree *tree)
{
	unix_dump_free(tree);
	anonfd_dump_free(tree);
	ghost_dump_free(tree);
	for (int i = 0; i < tree->nr_files; i++)
		if (tree->files[i].local_fd >= 0)
			close(tree->files[i].local_fd);
	free(tree->files);
	free(tree->file_order);
	tree->files = NULL;
	tree->file_order = NULL;
	tree->nr_files = 0;
	for (int i = 0; i < tree->nr_procs; i++) {
		locks_dump_free(tree->procs[i]);
		free(tree->procs[i]->fds);
		tree->procs[i]->fds = NULL;
	}
	pipes_dump_free(tree);
}

/* ---- restore ---- */

const FileEntry *files_by_id(const struct restore_ctx *ctx, uint32_t id)
{
	/* the dump numbers them 1, 2, ... in order */
	if (id >= 1 && id <= ctx->nr_files && ctx->files[id - 1]->id == id)
		return ctx->files[id - 1];
	for (size_t i = 0; i < ctx->nr_files; i++)
		if (ctx->files[i]->id == id)
			return ctx->files[i];
	return NULL;
}

int files_max_fd(const struct restore_ctx *ctx)
{
	int max = 2;

	for (size_t i = 0; i < ctx->nr_fds; i++)
		if ((int)ctx->fds[i]->fd > max)
			max = ctx->fds[i]->fd;
	return max;
}

static int validate_path(const struct restore_ctx *ctx, const FileEntry *fe, uint32_t fd)
{
	struct stat st;

	if (!fe->path || fe->path[0] != '/')
		return err_set("files.img: fd %u of pid %d has no valid path", fd, ctx->pid);
	if (stat(fe->path, &st))
		return err_errno("file %s (fd %u of pid %d) is not available", fe->path, fd,
				 ctx->pid);
	if ((st.st_mode & S_IFMT) != (fe->mode & S_IFMT))
		return err_set("%s (fd %u of pid %d) is no longer the same kind of file", fe->path,
			       fd, ctx->pid);
	/* data the process had seen is gone; a file that grew (a log) is fine */
	if (fe->kind == FILE_KIND__REG && fe->has_size && (uint64_t)st.st_size < fe->size)
		return err_set("%s (fd %u of pid %d) shrank since the checkpoint (%llu bytes, "
			       "was %llu)",
			       fe->path, fd, ctx->pid, (unsigned long long)st.st_size,
			       (unsigned long long)fe->size);
	return 0;
}

int files_validate(struct restore_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nr_fds; i++) {
		const FdEntry *fd = ctx->fds[i];
		const FileEntry *fe = files_by_id(ctx, fd->file_id);
		if (fd->fd > 1 << 20 || (i && fd->fd <= ctx->fds[i - 1]->fd))
			return err_set("fdinfo-%d.img: bad fd number %u", ctx->pid, fd->fd);
		if (!fe)
			return err_set("fdinfo-%d.img: fd %u refers to a missing file %u", ctx->pid,
				       fd->fd, fd->file_id);
		if ((fe->kind == FILE_KIND__REG || fe->kind == FILE_KIND__DIR ||
		     fe->kind == FILE_KIND__CHR) &&
		    validate_path(ctx, fe, fd->fd))
			return -1;
		if (fe->kind == FILE_KIND__TTY && !ctx->opts->shell_job)
			return err_set("fd %u of pid %d was a terminal: restore with --shell-job",
				       fd->fd, ctx->pid);
	}
	if (anonfd_validate(ctx) || ghost_validate(ctx) || locks_validate(ctx))
		return -1;
	if (unix_validate(ctx))
		return -1;
	return pipes_validate(ctx);
}

static int open_path(const FileEntry *fe, int *fd)
{
	*fd = open(fe->path, (fe->flags & ~OPEN_ONLY_FLAGS) | O_NOCTTY);
	if (*fd < 0)
		return err_errno("cannot open %s", fe->path);
	if (fe->kind == FILE_KIND__REG && lseek(*fd, fe->pos, SEEK_SET) < 0)
		return err_errno("cannot seek %s to %llu", fe->path, (unsigned long long)fe->pos);
	return 0;
}

int files_open_description(struct restore_ctx *ctx, const FileEntry *fe, int *fd)
{
	switch (fe->kind) {
	case FILE_KIND__PIPE:
		return pipes_restore_child(ctx, fe, fd);
	case FILE_KIND__TTY:
		return tty_restore_child(ctx, fe, fd);
	case FILE_KIND__GHOST:
	case FILE_KIND__MEMFD:
		return ghost_restore_child(ctx, fe, fd);
	case FILE_KIND__OPATH:
		return opath_restore_child(ctx, fe, fd);
	case FILE_KIND__FIFO:
		return pipes_restore_child(ctx, fe, fd);
	case FILE_KIND__UNIX_SOCKET:
		return unix_restore_child(ctx, fe, fd);
	case FILE_KIND__EVENTFD:
	case FILE_KIND__SIGNALFD:
	case FILE_KIND__TIMERFD:
	case FILE_KIND__EPOLL:
	case FILE_KIND__INOTIFY:
		return anonfd_restore_child(ctx, fe, fd);
	default:
		return open_path(fe, fd);
	}
}

/* A description shared with other processes was made by the root and is
 * inherited; any other is made here. */
static int open_or_inherit(struct restore_ctx *ctx, const FileEntry *fe, int *fd)
{
	int slot = tree_inherited_fd(ctx, fe->id);

	if (slot < 0)
		return files_open_description(ctx, fe, fd);
	*fd = fcntl(slot, F_DUPFD_CLOEXEC, ctx->stage_base);
	if (*fd < 0)
		return err_errno("cannot take a shared description");
	return 0;
}

/* Opens one description and puts it on every fd that shared it. */
static int place_description(struct restore_ctx *ctx, const FileEntry *fe)
{
	int tmp, placed_tmp = 0;

	if (open_or_inherit(ctx, fe, &tmp))
		return -1;
	for (size_t i = 0; i < ctx->nr_fds; i++) {
		const FdEntry *fd = ctx->fds[i];
		if (fd->file_id != fe->id)
			continue;
		if ((int)fd->fd == tmp)
			placed_tmp = 1;
		else if (dup2(tmp, fd->fd) < 0)
			return err_errno("cannot place fd %u", fd->fd);
		if (fcntl(fd->fd, F_SETFD, fd->cloexec ? FD_CLOEXEC : 0))
			return err_errno("cannot set flags of fd %u", fd->fd);
	}
	if (!placed_tmp)
		close(tmp);
	return 0;
}

static bool used_here(const struct restore_ctx *ctx, uint32_t id)
{
	for (size_t i = 0; i < ctx->nr_fds; i++)
		if (ctx->fds[i]->file_id == id)
			return true;
	return false;
}

/* Pipe ends made along the way and never placed. */
void files_restore_drop_temps(struct restore_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nr_made_pipes; i++) {
		close(ctx->made_pipes[i].rfd);
		close(ctx->made_pipes[i].wfd);
	}
	free(ctx->made_pipes);
	ctx->made_pipes = NULL;
	ctx->nr_made_pipes = 0;
}

int files_restore_child(struct restore_ctx *ctx)
{
	/* unix sockets last: the fds in their queues are sent from placed fds */
	for (int unix_pass = 0; unix_pass < 2; unix_pass++)
		for (size_t i = 0; i < ctx->nr_files; i++)
			if ((ctx->files[i]->kind == FILE_KIND__UNIX_SOCKET) == unix_pass &&
			    used_here(ctx, ctx->files[i]->id) &&
			    place_description(ctx, ctx->files[i]))
				return -1;
	if (epoll_restore_watches(ctx)) /* its targets must all be in place */
		return -1;
	/* temporaries and the shared descriptions' slots */
	if (syscall(SYS_close_range, ctx->stage_base, ~0U, 0))
		return err_errno("cannot close temporary fds");
	return locks_restore_child(ctx); /* last: a close drops POSIX locks */
}
