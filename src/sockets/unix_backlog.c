/*
 * sockets/unix_backlog: connections waiting in the backlog of a unix
 * listener of the tree (connected, not accepted yet), and putting them back
 * when the tree goes on.
 *
 * The server end of such a connection (the "embryo") has no fd anywhere and
 * what its client sent is queued to it; no interface reads that queue but
 * the socket itself, and the socket is only reachable by accepting it. So
 * the dump accepts every waiting connection of the listener, in backlog
 * order, from cryo's duplicate of the listener (unix.c saves each as an
 * accepted socket marked as an embryo, its queue peeked as any other), and
 * this file records what it took.
 *
 * The listener has lost those connections, so when the tree goes on (a
 * failed dump, --leave-running) they are made again, in the same order: a
 * new client socket per connection, with the old one's type, status flags
 * and buffer sizes, connected to the listener again, the data the old
 * server end still holds moved to it (read for real now, with the fds in
 * flight), and put in place of the old client in every fd of the tree that
 * held it: each holding process makes a socketpair by injection, cryo sends
 * the new socket over it (SCM_RIGHTS), the process receives it and dup3()s
 * it over the fd. To the program it is the same connection: the server's
 * accept() returns it with the bytes the client sent, the client talks on
 * the same fd, and the epoll watches the process had on that fd move to
 * the new socket. (Its
 * inode number is new.) A restore makes them with
 * connect() and leaves them in the backlog (unix.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "infra/inject.h"
#include "infra/log.h"
#include "sockets/unix_backlog.h"

#define PUT_SCRATCH 4096
#define MAX_FDS	    253

struct taken {
	struct sockaddr_un listener; /* where to connect again */
	socklen_t listener_len;
	int listener_file; /* path names: the socket file (O_PATH), else -1 */
	int accepted;	   /* the server end cryo accepted */
	int client;	   /* cryo's duplicate of the old client */
	uint32_t client_id;
};

struct unix_backlog {
	size_t nr;
	struct taken *v;
};

int unix_backlog_record(struct dump_tree *tree, const struct sockaddr_un *listener, socklen_t len,
			int listener_file, int accepted, int client, uint32_t client_id)
{
	struct unix_backlog *b = tree->unix_backlog;
	struct taken *v;

	if (!b && !(b = tree->unix_backlog = calloc(1, sizeof(*b))))
		return err_set("out of memory");
	v = realloc(b->v, (b->nr + 1) * sizeof(*v));
	if (!v)
		return err_set("out of memory");
	b->v = v;
	v[b->nr++] = (struct taken){*listener, len, listener_file, accepted, client, client_id};
	return 0;
}

/* The old client's type, flags and buffers on a new socket. */
static int new_client(const struct taken *t)
{
	int type = 0, v, fl = fcntl(t->client, F_GETFL);
	socklen_t len = sizeof(type);
	int fd;

	if (getsockopt(t->client, SOL_SOCKET, SO_TYPE, &type, &len) ||
	    (fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0)) < 0)
		return err_errno("cannot make a unix socket");
	len = sizeof(v);
	if (!getsockopt(t->client, SOL_SOCKET, SO_SNDBUF, &v, &len))
		setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &(int){v / 2}, sizeof(int));
	len = sizeof(v);
	if (!getsockopt(t->client, SOL_SOCKET, SO_RCVBUF, &v, &len))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &(int){v / 2}, sizeof(int));
	len = sizeof(v);
	if (!getsockopt(t->client, SOL_SOCKET, SO_PASSCRED, &v, &len) && v)
		setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &v, sizeof(v));
	if (fl < 0 || fcntl(fd, F_SETFL, fl) ||
	    connect(fd, (const struct sockaddr *)&t->listener, t->listener_len)) {
		close(fd);
		return err_errno("cannot connect a unix socket to its listener again");
	}
	return fd;
}

/* What the old server end holds, moved to the new connection's client end
 * (sent from it, so that the new server end holds it). */
