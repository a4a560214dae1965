/*
 * sockets/unix: AF_UNIX sockets whose peers are inside the tree, and
 * stream sockets connected outside that --external unix[INO] names.
 *
 * Dump: a socket is known by its inode. sock_diag (NETLINK_SOCK_DIAG,
 * unix_diag) gives its type, state, name, socket file, peer, queue lengths
 * and shutdown state; getsockopt on cryo's pidfd_getfd duplicate gives the
 * options. Once every process is seen, unix_dump_finish() checks that each
 * peer is a socket of the tree (a peer outside the checkpoint stops the
 * dump, naming the fd, the socket and the peer, unless --external
 * unix[INO] names a stream socket: then it is an endpoint outside,
 * external.c, of which only the inode is saved, given at restore by
 * --inherit-fd fd[N]:socket:[INO] and never made here), tells sockets accepted from
 * a listener apart from socketpair ends, and copies each receive queue
 * without consuming it: SO_PEEK_OFF is set to 0 on the shared socket, the
 * queue is read with MSG_PEEK one message (or run of bytes) at a time, and
 * the target's own peek offset is put back. Messages keep their boundaries
 * and the fds passed with them (SCM_RIGHTS): an fd in flight is saved as
 * the description of the tree it is, a pipe end or unix socket held only in
 * flight becomes one (so do epoll, eventfd, timerfd and signalfd
 * instances), a regular file or directory is reopened by path; anything
 * else stops the dump, and so does out-of-band data. A stream queue is
 * peeked only up to what sock_diag counts and a seqpacket one not at all
 * with an error pending: a recv that meets the error takes it. Connections
 * waiting in a listener's backlog are accepted here and saved as embryos
 * (unix_backlog.c puts them back if the tree goes on); a path name whose
 * socket file is no longer the socket's is marked name_gone. Everything
 * goes into files.img as file_entry.unix_sk (sk-unix.proto).
 *
 * Restore: the root makes every unix socket of the tree before it forks,
 * after the other descriptions it makes (so that fds in flight can be sent
 * from there), and each process inherits its own; a peer, listener or
 * sender in another process is then no different from one in the same.
 * SO_PEERCRED names the root, which made the connection. 1: socketpair()
 * for each connected pair (bound ends are bound after), socket()+bind() for
 * the others (a stale socket file of the same inode is unlinked first; a
 * name whose file is gone is bound out of sight, unix_hidden.c),
 * listen() for listeners. 2: accepted connections are made again with
 * connect() to their listener and accept(), then the waiting ones with
 * connect() alone, in backlog order; one-way connected datagram
 * sockets connect(). A made socket is reached through its socket file
 * (SIOCUNIXFILE), never its path. 3: buffer sizes and SO_PASS* options,
 * then every queue is refilled by sending its messages from the peer (or
 * from the saved sender, or from a temporary socket, unnamed or bound to a
 * gone sender's name; a socket whose peer was closed is one end of a new
 * pair, filled from the other, which is closed then, with a byte unread if
 * ECONNRESET was pending). 4: shutdown, peek offset, low mark and
 * timeouts.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/sockios.h>
#include <linux/unix_diag.h>

#include "external.h"
#include "fdkind.h"
#include "files.h"
#include "infra/log.h"
#include "sockets/unix_backlog.h"
#include "sockets/unix_hidden.h"

#ifndef SO_PASSPIDFD
#define SO_PASSPIDFD 76
#endif
#ifndef SO_PASSRIGHTS
#define SO_PASSRIGHTS 83
#endif
#ifndef SIOCUNIXFILE
#define SIOCUNIXFILE (SIOCPROTOPRIVATE + 0)
#endif
#ifndef SCM_PIDFD
#define SCM_PIDFD 0x04
#endif

enum { ST_ESTABLISHED = 1, ST_CLOSE = 7, ST_LISTEN = 10 };
enum { SHUT_RCV_BIT = 1, SHUT_SEND_BIT = 2 };

#define SUN_PATH_MAX sizeof(((struct sockaddr_un *)0)->sun_path)
#define MAX_QUEUE    (64u << 20) /* bytes saved per socket, at most */
#define MAX_INFLIGHT 253	 /* SCM_MAX_FD */
#define PEEK_CHUNK   (64u << 10)

/* What sock_diag tells about one unix socket. */
struct diag {
	uint32_t type, state, peer, rq, wq, vfs_ino, vfs_dev, nr_icons;
	uint8_t shutdown;
	bool has_vfs;
	bool has_peer;	       /* a peer attribute, even of 0: a peer that is dead (or an embryo) */
	const uint32_t *icons; /* listener: its waiting clients (in the answer buffer) */
	size_t name_len;
	unsigned char name[SUN_PATH_MAX];
};

/* ---- names ---- */

static bool is_path_name(const ProtobufCBinaryData *n)
{
	return n->len > 0 && n->data[0] != 0;
}

/* A printable form of a socket name: "@abstract", a path, or "unnamed". */
static const char *name_str(const unsigned char *name, size_t len, char *buf, size_t size)
{
	if (!len)
		return "unnamed";
	if (name[0])
		snprintf(buf, size, "%.*s", (int)strnlen((const char *)name, len), name);
	else
		snprintf(buf, size, "@%.*s", (int)len - 1, name + 1);
	for (char *p = buf; *p; p++)
		if (*p < 32 || *p > 126)
			*p = '?';
	return buf;
}

static const char *u_name(const UnixSkEntry *u, char *buf, size_t size)
{
	return name_str(u->has_name ? u->name.data : NULL, u->has_name ? u->name.len : 0, buf,
			size);
}

static socklen_t make_addr(const UnixSkEntry *u, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, u->name.data, u->name.len);
	return offsetof(struct sockaddr_un, sun_path) + u->name.len;
}

/* The socket file's path as cryo sees it (relative names: in their dir). */
static int file_path(const UnixSkEntry *u, char *buf, size_t size)
{
	int n;

	if (u->name_dir)
		n = snprintf(buf, size, "%s/%.*s", u->name_dir, (int)u->name.len, u->name.data);
	else
		n = snprintf(buf, size, "%.*s", (int)u->name.len, u->name.data);
	if (n < 0 || (size_t)n >= size)
		return err_set("unix socket:[%llu]: socket file path too long",
			       (unsigned long long)u->ino);
	return 0;
}

/* ---- dump: sock_diag ---- */

static int diag_parse(const struct nlmsghdr *h, size_t len, struct diag *d)
{
	const struct unix_diag_msg *m = NLMSG_DATA(h);
	const struct nlattr *a = (const void *)(m + 1);
	size_t left = h->nlmsg_len - NLMSG_LENGTH(sizeof(*m));

	if (h->nlmsg_len > len || h->nlmsg_len < NLMSG_LENGTH(sizeof(*m)))
		return err_set("short sock_diag answer");
	memset(d, 0, sizeof(*d));
	d->type = m->udiag_type;
	d->state = m->udiag_state;
	while (left >= sizeof(*a) && a->nla_len >= sizeof(*a) && a->nla_len <= left) {
		const void *p = a + 1;
		size_t plen = a->nla_len - sizeof(*a);
		switch (a->nla_type) {
		case UNIX_DIAG_NAME:
			d->name_len = plen < SUN_PATH_MAX ? plen : SUN_PATH_MAX;
			memcpy(d->name, p, d->name_len);
			break;
		case UNIX_DIAG_VFS:
			if (plen >= sizeof(struct unix_diag_vfs)) {
				const struct unix_diag_vfs *v = p;
				d->has_vfs = true;
				d->vfs_ino = v->udiag_vfs_ino;
				d->vfs_dev = v->udiag_vfs_dev;
			}
			break;
		case UNIX_DIAG_PEER:
			if (plen >= 4)
				memcpy(&d->peer, p, 4);
			d->has_peer = plen >= 4;
			break;
		case UNIX_DIAG_ICONS:
			d->nr_icons = plen / 4;
			d->icons = p;
			break;
		case UNIX_DIAG_RQLEN:
			if (plen >= sizeof(struct unix_diag_rqlen)) {
				const struct unix_diag_rqlen *r = p;
				d->rq = r->udiag_rqueue;
				d->wq = r->udiag_wqueue;
			}
			break;
		case UNIX_DIAG_SHUTDOWN:
			if (plen >= 1)
				d->shutdown = *(const uint8_t *)p;
			break;
		}
		size_t step = NLA_ALIGN(a->nla_len);
		left -= step < left ? step : left;
		a = (const void *)((const char *)a + NLA_ALIGN(a->nla_len));
	}
	return 0;
}

/* Asks sock_diag about the unix socket of inode ino. */
static int diag_query(uint64_t ino, struct diag *d)
{
	struct {
		struct nlmsghdr h;
		struct unix_diag_req r;
	} q = {0};
	static char buf[16384] __attribute__((aligned(8)));
	const struct nlmsghdr *h = (const void *)buf;
	ssize_t n;
	int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);

	if (nl < 0)
		return err_errno("cannot open a sock_diag socket");
	q.h.nlmsg_len = sizeof(q);
	q.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	q.h.nlmsg_flags = NLM_F_REQUEST;
	q.r.sdiag_family = AF_UNIX;
	q.r.udiag_states = ~0u;
	q.r.udiag_ino = ino;
	q.r.udiag_show = UDIAG_SHOW_NAME | UDIAG_SHOW_VFS | UDIAG_SHOW_PEER | UDIAG_SHOW_ICONS |
			 UDIAG_SHOW_RQLEN;
	q.r.udiag_cookie[0] = q.r.udiag_cookie[1] = ~0u;
	if (send(nl, &q, sizeof(q), 0) != sizeof(q)) {
		close(nl);
		return err_errno("sock_diag request for socket:[%llu]", (unsigned long long)ino);
	}
	n = recv(nl, buf, sizeof(buf), 0);
	close(nl);
	if (n < 0)
		return err_errno("sock_diag answer for socket:[%llu]", (unsigned long long)ino);
	if ((size_t)n < NLMSG_LENGTH(sizeof(struct nlmsgerr)))
		return err_set("short sock_diag answer for socket:[%llu]", (unsigned long long)ino);
	if (h->nlmsg_type == NLMSG_ERROR) {
		errno = -((const struct nlmsgerr *)NLMSG_DATA(h))->error;
		return err_errno("sock_diag does not know unix socket:[%llu] (another network "
				 "namespace?)",
				 (unsigned long long)ino);
	}
	return diag_parse(h, n, d);
}

