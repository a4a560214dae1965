/*
 * pipes: both ends of every pipe and the bytes queued in it.
 *
 * Dump: an end is identified by the pipe's inode. The bytes in the buffer
 * are copied out of the read end with tee(2), which duplicates them into a
 * scratch pipe without consuming anything, so the original never loses
 * data, even when the dump is abandoned. pipes.img holds one record per
 * pipe: its inode, its capacity and its data. A pipe whose other end every
 * process closed (poll: no writer gives POLLHUP, no reader POLLERR) is
 * restored with that end made and closed again, which gives the same. One
 * whose other end a process outside the tree holds is an endpoint outside
 * (external.c): its record says so and holds no data (what is in the pipe
 * belongs to its reader, and stays there), and the restore is given the
 * end the tree held with --inherit-fd.
 *
 * Restore: the new process creates the pipe when it places the first of its
 * ends, sets the capacity, writes the data back in, and keeps the other end
 * on a temporary fd until it is placed in turn.
 *
 * FIFOs (named pipes) are the same with a path: dumped and refilled by the
 * same code (an O_RDWR description is both ends; one outside is given by
 * its path). Their key in pipes.img is 2^63 + their number in the dump, never a
 * pipe's inode. On restore the FIFO is first opened O_RDWR|O_NONBLOCK (which
 * never blocks) and refilled; each description is then opened by its path,
 * non-blocking so that no open waits for the other end, and given its
 * flags. A FIFO removed while open (file_entry uid/gid set) is made again
 * at its path for a moment (ghostnode.c), and its descriptions opened
 * through the first one, so that they read "PATH (deleted)" again.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "external.h"
#include "fdkind.h"
#include "ghostnode.h"
#include "pipes.pb-c.h"
#include "images.h"
#include "infra/log.h"

#define FIFO_KEY (1ULL << 63)

/* Dump: the pipes and FIFOs of the tree, each with its data. */
struct pipes_dump {
	int nr;
	PipeEntry *v;
};

/* Restore: pipes.img. */
struct pipes_restore {
	size_t nr;
	PipeEntry **v;
};

/* The new process: pipes made so far, both ends on temporary fds. */
struct made_pipe {
	uint64_t ino;
	int rfd, wfd;
};
struct pipes_made {
	size_t nr;
	struct made_pipe *v;
};

static bool is_pipe_kind(FileKind kind)
{
	return kind == FILE_KIND__PIPE || kind == FILE_KIND__FIFO;
}

/* What a message calls a pipe or a FIFO. */
static const char *pipe_name(const FileEntry *e, char *buf, size_t len)
{
	if (e->kind == FILE_KIND__FIFO)
		snprintf(buf, len, "FIFO %s", e->path);
	else
		snprintf(buf, len, "pipe:[%llu]", (unsigned long long)e->pipe_ino);
	return buf;
}

static PipeEntry *find_pipe(struct dump_tree *tree, uint64_t ino)
{
	for (int i = 0; tree->pipes && i < tree->pipes->nr; i++)
		if (tree->pipes->v[i].pipe_ino == ino)
			return &tree->pipes->v[i];
	return NULL;
}

