/*
 * pipes: both ends of every pipe and the bytes queued in it.
 *
 * Dump: an end is identified by the pipe's inode. The bytes in the buffer
 * are copied out of the read end with tee(2), which duplicates them into a
 * scratch pipe without consuming anything, so the original never loses
 * data, even when the dump is abandoned. pipes.img holds one record per
 * pipe: its inode, its capacity and its data. A pipe must have both ends in
 * the checkpoint; one whose other end lies outside it cannot be restored
 * and stops the dump.
 *
 * Restore: the new process creates the pipe when it places the first of its
 * ends, sets the capacity, writes the data back in, and keeps the other end
 * on a temporary fd until it is placed in turn.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "context.h"
#include "infra/log.h"

static PipeEntry *find_pipe(struct dump_ctx *ctx, uint64_t ino)
{
	for (int i = 0; i < ctx->tree->nr_pipes; i++)
		if (ctx->tree->pipes[i].pipe_ino == ino)
			return &ctx->tree->pipes[i];
	return NULL;
}

/* Copies the queued bytes of a pipe without taking them out. */
static int peek_pipe(int rfd, PipeEntry *p)
{
	int tmp[2];
	ssize_t n, got = 0;

	p->data.len = 0;
	p->data.data = malloc(p->capacity);
	if (!p->data.data)
		return err_set("out of memory");
	if (pipe2(tmp, O_CLOEXEC | O_NONBLOCK))
		return err_errno("cannot create a pipe");
	if (fcntl(tmp[1], F_SETPIPE_SZ, p->capacity) < 0) {
		close(tmp[0]);
		close(tmp[1]);
		return err_errno("cannot size a scratch pipe to %u bytes", p->capacity);
	}
	n = tee(rfd, tmp[1], p->capacity, SPLICE_F_NONBLOCK);
	if (n < 0 && errno == EAGAIN)
		n = 0;
	while (n > 0 && got < n) {
		ssize_t r = read(tmp[0], p->data.data + got, n - got);
		if (r <= 0)
			break;
		got += r;
	}
	close(tmp[0]);
	close(tmp[1]);
	if (n < 0 || got != n)
		return err_errno("cannot copy the data of pipe:[%llu]",
				 (unsigned long long)p->pipe_ino);
	p->data.len = n;
	return 0;
}

int pipes_dump_file(struct dump_ctx *ctx, struct dump_file *f, const char *link)
{
	FileEntry *e = &f->entry;
	uint64_t ino = strtoull(link + 6, NULL, 10); /* "pipe:[N]" */
	PipeEntry *p = find_pipe(ctx, ino);
	bool read_end = (e->flags & O_ACCMODE) == O_RDONLY;

	e->kind = FILE_KIND__PIPE;
	e->has_pipe_ino = true;
	e->pipe_ino = ino;
	if (!p) {
		ctx->tree->pipes = realloc(ctx->tree->pipes,
					   (ctx->tree->nr_pipes + 1) * sizeof(*ctx->tree->pipes));
		if (!ctx->tree->pipes)
			return err_set("out of memory");
		p = &ctx->tree->pipes[ctx->tree->nr_pipes++];
		pipe_entry__init(p);
		p->pipe_ino = ino;
		p->data.data = NULL;
		int cap = fcntl(f->local_fd, F_GETPIPE_SZ);
		if (cap < 0)
			return err_errno("cannot read the size of %s", link);
		p->capacity = cap;
	}
	/* the data is taken once, through the first read end seen */
	if (read_end && !p->data.data && peek_pipe(f->local_fd, p))
		return -1;
	return 0;
}

/* Looks for the ends of one pipe in every process of the tree. */
static void find_ends(struct dump_tree *tree, uint64_t ino, bool *r, bool *w, int *fd, pid_t *pid)
{
	for (int k = 0; k < tree->nr_procs; k++) {
		const struct dump_ctx *ctx = tree->procs[k];
		for (int j = 0; j < ctx->nr_fds; j++) {
			const FileEntry *e = &tree->files[ctx->fds[j].file_id - 1].entry;
			if (e->kind != FILE_KIND__PIPE || e->pipe_ino != ino)
				continue;
			*fd = ctx->fds[j].fd;
			*pid = ctx->pid;
			if ((e->flags & O_ACCMODE) == O_RDONLY)
				*r = true;
			else
				*w = true;
		}
	}
}

/* Both ends of every pipe must be in the checkpoint. */
int pipes_check_complete(struct dump_tree *tree)
{
	for (int i = 0; i < tree->nr_pipes; i++) {
		bool r = false, w = false;
		uint64_t ino = tree->pipes[i].pipe_ino;
		int fd = -1;
		pid_t pid = 0;
		find_ends(tree, ino, &r, &w, &fd, &pid);
		if (!r || !w)
			return err_set("fd %d of pid %d is the %s end of pipe:[%llu], whose other "
				       "end is outside the checkpoint: not supported yet",
				       fd, pid, r ? "read" : "write", (unsigned long long)ino);
	}
	return 0;
}

