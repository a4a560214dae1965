/*
 * ghostnode: directories and device nodes removed while open (an fd of a
 * directory or of a harmless character device whose link reads
 * "PATH (deleted)"), and working directories removed (fs.c uses the same
 * making).
 *
 * Dump: such a node has no contents to save: the path it had, its type,
 * permissions, owner and device number are what it is (file_entry path,
 * mode, uid, gid, rdev).
 *
 * Restore: the name must be free (checked before anything is made). In the
 * new process the node is made again at that path for a moment (mkdir or
 * mknod, its missing parent directories too, with their owner and mode),
 * opened with the saved flags, and removed again with the parents made for
 * it: the fd reads "PATH (deleted)", a directory is empty and has no link,
 * as before.
 *
 * With dump --evasive-devices (CRIU's meaning: any path to the device will
 * do when its own is gone), a removed device node is saved instead as the
 * character device at another path to the same device number under /dev
 * (pathfile.c opens it again there); the node is made again only when no
 * such path exists.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fdkind.h"
#include "ghostnode.h"
#include "infra/log.h"

#define DELETED	    " (deleted)"
#define MAX_PARENTS 64
#define OPEN_ONLY   (O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY | O_CLOEXEC)

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && !strcmp(s + n - m, suffix);
}

/* ---- making it again ---- */

/* Makes the missing parents of path; *n of them, outermost first, in made. */
static int make_parents(const char *path, char made[][4096], int *n)
{
	char prefix[4096];
	struct stat st;

	*n = 0;
	for (const char *p = strchr(path + 1, '/'); p; p = strchr(p + 1, '/')) {
		snprintf(prefix, sizeof(prefix), "%.*s", (int)(p - path), path);
		if (!lstat(prefix, &st))
			continue;
		if (errno != ENOENT || *n == MAX_PARENTS)
			return err_errno("cannot make the directory %s again", prefix);
		if (mkdir(prefix, 0700) == 0)
			snprintf(made[(*n)++], 4096, "%s", prefix);
		else if (errno != EEXIST) /* EEXIST: another process of the tree made it */
			return err_errno("cannot make the directory %s again", prefix);
	}
	return 0;
}

static void remove_parents(char made[][4096], int n)
{
	while (n-- > 0)
		rmdir(made[n]);
}

static int make_node(const char *path, unsigned mode, uint64_t rdev, unsigned uid, unsigned gid)
{
	int r = S_ISDIR(mode) ? mkdir(path, 0700) : mknod(path, (mode & S_IFMT) | 0600, rdev);

	if (r)
		return -1;
	if (lchown(path, uid, gid) || chmod(path, mode & 07777)) {
		r = err_errno("cannot set the owner and mode of %s", path);
		S_ISDIR(mode) ? rmdir(path) : unlink(path);
	}
	return r;
}

/* One try: made here, or found being made by another process of the tree
 * (the name was checked free before the restore made anything): 0, or -1
 * with errno ENOENT if the other one removed it first. */
static int try_open(const char *path, unsigned mode, uint64_t rdev, unsigned uid, unsigned gid,
		    int flags, int *fd)
{
	bool mine = make_node(path, mode, rdev, uid, gid) == 0;

	if (!mine && errno != EEXIST)
		return -1;
	*fd = open(path, (flags & ~OPEN_ONLY) | O_NOCTTY | (S_ISDIR(mode) ? O_DIRECTORY : 0));
	if (*fd < 0 && (mine || errno != ENOENT))
		err_errno("cannot open %s", path);
	if (mine)
		S_ISDIR(mode) ? rmdir(path) : unlink(path);
	return *fd < 0 ? -1 : 0;
}

int ghostnode_open(const char *path, unsigned mode, uint64_t rdev, unsigned uid, unsigned gid,
		   int flags)
{
	static char made[MAX_PARENTS][4096];
	int n, fd = -1;

	for (int tries = 0; fd < 0 && tries < 100; tries++) {
		if (make_parents(path, made, &n))
			break;
		int r = try_open(path, mode, rdev, uid, gid, flags, &fd);
		remove_parents(made, n);
		if (r && errno != ENOENT && errno != EEXIST)
			break;
	}
	if (fd < 0)
		err_errno("cannot make %s again", path);
	return fd;
}