static int move_data(const struct taken *t, int to)
{
	static char cbuf[CMSG_SPACE(MAX_FDS * sizeof(int))] __attribute__((aligned(8)));
	static char data[64 << 10];

	for (;;) {
		struct iovec iov = {data, sizeof(data)};
		struct msghdr mh = {.msg_iov = &iov,
				    .msg_iovlen = 1,
				    .msg_control = cbuf,
				    .msg_controllen = sizeof(cbuf)};
		ssize_t n = recvmsg(t->accepted, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n <= 0)
			return n < 0 && errno != EAGAIN
				   ? err_errno("cannot read a connection taken "
					       "from a backlog")
				   : 0;
		iov.iov_len = n;
		mh.msg_flags = 0;
		if (!mh.msg_controllen)
			mh.msg_control = NULL;
		ssize_t sent = sendmsg(to, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
				for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
				     i++)
					close(((int *)CMSG_DATA(c))[i]);
		if (sent != n)
			return err_errno("cannot send the data of a connection again");
	}
}

/* Sends fd over sk with SCM_RIGHTS. */
static int send_one_fd(int sk, int fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))] __attribute__((aligned(8))) = {0};
	struct iovec iov = {"", 1};
	struct msghdr mh = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
	struct cmsghdr *c = CMSG_FIRSTHDR(&mh);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(sk, &mh, MSG_DONTWAIT) == 1 ? 0 : err_errno("cannot pass a socket on");
}

/* In the stopped process ctx: receives fd by a socketpair of its own and
 * returns its number there in *got. */
static int install(struct dump_ctx *ctx, int fd, long *got)
{
	struct inject *inj = &ctx->inj;
	int sv[2];
	uint64_t at, msg_at;
	long r;
	struct {
		struct msghdr mh;
		struct iovec iov;
		char byte;
		char cbuf[CMSG_SPACE(sizeof(int))] __attribute__((aligned(8)));
	} m = {0};

	if (inject_scratch_put(inj, 0, sv, sizeof(sv), &at) ||
	    inject_call(inj, "socketpair", SYS_socketpair, AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0,
			at, 0, 0, &r) ||
	    inject_scratch_get(inj, 0, sv, sizeof(sv)))
		return -1;
	int local = syscall(SYS_pidfd_getfd, ctx->pidfd, sv[0], 0);
	if (local < 0 || send_one_fd(local, fd)) {
		if (local >= 0)
			close(local);
		return local < 0 ? err_errno("pidfd_getfd") : -1;
	}
	close(local);
	msg_at = inj->scratch + 64;
	m.iov = (struct iovec){(void *)(msg_at + offsetof(typeof(m), byte)), 1};
	m.mh = (struct msghdr){.msg_iov = (void *)(msg_at + offsetof(typeof(m), iov)),
			       .msg_iovlen = 1,
			       .msg_control = (void *)(msg_at + offsetof(typeof(m), cbuf)),
			       .msg_controllen = sizeof(m.cbuf)};
	if (inject_scratch_put(inj, 64, &m, sizeof(m), NULL) ||
	    inject_call(inj, "recvmsg", SYS_recvmsg, sv[1], msg_at, MSG_CMSG_CLOEXEC, 0, 0, 0,
			&r) ||
	    inject_scratch_get(inj, 64, &m, sizeof(m)))
		return -1;
	int nfd = -1;
	if (r != 1 || ((struct cmsghdr *)m.cbuf)->cmsg_type != SCM_RIGHTS)
		return err_set("pid %d did not receive the socket put back", ctx->pid);
	memcpy(&nfd, CMSG_DATA((struct cmsghdr *)m.cbuf), sizeof(int));
	*got = nfd;
	return inject_call(inj, "close", SYS_close, sv[0], 0, 0, 0, 0, 0, &r) ||
	       inject_call(inj, "close", SYS_close, sv[1], 0, 0, 0, 0, 0, &r);
}

/* The epoll watches of ctx on its fd number fd: taken off the old client
 * before the new one takes its place (op EPOLL_CTL_DEL; else they would
 * stay until cryo lets the old one go, and report its hangup), then added
 * on the new one (EPOLL_CTL_ADD). */
