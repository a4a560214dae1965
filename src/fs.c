/*
 * fs: the working directory, the root directory and the umask, saved to
 * fs-PID.img and set by the new process itself before anything else. A
 * working directory that was removed ("PATH (deleted)") is saved with its
 * mode and owner; the new process makes it again at that path for a
 * moment, enters it and removes it (ghostnode.c).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"
#include "ghostnode.h"
#include "images.h"
#include "infra/log.h"

/* A removed working directory: its path without " (deleted)", its mode
 * and owner. */
static int removed_cwd(struct dump_ctx *ctx, char *cwd, FsEntry *fs)
{
	size_t n = strlen(cwd), m = strlen(" (deleted)");
	struct stat st;
	char link[64];

	snprintf(link, sizeof(link), "/proc/%d/cwd", ctx->pid);
	if (stat(link, &st))
		return err_errno("cannot stat the working directory of pid %d", ctx->pid);
	if (st.st_nlink || n < m || strcmp(cwd + n - m, " (deleted)"))
		return 0;
	cwd[n - m] = 0;
	fs->has_cwd_deleted = fs->cwd_deleted = true;
	fs->has_cwd_mode = fs->has_cwd_uid = fs->has_cwd_gid = true;
	fs->cwd_mode = st.st_mode;
	fs->cwd_uid = st.st_uid;
	fs->cwd_gid = st.st_gid;
	return 0;
}

int fs_dump(struct dump_ctx *ctx)
{
	FsEntry *fs = malloc(sizeof(*fs));
	char cwd[4096], root[4096];

	if (!fs)
		return err_set("out of memory");
	fs_entry__init(fs);
	ctx->fs = fs;
	if (proc_readlink(ctx->pid, "cwd", cwd, sizeof(cwd)) ||
	    proc_readlink(ctx->pid, "root", root, sizeof(root)) || removed_cwd(ctx, cwd, fs))
		return -1;
	fs->cwd = strdup(cwd);
	fs->root = strdup(root);
	fs->umask = ctx->status.umask;
	return fs->cwd && fs->root ? 0 : err_set("out of memory");
}

int fs_write(struct dump_ctx *ctx)
{
	return image_write_one(&ctx->tree->dir, IMAGE_FS, ctx->pid, &ctx->fs->base);
}

int fs_load(struct restore_ctx *ctx)
{
	return image_load_one(&ctx->tree->dir, IMAGE_FS, ctx->pid, (ProtobufCMessage **)&ctx->fs);
}

int fs_validate(struct restore_ctx *ctx)
{
	struct stat st;

	if (ctx->fs->cwd_deleted) {
		if (!S_ISDIR(ctx->fs->cwd_mode) || ghostnode_check(ctx->fs->cwd))
			return err_wrap("the working directory of pid %d", ctx->pid);
	} else if (stat(ctx->fs->cwd, &st) || !S_ISDIR(st.st_mode)) {
		return err_errno("working directory %s of pid %d is not available", ctx->fs->cwd,
				 ctx->pid);
	}
	if (ctx->fs->umask > 0777)
		return err_set("fs-%d.img: bad umask %o", ctx->pid, ctx->fs->umask);
	return 0;
}

int fs_restore_child(struct restore_ctx *ctx)
{
	if (ctx->fs->cwd_deleted) {
		const FsEntry *fs = ctx->fs;
		int fd =
		    ghostnode_open(fs->cwd, fs->cwd_mode, 0, fs->cwd_uid, fs->cwd_gid, O_RDONLY);
		if (fd < 0 || fchdir(fd)) {
			if (fd >= 0)
				close(fd);
			return err_errno("cannot enter the removed directory %s", fs->cwd);
		}
		close(fd);
	} else if (chdir(ctx->fs->cwd)) {
		return err_errno("cannot change to directory %s", ctx->fs->cwd);
	}
	if (strcmp(ctx->fs->root, "/") && chroot(ctx->fs->root))
		return err_errno("cannot change root to %s", ctx->fs->root);
	umask(ctx->fs->umask);
	return 0;
}