static bool is_unix(int fd)
{
	int dom = 0;
	socklen_t len = sizeof(dom);

	return getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &len) == 0 && dom == AF_UNIX;
}

static bool unix_recognise(const struct fd_probe *p)
{
	return p->sk_domain == AF_UNIX;
}

/* ---- dump: one socket ---- */

static int get_int(int fd, int opt, int *v, protobuf_c_boolean *has)
{
	socklen_t len = sizeof(*v);

	*has = getsockopt(fd, SOL_SOCKET, opt, v, &len) == 0;
	if (!*has && errno != ENOPROTOOPT)
		return err_errno("getsockopt %d", opt);
	return 0;
}

static int get_timeo(int fd, int opt, uint64_t *us)
{
	struct timeval tv;
	socklen_t len = sizeof(tv);

	if (getsockopt(fd, SOL_SOCKET, opt, &tv, &len))
		return err_errno("getsockopt %d", opt);
	*us = (uint64_t)tv.tv_sec * 1000000 + tv.tv_usec;
	return 0;
}

static int read_options(int fd, UnixSkEntry *u)
{
	int v;
	protobuf_c_boolean has;

	if (get_int(fd, SO_SNDBUF, &v, &has) || !has)
		return has ? -1 : err_errno("cannot read SO_SNDBUF");
	u->sndbuf = v;
	if (get_int(fd, SO_RCVBUF, &v, &has) || !has)
		return has ? -1 : err_errno("cannot read SO_RCVBUF");
	u->rcvbuf = v;
	if (get_int(fd, SO_PEEK_OFF, &v, &has) || !has)
		return has ? -1 : err_errno("cannot read SO_PEEK_OFF");
	u->peek_off = v;
	if (get_int(fd, SO_PASSCRED, &v, &u->has_passcred))
		return -1;
	u->passcred = v;
	if (get_int(fd, SO_PASSSEC, &v, &u->has_passsec))
		return -1;
	u->passsec = v;
	if (get_int(fd, SO_PASSPIDFD, &v, &u->has_passpidfd))
		return -1;
	u->passpidfd = v;
	if (get_int(fd, SO_PASSRIGHTS, &v, &u->has_passrights))
		return -1;
	u->passrights = v;
	if (get_int(fd, SO_RCVLOWAT, &u->rcvlowat, &u->has_rcvlowat))
		return -1;
	u->has_sndtimeo_us = u->has_rcvtimeo_us = true;
	return get_timeo(fd, SO_SNDTIMEO, &u->sndtimeo_us) ||
	       get_timeo(fd, SO_RCVTIMEO, &u->rcvtimeo_us);
}

/* The socket file a path-named socket is bound to, by its inode (the path
 * may lead elsewhere): an O_PATH fd, or -1. */
static int socket_file(int fd)
{
	return ioctl(fd, SIOCUNIXFILE);
}

/* A relative name's directory: the process's cwd, maybe deleted since. */
static int name_dir_of(struct dump_ctx *ctx, UnixSkEntry *u)
{
	char cwd[PATH_MAX];
	size_t n;

	if (proc_readlink(ctx->pid, "cwd", cwd, sizeof(cwd)))
		return -1;
	n = strlen(cwd);
	if (n > 10 && !strcmp(cwd + n - 10, " (deleted)"))
		cwd[n - 10] = 0;
	u->name_dir = strdup(cwd);
	return u->name_dir ? 0 : err_set("out of memory");
}

/* A path name: its socket file's identity and attributes, so that restore
 * can make it again; when the path no longer leads to it (deleted,
 * replaced, directory gone) the name is bound again out of sight. */
static int dump_name_file(struct dump_ctx *ctx, UnixSkEntry *u, const struct diag *d, int fd,
			  int local)
{
	char path[PATH_MAX + SUN_PATH_MAX + 2], nbuf[SUN_PATH_MAX + 2];
	struct stat st, here;
	int file;

	if (u->name.data[0] != '/' && name_dir_of(ctx, u))
		return -1;
	if (file_path(u, path, sizeof(path)))
		return -1;
	file = socket_file(local);
	if (file < 0 || fstat(file, &st)) {
		if (file >= 0)
			close(file);
		return err_errno("fd %d of pid %d is unix socket:[%llu] bound to %s: cannot reach "
				 "its socket file",
				 fd, ctx->pid, (unsigned long long)u->ino,
				 name_str(u->name.data, u->name.len, nbuf, sizeof(nbuf)));
	}
	close(file);
	u->has_name_gone = true;
	u->name_gone = !d->has_vfs || lstat(path, &here) || here.st_ino != st.st_ino ||
		       here.st_dev != st.st_dev;
	u->has_vfs_ino = u->has_vfs_dev = u->has_file_mode = true;
	u->has_file_uid = u->has_file_gid = true;
	u->vfs_ino = st.st_ino;
	u->vfs_dev = st.st_dev;
	u->file_mode = st.st_mode;
	u->file_uid = st.st_uid;
	u->file_gid = st.st_gid;
	return 0;
}

/* Out-of-band data cannot be told apart from the rest by peeking. */
static int check_oob(struct dump_ctx *ctx, int local, int fd, const UnixSkEntry *u)
{
	char c;

	if (u->type != SOCK_STREAM || u->state != ST_ESTABLISHED)
		return 0;
	if (recv(local, &c, 1, MSG_OOB | MSG_PEEK | MSG_DONTWAIT) >= 0)
		return err_set("fd %d of pid %d is unix socket:[%llu] with out-of-band data "
			       "pending (MSG_OOB): not supported",
			       fd, ctx->pid, (unsigned long long)u->ino);
	return 0;
}

static int check_state(struct dump_ctx *ctx, int fd, const UnixSkEntry *u)
{
	char nbuf[SUN_PATH_MAX + 2];
	const char *name = u_name(u, nbuf, sizeof(nbuf));
	unsigned long long ino = u->ino;

	if (u->type != SOCK_STREAM && u->type != SOCK_DGRAM && u->type != SOCK_SEQPACKET)
		return err_set("fd %d of pid %d is unix socket:[%llu] of type %u: not supported",
			       fd, ctx->pid, ino, u->type);
	if (u->state != ST_ESTABLISHED && u->state != ST_CLOSE && u->state != ST_LISTEN)
		return err_set(
		    "fd %d of pid %d is unix socket:[%llu] (%s) in state %u (connecting?): "
		    "not supported",
		    fd, ctx->pid, ino, name, u->state);
	/* (a connected stream without a peer and not shut down waits in a
	 * backlog: unix_dump_finish finds its listener) */
	return 0;
}

static bool pending_error(int fd)
{
	struct pollfd pf = {.fd = fd};

	return poll(&pf, 1, 0) == 1 && (pf.revents & POLLERR);
}

static int unix_dump(struct dump_ctx *ctx, struct dump_file *f, const struct fd_probe *p)
{
	int fd = p->fd;
	FileEntry *e = &f->entry;
	UnixSkEntry *u = calloc(1, sizeof(*u));
	struct diag d;
	struct stat st;

	if (!u)
		return err_set("out of memory");
	unix_sk_entry__init(u);
	e->kind = FILE_KIND__UNIX_SOCKET;
	e->unix_sk = u;
	if (fstat(f->local_fd, &st))
		return err_errno("fd %d of pid %d: fstat", fd, ctx->pid);
	u->ino = st.st_ino;
	if (diag_query(u->ino, &d))
		return err_wrap("fd %d of pid %d", fd, ctx->pid);
	u->type = d.type;
	u->state = d.state;
	u->shutdown = d.shutdown;
	if (d.name_len) {
		u->has_name = true;
		u->name.len = d.name_len;
		u->name.data = malloc(d.name_len);
		if (!u->name.data)
			return err_set("out of memory");
		memcpy(u->name.data, d.name, d.name_len);
	}
	if (d.peer) {
		u->has_peer_ino = true;
		u->peer_ino = d.peer;
	}
	/* a stream whose peer was closed: the close shut it down both ways,
	 * and left ECONNRESET pending if data was lost (poll shows it without
	 * taking it, as SO_ERROR would) */
	if (d.state == ST_ESTABLISHED && d.type != SOCK_DGRAM && !d.peer &&
	    d.shutdown == (SHUT_RCV_BIT | SHUT_SEND_BIT)) {
		u->has_peer_closed = u->peer_closed = true;
		u->has_reset = true;
		u->reset = pending_error(f->local_fd);
	}
	/* a datagram socket whose peer was closed: its sends are refused */
	if (d.type == SOCK_DGRAM && d.has_peer && !d.peer)
		u->has_peer_closed = u->peer_closed = true;
	if (u->state == ST_LISTEN) {
		u->has_backlog = true;
		u->backlog = d.wq;
	}
	/* connected outside, named by --external: nothing more is saved */
	if (d.peer && d.type != SOCK_DGRAM && external_unix_named(ctx->opts, u->ino)) {
		u->has_external = u->external = true;
		return 0;
	}
	if (check_state(ctx, fd, u) || check_oob(ctx, f->local_fd, fd, u))
		return -1;
	if (u->has_name && is_path_name(&u->name) && dump_name_file(ctx, u, &d, fd, f->local_fd))
		return -1;
	if (read_options(f->local_fd, u))
		return err_wrap("fd %d of pid %d, unix socket:[%llu]", fd, ctx->pid,
				(unsigned long long)u->ino);
	return 0;
}

