/*
 * epoll: the targets an epoll instance watches (fd number, events, data).
 *
 * Dump: fdinfo lists one "tfd: N events: E data: D" line per target, N
 * being the fd number the target was added by. kcmp(KCMP_EPOLL_TFD)
 * compares the file the epoll holds with the one in the fd table. A target
 * whose fd was closed since (the watch lives on while the file is open) or
 * names another file now is looked for among every fd of the tree; the
 * process holding it records that fd (core_entry.epoll_moved) and adds the
 * target again by its old number, the fd put there for the call only
 * (add_through). One held by no fd at all stops the dump: only the epoll
 * instance holds it, and no interface reaches it from there. A one-shot target that already
 * fired (only flag bits left in its events) cannot be re-added disarmed
 * (the kernel always arms EPOLLERR|EPOLLHUP), so it stops the dump too.
 *
 * An instance shared between processes may watch fds of any of them: each
 * target is saved with the process whose fd it is (kcmp against each).
 *
 * Restore: the instance is created empty with the other descriptions (by
 * the root, like every description shared between processes); once every
 * fd of a process is in place, add_all_targets() adds the targets
 * that process owns by their fd numbers, in the order of the dump.
 *
 * Not visible anywhere, hence not saved: which edge-triggered events were
 * already reported. Re-adding a target polls it, so an edge-triggered target
 * that is ready at restore is reported once more (a warning names it).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/kcmp.h>

#include "anonfd.h"
#include "infra/log.h"
#include "infra/proc.h"

/* event bits that are flags, not events (the kernel's EP_PRIVATE_BITS) */
#define EP_FLAG_BITS (EPOLLWAKEUP | EPOLLONESHOT | EPOLLET | EPOLLEXCLUSIVE)

static int add_tfd(EpollEntry *ep, uint32_t tfd, uint32_t events, uint64_t data)
{
	EpollTfdEntry **grown = realloc(ep->tfds, (ep->n_tfds + 1) * sizeof(*grown));
	EpollTfdEntry *t = malloc(sizeof(*t));

	if (grown)
		ep->tfds = grown;
	if (!grown || !t) {
		free(t);
		return err_set("out of memory");
	}
	epoll_tfd_entry__init(t);
	t->tfd = tfd;
	t->events = events;
	t->data = data;
	t->has_pid = true;
	ep->tfds[ep->n_tfds++] = t;
	return 0;
}

/* How many targets before index i were added by the same fd number. */
static unsigned same_tfd_before(const EpollEntry *ep, size_t i)
{
	unsigned n = 0;

	for (size_t j = 0; j < i; j++)
		n += ep->tfds[j]->tfd == ep->tfds[i]->tfd;
	return n;
}

/* The instance as kcmp finds it: fd of the process, or cryo's duplicate of
 * one the process holds only in flight (fd -1). */
struct epoll_at {
	pid_t holder;
	int fd;
};

static struct epoll_at epoll_at(const struct dump_ctx *ctx, const struct dump_file *f, int fd)
{
	return fd >= 0 ? (struct epoll_at){ctx->pid, fd} : (struct epoll_at){getpid(), f->local_fd};
}

/* Whether the target is fd tfd of process owner. */
static long same_target(pid_t owner, struct epoll_at at, const EpollEntry *ep, size_t i)
{
	const EpollTfdEntry *t = ep->tfds[i];
	struct kcmp_epoll_slot slot = {.efd = at.fd, .tfd = t->tfd, .toff = same_tfd_before(ep, i)};

	return syscall(SYS_kcmp, owner, at.holder, KCMP_EPOLL_TFD, t->tfd, &slot);
}

/* The fd through which the process of core adds target i of instance id
 * again (add_moved), or -1. */
static int moved_fd(const CoreEntry *core, uint32_t id, size_t i)
{
	for (size_t k = 0; k < core->n_epoll_moved; k++)
		if (core->epoll_moved[k]->epoll_id == id && core->epoll_moved[k]->index == i)
			return core->epoll_moved[k]->fd;
	return -1;
}

/* Records that owner adds target i of instance f again through its fd
 * `via`, the target's fd number being closed or another file's now. */
static int add_moved(struct dump_ctx *owner, const struct dump_file *f, size_t i, int via)
{
	CoreEntry *core = owner->core;
	EpollMovedTarget **grown, *m = malloc(sizeof(*m));

	grown = m ? realloc(core->epoll_moved, (core->n_epoll_moved + 1) * sizeof(*grown)) : NULL;
	if (!grown) {
		free(m);
		return err_set("out of memory");
	}
	core->epoll_moved = grown;
	epoll_moved_target__init(m);
	m->epoll_id = f->entry.id;
	m->index = i;
	m->fd = via;
	core->epoll_moved[core->n_epoll_moved++] = m;
	return 0;
}

/* The fd of process `other` that is the target's file, or -1. */
static int held_as(const struct dump_ctx *other, struct epoll_at at, const EpollEntry *ep, size_t i)
{
	struct kcmp_epoll_slot slot = {
	    .efd = at.fd, .tfd = ep->tfds[i]->tfd, .toff = same_tfd_before(ep, i)};
	int *fds, n = proc_list_fds(other->pid, &fds), found = -1;

	for (int k = 0; k < n && found < 0; k++)
		if (!syscall(SYS_kcmp, other->pid, at.holder, KCMP_EPOLL_TFD, fds[k], &slot))
			found = fds[k];
	if (n > 0)
		free(fds);
	return found;
}

