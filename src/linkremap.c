/*
 * linkremap: regular files whose opened name was removed while other names
 * of them remain (`ln a b; open a; rm a`): the link reads "PATH (deleted)"
 * but the inode still has links, none of which cryo can find cheaply.
 *
 * Dump, only with --link-remap (CRIU's option; without it such an fd stops
 * the dump, saying so): the inode is linked back, through cryo's duplicate
 * (/proc/self/fd, linkat AT_SYMLINK_FOLLOW), under a temporary name in the
 * directory of the removed one, ".cryo-link-remap.DEV.INO"; the
 * description records the removed path and that name (file_entry.path,
 * remap_path). A dump that fails removes the names it made; a committed
 * one leaves them for the restore (so with --leave-running the inode has
 * one link more until a restore).
 *
 * Restore: the temporary name must be there, the same kind of file. The
 * description is opened under the removed name, linked again for the
 * moment (when it is free), so that the fd reads "PATH (deleted)" as
 * before, and the name unlinked; then its offset. Once the tree is rebuilt
 * (release), every temporary name is removed: the inode has its links of
 * the dump again.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "fdkind.h"
#include "infra/log.h"

#define DELETED	     " (deleted)"
#define REMAP_PREFIX ".cryo-link-remap."

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && !strcmp(s + n - m, suffix);
}

/* ---- dump ---- */

/* A regular file still linked, but not under the name it was opened by. */
static bool remap_recognise(const struct fd_probe *p)
{
	struct stat now;

	if (!S_ISREG(p->st->st_mode) || (p->flags & O_PATH) || p->st->st_nlink == 0 ||
	    p->link[0] != '/' || !ends_with(p->link, DELETED))
		return false;
	/* a file really named "... (deleted)" is a regular file */
	return stat(p->link, &now) || now.st_dev != p->st->st_dev || now.st_ino != p->st->st_ino;
}

/* The temporary name in the directory of the removed path. */
static int remap_name(const char *path, const struct stat *st, char *buf, size_t len)
{
	char dir[4096];

	snprintf(dir, sizeof(dir), "%s", path);
	if ((size_t)snprintf(buf, len, "%s/" REMAP_PREFIX "%u.%u.%llu", dirname(dir),
			     major(st->st_dev), minor(st->st_dev),
			     (unsigned long long)st->st_ino) >= len)
		return err_set("the path %s is too long", path);
	return 0;
}

/* Links the inode open on local under name (already there: the same inode
 * linked by an earlier description). */
static int link_back(int local, const char *name, const struct stat *st, bool *made)
{
	char proc[64];
	struct stat now;

	*made = false;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", local);
	if (!linkat(AT_FDCWD, proc, AT_FDCWD, name, AT_SYMLINK_FOLLOW)) {
		*made = true;
		return 0;
	}
	if (errno == EEXIST && !lstat(name, &now) && now.st_dev == st->st_dev &&
	    now.st_ino == st->st_ino)
		return 0;
	return err_errno("cannot link the file back as %s", name);
}

static int remap_dump(struct dump_ctx *ctx, struct dump_file *f, const struct fd_probe *p)
{
	size_t len = strlen(p->link) - strlen(DELETED);
	char name[4096];
	bool made;

	if (!ctx->opts->link_remap)
		return err_set("fd %d of pid %d is %s: removed from that path but still linked "
			       "elsewhere (%lu links): dump with --link-remap to save it",
			       p->fd, ctx->pid, p->link, (unsigned long)p->st->st_nlink);
	snprintf(f->path, sizeof(f->path), "%.*s", (int)len, p->link);
	f->entry.path = f->path;
	if (remap_name(f->path, p->st, name, sizeof(name)) ||
	    link_back(f->local_fd, name, p->st, &made))
		return err_wrap("fd %d of pid %d (%s)", p->fd, ctx->pid, p->link);
	f->entry.remap_path = strdup(name);
	f->entry.has_remap_made = true;
	f->entry.remap_made = made;
	f->entry.has_size = true;
	f->entry.size = p->st->st_size;
	return f->entry.remap_path ? 0 : err_set("out of memory");
}

/* A failed dump leaves no name behind; a committed one leaves them for
 * the restore. */
static void remap_dump_end(struct dump_tree *tree, enum dump_end how)
{
	for (int i = 0; how == DUMP_END_FAILED && i < tree->nr_files; i++) {
		const FileEntry *e = &tree->files[i].entry;
		if (e->kind == FILE_KIND__LINK_REMAP && e->remap_path && e->remap_made)
			unlink(e->remap_path);
	}
}

static void remap_free_entry(FileEntry *fe)
{
	free(fe->remap_path);
	fe->remap_path = NULL;
}

/* ---- restore ---- */

static int remap_validate(const struct restore_tree *tree, const FileEntry *fe,
			  const struct fd_use *use)
{
	struct stat st;

	(void)tree;
	if (!fe->path || fe->path[0] != '/' || !fe->remap_path || fe->remap_path[0] != '/')
		return err_set("files.img: fd %d of pid %d has no valid path", use->fd, use->pid);
	if (lstat(fe->remap_path, &st))
		return err_errno("%s, where the removed file %s (fd %d of pid %d) was linked back, "
				 "is not available",
				 fe->remap_path, fe->path, use->fd, use->pid);
	if (!S_ISREG(st.st_mode))
		return err_set("%s (fd %d of pid %d) is no longer a regular file", fe->remap_path,
			       use->fd, use->pid);
	return 0;
}

/* Under its removed name while it is opened, when that name is free. */
static int remap_open(struct restore_ctx *ctx, const FileEntry *fe, int *fd)
{
	int flags = (fe->flags & ~(O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY | O_CLOEXEC)) | O_NOCTTY;
	bool named = !link(fe->remap_path, fe->path);

	(void)ctx;
	*fd = open(named ? fe->path : fe->remap_path, flags);
	if (named)
		unlink(fe->path);
	if (*fd < 0)
		return err_errno("cannot open %s (the removed %s)", fe->remap_path, fe->path);
	if (lseek(*fd, fe->pos, SEEK_SET) < 0)
		return err_errno("cannot seek %s to %llu", fe->path, (unsigned long long)fe->pos);
	return 0;
}

/* The tree is rebuilt: the temporary names go, the inode has its links of
 * the dump again. */
static int remap_release(struct restore_tree *tree)
{
	for (size_t i = 0; i < tree->nr_files; i++) {
		const FileEntry *fe = tree->files[i];
		if (fe->kind == FILE_KIND__LINK_REMAP && unlink(fe->remap_path) && errno != ENOENT)
			return err_errno("cannot remove %s", fe->remap_path);
	}
	return 0;
}

static void remap_describe(const FileEntry *fe, char *buf, size_t len)
{
	snprintf(buf, len, "removed file %s (linked back as %s)", fe->path ? fe->path : "?",
		 fe->remap_path ? fe->remap_path : "?");
}

const struct fd_kind linkremap_kind = {
    .name = "removed file still linked",
    .kind = FILE_KIND__LINK_REMAP,
    .recognise = remap_recognise,
    .dump = remap_dump,
    .dump_end = remap_dump_end,
    .free_entry = remap_free_entry,
    .validate = remap_validate,
    .open = remap_open,
    .release = remap_release,
    .describe = remap_describe,
};
