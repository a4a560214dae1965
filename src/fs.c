/*
 * fs: the working directory, the root directory and the umask, saved to
 * fs-PID.img and set by the new process itself before anything else.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs.h"
#include "images.h"
#include "infra/log.h"

int fs_dump(struct dump_ctx *ctx)
{
	FsEntry fs = FS_ENTRY__INIT;
	char cwd[4096], root[4096];

	if (proc_readlink(ctx->pid, "cwd", cwd, sizeof(cwd)) ||
	    proc_readlink(ctx->pid, "root", root, sizeof(root)))
		return -1;
	if (strstr(cwd, " (deleted)"))
		return err_set("the working directory of pid %d was deleted (%s): not supported",
			       ctx->pid, cwd);
	fs.cwd = cwd;
	fs.root = root;
	fs.umask = ctx->status.umask;
	return image_write_one(&ctx->tree->dir, IMAGE_FS, ctx->pid, &fs.base);
}

int fs_load(struct restore_ctx *ctx)
{
	return image_load_one(&ctx->tree->dir, IMAGE_FS, ctx->pid, (ProtobufCMessage **)&ctx->fs);
}

int fs_validate(struct restore_ctx *ctx)
{
	struct stat st;

	if (stat(ctx->fs->cwd, &st) || !S_ISDIR(st.st_mode))
		return err_errno("working directory %s of pid %d is not available", ctx->fs->cwd,
				 ctx->pid);
	if (ctx->fs->umask > 0777)
		return err_set("fs-%d.img: bad umask %o", ctx->pid, ctx->fs->umask);
	return 0;
}

int fs_restore_child(struct restore_ctx *ctx)
{
	if (chdir(ctx->fs->cwd))
		return err_errno("cannot change to directory %s", ctx->fs->cwd);
	if (strcmp(ctx->fs->root, "/") && chroot(ctx->fs->root))
		return err_errno("cannot change root to %s", ctx->fs->root);
	umask(ctx->fs->umask);
	return 0;
}