/* ---- dump: peers, queues ---- */

static struct dump_file *find_sk(struct dump_tree *tree, uint64_t ino)
{
	for (int i = 0; i < tree->nr_files; i++)
		if (tree->files[i].entry.kind == FILE_KIND__UNIX_SOCKET &&
		    tree->files[i].entry.unix_sk->ino == ino)
			return &tree->files[i];
	return NULL;
}

static bool same_name(const UnixSkEntry *a, const UnixSkEntry *b)
{
	size_t la = a->has_name ? a->name.len : 0, lb = b->has_name ? b->name.len : 0;

	return la == lb && (!la || !memcmp(a->name.data, b->name.data, la));
}

/* A stream socket connected outside, named by --external unix[INO]: only
 * its inode is saved (what is queued stays with the old socket); the
 * restore is given a socket in its place. */
static int note_outside(struct dump_tree *tree, const struct dump_file *f)
{
	const UnixSkEntry *u = f->entry.unix_sk;
	char res[64], what[160];

	if (f->first_fd < 0)
		return err_set("unix socket:[%llu], connected outside the checkpoint, is in flight "
			       "in pid %d: not supported",
			       (unsigned long long)u->ino, f->first_pid);
	snprintf(res, sizeof(res), "socket:[%llu]", (unsigned long long)u->ino);
	snprintf(what, sizeof(what), "unix %s, whose peer socket:[%llu] is outside the checkpoint",
		 res, (unsigned long long)u->peer_ino);
	return external_dump_note(tree, f->first_pid, f->first_fd, res, what);
}

/* A datagram socket connected to a socket outside (--ext-unix-sk): the
 * peer's name is kept, to connect to it again; it must have one, absolute
 * or abstract. */
static int keep_peer_name(const struct dump_file *f)
{
	UnixSkEntry *u = f->entry.unix_sk;
	struct diag d;

	if (diag_query(u->peer_ino, &d))
		return err_wrap("fd %d of pid %d", f->first_fd, f->first_pid);
	if (!d.name_len || (d.name[0] && d.name[0] != '/'))
		return err_set("fd %d of pid %d is unix socket:[%llu], connected to socket:[%llu] "
			       "outside the checkpoint, %s: not supported",
			       f->first_fd, f->first_pid, (unsigned long long)u->ino,
			       (unsigned long long)u->peer_ino,
			       d.name_len ? "whose name is a relative path" : "which has no name");
	u->peer_name.data = malloc(d.name_len);
	if (!u->peer_name.data)
		return err_set("out of memory");
	memcpy(u->peer_name.data, d.name, d.name_len);
	u->peer_name.len = d.name_len;
	u->has_peer_name = true;
	u->has_peer_ino = false;
	return 0;
}

static int check_peer(struct dump_tree *tree, const struct dump_file *f)
{
	UnixSkEntry *u = f->entry.unix_sk;
	int fd = f->first_fd;
	struct dump_file *pf = find_sk(tree, u->peer_ino);
	char nbuf[SUN_PATH_MAX + 2], pbuf[SUN_PATH_MAX + 2];
	struct diag d;

	if (!pf && u->external)
		return note_outside(tree, f);
	if (!pf && u->type == SOCK_DGRAM && tree->opts->ext_unix_sk)
		return keep_peer_name(f);
	if (!pf) {
		const char *pname = "unknown";
		if (diag_query(u->peer_ino, &d) == 0)
			pname = name_str(d.name, d.name_len, pbuf, sizeof(pbuf));
		return err_set(
		    "fd %d of pid %d is unix socket:[%llu] (%s) whose peer "
		    "socket:[%llu] (%s) is outside the checkpoint: %s%s%.0llu%s",
		    fd, f->first_pid, (unsigned long long)u->ino, u_name(u, nbuf, sizeof(nbuf)),
		    (unsigned long long)u->peer_ino, pname,
		    u->type == SOCK_DGRAM ? "dump it with --ext-unix-sk" : "dump it with",
		    u->type == SOCK_DGRAM ? "" : " --external unix[",
		    u->type == SOCK_DGRAM ? 0ULL : (unsigned long long)u->ino,
		    u->type == SOCK_DGRAM ? "" : "]");
	}
	if (u->external)
		return err_set("--external unix[%llu]: its peer socket:[%llu] is inside the "
			       "checkpoint",
			       (unsigned long long)u->ino, (unsigned long long)u->peer_ino);
	if (u->type != SOCK_DGRAM && pf->entry.unix_sk->peer_ino != u->ino)
		return err_set("fd %d of pid %d: unix socket:[%llu] and its peer socket:[%llu] "
			       "disagree",
			       fd, f->first_pid, (unsigned long long)u->ino,
			       (unsigned long long)u->peer_ino);
	return 0;
}

/* A connected stream socket carrying the name of a listener of the process
 * was accepted from it (a path name also shares the listener's file). */
static void find_listener(struct dump_tree *tree, UnixSkEntry *u)
{
	if (u->type == SOCK_DGRAM || u->state != ST_ESTABLISHED || !u->has_name)
		return;
	for (int i = 0; i < tree->nr_files; i++) {
		const UnixSkEntry *l = tree->files[i].entry.unix_sk;
		if (tree->files[i].entry.kind != FILE_KIND__UNIX_SOCKET || l->state != ST_LISTEN ||
		    l->type != u->type || !same_name(l, u) || l->vfs_ino != u->vfs_ino)
			continue;
		u->has_accepted_from = true;
		u->accepted_from = l->ino;
	}
}

/* Anon-inode kinds whose state fdinfo gives whole, so that an instance held
 * only in flight is saved from cryo's duplicate. */
static bool held_in_flight_anon(const char *link)
{
	static const char *const kinds[] = {"anon_inode:[eventpoll]", "anon_inode:[eventfd]",
					    "anon_inode:[timerfd]", "anon_inode:[signalfd]"};

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (!strcmp(link, kinds[i]))
			return true;
	return false;
}

/* Describes one fd found in flight. */
static int describe_inflight(struct dump_ctx *owner, int nfd, UnixSkInflight *in, const char *what)
{
	char name[64], path[PATH_MAX];
	struct stat st;
	ssize_t n;

	unix_sk_inflight__init(in);
	int i = files_find(owner->tree, nfd);
	if (i >= 0) {
		in->has_file_id = true;
		in->file_id = owner->tree->files[i].entry.id;
		return 0;
	}
	snprintf(name, sizeof(name), "/proc/self/fd/%d", nfd);
	n = readlink(name, path, sizeof(path) - 1);
	path[n < 0 ? 0 : n] = 0;
	if (fstat(nfd, &st) || n < 0)
		return err_errno("%s: cannot examine an fd in flight", what);
	/* held only in flight: a description of the tree of its own */
	if ((S_ISFIFO(st.st_mode) && !strncmp(path, "pipe:", 5)) ||
	    (S_ISSOCK(st.st_mode) && is_unix(nfd)) || held_in_flight_anon(path)) {
		in->has_file_id = true;
		return files_add_unheld(owner, nfd, &in->file_id);
	}
	if ((!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) || path[0] != '/' ||
	    strstr(path, " (deleted)"))
		return err_set("%s holds an fd in flight (SCM_RIGHTS) that is %s, open nowhere "
			       "else in the process: not supported",
			       what, path);
	in->path = strdup(path);
	if (!in->path)
		return err_set("out of memory");
	in->has_flags = in->has_pos = in->has_mode = true;
	in->flags = fcntl(nfd, F_GETFL) & ~O_LARGEFILE;
	in->pos = S_ISREG(st.st_mode) ? lseek(nfd, 0, SEEK_CUR) : 0;
	in->mode = st.st_mode;
	return 0;
}

/* Takes the fds a peek received: describes SCM_RIGHTS ones, closes all. */
static int take_cmsgs(struct dump_ctx *owner, struct msghdr *mh, UnixSkMsg *m, const char *what)
{
	int ret = 0;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET ||
		    (c->cmsg_type != SCM_RIGHTS && c->cmsg_type != SCM_PIDFD))
			continue;
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		int *fds = (int *)CMSG_DATA(c);
		if (c->cmsg_type == SCM_RIGHTS && m && !ret) {
			m->fds = calloc(n, sizeof(*m->fds));
			if (!m->fds)
				ret = err_set("out of memory");
			for (size_t i = 0; !ret && i < n; i++) {
				m->fds[i] = malloc(sizeof(**m->fds));
				if (!m->fds[i]) {
					ret = err_set("out of memory");
					break;
				}
				m->n_fds = i + 1;
				ret = describe_inflight(owner, fds[i], m->fds[i], what);
			}
		}
		for (size_t i = 0; i < n; i++)
			close(fds[i]);
	}
	if (m && !ret && (mh->msg_flags & MSG_CTRUNC))
		ret = err_set("%s: too many fds in flight", what);
	return ret;
}

static UnixSkMsg *add_msg(UnixSkEntry *u)
{
	UnixSkMsg **q = realloc(u->queue, (u->n_queue + 1) * sizeof(*q));

	if (!q)
		return NULL;
	u->queue = q;
	q[u->n_queue] = calloc(1, sizeof(**q));
	if (!q[u->n_queue])
		return NULL;
	unix_sk_msg__init(q[u->n_queue]);
	return q[u->n_queue++];
}

static int set_peek_off(int fd, int off)
{
	return setsockopt(fd, SOL_SOCKET, SO_PEEK_OFF, &off, sizeof(off));
}

static int keep_sender_name(UnixSkMsg *m, const ProtobufCBinaryData *name)
{
	m->sender_name.data = malloc(name->len);
	if (!m->sender_name.data)
		return err_set("out of memory");
	memcpy(m->sender_name.data, name->data, name->len);
	m->sender_name.len = name->len;
	m->has_sender_name = true;
	return 0;
}