static int watch_again(struct dump_ctx *ctx, int fd, int op)
{
	const struct dump_tree *tree = ctx->tree;
	long r;

	for (int i = 0; i < tree->nr_files; i++) {
		const EpollEntry *ep = tree->files[i].entry.epoll;
		int efd = -1;
		if (tree->files[i].entry.kind != FILE_KIND__EPOLL || !ep)
			continue;
		for (int j = 0; j < ctx->nr_fds && efd < 0; j++)
			if (ctx->fds[j].file_id == tree->files[i].entry.id)
				efd = ctx->fds[j].fd;
		for (size_t k = 0; k < ep->n_tfds; k++) {
			const EpollTfdEntry *t = ep->tfds[k];
			struct epoll_event ev = {.events = t->events, .data.u64 = t->data};
			uint64_t at;
			if ((pid_t)t->pid != ctx->pid || (int)t->tfd != fd)
				continue;
			if (efd < 0) {
				if (op == EPOLL_CTL_ADD)
					pr_warn(
					    "pid %d: an epoll instance it has no fd of watched fd "
					    "%d, put back from a listener's backlog: that watch is "
					    "lost",
					    ctx->pid, fd);
				continue;
			}
			if (inject_scratch_put(&ctx->inj, 512, &ev, sizeof(ev), &at) ||
			    inject_call(&ctx->inj, "epoll_ctl", SYS_epoll_ctl, efd, op, fd, at, 0,
					0, &r))
				return -1;
		}
	}
	return 0;
}

/* Every fd of ctx holding description id now holds fd. */
static int replace_in(struct dump_ctx *ctx, uint32_t id, int fd)
{
	long got = -1, r;
	int ret = 0;
	bool any = false;

	for (int i = 0; i < ctx->nr_fds; i++)
		any |= ctx->fds[i].file_id == id;
	if (!any || ctx->zombie)
		return 0;
	if (inject_begin(&ctx->inj, ctx->pid) || inject_setup(&ctx->inj, &ctx->vmas, PUT_SCRATCH))
		return -1;
	ret = install(ctx, fd, &got);
	for (int i = 0; !ret && i < ctx->nr_fds; i++)
		if (ctx->fds[i].file_id == id)
			ret = watch_again(ctx, ctx->fds[i].fd, EPOLL_CTL_DEL) ||
			      inject_call(&ctx->inj, "dup3", SYS_dup3, got, ctx->fds[i].fd,
					  ctx->fds[i].cloexec ? O_CLOEXEC : 0, 0, 0, 0, &r) ||
			      watch_again(ctx, ctx->fds[i].fd, EPOLL_CTL_ADD);
	if (!ret)
		ret = inject_call(&ctx->inj, "close", SYS_close, got, 0, 0, 0, 0, 0, &r);
	if (inject_end(&ctx->inj))
		ret = -1;
	return ret;
}

static int put_back_one(struct dump_tree *tree, const struct taken *t)
{
	int fd = new_client(t);

	if (fd < 0)
		return -1;
	int r = move_data(t, fd);
	for (int p = 0; !r && p < tree->nr_procs; p++)
		r = replace_in(tree->procs[p], t->client_id, fd);
	close(fd);
	return r;
}

void unix_backlog_end(struct dump_tree *tree, enum dump_end how)
{
	struct unix_backlog *b = tree->unix_backlog;

	for (size_t i = 0; b && how != DUMP_END_KILL && i < b->nr; i++)
		if (put_back_one(tree, &b->v[i])) {
			pr_warn(
			    "a connection waiting in a unix listener's backlog could not be put "
			    "back, its client may see it closed: %s",
			    err_text());
			err_clear();
		}
	unix_backlog_free(tree);
}

void unix_backlog_free(struct dump_tree *tree)
{
	struct unix_backlog *b = tree->unix_backlog;

	for (size_t i = 0; b && i < b->nr; i++) {
		close(b->v[i].accepted);
		close(b->v[i].client);
		if (b->v[i].listener_file >= 0)
			close(b->v[i].listener_file);
	}
	if (b)
		free(b->v);
	free(b);
	tree->unix_backlog = NULL;
}
