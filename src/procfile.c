/*
 * procfile: files and directories of /proc held open: of the process
 * itself (/proc/self/... reads as /proc/PID/...), of another process of the
 * tree, or of none (/proc/meminfo).
 *
 * Dump: the path the fd reads, its flags and offset; one of a process
 * outside the tree stops the dump (its pid would name another process
 * after a restore).
 *
 * Restore: opened late (open_late), once every process of the tree exists
 * with its pid, by the same path and flags, then seeked to the offset:
 * /proc/PID/... of a process of the tree names the restored process.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <linux/magic.h>

#include "fdkind.h"
#include "infra/log.h"

/* The pid a /proc path names ("/proc/PID/..."), 0 if none. */
static pid_t pid_of(const char *path)
{
	char *end;
	long pid = strtol(path + 6, &end, 10);

	return end != path + 6 && (*end == '/' || !*end) ? pid : 0;
}

static bool proc_recognise(const struct fd_probe *p)
{
	struct statfs sfs;

	return !(p->flags & O_PATH) && !strncmp(p->link, "/proc/", 6) &&
	       (S_ISREG(p->st->st_mode) || S_ISDIR(p->st->st_mode)) &&
	       !fstatfs(p->local_fd, &sfs) && sfs.f_type == PROC_SUPER_MAGIC;
}

static int proc_dump(struct dump_ctx *ctx, struct dump_file *f, const struct fd_probe *p)
{
	pid_t pid = pid_of(p->link);
	bool in_tree = !pid;

	for (int i = 0; i < ctx->tree->nr_procs && !in_tree; i++)
		in_tree = ctx->tree->procs[i]->pid == pid;
	if (!in_tree)
		return err_set("fd %d of pid %d is %s, of a process outside the checkpoint: not "
			       "supported",
			       p->fd, ctx->pid, p->link);
	snprintf(f->path, sizeof(f->path), "%s", p->link);
	f->entry.path = f->path;
	return 0;
}

static int proc_validate(const struct restore_tree *tree, const FileEntry *fe,
			 const struct fd_use *use)
{
	pid_t pid;

	if (!fe->path || strncmp(fe->path, "/proc/", 6) || strstr(fe->path, "/../"))
		return err_set("files.img: fd %d of pid %d has no valid /proc path", use->fd,
			       use->pid);
	pid = pid_of(fe->path);
	if (pid && !ctx_proc(tree, pid))
		return err_set("files.img: fd %d of pid %d is %s, of a process not in the "
			       "checkpoint",
			       use->fd, use->pid, fe->path);
	return 0;
}

static int proc_open(struct restore_ctx *ctx, const FileEntry *fe, int *fd)
{
	(void)ctx;
	return pathfile_reopen(fe, fe->pos != 0, fd);
}

const struct fd_kind procfile_kind = {
    .name = "/proc file",
    .kind = FILE_KIND__PROCFILE,
    .recognise = proc_recognise,
    .dump = proc_dump,
    .validate = proc_validate,
    .open_late = proc_open,
};