int ghostnode_check(const char *path)
{
	struct stat st;

	if (path[0] != '/')
		return err_set("the removed %s has no absolute path", path);
	if (!lstat(path, &st))
		return err_set("%s, removed at the checkpoint, exists again: cannot make it for "
			       "the restore",
			       path);
	return 0;
}

/* ---- the kind of file ---- */

static bool node_recognise(const struct fd_probe *p)
{
	const struct stat *st = p->st;

	return !(p->flags & O_PATH) && st->st_nlink == 0 && ends_with(p->link, DELETED) &&
	       (S_ISDIR(st->st_mode) ||
		(S_ISCHR(st->st_mode) && pathfile_safe_device(st->st_rdev)));
}

/* A character device node for rdev in dir or one level below, into path. */
static bool find_device(const char *dir, dev_t rdev, int depth, char *path, size_t len)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	bool found = false;

	while (d && !found && (e = readdir(d))) {
		struct stat st;
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, len, "%s/%s", dir, e->d_name);
		if (lstat(path, &st))
			continue;
		if (S_ISCHR(st.st_mode) && st.st_rdev == rdev)
			found = true;
		else if (S_ISDIR(st.st_mode) && depth > 0) {
			char sub[4096];
			snprintf(sub, sizeof(sub), "%s", path);
			found = find_device(sub, rdev, depth - 1, path, len);
		}
	}
	if (d)
		closedir(d);
	return found;
}

/* --evasive-devices: the removed device as another path to it (a CHR). */
static bool evade(struct dump_ctx *ctx, struct dump_file *f, const struct fd_probe *p)
{
	if (!ctx->opts->evasive_devices || !S_ISCHR(p->st->st_mode) ||
	    !find_device("/dev", p->st->st_rdev, 1, f->path, sizeof(f->path)))
		return false;
	pr_info("fd %d of pid %d: %s is gone; %s, the same device, is used instead", p->fd,
		ctx->pid, p->link, f->path);
	f->entry.kind = FILE_KIND__CHR;
	f->entry.path = f->path;
	f->entry.has_rdev = true;
	f->entry.rdev = p->st->st_rdev;
	return true;
}

static int node_dump(struct dump_ctx *ctx, struct dump_file *f, const struct fd_probe *p)
{
	if (evade(ctx, f, p))
		return 0;
	snprintf(f->path, sizeof(f->path), "%.*s", (int)(strlen(p->link) - strlen(DELETED)),
		 p->link);
	f->entry.path = f->path;
	f->entry.has_uid = f->entry.has_gid = true;
	f->entry.uid = p->st->st_uid;
	f->entry.gid = p->st->st_gid;
	if (S_ISCHR(p->st->st_mode)) {
		f->entry.has_rdev = true;
		f->entry.rdev = p->st->st_rdev;
	}
	return 0;
}

static int node_validate(const struct restore_tree *tree, const FileEntry *fe,
			 const struct fd_use *use)
{
	(void)tree;
	if (!fe->path || !fe->has_mode || !fe->has_uid || !fe->has_gid ||
	    !(S_ISDIR(fe->mode) ||
	      (S_ISCHR(fe->mode) && fe->has_rdev && pathfile_safe_device(fe->rdev))))
		return err_set("files.img: the removed node of fd %d of pid %d is malformed",
			       use->fd, use->pid);
	return ghostnode_check(fe->path) ? err_wrap("fd %d of pid %d", use->fd, use->pid) : 0;
}

static int node_open(struct restore_ctx *ctx, const FileEntry *fe, int *fd)
{
	(void)ctx;
	*fd = ghostnode_open(fe->path, fe->mode, fe->rdev, fe->uid, fe->gid, fe->flags);
	if (*fd < 0)
		return -1;
	if (S_ISDIR(fe->mode) && lseek(*fd, fe->pos, SEEK_SET) < 0)
		return err_errno("cannot seek %s", fe->path);
	return 0;
}

static void node_describe(const FileEntry *fe, char *buf, size_t len)
{
	snprintf(buf, len, "removed %s %s", S_ISDIR(fe->mode) ? "directory" : "device node",
		 fe->path ? fe->path : "?");
}

const struct fd_kind ghostnode_kind = {
    .name = "removed directory or device node",
    .kind = FILE_KIND__GHOST_NODE,
    .recognise = node_recognise,
    .dump = node_dump,
    .validate = node_validate,
    .open = node_open,
    .describe = node_describe,
};
