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
 * Restore: the instance is created empty with the other descriptions;
 * once every fd of the process is in place, epoll_restore_watches() adds
 * each target by its fd number, in the order of the dump.
 *
 * Not visible anywhere, hence not saved: which edge-triggered events were
 * already reported. Re-adding a target polls it, so an edge-triggered target
 * that is ready at restore is reported once more (a warning names it).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/kcmp.h>

#include "context.h"
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

/* Is the target still fd tfd of the process? */
static int check_target(struct dump_ctx *ctx, int fd, const EpollEntry *ep, size_t i)
{
	const EpollTfdEntry *t = ep->tfds[i];
	struct kcmp_epoll_slot slot = {.efd = fd, .tfd = t->tfd, .toff = same_tfd_before(ep, i)};
	long r = syscall(SYS_kcmp, ctx->pid, ctx->pid, KCMP_EPOLL_TFD, t->tfd, &slot);

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
	if ((t->events & EPOLLONESHOT) && !(t->events & ~EP_FLAG_BITS))
		return err_set("fd %d of pid %d (epoll): its EPOLLONESHOT target fd %u has fired "
			       "and is disarmed, which cannot be restored",
			       fd, ctx->pid, t->tfd);
	return 0;
}

/* An edge-triggered target that is ready now will be reported again. */
static void warn_edge(struct dump_ctx *ctx, int fd, const EpollTfdEntry *t)
{
	int tfd;

	if (!(t->events & EPOLLET))
		return;
	tfd = syscall(SYS_pidfd_getfd, ctx->pidfd, t->tfd, 0);
	if (tfd < 0)
		return;
	struct pollfd p = {.fd = tfd, .events = t->events & ~EP_FLAG_BITS};
	if (poll(&p, 1, 0) == 1)
		pr_warn("fd %d of pid %d (epoll): edge-triggered target fd %u is ready; after "
			"restore it is reported once more",
			fd, ctx->pid, t->tfd);
	close(tfd);
}

int epoll_dump(struct dump_ctx *ctx, struct dump_file *f, int fd, const char *info)
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

void epoll_free(FileEntry *fe)
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
	for (size_t i = 0; i < ctx->nr_fds; i++)
		if (ctx->fds[i]->fd == fd)
			return true;
	return false;
}

int epoll_validate(const struct restore_ctx *ctx, const FileEntry *fe)
{
	if (!fe->epoll)
		return err_set("epoll without its state");
	for (size_t i = 0; i < fe->epoll->n_tfds; i++)
		if (!fd_in_table(ctx, fe->epoll->tfds[i]->tfd))
			return err_set("epoll target fd %u is not in the fd table",
				       fe->epoll->tfds[i]->tfd);
	return 0;
}

int epoll_restore_child(struct restore_ctx *ctx, const FileEntry *fe, int *fd)
{
	(void)ctx;
	(void)fe;
	*fd = epoll_create1(EPOLL_CLOEXEC);
	if (*fd < 0)
		return err_errno("cannot create an epoll instance");
	return 0;
}

static int add_targets(const struct restore_ctx *ctx, const FileEntry *fe)
{
	int efd = anonfd_first_fd(ctx, fe->id);

	for (size_t i = 0; i < fe->epoll->n_tfds; i++) {
		const EpollTfdEntry *t = fe->epoll->tfds[i];
		struct epoll_event ev = {.events = t->events, .data.u64 = t->data};
		if (epoll_ctl(efd, EPOLL_CTL_ADD, t->tfd, &ev))
			return err_errno("cannot add fd %u to epoll fd %d (events %#x)", t->tfd,
					 efd, t->events);
	}
	return 0;
}

int epoll_restore_watches(struct restore_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nr_files; i++)
		if (ctx->files[i]->kind == FILE_KIND__EPOLL && add_targets(ctx, ctx->files[i]))
			return -1;
	return 0;
}