/* The dgram sender to restore a message from: the peer, or the socket of the
 * process named like the sender; none: an unnamed temporary socket. */
static int pick_sender(struct dump_ctx *owner, UnixSkEntry *u, UnixSkMsg *m,
		       const struct sockaddr_un *from, socklen_t flen, const char *what)
{
	UnixSkEntry n = UNIX_SK_ENTRY__INIT;
	struct dump_file *pf = u->has_peer_ino ? find_sk(owner->tree, u->peer_ino) : NULL;
	char nbuf[SUN_PATH_MAX + 2];

	if (flen > offsetof(struct sockaddr_un, sun_path)) {
		n.has_name = true;
		n.name.len = flen - offsetof(struct sockaddr_un, sun_path);
		n.name.data = (uint8_t *)from->sun_path;
	}
	if (!pf && u->type == SOCK_DGRAM && u->has_peer_ino && owner->opts->ext_unix_sk)
		return 0; /* from outside: sent again by a partner, before connecting */
	if (pf && same_name(pf->entry.unix_sk, &n)) {
		m->has_sender_ino = true;
		m->sender_ino = u->peer_ino;
		return 0;
	}
	if (!pf && !n.has_name && u->has_name)
		return 0;
	/* unnamed, no peer, and a datagram from an unnamed socket: the other
	 * end of its pair, closed since */
	if (!pf && !n.has_name && !u->has_name && !u->has_peer_ino) {
		u->has_peer_closed = u->peer_closed = true;
		return 0;
	}
	for (int i = 0; !pf && n.has_name && i < owner->tree->nr_files; i++) {
		const UnixSkEntry *s = owner->tree->files[i].entry.unix_sk;
		if (owner->tree->files[i].entry.kind != FILE_KIND__UNIX_SOCKET ||
		    s->type != SOCK_DGRAM || !same_name(s, &n) ||
		    !(u->has_name || s->peer_ino == u->ino))
			continue;
		m->has_sender_ino = true;
		m->sender_ino = s->ino;
		return 0;
	}
	if (!pf && n.has_name && u->has_name) /* from a socket gone since */
		return keep_sender_name(m, &n.name);
	return err_set("%s holds a datagram from %s, which cannot be sent again from inside "
		       "the checkpoint: not supported",
		       what, name_str(n.name.data, n.name.len, nbuf, sizeof(nbuf)));
}

static int save_msg(struct dump_ctx *owner, UnixSkEntry *u, const unsigned char *data, size_t n,
		    struct msghdr *mh, const char *what)
{
	UnixSkMsg *m = add_msg(u);

	if (!m || !(m->data.data = malloc(n ? n : 1)))
		return err_set("out of memory");
	memcpy(m->data.data, data, n);
	m->data.len = n;
	if (mh && take_cmsgs(owner, mh, m, what))
		return -1;
	if (mh && u->type == SOCK_DGRAM &&
	    pick_sender(owner, u, m, mh->msg_name, mh->msg_namelen, what))
		return -1;
	return 0;
}

/* Peeks the next message at offset *off; 1: got one, 0: queue end.
 * A stream peek ends after the first skb carrying fds but may glue skbs
 * without fds before it, and where that skb starts cannot be seen (a peek
 * that stops short of it still returns its fds): the fds are sent again
 * with the whole run, so a reader gets them with the same read that
 * reaches their bytes unless it stops exactly before them. */
static int peek_one(struct dump_ctx *owner, UnixSkEntry *u, int local, unsigned char **buf,
		    size_t *size, uint64_t *off, const char *what)
{
	static char cbuf[CMSG_SPACE(MAX_INFLIGHT * sizeof(int)) + CMSG_SPACE(64)]
	    __attribute__((aligned(8)));
	bool dgram = u->type != SOCK_STREAM;
	struct sockaddr_un from;
	struct iovec iov;
	struct msghdr mh;
	ssize_t n;

	for (;;) {
		iov = (struct iovec){*buf, *size};
		mh = (struct msghdr){.msg_name = &from,
				     .msg_namelen = sizeof(from),
				     .msg_iov = &iov,
				     .msg_iovlen = 1,
				     .msg_control = cbuf,
				     .msg_controllen = sizeof(cbuf)};
		n = recvmsg(local, &mh,
			    MSG_PEEK | MSG_DONTWAIT | MSG_CMSG_CLOEXEC | (dgram ? MSG_TRUNC : 0));
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n < 0)
			return err_errno("%s: cannot peek its queue", what);
		if (n == 0 && (!dgram || (u->shutdown & SHUT_RCV_BIT)))
			return 0; /* end of stream */
		if (!dgram || (size_t)n <= *size)
			break;
		/* a datagram larger than the buffer: again from its start */
		take_cmsgs(owner, &mh, NULL, what);
		unsigned char *b = realloc(*buf, n);
		if (!b)
			return err_set("out of memory");
		*buf = b;
		*size = n;
		if (set_peek_off(local, *off))
			return err_errno("%s: cannot set SO_PEEK_OFF", what);
	}
	if (save_msg(owner, u, *buf, n, &mh, what))
		return -1;
	*off += n;
	return 1;
}

/* Peeks the queue, at most bytes of it: a peek of an empty stream queue,
 * or any of a seqpacket one, takes a pending error (ECONNRESET) with it. */
static int peek_queue(struct dump_ctx *owner, UnixSkEntry *u, int local, uint64_t bytes,
		      const char *what)
{
	size_t size = PEEK_CHUNK;
	unsigned char *buf = malloc(size);
	uint64_t total = 0;
	int r = 0;

	if (!buf)
		return err_set("out of memory");
	if (set_peek_off(local, 0)) {
		free(buf);
		return err_errno("%s: cannot set SO_PEEK_OFF", what);
	}
	while (total <= MAX_QUEUE && total < bytes &&
	       (r = peek_one(owner, u, local, &buf, &size, &total, what)) == 1)
		;
	/* the target's own peek offset, as it was */
	if (set_peek_off(local, u->peek_off) && !r)
		r = err_errno("%s: cannot put SO_PEEK_OFF back", what);
	free(buf);
	if (r >= 0 && total > MAX_QUEUE)
		return err_set("%s holds more than %u bytes: not supported", what, MAX_QUEUE);
	return r < 0 ? -1 : 0;
}

/* The queue must hold what sock_diag counted. */
static int check_queue(const UnixSkEntry *u, const char *what)
{
	struct diag d;
	uint64_t total = 0;

	if (diag_query(u->ino, &d))
		return -1;
	for (size_t i = 0; i < u->n_queue; i++)
		total += u->queue[i]->data.len;
	if (u->type != SOCK_DGRAM && total != d.rq)
		return err_set("%s: peeked %llu bytes, its queue holds %u", what,
			       (unsigned long long)total, d.rq);
	if (u->type == SOCK_DGRAM && (u->n_queue ? u->queue[0]->data.len : 0) != d.rq)
		return err_set("%s: its first datagram changed while peeking", what);
	return 0;
}

static struct dump_ctx *owner_of(struct dump_tree *tree, pid_t pid)
{
	for (int i = 0; i < tree->nr_procs; i++)
		if (tree->procs[i]->pid == pid)
			return tree->procs[i];
	return tree->procs[0];
}

/* The queue of one socket, copied; f may move meanwhile (descriptions held
 * only in flight join the tree's). */
static int copy_queue(struct dump_tree *tree, struct dump_file *f)
{
	UnixSkEntry *u = f->entry.unix_sk;
	char what[128];
	struct diag d;

	if (u->state == ST_LISTEN || (u->state == ST_CLOSE && u->type != SOCK_DGRAM) || u->external)
		return 0;
	if (f->first_fd >= 0)
		snprintf(what, sizeof(what), "fd %d of pid %d (unix socket:[%llu])", f->first_fd,
			 f->first_pid, (unsigned long long)u->ino);
	else
		snprintf(what, sizeof(what), "unix socket:[%llu] in flight in pid %d",
			 (unsigned long long)u->ino, f->first_pid);
	if (diag_query(u->ino, &d))
		return err_wrap("%s", what);
	if (u->reset && d.rq && u->type == SOCK_SEQPACKET)
		return err_set(
		    "%s is a seqpacket socket with ECONNRESET pending and %u bytes queued: "
		    "not supported (the kernel reports the error first to any recv, "
		    "MSG_PEEK too, so the queue cannot be read without taking it)",
		    what, d.rq);
	/* a stream up to its byte count (zero-length writes queue nothing); a
	 * seqpacket or datagram socket to its end (records may be empty), but
	 * not at all with an error pending (any recv of it takes the error) */
	uint64_t bytes = u->type == SOCK_STREAM ? d.rq : u->reset ? 0 : UINT64_MAX;
	return peek_queue(owner_of(tree, f->first_pid), u, f->local_fd, bytes, what) ||
		       check_queue(u, what)
		   ? -1
		   : 0;
}

/* A connected stream socket with no peer that no backlog holds. */
static int check_waiting(const struct dump_file *f)
{
	const UnixSkEntry *u = f->entry.unix_sk;
	char nbuf[SUN_PATH_MAX + 2];

	if (u->state != ST_ESTABLISHED || u->type == SOCK_DGRAM || u->has_peer_ino ||
	    u->peer_closed || u->external)
		return 0;
	return err_set("fd %d of pid %d is connected unix socket:[%llu] (%s) whose peer is not "
		       "accepted yet, in the backlog of a listener outside the checkpoint: not "
		       "supported (cryo cannot make that listener accept it again)",
		       f->first_fd, f->first_pid, (unsigned long long)u->ino,
		       u_name(u, nbuf, sizeof(nbuf)));
}

/* The clients waiting in the backlog of listener l must be sockets of the
 * tree held by an fd, unnamed, for the connections to be made again. */