/* A target whose fd was closed since (the watch lives on while the file
 * is open) or names another file now: some fd of the tree that holds the
 * file; the process of that fd adds it again, by its old number. */
static int find_moved(struct dump_ctx *ctx, struct dump_file *f, int fd, const EpollEntry *ep,
		      size_t i)
{
	EpollTfdEntry *t = ep->tfds[i];

	for (int k = -1; k < ctx->tree->nr_procs; k++) {
		struct dump_ctx *other = k < 0 ? ctx : ctx->tree->procs[k];
		int via = (k < 0 || other != ctx) && !other->zombie
			      ? held_as(other, epoll_at(ctx, f, fd), ep, i)
			      : -1;
		if (via >= 0) {
			t->pid = other->pid;
			return add_moved(other, f, i, via);
		}
	}
	return err_set("fd %d of pid %d (epoll) watches a file added as fd %u, which no fd of the "
		       "tree holds now (only the epoll instance does): cannot be restored",
		       fd, ctx->pid, t->tfd);
}

/* The target is fd tfd of the process, or of another process of the tree
 * (the instance may be shared, each adding its own fds): that process adds
 * it again; or its file is under another fd (find_moved). */
static int find_owner(struct dump_ctx *ctx, struct dump_file *f, int fd, const EpollEntry *ep,
		      size_t i)
{
	EpollTfdEntry *t = ep->tfds[i];
	struct epoll_at at = epoll_at(ctx, f, fd);
	long r = same_target(ctx->pid, at, ep, i);

	for (int k = 0; r && k < ctx->tree->nr_procs; k++) {
		struct dump_ctx *other = ctx->tree->procs[k];
		if (other != ctx && !other->zombie && !same_target(other->pid, at, ep, i)) {
			t->pid = other->pid;
			return 0;
		}
	}
	if (r < 0 && errno != EBADF)
		return err_errno("fd %d of pid %d (epoll): kcmp of target fd %u", fd, ctx->pid,
				 t->tfd);
	if (r != 0)
		return find_moved(ctx, f, fd, ep, i);
	t->pid = ctx->pid;
	return 0;
}

static int check_target(struct dump_ctx *ctx, struct dump_file *f, int fd, const EpollEntry *ep,
			size_t i)
{
	const EpollTfdEntry *t = ep->tfds[i];

	if (find_owner(ctx, f, fd, ep, i))
		return -1;
	if ((t->events & EPOLLONESHOT) && !(t->events & ~EP_FLAG_BITS))
		return err_set("fd %d of pid %d (epoll): its EPOLLONESHOT target fd %u has fired "
			       "and is disarmed, which cannot be restored",
			       fd, ctx->pid, t->tfd);
	return 0;
}

/* An edge-triggered target that is ready now will be reported again. */
static void warn_edge(struct dump_ctx *ctx, const struct dump_file *f, int fd, size_t i)
{
	const EpollTfdEntry *t = f->entry.epoll->tfds[i];
	const struct dump_ctx *owner = ctx;
	int tfd, moved, via = t->tfd;

	if (!(t->events & EPOLLET))
		return;
	for (int k = 0; k < ctx->tree->nr_procs; k++)
		if (ctx->tree->procs[k]->pid == (pid_t)t->pid)
			owner = ctx->tree->procs[k];
	moved = moved_fd(owner->core, f->entry.id, i); /* the fd holding it now */
	if (moved >= 0)
		via = moved;
	tfd = syscall(SYS_pidfd_getfd, owner->pidfd, via, 0);
	if (tfd < 0)
		return;
	struct pollfd p = {.fd = tfd, .events = t->events & ~EP_FLAG_BITS};
	if (poll(&p, 1, 0) == 1)
		pr_warn("fd %d of pid %d (epoll): edge-triggered target fd %u is ready; after "
			"restore it is reported once more",
			fd, ctx->pid, t->tfd);
	close(tfd);
}

static int dump_state(struct dump_ctx *ctx, struct dump_file *f, int fd, const char *info)
{
	EpollEntry *ep = malloc(sizeof(*ep));
	const char *p;

	if (!ep)
		return err_set("out of memory");
	epoll_entry__init(ep);
	f->entry.epoll = ep;
	for (p = anonfd_field(info, "tfd:"); p; p = anonfd_field(p, "tfd:")) {
		unsigned tfd, events;
		unsigned long long data;
		if (sscanf(p, " %u events: %x data: %llx", &tfd, &events, &data) != 3)
			return err_set("fd %d of pid %d (epoll): cannot parse its fdinfo", fd,
				       ctx->pid);
		if (add_tfd(ep, tfd, events, data))
			return -1;
	}
	for (size_t i = 0; i < ep->n_tfds; i++) {
		if (check_target(ctx, f, fd, ep, i))
			return -1;
		warn_edge(ctx, f, fd, i);
	}
	return 0;
}