static PipeEntry *add_pipe(struct dump_tree *tree, uint64_t ino)
{
	struct pipes_dump *d = tree->pipes;
	PipeEntry *grown;

	if (!d && !(d = tree->pipes = calloc(1, sizeof(*d))))
		return NULL;
	grown = realloc(d->v, (d->nr + 1) * sizeof(*grown));
	if (!grown)
		return NULL;
	d->v = grown;
	pipe_entry__init(&d->v[d->nr]);
	d->v[d->nr].pipe_ino = ino;
	d->v[d->nr].data.data = NULL;
	return &d->v[d->nr++];
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

/* Records the pipe (or FIFO) behind f under key, with its data. */
static int record_pipe(struct dump_ctx *ctx, struct dump_file *f, uint64_t key, const char *link)
{
	FileEntry *e = &f->entry;
	uint64_t ino = key;
	PipeEntry *p = find_pipe(ctx->tree, ino);
	bool read_end = (e->flags & O_ACCMODE) != O_WRONLY;

	e->has_pipe_ino = true;
	e->pipe_ino = ino;
	if (!p) {
		p = add_pipe(ctx->tree, ino);
		if (!p)
			return err_set("out of memory");
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

static bool pipe_recognise(const struct fd_probe *p)
{
	return S_ISFIFO(p->st->st_mode) && !(p->flags & O_PATH) && !strncmp(p->link, "pipe:", 5);
}

static bool fifo_recognise(const struct fd_probe *p)
{
	return S_ISFIFO(p->st->st_mode) && !(p->flags & O_PATH) && strncmp(p->link, "pipe:", 5);
}

static int pipe_dump(struct dump_ctx *ctx, struct dump_file *f, const struct fd_probe *p)
{
	return record_pipe(ctx, f, strtoull(p->link + 6, NULL, 10), p->link); /* "pipe:[N]" */
}

/* The key of the FIFO st: that of an earlier description of it, or a new one. */
static uint64_t fifo_key(struct dump_ctx *ctx, const struct stat *st)
{
	uint64_t n = 0;
	struct stat other;

	for (int i = 0; i < ctx->tree->nr_files; i++) {
		const FileEntry *e = &ctx->tree->files[i].entry;
		if (e->kind != FILE_KIND__FIFO || !e->has_pipe_ino)
			continue;
		if (!fstat(ctx->tree->files[i].local_fd, &other) && other.st_dev == st->st_dev &&
		    other.st_ino == st->st_ino)
			return e->pipe_ino;
		if (e->pipe_ino - FIFO_KEY > n)
			n = e->pipe_ino - FIFO_KEY;
	}
	return FIFO_KEY + n + 1;
}

#define DELETED " (deleted)"

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && !strcmp(s + n - m, suffix);
}

static int fifo_dump(struct dump_ctx *ctx, struct dump_file *f, const struct fd_probe *p)
{
	const struct stat *st = p->st;
	const char *link = p->link;
	struct stat now;
	int fd = p->fd;

	if (st->st_nlink == 0 && ends_with(link, DELETED)) {
		/* removed while open: made again for a moment at restore */
		snprintf(f->path, sizeof(f->path), "%.*s", (int)(strlen(link) - strlen(DELETED)),
			 link);
		f->entry.path = f->path;
		f->entry.has_uid = f->entry.has_gid = true;
		f->entry.uid = st->st_uid;
		f->entry.gid = st->st_gid;
		return record_pipe(ctx, f, fifo_key(ctx, st), link);
	}
	if (link[0] != '/' || stat(link, &now) || now.st_dev != st->st_dev ||
	    now.st_ino != st->st_ino)
		return err_set("fd %d of pid %d is a FIFO (%s) that its path no longer names: not "
			       "supported yet",
			       fd, ctx->pid, link);
	snprintf(f->path, sizeof(f->path), "%s", link);
	f->entry.path = f->path;
	return record_pipe(ctx, f, fifo_key(ctx, st), link);
}

/* Looks for the ends of one pipe or FIFO in every process of the tree. */
static const FileEntry *find_ends(struct dump_tree *tree, uint64_t ino, bool *r, bool *w, int *fd,
				  pid_t *pid)
{
	const FileEntry *last = NULL;

	for (int i = 0; i < tree->nr_files; i++) {
		const FileEntry *e = &tree->files[i].entry;
		if (!is_pipe_kind(e->kind) || e->pipe_ino != ino)
			continue;
		*fd = tree->files[i].first_fd;
		*pid = tree->files[i].first_pid;
		last = e;
		*r |= (e->flags & O_ACCMODE) != O_WRONLY;
		*w |= (e->flags & O_ACCMODE) != O_RDONLY;
	}
	return last;
}

/* Whether every other end of the pipe local_fd (an end of the given side)
 * is closed: a write end without readers polls POLLERR, a read end
 * without writers POLLHUP. Such a pipe is restored with the other end
 * made and closed again (drop_made). */
static bool other_end_closed(int local_fd, bool read_end)
{
	struct pollfd p = {local_fd, read_end ? POLLIN : POLLOUT, 0};

	if (poll(&p, 1, 0) < 0)
		return false;
	return read_end ? (p.revents & POLLHUP) : (p.revents & POLLERR);
}

/* What --inherit-fd calls a pipe ("pipe:[INO]") or a FIFO (its path). */
static void pipe_resource(const FileEntry *fe, char *buf, size_t len)
{
	if (fe->kind == FILE_KIND__FIFO)
		snprintf(buf, len, "%s", fe->path);
	else
		pipe_name(fe, buf, len);
}

/* A pipe whose other end is held outside: its data belongs to the reader
 * (it stays in the pipe, for the reader outside, or for the one in the
 * tree if left running); each of its descriptions is given at restore. */
static int mark_outside(struct dump_tree *tree, PipeEntry *p, bool reader_inside)
{
	char what[4300], res[4200], name[4200];

	p->has_external = p->external = true;
	p->data.len = 0;
	for (int i = 0; i < tree->nr_files; i++) {
		const struct dump_file *f = &tree->files[i];
		if (!is_pipe_kind(f->entry.kind) || f->entry.pipe_ino != p->pipe_ino)
			continue;
		if (f->first_fd < 0)
			return err_set("%s, whose other end is outside the checkpoint, is in "
				       "flight in a socket of pid %d: not supported",
				       pipe_name(&f->entry, name, sizeof(name)), f->first_pid);
		pipe_resource(&f->entry, res, sizeof(res));
		snprintf(what, sizeof(what), "%s, whose %s is outside the checkpoint",
			 pipe_name(&f->entry, name, sizeof(name)),
			 reader_inside ? "writer" : "reader");
		if (external_dump_note(tree, f->first_pid, f->first_fd, res, what))
			return -1;
	}
	return 0;
}

/* Both ends of every pipe in the checkpoint, or the missing one closed
 * everywhere, or else held outside. */
static int check_complete(struct dump_tree *tree)
{
	for (int i = 0; i < tree->pipes->nr; i++) {
		bool r = false, w = false;
		uint64_t ino = tree->pipes->v[i].pipe_ino;
		const FileEntry *last;
		int fd = -1, last_i = 0;
		pid_t pid = 0;
		last = find_ends(tree, ino, &r, &w, &fd, &pid);
		for (int k = 0; last && k < tree->nr_files; k++)
			if (&tree->files[k].entry == last)
				last_i = k;
		if (last && (!r || !w) && !other_end_closed(tree->files[last_i].local_fd, r) &&
		    mark_outside(tree, &tree->pipes->v[i], r))
			return -1;
	}
	return 0;
}

/* pipes.img, once every process was seen (and every fd in flight found). */
static int pipes_dump_finish(struct dump_tree *tree)
{
	struct pipes_dump empty = {0, NULL}, *d = tree->pipes ? tree->pipes : &empty;

	if (tree->pipes && check_complete(tree))
		return -1;
	for (int i = 0; i < d->nr; i++)
		if (!d->v[i].data.data && !(d->v[i].data.data = malloc(1)))
			return err_set("out of memory");
	return image_write_array(&tree->dir, IMAGE_PIPES, 0, NULL, d->v, d->nr, sizeof(*d->v));
}

static void pipes_dump_free(struct dump_tree *tree)
{
	for (int i = 0; tree->pipes && i < tree->pipes->nr; i++)
		free(tree->pipes->v[i].data.data);
	if (tree->pipes)
		free(tree->pipes->v);
	free(tree->pipes);
	tree->pipes = NULL;
}

/* ---- restore ---- */

static int pipes_load(struct restore_tree *tree)
{
	tree->pipes = calloc(1, sizeof(*tree->pipes));
	if (!tree->pipes)
		return err_set("out of memory");
	return image_load_list(&tree->dir, IMAGE_PIPES, 0, NULL, (void ***)&tree->pipes->v,
			       &tree->pipes->nr);
}

static void pipes_restore_free(struct restore_tree *tree)
{
	for (size_t i = 0; tree->pipes && i < tree->pipes->nr; i++)
		protobuf_c_message_free_unpacked(&tree->pipes->v[i]->base, NULL);
	if (tree->pipes)
		free(tree->pipes->v);
	free(tree->pipes);
	tree->pipes = NULL;
}

static const PipeEntry *pipe_by_ino(const struct restore_tree *tree, uint64_t ino)
{
	for (size_t i = 0; i < tree->pipes->nr; i++)
		if (tree->pipes->v[i]->pipe_ino == ino)
			return tree->pipes->v[i];
	return NULL;
}

/* A FIFO must still be one at its path, and all its descriptions agree. */
static int validate_fifo(const struct restore_tree *tree, const FileEntry *fe,
			 const struct fd_use *use)
{
	struct stat st;

	if (!fe->path || fe->path[0] != '/' || !(fe->pipe_ino & FIFO_KEY))
		return err_set("files.img: FIFO file %u of pid %d is malformed", fe->id, use->pid);
	for (size_t i = 0; i < tree->nr_files; i++) {
		const FileEntry *o = tree->files[i];
		if (o->kind == FILE_KIND__FIFO && o->pipe_ino == fe->pipe_ino &&
		    (!o->path || strcmp(o->path, fe->path)))
			return err_set("files.img: FIFO %s has descriptions with other paths",
				       fe->path);
	}
	if (fe->has_uid) /* removed: its name must be free to make it again */
		return ghostnode_check(fe->path) ? err_wrap("FIFO of pid %d", use->pid) : 0;
	if (stat(fe->path, &st))
		return err_errno("FIFO %s (of pid %d) is not available", fe->path, use->pid);
	if (!S_ISFIFO(st.st_mode))
		return err_set("%s (of pid %d) is no longer a FIFO", fe->path, use->pid);
	return 0;
}

static int pipe_validate(const struct restore_tree *tree, const FileEntry *fe,
			 const struct fd_use *use)
{
	char name[4200];

	if (fe->kind == FILE_KIND__FIFO && validate_fifo(tree, fe, use))
		return -1;
	const PipeEntry *p = fe->has_pipe_ino ? pipe_by_ino(tree, fe->pipe_ino) : NULL;
	if (!p)
		return err_set("pipes.img has no record of %s", pipe_name(fe, name, sizeof(name)));
	if (p->data.len > p->capacity || p->capacity > (1u << 30))
		return err_set("pipes.img: pipe:[%llu] holds %zu bytes, more than its "
			       "capacity %u",
			       (unsigned long long)p->pipe_ino, p->data.len, p->capacity);
	return 0;
}

/* One end is outside: what the tree held of it is given by --inherit-fd. */
static bool pipe_outside(const struct restore_tree *tree, const FileEntry *fe)
{
	const PipeEntry *p = fe->has_pipe_ino ? pipe_by_ino(tree, fe->pipe_ino) : NULL;

	return p && p->external;
}

static bool same_pipe(const FileEntry *a, const FileEntry *b)
{
	return a->has_pipe_ino && b->has_pipe_ino && a->pipe_ino == b->pipe_ino;
}

/* Sizes the pipe and writes its data back in, through its write end wfd. */
static int refill_pipe(const PipeEntry *p, int wfd, const char *name)
{
	if (fcntl(wfd, F_SETPIPE_SZ, p->capacity) < 0)
		return err_errno("cannot size %s to %u bytes", name, p->capacity);
	if (p->data.len && write(wfd, p->data.data, p->data.len) != (ssize_t)p->data.len)
		return err_errno("cannot refill %s", name);
	return 0;
}

static int make_pipe(struct restore_ctx *ctx, const PipeEntry *p, const FileEntry *fe,
		     struct made_pipe *mp)
{
	char name[4200];
	int fds[2];

	pipe_name(fe, name, sizeof(name));
	if (fe->kind == FILE_KIND__FIFO) {
		/* O_RDWR: both ends at once, without waiting for a partner; one
		 * removed is made again for a moment */
		fds[0] = fe->has_uid ? ghostnode_open(fe->path, S_IFIFO | (fe->mode & 07777), 0,
						      fe->uid, fe->gid, O_RDWR | O_NONBLOCK)
				     : open(fe->path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
		fds[1] = fds[0] < 0 ? -1 : dup(fds[0]);
		if (fds[1] < 0)
			return err_errno("cannot open %s", name);
	} else if (pipe2(fds, O_CLOEXEC)) {
		return err_errno("cannot create %s", name);
	}
	if (refill_pipe(p, fds[1], name))
		return -1;
	mp->ino = p->pipe_ino;
	mp->rfd = fcntl(fds[0], F_DUPFD_CLOEXEC, ctx->stage_base);
	mp->wfd = fcntl(fds[1], F_DUPFD_CLOEXEC, ctx->stage_base);
	close(fds[0]);
	close(fds[1]);
	if (mp->rfd < 0 || mp->wfd < 0)
		return err_errno("cannot move pipe:[%llu]", (unsigned long long)p->pipe_ino);
	return 0;
}

/* One description of a FIFO, opened by its path while mp holds it open. */
static int open_fifo(const FileEntry *fe, const struct made_pipe *mp, int *fd)
{
	struct stat a, b;
	char proc[64];

	/* a removed one through the end held: the same FIFO, its old name */
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", mp->rfd);
	*fd = open(fe->has_uid ? proc : fe->path, (fe->flags & O_ACCMODE) | O_NONBLOCK | O_CLOEXEC);
	if (*fd < 0)
		return err_errno("cannot open FIFO %s", fe->path);
	if (fstat(*fd, &a) || fstat(mp->rfd, &b) || a.st_dev != b.st_dev || a.st_ino != b.st_ino)
		return err_set("FIFO %s changed while it was restored", fe->path);
	if (fcntl(*fd, F_SETFL, fe->flags & (O_NONBLOCK | O_DIRECT | O_APPEND | O_NOATIME)))
		return err_errno("cannot set the flags of FIFO %s", fe->path);
	return 0;
}

/* The pipe of fe, made now if it is the first of its ends placed here. */
static struct made_pipe *made_pipe(struct restore_ctx *ctx, const FileEntry *fe)
{
	struct pipes_made *m = ctx->pipes_made;
	struct made_pipe *grown;

	for (size_t i = 0; m && i < m->nr; i++)
		if (m->v[i].ino == fe->pipe_ino)
			return &m->v[i];
	if (!m && !(m = ctx->pipes_made = calloc(1, sizeof(*m))))
		goto oom;
	grown = realloc(m->v, (m->nr + 1) * sizeof(*grown));
	if (!grown)
		goto oom;
	m->v = grown;
	if (make_pipe(ctx, pipe_by_ino(ctx->tree, fe->pipe_ino), fe, &m->v[m->nr]))
		return NULL;
	return &m->v[m->nr++];
oom:
	err_set("out of memory");
	return NULL;
}

/* Pipe ends made along the way and never placed. */
static void pipes_drop_made(struct restore_ctx *ctx)
{
	for (size_t i = 0; ctx->pipes_made && i < ctx->pipes_made->nr; i++) {
		close(ctx->pipes_made->v[i].rfd);
		close(ctx->pipes_made->v[i].wfd);
	}
	if (ctx->pipes_made)
		free(ctx->pipes_made->v);
	free(ctx->pipes_made);
	ctx->pipes_made = NULL;
}

static int pipe_open(struct restore_ctx *ctx, const FileEntry *fe, int *fd)
{
	struct made_pipe *mp = made_pipe(ctx, fe);
	int end;

	if (!mp)
		return -1;
	if (fe->kind == FILE_KIND__FIFO)
		return open_fifo(fe, mp, fd);
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

static void describe_pipe(const FileEntry *fe, char *buf, size_t len)
{
	pipe_name(fe, buf, len);
}

const struct fd_kind pipe_kind = {
    .name = "pipe",
    .kind = FILE_KIND__PIPE,
    .recognise = pipe_recognise,
    .dump = pipe_dump,
    .dump_finish = pipes_dump_finish,
    .dump_free = pipes_dump_free,
    .load = pipes_load,
    .validate = pipe_validate,
    .same_object = same_pipe,
    .restore_free = pipes_restore_free,
    .open = pipe_open,
    .drop_made = pipes_drop_made,
    .describe = describe_pipe,
    .resource = pipe_resource,
    .outside = pipe_outside,
};

const struct fd_kind fifo_kind = {
    .name = "FIFO",
    .kind = FILE_KIND__FIFO,
    .recognise = fifo_recognise,
    .dump = fifo_dump,
    .validate = pipe_validate,
    .same_object = same_pipe,
    .open = pipe_open,
    .describe = describe_pipe,
    .resource = pipe_resource,
    .outside = pipe_outside,
};