int pipes_write(struct dump_tree *tree)
{
	struct img_out out;

	if (img_out_open(&tree->dir, &out, "pipes.img", IMG_PIPES))
		return -1;
	for (int i = 0; i < tree->nr_pipes; i++) {
		if (!tree->pipes[i].data.data)
			tree->pipes[i].data.data = malloc(1);
		if (img_out_msg(&out, &tree->pipes[i].base)) {
			img_out_discard(&out);
			return -1;
		}
	}
	if (img_out_close(&out)) {
		img_out_discard(&out);
		return -1;
	}
	return 0;
}

void pipes_dump_free(struct dump_tree *tree)
{
	for (int i = 0; i < tree->nr_pipes; i++)
		free(tree->pipes[i].data.data);
	free(tree->pipes);
	tree->pipes = NULL;
	tree->nr_pipes = 0;
}

/* ---- restore ---- */

static const PipeEntry *pipe_by_ino(const struct restore_ctx *ctx, uint64_t ino)
{
	for (size_t i = 0; i < ctx->nr_pipes; i++)
		if (ctx->pipes[i]->pipe_ino == ino)
			return ctx->pipes[i];
	return NULL;
}

int pipes_validate(struct restore_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nr_files; i++) {
		const FileEntry *fe = ctx->files[i];
		if (fe->kind != FILE_KIND__PIPE)
			continue;
		const PipeEntry *p = pipe_by_ino(ctx, fe->pipe_ino);
		if (!p)
			return err_set("pipes.img has no record of pipe:[%llu]",
				       (unsigned long long)fe->pipe_ino);
		if (p->data.len > p->capacity || p->capacity > (1u << 30))
			return err_set("pipes.img: pipe:[%llu] holds %zu bytes, more than its "
				       "capacity %u",
				       (unsigned long long)p->pipe_ino, p->data.len, p->capacity);
	}
	return 0;
}

static int make_pipe(struct restore_ctx *ctx, const PipeEntry *p, struct made_pipe *mp)
{
	int fds[2];

	if (pipe2(fds, O_CLOEXEC))
		return err_errno("cannot create pipe:[%llu]", (unsigned long long)p->pipe_ino);
	if (fcntl(fds[1], F_SETPIPE_SZ, p->capacity) < 0)
		return err_errno("cannot size pipe:[%llu] to %u bytes",
				 (unsigned long long)p->pipe_ino, p->capacity);
	if (p->data.len && write(fds[1], p->data.data, p->data.len) != (ssize_t)p->data.len)
		return err_errno("cannot refill pipe:[%llu]", (unsigned long long)p->pipe_ino);
	mp->ino = p->pipe_ino;
	mp->rfd = fcntl(fds[0], F_DUPFD_CLOEXEC, ctx->stage_base);
	mp->wfd = fcntl(fds[1], F_DUPFD_CLOEXEC, ctx->stage_base);
	close(fds[0]);
	close(fds[1]);
	if (mp->rfd < 0 || mp->wfd < 0)
		return err_errno("cannot move pipe:[%llu]", (unsigned long long)p->pipe_ino);
	return 0;
}

int pipes_restore_child(struct restore_ctx *ctx, const FileEntry *fe, int *fd)
{
	struct made_pipe *mp = NULL;
	int end;

	for (size_t i = 0; i < ctx->nr_made_pipes; i++)
		if (ctx->made_pipes[i].ino == fe->pipe_ino)
			mp = &ctx->made_pipes[i];
	if (!mp) {
		ctx->made_pipes =
		    realloc(ctx->made_pipes, (ctx->nr_made_pipes + 1) * sizeof(*ctx->made_pipes));
		if (!ctx->made_pipes)
			return err_set("out of memory");
		mp = &ctx->made_pipes[ctx->nr_made_pipes++];
		if (make_pipe(ctx, pipe_by_ino(ctx, fe->pipe_ino), mp))
			return -1;
	}
	end = (fe->flags & O_ACCMODE) == O_RDONLY ? mp->rfd : mp->wfd;
	/* a new fd of its own, so that the caller may place and close it */
	*fd = dup(end);
	if (*fd < 0)
		return err_errno("cannot duplicate an end of pipe:[%llu]",
				 (unsigned long long)fe->pipe_ino);
	if (fcntl(*fd, F_SETFL, fe->flags & (O_NONBLOCK | O_DIRECT)))
		return err_errno("cannot set the flags of pipe:[%llu]",
				 (unsigned long long)fe->pipe_ino);
	return 0;
}