static int check_clients(struct dump_tree *tree, const struct dump_file *l, const uint32_t *icons,
			 size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct dump_file *c = find_sk(tree, icons[i]);
		const char *why = !c			       ? "outside the checkpoint"
				  : c->first_fd < 0	       ? "held only in flight"
				  : c->entry.unix_sk->has_name ? "bound to a name"
							       : NULL;
		if (why)
			return err_set("fd %d of pid %d is listening unix socket:[%llu] with a "
				       "connection waiting to be accepted from socket:[%u], %s: "
				       "not supported",
				       l->first_fd, l->first_pid,
				       (unsigned long long)l->entry.unix_sk->ino, icons[i], why);
	}
	return 0;
}

/* Where to connect to listener fd again: its socket file, or its name. */
static int listener_addr(int fd, struct sockaddr_un *sa, socklen_t *len, int *file)
{
	*len = sizeof(*sa);
	*file = -1;
	if (getsockname(fd, (struct sockaddr *)sa, len))
		return err_errno("getsockname of a listening unix socket");
	if (*len <= offsetof(struct sockaddr_un, sun_path) + 1 || !sa->sun_path[0])
		return 0;
	if ((*file = socket_file(fd)) < 0)
		return err_errno("cannot reach the socket file of a listening unix socket");
	snprintf(sa->sun_path, sizeof(sa->sun_path), "/proc/self/fd/%d", *file);
	*len = offsetof(struct sockaddr_un, sun_path) + strlen(sa->sun_path) + 1;
	return 0;
}

/* Takes one waiting connection of listener l (files[li]) whose client is
 * the socket client: accepted, recorded, saved as an embryo. */