static void epoll_free(FileEntry *fe)
{
	EpollEntry *ep = fe->epoll;

	if (!ep)
		return;
	for (size_t i = 0; i < ep->n_tfds; i++)
		free(ep->tfds[i]);
	free(ep->tfds);
	free(ep);
	fe->epoll = NULL;
}

static bool fd_in_table(const struct restore_ctx *ctx, uint32_t fd)
{
	for (size_t i = 0; ctx && i < ctx->nr_fds; i++)
		if (ctx->fds[i]->fd == fd)
			return true;
	return false;
}

/* The fd the process adds target i through, when its number is closed or
 * another file's (find_moved); -1 if none. */
static int moved_via(const struct restore_ctx *ctx, const FileEntry *fe, size_t i)
{
	return ctx ? moved_fd(ctx->core, fe->id, i) : -1;
}

static int check_state(const struct restore_tree *tree, const FileEntry *fe)
{
	if (!fe->epoll)
		return err_set("epoll without its state");
	for (size_t i = 0; i < fe->epoll->n_tfds; i++) {
		const EpollTfdEntry *t = fe->epoll->tfds[i];
		const struct restore_ctx *owner = t->has_pid ? ctx_proc(tree, t->pid) : NULL;
		int via = moved_via(owner, fe, i);
		if (!owner || !fd_in_table(owner, via >= 0 ? (uint32_t)via : t->tfd))
			return err_set("epoll target fd %u is not in the fd table of its process",
				       t->tfd);
	}
	return 0;
}

/* Whether some target of an instance is added by a process that does not
 * hold the instance itself: then the root makes it and every process can
 * reach it. */
static bool watched_from_outside(const struct restore_tree *tree, const FileEntry *fe)
{
	for (size_t i = 0; i < fe->epoll->n_tfds; i++) {
		const struct restore_ctx *owner = ctx_proc(tree, fe->epoll->tfds[i]->pid);
		if (owner && anonfd_first_fd(owner, fe->id) < 0)
			return true;
	}
	return false;
}

static int make(struct restore_ctx *ctx, const FileEntry *fe, int *fd)
{
	(void)ctx;
	(void)fe;
	*fd = epoll_create1(EPOLL_CLOEXEC);
	if (*fd < 0)
		return err_errno("cannot create an epoll instance");
	return 0;
}

/* Adds the file of fd via by the number tfd, which is closed or names
 * another file: that one is put back after, with its close-on-exec flag. */
static int add_through(int efd, int via, int tfd, struct epoll_event *ev)
{
	int fl = fcntl(tfd, F_GETFD), saved = fl < 0 ? -1 : fcntl(tfd, F_DUPFD_CLOEXEC, 0);
	int ret;

	if (fl >= 0 && saved < 0)
		return -1;
	if (dup2(via, tfd) < 0) {
		if (saved >= 0)
			close(saved);
		return -1;
	}
	ret = epoll_ctl(efd, EPOLL_CTL_ADD, tfd, ev);
	if (saved < 0)
		close(tfd); /* the watch lives on: fd via holds the file */
	else if (dup3(saved, tfd, fl & FD_CLOEXEC ? O_CLOEXEC : 0) < 0 || close(saved))
		return -1;
	return ret;
}

/* The targets this process added, by their fd numbers here. */
static int add_targets(const struct restore_ctx *ctx, const FileEntry *fe)
{
	int efd = anonfd_first_fd(ctx, fe->id);

	if (efd < 0)
		efd = ctx_inherited_fd(ctx->tree, fe->id);
	for (size_t i = 0; i < fe->epoll->n_tfds; i++) {
		const EpollTfdEntry *t = fe->epoll->tfds[i];
		struct epoll_event ev = {.events = t->events, .data.u64 = t->data};
		int via = moved_via(ctx, fe, i);
		if ((pid_t)t->pid != ctx->pid)
			continue;
		if (efd < 0 || (via < 0 ? epoll_ctl(efd, EPOLL_CTL_ADD, t->tfd, &ev)
					: add_through(efd, via, t->tfd, &ev)))
			return err_errno("cannot add fd %u to epoll fd %d (events %#x)", t->tfd,
					 efd, t->events);
	}
	return 0;
}

/* Once every fd of the process is in place: the targets it added. */
static int add_all_targets(struct restore_ctx *ctx)
{
	for (size_t i = 0; i < ctx->tree->nr_files; i++)
		if (ctx->tree->files[i]->kind == FILE_KIND__EPOLL &&
		    add_targets(ctx, ctx->tree->files[i]))
			return -1;
	return 0;
}

static const struct anonfd_type type = {"anon_inode:[eventpoll]", "epoll", O_RDWR, 0};

ANONFD_OPS(type, dump_state, check_state, make)

const struct fd_kind epoll_kind = {
    .name = "epoll",
    .kind = FILE_KIND__EPOLL,
    .recognise = anon_recognise,
    .dump = anon_dump,
    .free_entry = epoll_free,
    .validate = anon_validate,
    .needs_root = watched_from_outside,
    .open = anon_open,
    .placed = add_all_targets,
};
