/*
 * pathfile: descriptions opened again by their path: regular files,
 * directories and the character devices that hold no state (/dev/null,
 * /dev/zero, /dev/full, /dev/random, /dev/urandom).
 *
 * Dump: the path is what /proc/PID/fd/N reads; a regular file's size is
 * kept so that a restore can tell that data the process had seen is gone.
 * Restore: the file must still be there, of the same type, no shorter;
 * the new process opens it with the saved flags and seeks to the offset.
 * Files deleted while open are ghost.c's, O_PATH descriptions ghost.c's,
 * directories and devices removed while open ghostnode.c's.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "fdkind.h"
#include "infra/log.h"

#define OPEN_ONLY_FLAGS (O_CREAT | O_EXCL | O_TRUNC | O_NOCTTY | O_CLOEXEC)

static const struct {
	unsigned major, minor;
} safe_devices[] = {{1, 3}, {1, 5}, {1, 7}, {1, 8}, {1, 9}}; /* null zero full random urandom */

bool pathfile_safe_device(dev_t rdev)
{
	for (size_t i = 0; i < sizeof(safe_devices) / sizeof(safe_devices[0]); i++)
		if (major(rdev) == safe_devices[i].major && minor(rdev) == safe_devices[i].minor)
			return true;
	return false;
}

static bool by_path(const struct fd_probe *p)
{
	return !(p->flags & O_PATH);
}

static bool reg_recognise(const struct fd_probe *p)
{
	return S_ISREG(p->st->st_mode) && by_path(p) && !strstr(p->link, " (deleted)");
}

static bool dir_recognise(const struct fd_probe *p)
{
	return S_ISDIR(p->st->st_mode) && by_path(p);
}

static bool chr_recognise(const struct fd_probe *p)
{
	return S_ISCHR(p->st->st_mode) && by_path(p) && pathfile_safe_device(p->st->st_rdev);
}

static int path_dump(struct dump_ctx *ctx, struct dump_file *f, const struct fd_probe *p)
{
	(void)ctx;
	if (S_ISREG(p->st->st_mode)) {
		f->entry.has_size = true;
		f->entry.size = p->st->st_size;
	}
	if (S_ISCHR(p->st->st_mode)) {
		f->entry.has_rdev = true;
		f->entry.rdev = p->st->st_rdev;
	}
	snprintf(f->path, sizeof(f->path), "%s", p->link);
	f->entry.path = f->path;
	return 0;
}

static int path_validate(const struct restore_tree *tree, const FileEntry *fe,
			 const struct fd_use *use)
{
	struct stat st;

	(void)tree;
	if (!fe->path || fe->path[0] != '/')
		return err_set("files.img: fd %d of pid %d has no valid path", use->fd, use->pid);
	if (stat(fe->path, &st))
		return err_errno("file %s (fd %d of pid %d) is not available", fe->path, use->fd,
				 use->pid);
	if ((st.st_mode & S_IFMT) != (fe->mode & S_IFMT))
		return err_set("%s (fd %d of pid %d) is no longer the same kind of file", fe->path,
			       use->fd, use->pid);
	/* data the process had seen is gone; a file that grew (a log) is fine */
	if (fe->kind == FILE_KIND__REG && fe->has_size && (uint64_t)st.st_size < fe->size)
		return err_set("%s (fd %d of pid %d) shrank since the checkpoint (%llu bytes, "
			       "was %llu)",
			       fe->path, use->fd, use->pid, (unsigned long long)st.st_size,
			       (unsigned long long)fe->size);
	return 0;
}

int pathfile_reopen(const FileEntry *fe, bool seek, int *fd)
{
	*fd = open(fe->path, (fe->flags & ~OPEN_ONLY_FLAGS) | O_NOCTTY);
	if (*fd < 0)
		return err_errno("cannot open %s", fe->path);
	if (seek && lseek(*fd, fe->pos, SEEK_SET) < 0)
		return err_errno("cannot seek %s to %llu", fe->path, (unsigned long long)fe->pos);
	return 0;
}

static int path_open(struct restore_ctx *ctx, const FileEntry *fe, int *fd)
{
	(void)ctx;
	return pathfile_reopen(fe, fe->kind == FILE_KIND__REG, fd);
}

const struct fd_kind reg_kind = {
    .name = "regular file",
    .kind = FILE_KIND__REG,
    .recognise = reg_recognise,
    .dump = path_dump,
    .validate = path_validate,
    .open = path_open,
};

const struct fd_kind dir_kind = {
    .name = "directory",
    .kind = FILE_KIND__DIR,
    .recognise = dir_recognise,
    .dump = path_dump,
    .validate = path_validate,
    .open = path_open,
};

const struct fd_kind chr_kind = {
    .name = "character device",
    .kind = FILE_KIND__CHR,
    .recognise = chr_recognise,
    .dump = path_dump,
    .validate = path_validate,
    .open = path_open,
};
