/*
 * epoll: the targets an epoll instance watches (fd number, events, data).
 *
 * Dump: fdinfo lists one "tfd: N events: E data: D" line per target, N
 * being the fd number the target was added by. The target must still be
 * that fd of the process: kcmp(KCMP_EPOLL_TFD) compares the file the epoll
 * holds with the one in the fd table, and a target whose fd was closed (or
 * reused for another file) stops the dump. A one-shot target that already
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

/* Whether the target is fd tfd of process owner. */
static long same_target(pid_t owner, pid_t holder, int fd, const EpollEntry *ep, size_t i)
{
	const EpollTfdEntry *t = ep->tfds[i];
	struct kcmp_epoll_slot slot = {.efd = fd, .tfd = t->tfd, .toff = same_tfd_before(ep, i)};

	return syscall(SYS_kcmp, owner, holder, KCMP_EPOLL_TFD, t->tfd, &slot);
}

/* The target must still be fd tfd of the process, or of another process of
 * the tree (the instance may be shared, each adding its own fds): that
 * process adds it again. */
static int find_owner(struct dump_ctx *ctx, int fd, const EpollEntry *ep, size_t i)
{
	EpollTfdEntry *t = ep->tfds[i];
	long r = same_target(ctx->pid, ctx->pid, fd, ep, i);

	for (int k = 0; r && k < ctx->tree->nr_procs; k++) {
		struct dump_ctx *other = ctx->tree->procs[k];
		if (other != ctx && !other->zombie &&
		    !same_target(other->pid, ctx->pid, fd, ep, i)) {
			t->pid = other->pid;
			return 0;
		}
	}
	if (r < 0 && errno == EBADF)
		return err_set("fd %d of pid %d (epoll) watches a file added as fd %u, which the "
			       "process has closed since: cannot be restored",
			       fd, ctx->pid, t->tfd);
	if (r < 0)
		return err_errno("fd %d of pid %d (epoll): kcmp of target fd %u", fd, ctx->pid,
				 t->tfd);
	if (r != 0)
		return err_set("fd %d of pid %d (epoll) watches a file added as fd %u, which is "
			       "now another file: cannot be restored",
			       fd, ctx->pid, t->tfd);
	t->pid = ctx->pid;
	return 0;
}

static int check_target(struct dump_ctx *ctx, int fd, const EpollEntry *ep, size_t i)
{
	const EpollTfdEntry *t = ep->tfds[i];

	if (find_owner(ctx, fd, ep, i))
		return -1;
	if ((t->events & EPOLLONESHOT) && !(t->events & ~EP_FLAG_BITS))
		return err_set("fd %d of pid %d (epoll): its EPOLLONESHOT target fd %u has fired "
			       "and is disarmed, which cannot be restored",
			       fd, ctx->pid, t->tfd);
	return 0;
}

/* An edge-triggered target that is ready now will be reported again. */
static void warn_edge(struct dump_ctx *ctx, int fd, const EpollTfdEntry *t)
{
	int tfd, owner_pidfd = ctx->pidfd;

	if (!(t->events & EPOLLET))
		return;
	for (int k = 0; k < ctx->tree->nr_procs; k++)
		if (ctx->tree->procs[k]->pid == (pid_t)t->pid)
			owner_pidfd = ctx->tree->procs[k]->pidfd;
	tfd = syscall(SYS_pidfd_getfd, owner_pidfd, t->tfd, 0);
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
		if (check_target(ctx, fd, ep, i))
			return -1;
		warn_edge(ctx, fd, ep->tfds[i]);
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

static int check_state(const struct restore_tree *tree, const FileEntry *fe)
{
	if (!fe->epoll)
		return err_set("epoll without its state");
	for (size_t i = 0; i < fe->epoll->n_tfds; i++) {
		const EpollTfdEntry *t = fe->epoll->tfds[i];
		if (!t->has_pid || !fd_in_table(ctx_proc(tree, t->pid), t->tfd))
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

/* The targets this process added, by their fd numbers here. */
static int add_targets(const struct restore_ctx *ctx, const FileEntry *fe)
{
	int efd = anonfd_first_fd(ctx, fe->id);

	if (efd < 0)
		efd = ctx_inherited_fd(ctx->tree, fe->id);
	for (size_t i = 0; i < fe->epoll->n_tfds; i++) {
		const EpollTfdEntry *t = fe->epoll->tfds[i];
		struct epoll_event ev = {.events = t->events, .data.u64 = t->data};
		if ((pid_t)t->pid != ctx->pid)
			continue;
		if (efd < 0 || epoll_ctl(efd, EPOLL_CTL_ADD, t->tfd, &ev))
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