static int take_one(struct dump_tree *tree, int li, uint32_t client)
{
	struct dump_file *l = &tree->files[li], *c = find_sk(tree, client);
	struct sockaddr_un sa;
	socklen_t len;
	struct diag d;
	struct stat st;
	uint32_t id;
	int file, a = accept4(l->local_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	int cdup = fcntl(c->local_fd, F_DUPFD_CLOEXEC, 0);

	if (a < 0 || cdup < 0 || listener_addr(l->local_fd, &sa, &len, &file) ||
	    unix_backlog_record(tree, &sa, len, file, a, cdup, c->entry.id)) {
		int e = errno;
		if (a >= 0)
			close(a);
		if (cdup >= 0)
			close(cdup);
		errno = e;
		return err_errno("cannot take a connection from the backlog of unix socket:[%llu]",
				 (unsigned long long)l->entry.unix_sk->ino);
	}
	if (fstat(a, &st) || diag_query(st.st_ino, &d) || d.peer != client)
		return err_set("the backlog of unix socket:[%llu] changed while it was read",
			       (unsigned long long)l->entry.unix_sk->ino);
	if (files_add_unheld(owner_of(tree, l->first_pid), a, &id))
		return -1;
	for (int i = 0; i < tree->nr_files; i++)
		if (tree->files[i].entry.id == id)
			tree->files[i].entry.unix_sk->has_embryo =
			    tree->files[i].entry.unix_sk->embryo = true;
	UnixSkEntry *cu = find_sk(tree, client)->entry.unix_sk; /* files may have moved */
	cu->has_peer_ino = true;
	cu->peer_ino = st.st_ino;
	cu->has_peer_closed = cu->peer_closed = false;
	cu->has_reset = cu->reset = false;
	return 0;
}

/* A listener with connections waiting: each is accepted here, in backlog
 * order, saved as an embryo and put back if the tree goes on
 * (unix_backlog.c). */
static int take_backlog(struct dump_tree *tree, int li)
{
	struct diag d;
	uint32_t *icons;
	size_t n;
	int r = 0;

	if (diag_query(tree->files[li].entry.unix_sk->ino, &d))
		return err_wrap("fd %d of pid %d", tree->files[li].first_fd,
				tree->files[li].first_pid);
	n = d.nr_icons;
	if (!n)
		return 0;
	icons = malloc(n * sizeof(*icons));
	if (!icons)
		return err_set("out of memory");
	memcpy(icons, d.icons, n * sizeof(*icons));
	r = check_clients(tree, &tree->files[li], icons, n);
	for (size_t i = 0; !r && i < n; i++)
		r = take_one(tree, li, icons[i]);
	free(icons);
	return r;
}

/* Once every process is seen: every queue is copied (which finds the
 * sockets held only in flight), then every peer must be in the tree. */
static int unix_dump_finish(struct dump_tree *tree)
{
	for (int i = 0; i < tree->nr_files; i++) /* nr_files may grow */
		if (tree->files[i].entry.kind == FILE_KIND__UNIX_SOCKET &&
		    tree->files[i].entry.unix_sk->state == ST_LISTEN && take_backlog(tree, i))
			return -1;
	for (int i = 0; i < tree->nr_files; i++)
		if (tree->files[i].entry.kind == FILE_KIND__UNIX_SOCKET &&
		    check_waiting(&tree->files[i]))
			return -1;
	for (int i = 0; i < tree->nr_files; i++) /* nr_files may grow */
		if (tree->files[i].entry.kind == FILE_KIND__UNIX_SOCKET &&
		    copy_queue(tree, &tree->files[i]))
			return -1;
	for (int i = 0; i < tree->nr_files; i++) {
		struct dump_file *f = &tree->files[i];
		if (f->entry.kind != FILE_KIND__UNIX_SOCKET)
			continue;
		if (f->entry.unix_sk->has_peer_ino && check_peer(tree, f))
			return -1;
		find_listener(tree, f->entry.unix_sk);
	}
	return 0;
}

static void unix_dump_end(struct dump_tree *tree, enum dump_end how)
{
	unix_backlog_end(tree, how);
}

static void unix_dump_free(struct dump_tree *tree)
{
	unix_backlog_free(tree);
	for (int i = 0; tree->files && i < tree->nr_files; i++) {
		UnixSkEntry *u = tree->files[i].entry.unix_sk;
		if (!u)
			continue;
		for (size_t j = 0; j < u->n_queue; j++) {
			for (size_t k = 0; k < u->queue[j]->n_fds; k++) {
				free(u->queue[j]->fds[k]->path);
				free(u->queue[j]->fds[k]);
			}
			free(u->queue[j]->fds);
			free(u->queue[j]->sender_name.data);
			free(u->queue[j]->data.data);
			free(u->queue[j]);
		}
		free(u->queue);
		free(u->name.data);
		free(u->peer_name.data);
		free(u->name_dir);
		free(u);
		tree->files[i].entry.unix_sk = NULL;
	}
}

/* ---- restore: validation ---- */

static const FileEntry *fe_by_ino(const struct restore_tree *tree, uint64_t ino)
{
	for (size_t i = 0; i < tree->nr_files; i++)
		if (tree->files[i]->kind == FILE_KIND__UNIX_SOCKET && tree->files[i]->unix_sk &&
		    tree->files[i]->unix_sk->ino == ino)
			return tree->files[i];
	return NULL;
}

static const UnixSkEntry *sk_by_ino(const struct restore_tree *tree, uint64_t ino)
{
	const FileEntry *fe = fe_by_ino(tree, ino);

	return fe ? fe->unix_sk : NULL;
}

static const FileEntry *fe_by_id(const struct restore_tree *tree, uint32_t id)
{
	for (size_t i = 0; i < tree->nr_files; i++)
		if (tree->files[i]->id == id)
			return tree->files[i];
	return NULL;
}

/* Named sockets that bind() again; accepted ones get their name by accept(). */
static bool needs_bind(const UnixSkEntry *u)
{
	return u->has_name && !u->has_accepted_from;
}

/* A path to bind again must be free, or hold the stale socket file of the
 * same inode (which restore unlinks). */
static int validate_name_file(const UnixSkEntry *u)
{
	char path[PATH_MAX + SUN_PATH_MAX + 2], nbuf[SUN_PATH_MAX + 2];
	struct stat st;

	if (u->name.len < 2 || u->name.data[u->name.len - 1] ||
	    strlen((const char *)u->name.data) != u->name.len - 1)
		return err_set("files.img: unix socket:[%llu] has a malformed path name",
			       (unsigned long long)u->ino);
	if ((u->name.data[0] != '/') != (u->name_dir != NULL) ||
	    (u->name_dir && u->name_dir[0] != '/') || !u->has_vfs_ino || !u->has_vfs_dev)
		return err_set("files.img: unix socket:[%llu] has no valid socket file",
			       (unsigned long long)u->ino);
	if (u->name_gone)
		return 0; /* bound out of sight: the path is left as it is */
	if (file_path(u, path, sizeof(path)))
		return -1;
	if (lstat(path, &st) == 0) {
		if (S_ISSOCK(st.st_mode) && st.st_ino == u->vfs_ino && st.st_dev == u->vfs_dev)
			return 0;
		return err_set("cannot bind unix socket:[%llu] to %s again: %s is another file",
			       (unsigned long long)u->ino, u_name(u, nbuf, sizeof(nbuf)), path);
	}
	if (errno != ENOENT)
		return err_errno("cannot bind unix socket:[%llu] to %s again",
				 (unsigned long long)u->ino, path);
	return 0;
}

static int validate_queue(const struct restore_tree *tree, const UnixSkEntry *u)
{
	unsigned long long ino = u->ino;

	for (size_t i = 0; i < u->n_queue; i++) {
		const UnixSkMsg *m = u->queue[i];
		const UnixSkEntry *s = m->has_sender_ino ? sk_by_ino(tree, m->sender_ino) : NULL;
		if (u->type == SOCK_DGRAM
			? (m->has_sender_ino ? !s || s->type != SOCK_DGRAM
					     : !u->has_name && !u->has_peer_name && !u->peer_closed)
			: !u->has_peer_ino && !u->peer_closed)
			return err_set("files.img: unix socket:[%llu]: no sender for its queue",
				       ino);
		if (m->has_sender_name &&
		    (m->has_sender_ino || !u->has_name || !m->sender_name.len ||
		     m->sender_name.len > SUN_PATH_MAX ||
		     (m->sender_name.data[0] &&
		      strnlen((const char *)m->sender_name.data, m->sender_name.len) + 1 !=
			  m->sender_name.len)))
			return err_set("files.img: unix socket:[%llu]: bad sender name", ino);
		if (m->n_fds > MAX_INFLIGHT)
			return err_set("files.img: unix socket:[%llu]: too many fds in flight",
				       ino);
		for (size_t j = 0; j < m->n_fds; j++) {
			const UnixSkInflight *in = m->fds[j];
			const FileEntry *fe = in->has_file_id ? fe_by_id(tree, in->file_id) : NULL;
			if (in->has_file_id ? !fe : !in->path || in->path[0] != '/')
				return err_set("files.img: unix socket:[%llu]: bad fd in flight",
					       ino);
		}
	}
	return 0;
}

/* --ext-unix-sk: the named socket outside must still be there. */
static int validate_peer_name(const UnixSkEntry *u)
{
	char path[SUN_PATH_MAX + 1];
	struct stat st;

	if (u->type != SOCK_DGRAM || u->has_peer_ino || u->peer_name.len < 2 ||
	    u->peer_name.len > SUN_PATH_MAX)
		return err_set("files.img: unix socket:[%llu] has a bad peer name",
			       (unsigned long long)u->ino);
	if (!u->peer_name.data[0])
		return 0; /* abstract: connect() tells */
	snprintf(path, sizeof(path), "%.*s", (int)u->peer_name.len, u->peer_name.data);
	if (stat(path, &st) || !S_ISSOCK(st.st_mode))
		return err_set("unix socket:[%llu] was connected to %s outside the checkpoint, "
			       "which is no longer a socket",
			       (unsigned long long)u->ino, path);
	return 0;
}

static int validate_one(const struct restore_tree *tree, const FileEntry *fe)
{
	const UnixSkEntry *u = fe->unix_sk, *p;
	unsigned long long ino;

	if (!u)
		return err_set("files.img: file %u is a unix socket without its state", fe->id);
	ino = u->ino;
	if (fe_by_ino(tree, u->ino) != fe)
		return err_set("files.img: unix socket:[%llu] appears twice", ino);
	if ((u->type != SOCK_STREAM && u->type != SOCK_DGRAM && u->type != SOCK_SEQPACKET) ||
	    (u->state != ST_ESTABLISHED && u->state != ST_CLOSE && u->state != ST_LISTEN) ||
	    (u->state == ST_LISTEN) != u->has_backlog || (u->has_name && !u->name.len) ||
	    u->name.len > SUN_PATH_MAX)
		return err_set("files.img: unix socket:[%llu] has a bad type, state or name", ino);
	p = u->has_peer_ino ? sk_by_ino(tree, u->peer_ino) : NULL;
	if ((u->peer_closed &&
	     (u->type == SOCK_DGRAM ? u->has_peer_ino : u->state != ST_ESTABLISHED)) ||
	    (u->reset && !u->peer_closed) ||
	    (u->type != SOCK_DGRAM &&
	     (u->state == ST_ESTABLISHED && !u->peer_closed) != u->has_peer_ino) ||
	    (u->has_peer_ino && (!p || p->type != u->type)) ||
	    (p && u->type != SOCK_DGRAM && p->peer_ino != u->ino) ||
	    (p && u->type == SOCK_DGRAM && p->peer_ino != u->ino && !p->has_name))
		return err_set("files.img: unix socket:[%llu] has a bad peer", ino);
	if (u->has_accepted_from) {
		const UnixSkEntry *l = sk_by_ino(tree, u->accepted_from);
		if (!l || l->state != ST_LISTEN || !l->has_name || !p || p->has_accepted_from)
			return err_set("files.img: unix socket:[%llu] has a bad listener", ino);
	}
	if (u->embryo && (!u->has_accepted_from || u->type == SOCK_DGRAM))
		return err_set("files.img: unix socket:[%llu] waits in no backlog", ino);
	if (needs_bind(u) && is_path_name(&u->name) && validate_name_file(u))
		return -1;
	if (u->has_peer_name && validate_peer_name(u))
		return -1;
	return validate_queue(tree, u);
}

static int unix_validate(const struct restore_tree *tree, const FileEntry *fe,
			 const struct fd_use *use)
{
	(void)use;
	return validate_one(tree, fe);
}

/* Whether description id is in flight in some unix socket's queue. */
static bool unix_in_flight(const struct restore_tree *tree, uint32_t id)
{
	for (size_t i = 0; i < tree->nr_files; i++) {
		const UnixSkEntry *u = tree->files[i]->unix_sk;
		for (size_t j = 0; u && j < u->n_queue; j++)
			for (size_t k = 0; k < u->queue[j]->n_fds; k++)
				if (u->queue[j]->fds[k]->has_file_id &&
				    u->queue[j]->fds[k]->file_id == id)
					return true;
	}
	return false;
}

/* ---- restore: in the root, before it forks ---- */

struct made_sk {
	const UnixSkEntry *u;
	int fd;	     /* held at or above stage_base; -1 until made */
	bool paired; /* made by socketpair() with its peer */
	int gone;    /* peer_closed: the other end, until the queue is filled */
};

/* Every unix socket of the tree, made at once by the root. */
struct unix_made {
	size_t nr;
	struct made_sk *v;
};

static struct made_sk *made_by_ino(struct restore_ctx *ctx, uint64_t ino)
{
	for (size_t i = 0; i < ctx->unix_made->nr; i++)
		if (ctx->unix_made->v[i].u->ino == ino)
			return &ctx->unix_made->v[i];
	return NULL;
}

static int hold(struct restore_ctx *ctx, struct made_sk *m, int fd)
{
	m->fd = fcntl(fd, F_DUPFD_CLOEXEC, ctx->stage_base);
	close(fd);
	if (m->fd < 0)
		return err_errno("cannot move unix socket:[%llu]", (unsigned long long)m->u->ino);
	return 0;
}

/* Relative path names are used from their directory. */
static int enter_dir(const UnixSkEntry *u, int *saved)
{
	*saved = -1;
	if (!u->name_dir || !is_path_name(&u->name))
		return 0;
	*saved = open(".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (*saved < 0)
		return err_errno("cannot open the current directory");
	if (chdir(u->name_dir)) {
		close(*saved);
		*saved = -1;
		return err_errno("cannot enter %s", u->name_dir);
	}
	return 0;
}

static void leave_dir(int saved)
{
	if (saved >= 0) {
		if (fchdir(saved))
			pr_warn("cannot go back to the previous directory");
		close(saved);
	}
}

/* Binds to a path: the stale socket file of the same inode goes first; the
 * new file gets the old one's mode and owner. */
static int bind_path(const UnixSkEntry *u, int fd)
{
	struct sockaddr_un sa;
	socklen_t len = make_addr(u, &sa);
	struct stat st;

	if (lstat(sa.sun_path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_ino == u->vfs_ino &&
	    st.st_dev == u->vfs_dev && unlink(sa.sun_path))
		return err_errno("cannot remove the stale socket file %s", sa.sun_path);
	if (bind(fd, (struct sockaddr *)&sa, len))
		return err_errno("cannot bind unix socket:[%llu] to %s", (unsigned long long)u->ino,
				 sa.sun_path);
	if (u->has_file_mode && fchmodat(AT_FDCWD, sa.sun_path, u->file_mode & 07777, 0))
		return err_errno("cannot chmod %s", sa.sun_path);
	if (u->has_file_uid && lchown(sa.sun_path, u->file_uid, u->file_gid))
		return err_errno("cannot chown %s", sa.sun_path);
	return 0;
}

/* A name whose socket file is gone: bound where only the socket sees it. */
static int bind_gone(const UnixSkEntry *u, int fd)
{
	char path[PATH_MAX + SUN_PATH_MAX + 2];
	struct sockaddr_un sa;
	struct unix_hidden_name h = {.sa = &sa,
				     .cwd = u->name_dir,
				     .path = path,
				     .mode = u->file_mode,
				     .uid = u->file_uid,
				     .gid = u->file_gid};

	h.len = make_addr(u, &sa);
	if (file_path(u, path, sizeof(path)))
		return -1;
	return unix_bind_hidden(fd, &h) ? err_wrap("unix socket:[%llu]", (unsigned long long)u->ino)
					: 0;
}

static int bind_name(const UnixSkEntry *u, int fd)
{
	struct sockaddr_un sa;
	char nbuf[SUN_PATH_MAX + 2];
	int saved, r;

	if (u->name_gone)
		return bind_gone(u, fd);
	if (!is_path_name(&u->name)) {
		if (bind(fd, (struct sockaddr *)&sa, make_addr(u, &sa)))
			return err_errno("cannot bind unix socket:[%llu] to %s",
					 (unsigned long long)u->ino, u_name(u, nbuf, sizeof(nbuf)));
		return 0;
	}
	if (enter_dir(u, &saved))
		return -1;
	r = bind_path(u, fd);
	leave_dir(saved);
	return r;
}

/* The address to reach a socket made here: a path name by its socket file
 * (/proc/self/fd/N of SIOCUNIXFILE: it works whatever the path leads to
 * now; *file gets that fd to close), an abstract name as it is. */
static socklen_t addr_of_made(const UnixSkEntry *u, int made_fd, struct sockaddr_un *sa, int *file)
{
	*file = -1;
	if (made_fd < 0 || !is_path_name(&u->name) || (*file = socket_file(made_fd)) < 0)
		return make_addr(u, sa);
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	snprintf(sa->sun_path, sizeof(sa->sun_path), "/proc/self/fd/%d", *file);
	return offsetof(struct sockaddr_un, sun_path) + strlen(sa->sun_path) + 1;
}

/* connect() fd to target (target_fd: the socket made for it, or -1). */
static int connect_to(const UnixSkEntry *target, int target_fd, int fd, uint64_t ino)
{
	struct sockaddr_un sa;
	char nbuf[SUN_PATH_MAX + 2];
	int saved, r, file;

	if (enter_dir(target, &saved))
		return -1;
	socklen_t len = addr_of_made(target, target_fd, &sa, &file);
	r = connect(fd, (struct sockaddr *)&sa, len);
	if (r)
		r = err_errno("cannot connect unix socket:[%llu] to %s", (unsigned long long)ino,
			      u_name(target, nbuf, sizeof(nbuf)));
	if (file >= 0)
		close(file);
	leave_dir(saved);
	return r;
}

static int set_int(int fd, int opt, int v, const UnixSkEntry *u, const char *what)
{
	if (setsockopt(fd, SOL_SOCKET, opt, &v, sizeof(v)))
		return err_errno("cannot set %s of unix socket:[%llu]", what,
				 (unsigned long long)u->ino);
	return 0;
}

static int set_bufs(const struct made_sk *m)
{
	int cur;
	protobuf_c_boolean has;

	if (get_int(m->fd, SO_SNDBUF, &cur, &has))
		return -1;
	if ((uint32_t)cur != m->u->sndbuf &&
	    set_int(m->fd, SO_SNDBUFFORCE, m->u->sndbuf / 2, m->u, "SO_SNDBUF"))
		return -1;
	if (get_int(m->fd, SO_RCVBUF, &cur, &has))
		return -1;
	if ((uint32_t)cur != m->u->rcvbuf &&
	    set_int(m->fd, SO_RCVBUFFORCE, m->u->rcvbuf / 2, m->u, "SO_RCVBUF"))
		return -1;
	return 0;
}

/* Name, buffers and listening state of a socket just made. */
static int setup_new(const struct made_sk *m)
{
	const UnixSkEntry *u = m->u;

	if (needs_bind(u) && bind_name(u, m->fd))
		return -1;
	if (set_bufs(m))
		return -1;
	if (u->state == ST_LISTEN && listen(m->fd, u->backlog))
		return err_errno("cannot listen on unix socket:[%llu]", (unsigned long long)u->ino);
	return 0;
}

/* Made as one end of a new pair whose other end sends its queue and is
 * closed then: a stream or unnamed datagram socket whose peer was closed,
 * a datagram socket connected outside. (A named datagram socket whose peer
 * was closed is reachable by its name: made alone, connected to a
 * temporary partner that is closed once the queue is in.) */
static bool pair_made(const UnixSkEntry *u)
{
	return u->has_peer_name || (u->peer_closed && !(u->type == SOCK_DGRAM && u->has_name));
}

/* Step 1: every socket but the accepted ones, with socketpair() for pairs. */
static int make_one(struct restore_ctx *ctx, struct made_sk *m)
{
	const UnixSkEntry *u = m->u;
	struct made_sk *p = u->has_peer_ino ? made_by_ino(ctx, u->peer_ino) : NULL;
	int sv[2];

	if (m->fd >= 0 || u->has_accepted_from)
		return 0;
	if (pair_made(u)) {
		/* a pair whose other end sends the queue, then is closed */
		if (socketpair(AF_UNIX, u->type | SOCK_CLOEXEC, 0, sv))
			return err_errno("cannot create unix socket:[%llu]",
					 (unsigned long long)u->ino);
		m->gone = sv[1];
		return hold(ctx, m, sv[0]) || setup_new(m) ? -1 : 0;
	}
	if (p && p != m && p->fd < 0 && p->u->peer_ino == u->ino && !p->u->has_accepted_from) {
		if (socketpair(AF_UNIX, u->type | SOCK_CLOEXEC, 0, sv))
			return err_errno("cannot create the pair of unix socket:[%llu]",
					 (unsigned long long)u->ino);
		if (hold(ctx, m, sv[0]) || hold(ctx, p, sv[1]))
			return -1;
		m->paired = p->paired = true;
		return setup_new(m) || setup_new(p) ? -1 : 0;
	}
	sv[0] = socket(AF_UNIX, u->type | SOCK_CLOEXEC, 0);
	if (sv[0] < 0)
		return err_errno("cannot create unix socket:[%llu]", (unsigned long long)u->ino);
	return hold(ctx, m, sv[0]) || setup_new(m) ? -1 : 0;
}

/* Step 2: accepted connections again through their listener; datagram
 * sockets connected one way. */
static int connect_one(struct restore_ctx *ctx, struct made_sk *m)
{
	const UnixSkEntry *u = m->u;
	struct made_sk *p = u->has_peer_ino ? made_by_ino(ctx, u->peer_ino) : NULL;

	if (u->embryo)
		return 0; /* after every accepted one: connect_waiting */
	if (u->has_accepted_from) {
		struct made_sk *l = made_by_ino(ctx, u->accepted_from);
		if (connect_to(l->u, l->fd, p->fd, p->u->ino))
			return -1;
		int s = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
		if (s < 0)
			return err_errno("cannot accept unix socket:[%llu] again",
					 (unsigned long long)u->ino);
		return hold(ctx, m, s) || set_bufs(m) ? -1 : 0;
	}
	if (p && u->type == SOCK_DGRAM && !m->paired)
		return connect_to(p->u, p->fd, m->fd, u->ino);
	return 0;
}

/* Step 2b: the connections waiting in a backlog, in its order, once every
 * accepted one is accepted: connected by their client, left there. */
static int connect_waiting(struct restore_ctx *ctx, const struct made_sk *m)
{
	const UnixSkEntry *u = m->u;
	const struct made_sk *l, *c;

	if (!u->embryo)
		return 0;
	l = made_by_ino(ctx, u->accepted_from);
	c = made_by_ino(ctx, u->peer_ino);
	return connect_to(l->u, l->fd, c->fd, c->u->ino);
}

static int set_pass(const struct made_sk *m)
{
	const UnixSkEntry *u = m->u;

	if (u->embryo)
		return 0; /* no fd: what it gets from its listener */

	if (u->has_passcred && u->passcred && set_int(m->fd, SO_PASSCRED, 1, u, "SO_PASSCRED"))
		return -1;
	if (u->has_passsec && u->passsec && set_int(m->fd, SO_PASSSEC, 1, u, "SO_PASSSEC"))
		return -1;
	if (u->has_passpidfd && u->passpidfd && set_int(m->fd, SO_PASSPIDFD, 1, u, "SO_PASSPIDFD"))
		return -1;
	if (u->has_passrights && !u->passrights &&
	    set_int(m->fd, SO_PASSRIGHTS, 0, u, "SO_PASSRIGHTS"))
		return -1;
	return 0;
}

/* An unnamed datagram socket given SO_PASSCRED before it sends would bind
 * itself to an autobind name: those get their options after the data. */
static bool pass_late(const UnixSkEntry *u)
{
	return u->type == SOCK_DGRAM && !u->has_name;
}

/* A description in flight: a unix socket as made so far, any other as the
 * root made it. */
static int inflight_fd(struct restore_ctx *ctx, uint32_t id)
{
	const FileEntry *fe = fe_by_id(ctx->tree, id);
	const struct made_sk *m;

	if (fe && fe->kind == FILE_KIND__UNIX_SOCKET) {
		m = made_by_ino(ctx, fe->unix_sk->ino);
		return m ? m->fd : -1;
	}
	return ctx_inherited_fd(ctx->tree, id);
}

/* The fds of a message in flight: descriptions made before, or files
 * opened again. */
static int inflight_fds(struct restore_ctx *ctx, const UnixSkMsg *m, int *fds, bool *opened)
{
	for (size_t i = 0; i < m->n_fds; i++) {
		const UnixSkInflight *in = m->fds[i];
		opened[i] = false;
		fds[i] = -1;
		if (in->has_file_id) {
			fds[i] = inflight_fd(ctx, in->file_id);
			if (fds[i] < 0)
				return err_set("file %u in flight is not made yet", in->file_id);
			continue;
		}
		fds[i] = open(in->path,
			      (in->flags & ~(O_CREAT | O_EXCL | O_TRUNC)) | O_CLOEXEC | O_NOCTTY);
		if (fds[i] < 0)
			return err_errno("cannot open %s (in flight)", in->path);
		opened[i] = true;
		if (S_ISREG(in->mode) && lseek(fds[i], in->pos, SEEK_SET) < 0)
			return err_errno("cannot seek %s (in flight)", in->path);
	}
	return 0;
}

/* The SCM_RIGHTS of one message, in cbuf. */
static void put_rights(struct msghdr *mh, char *cbuf, const int *fds, size_t n)
{
	struct cmsghdr *c = (struct cmsghdr *)cbuf;

	mh->msg_control = cbuf;
	mh->msg_controllen = CMSG_SPACE(n * sizeof(int));
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(n * sizeof(int));
	memcpy(CMSG_DATA(c), fds, n * sizeof(int));
}

/* Sends one message from sfd (to u, made as to_fd, unless to_fd is -1). */
static int send_msg(struct restore_ctx *ctx, const UnixSkEntry *u, const UnixSkMsg *m, int sfd,
		    int to_fd)
{
	static char cbuf[CMSG_SPACE(MAX_INFLIGHT * sizeof(int))] __attribute__((aligned(8)));
	int fds[MAX_INFLIGHT], saved = -1, r = 0, file = -1;
	bool opened[MAX_INFLIGHT];
	struct sockaddr_un sa;
	socklen_t salen = 0;
	size_t done = 0;

	if (inflight_fds(ctx, m, fds, opened))
		r = -1;
	if (!r && to_fd >= 0 && !(r = enter_dir(u, &saved)))
		salen = addr_of_made(u, to_fd, &sa, &file);
	while (!r) {
		struct iovec iov = {m->data.data + done, m->data.len - done};
		struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
		if (salen) {
			mh.msg_name = &sa;
			mh.msg_namelen = salen;
		}
		if (m->n_fds && !done)
			put_rights(&mh, cbuf, fds, m->n_fds);
		ssize_t n = sendmsg(sfd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0) {
			r = err_errno("cannot refill the queue of unix socket:[%llu]",
				      (unsigned long long)u->ino);
			break;
		}
		done += n;
		if (done >= m->data.len)
			break;
	}
	if (file >= 0)
		close(file);
	leave_dir(saved);
	for (size_t i = 0; i < m->n_fds; i++)
		if (opened[i] && fds[i] >= 0)
			close(fds[i]);
	return r;
}

/* A datagram from a socket gone since: sent from a temporary socket of its
 * name, bound out of sight (a relative path in a directory of its own). */
static int bind_sender(const UnixSkEntry *u, const UnixSkMsg *msg, int tmp)
{
	UnixSkEntry n = UNIX_SK_ENTRY__INIT;
	char nbuf[SUN_PATH_MAX + 2];

	n.ino = u->ino;
	n.has_name = true;
	n.name = msg->sender_name;
	if (!is_path_name(&n.name)) {
		struct sockaddr_un sa;
		if (bind(tmp, (struct sockaddr *)&sa, make_addr(&n, &sa)))
			return err_errno("cannot bind a socket to %s, to send a datagram of unix "
					 "socket:[%llu] from",
					 u_name(&n, nbuf, sizeof(nbuf)),
					 (unsigned long long)u->ino);
		return 0;
	}
	n.name_gone = true;
	n.file_mode = S_IFSOCK | 0755;
	if (n.name.data[0] != '/')
		n.name_dir = "/tmp";
	return bind_gone(&n, tmp);
}

/* Step 3: the data queued for reading at u, sent again from its sender. */
static int fill_queue(struct restore_ctx *ctx, const struct made_sk *m)
{
	const UnixSkEntry *u = m->u;

	for (size_t i = 0; i < u->n_queue; i++) {
		const UnixSkMsg *msg = u->queue[i];
		const struct made_sk *s;
		int r, tmp;

		if (pair_made(u) && !msg->has_sender_ino && !msg->has_sender_name) {
			r = send_msg(ctx, u, msg, m->gone, -1);
		} else if (u->type != SOCK_DGRAM || msg->has_sender_ino) {
			s = made_by_ino(ctx, u->type != SOCK_DGRAM ? u->peer_ino : msg->sender_ino);
			r = send_msg(ctx, u, msg, s->fd,
				     u->type == SOCK_DGRAM && s->u->peer_ino != u->ino ? m->fd
										       : -1);
		} else {
			tmp = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
			if (tmp < 0)
				return err_errno("cannot create a socket");
			r = msg->has_sender_name ? bind_sender(u, msg, tmp) : 0;
			if (!r)
				r = send_msg(ctx, u, msg, tmp, m->fd);
			close(tmp);
		}
		if (r)
			return -1;
	}
	return 0;
}

static int set_timeo(int fd, int opt, uint64_t us, const UnixSkEntry *u)
{
	struct timeval tv = {us / 1000000, us % 1000000};

	if (us && setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof(tv)))
		return err_errno("cannot set the timeouts of unix socket:[%llu]",
				 (unsigned long long)u->ino);
	return 0;
}

/* --ext-unix-sk: connected to the named socket outside again. */
static int connect_to_name(const UnixSkEntry *u, int fd)
{
	UnixSkEntry peer = UNIX_SK_ENTRY__INIT;

	peer.has_name = true;
	peer.name = u->peer_name;
	return connect_to(&peer, -1, fd, u->ino);
}

/* A named datagram socket whose peer was closed: connected to a temporary
 * partner (autobound), closed at once, as the original's peer was. */
static int connect_dead(const UnixSkEntry *u, int fd)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	socklen_t len = sizeof(sa_family_t);
	int partner = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int r = partner < 0 || bind(partner, (struct sockaddr *)&sa, len) ||
		(len = sizeof(sa), getsockname(partner, (struct sockaddr *)&sa, &len)) ||
		connect(fd, (struct sockaddr *)&sa, len);

	if (partner >= 0)
		close(partner);
	return r ? err_errno("cannot give unix socket:[%llu] its closed peer",
			     (unsigned long long)u->ino)
		 : 0;
}

/* Step 4: what must come after the data. A socket whose peer was closed
 * loses its other end now, which shuts it down both ways as the original's
 * close did; the others are shut down as they were. */
static int finish_sk(struct made_sk *m)
{
	const UnixSkEntry *u = m->u;

	if (u->embryo)
		return 0;

	if (u->has_peer_name && connect_to_name(u, m->fd))
		return -1;
	/* the other end closed with data unread: ECONNRESET, as the original */
	if (u->reset && send(m->fd, "", 1, MSG_DONTWAIT | MSG_NOSIGNAL) != 1)
		return err_errno("cannot give unix socket:[%llu] its pending error",
				 (unsigned long long)u->ino);
	if (u->type == SOCK_DGRAM && u->peer_closed && !pair_made(u) && connect_dead(u, m->fd))
		return -1;
	if (pair_made(u)) {
		close(m->gone);
		m->gone = -1;
	}
	if (u->peer_closed && u->type != SOCK_DGRAM) {
		/* shut down both ways by the close */
	} else if (((u->shutdown & SHUT_SEND_BIT) && shutdown(m->fd, SHUT_WR)) ||
		   ((u->shutdown & SHUT_RCV_BIT) && shutdown(m->fd, SHUT_RD))) {
		return err_errno("cannot shut unix socket:[%llu] down", (unsigned long long)u->ino);
	}
	if (pass_late(u) && set_pass(m))
		return -1;
	if (u->peek_off != -1 && set_int(m->fd, SO_PEEK_OFF, u->peek_off, u, "SO_PEEK_OFF"))
		return -1;
	if (u->has_rcvlowat && u->rcvlowat != 1 &&
	    set_int(m->fd, SO_RCVLOWAT, u->rcvlowat, u, "SO_RCVLOWAT"))
		return -1;
	return set_timeo(m->fd, SO_SNDTIMEO, u->sndtimeo_us, u) ||
	       set_timeo(m->fd, SO_RCVTIMEO, u->rcvtimeo_us, u);
}

static int make_all(struct restore_ctx *ctx)
{
	const struct restore_tree *tree = ctx->tree;
	struct made_sk *v;
	size_t n = 0;

	ctx->unix_made = calloc(1, sizeof(*ctx->unix_made));
	v = calloc(tree->nr_files + 1, sizeof(*v));
	if (!ctx->unix_made || !v) {
		free(v);
		return err_set("out of memory");
	}
	ctx->unix_made->v = v;
	for (size_t i = 0; i < tree->nr_files; i++)
		if (tree->files[i]->kind == FILE_KIND__UNIX_SOCKET &&
		    external_given(tree, tree->files[i]) < 0) /* else: cryo's fd */
			v[n++] = (struct made_sk){tree->files[i]->unix_sk, -1, false, -1};
	ctx->unix_made->nr = n;
	for (size_t i = 0; i < n; i++)
		if (make_one(ctx, &ctx->unix_made->v[i]))
			return -1;
	for (size_t i = 0; i < n; i++)
		if (connect_one(ctx, &ctx->unix_made->v[i]))
			return -1;
	for (size_t i = 0; i < n; i++)
		if (connect_waiting(ctx, &ctx->unix_made->v[i]))
			return -1;
	for (size_t i = 0; i < n; i++)
		if (!pass_late(ctx->unix_made->v[i].u) && set_pass(&ctx->unix_made->v[i]))
			return -1;
	for (size_t i = 0; i < n; i++)
		if (fill_queue(ctx, &ctx->unix_made->v[i]))
			return -1;
	for (size_t i = 0; i < n; i++)
		if (finish_sk(&ctx->unix_made->v[i]))
			return -1;
	return 0;
}

static int unix_open(struct restore_ctx *ctx, const FileEntry *fe, int *fd)
{
	struct made_sk *m;

	if (!ctx->unix_made && make_all(ctx))
		return -1;
	/* the root keeps a slot for every description it makes; a connection
	 * waiting in a backlog has no fd of its own (its listener's accept()
	 * gives one), so its slot holds nothing of it */
	if (fe->unix_sk->embryo) {
		*fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		return *fd < 0 ? err_errno("cannot open /dev/null") : 0;
	}
	m = made_by_ino(ctx, fe->unix_sk->ino);
	*fd = m ? dup(m->fd) : -1;
	if (*fd < 0)
		return err_errno("cannot duplicate unix socket:[%llu]",
				 (unsigned long long)fe->unix_sk->ino);
	if (fcntl(*fd, F_SETFL, fe->flags & O_NONBLOCK))
		return err_errno("cannot set the flags of unix socket:[%llu]",
				 (unsigned long long)fe->unix_sk->ino);
	return 0;
}

/* The root's sockets, made at once: all of them were placed in slots. */
static void unix_drop_made(struct restore_ctx *ctx)
{
	if (ctx->unix_made)
		free(ctx->unix_made->v);
	free(ctx->unix_made);
	ctx->unix_made = NULL;
}

/* What --inherit-fd calls it. */
static void unix_resource(const FileEntry *fe, char *buf, size_t len)
{
	if (fe->unix_sk)
		snprintf(buf, len, "socket:[%llu]", (unsigned long long)fe->unix_sk->ino);
}

static bool unix_outside(const struct restore_tree *tree, const FileEntry *fe)
{
	(void)tree;
	return fe->unix_sk && fe->unix_sk->external;
}

const struct fd_kind unix_kind = {
    .name = "unix socket",
    .kind = FILE_KIND__UNIX_SOCKET,
    .pass = 1,
    .by_root = true,
    .recognise = unix_recognise,
    .dump = unix_dump,
    .dump_finish = unix_dump_finish,
    .dump_end = unix_dump_end,
    .dump_free = unix_dump_free,
    .validate = unix_validate,
    .carries = unix_in_flight,
    .open = unix_open,
    .drop_made = unix_drop_made,
    .resource = unix_resource,
    .outside = unix_outside,
};
