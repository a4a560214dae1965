/*
 * pty: pseudo-terminal pairs inside the tree, master (/dev/ptmx) and slave
 * (/dev/pts/N), and the sessions whose controlling terminal they are.
 *
 * Dump: a description is a master (rdev 5:2, its pair's index by
 * TIOCGPTN) or a slave (majors 136-143, the index is its minor). Once
 * every process was seen (dump_finish), a slave whose master is not in
 * the tree is the terminal of a shell job (tty.c's kind); each master
 * records the pair's state: the slave's termios (TCGETS2 through the
 * master), window size, packet mode, lock, each side's exclusive mode,
 * whether the slave was opened and closed since (the master polls
 * POLLHUP), the session leader whose controlling terminal it is with the
 * session's foreground group, and the bytes queued both ways. A tty cannot
 * be peeked: its queues are read, the slave's under a temporary raw termios
 * (no line editing, no echo, no signals) so that all of it comes out as
 * the line discipline holds it; with --leave-running or when the dump
 * fails (dump_end) they are written back the same way.
 *
 * Restore: the root makes every pty description and every process
 * inherits it (by_root). The first description of a pair opens /dev/ptmx
 * until the kernel hands out the pair's index (it gives the lowest free
 * one: lower free indexes are held meanwhile, and a taken index fails
 * clearly, validate checks it first); the pair is unlocked, a temporary
 * slave (TIOCGPTPEER) takes the queued bytes under the raw termios, then
 * the saved termios, window size and packet mode are set. Slaves are
 * opened with TIOCGPTPEER from the master. Lock and exclusive modes are
 * set once the root made all (drop_made). A session leader takes its
 * terminal with TIOCSCTTY right after setsid(), before it forks, so that
 * the session inherits it; the leader of the foreground group makes it so
 * with tcsetpgrp once its group exists (pty_restore_session).
 *
 * Why the host's devpts and not a fresh instance: a restored process
 * opens /dev/pts/N by name (tmux clients, ttyname), and cryo restores in
 * cryo's own mount namespace, where /dev/pts is the host's instance; a
 * private instance would give the right numbers under another path only.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>
#include <asm/termbits.h>

#include "fdkind.h"
#include "infra/log.h"
#include "pty.h"
#include "tty.h"

#define PTMX_MAJOR 5
#define PTMX_MINOR 2
#define PTS_MAJOR  136
#define MAX_QUEUE  (1 << 20)
#define SETTLE_NS  (2 * 1000 * 1000 * 1000LL)

/* The new root: pairs made so far (master, and a temporary slave). */
struct made_pty {
	uint32_t index;
	int master, slave;
	const PtyEntry *pair; /* the master's entry: lock, exclusive mode */
};
struct pty_made {
	size_t nr;
	struct made_pty *v;
};

static bool is_master(dev_t rdev)
{
	return major(rdev) == PTMX_MAJOR && minor(rdev) == PTMX_MINOR;
}

static bool is_slave(dev_t rdev)
{
	return major(rdev) >= PTS_MAJOR && major(rdev) < PTS_MAJOR + 8;
}

static uint32_t slave_index(dev_t rdev)
{
	return (major(rdev) - PTS_MAJOR) * 256 + minor(rdev);
}

static bool pty_recognise(const struct fd_probe *p)
{
	return S_ISCHR(p->st->st_mode) && !(p->flags & O_PATH) &&
	       (is_master(p->st->st_rdev) || is_slave(p->st->st_rdev));
}

/* The entry both rows fill, with the fd's path as the kernel shows it. */
static PtyEntry *new_entry(struct dump_file *f, const struct fd_probe *p)
{
	PtyEntry *e = calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	pty_entry__init(e);
	f->entry.pty = e;
	snprintf(f->path, sizeof(f->path), "%s", p->link);
	f->entry.path = f->path;
	return e;
}

static int pty_dump(struct dump_ctx *ctx, struct dump_file *f, const struct fd_probe *p)
{
	PtyEntry *e = new_entry(f, p);
	int excl = 0;

	if (!e)
		return err_set("out of memory");
	e->master = is_master(p->st->st_rdev);
	if (!e->master)
		e->index = slave_index(p->st->st_rdev);
	else if (ioctl(p->local_fd, TIOCGPTN, &e->index))
		return err_errno("fd %d of pid %d: cannot read its pts index", p->fd, ctx->pid);
	/* a hung-up slave answers EIO (dump_finish finds it hung up) */
	if (ioctl(p->local_fd, TIOCGEXCL, &excl) && errno != EIO)
		return err_errno("fd %d of pid %d: cannot read its exclusive mode", p->fd,
				 ctx->pid);
	e->excl = excl;
	return 0;
}

/* /dev/tty: the terminal it names (TIOCGDEV), if a pts. */
static bool devtty_recognise(const struct fd_probe *p)
{
	return S_ISCHR(p->st->st_mode) && !(p->flags & O_PATH) && p->st->st_rdev == makedev(5, 0);
}

static int devtty_dump(struct dump_ctx *ctx, struct dump_file *f, const struct fd_probe *p)
{
	PtyEntry *e = new_entry(f, p);
	unsigned dev = 0;

	if (!e)
		return err_set("out of memory");
	if (ioctl(p->local_fd, TIOCGDEV, &dev))
		return err_errno("fd %d of pid %d (/dev/tty): cannot read its terminal", p->fd,
				 ctx->pid);
	/* new_encode_dev: minor's low byte, major, minor's high bits */
	dev_t rdev = makedev((dev >> 8) & 0xfff, (dev & 0xff) | ((dev >> 12) & 0xfff00));
	e->index = is_slave(rdev) ? slave_index(rdev) : UINT32_MAX;
	return 0;
}

static void pty_free_entry(FileEntry *fe)
{
	if (!fe->pty)
		return;
	if (fe->pty->termios)
		free(fe->pty->termios->cc.data);
	free(fe->pty->termios);
	free(fe->pty->to_slave.data);
	free(fe->pty->to_master.data);
	free(fe->pty);
	fe->pty = NULL;
}

/* The description of the tree that is the pty index's side (master or not). */
static struct dump_file *find_side(struct dump_tree *tree, uint32_t index, bool master)
{
	for (int i = 0; i < tree->nr_files; i++) {
		FileEntry *e = &tree->files[i].entry;
		if (e->kind == FILE_KIND__PTY && e->pty && e->pty->index == index &&
		    e->pty->master == master && !e->pty->hung)
			return &tree->files[i];
	}
	return NULL;
}

/* ---- termios ---- */

static void termios_from(TermiosEntry *t, const struct termios2 *k)
{
	t->iflag = k->c_iflag;
	t->oflag = k->c_oflag;
	t->cflag = k->c_cflag;
	t->lflag = k->c_lflag;
	t->line = k->c_line;
	t->ispeed = k->c_ispeed;
	t->ospeed = k->c_ospeed;
	memcpy(t->cc.data, k->c_cc, NCCS);
	t->cc.len = NCCS;
}

static void termios_to(struct termios2 *k, const TermiosEntry *t)
{
	memset(k, 0, sizeof(*k));
	k->c_iflag = t->iflag;
	k->c_oflag = t->oflag;
	k->c_cflag = t->cflag;
	k->c_lflag = t->lflag;
	k->c_line = t->line;
	k->c_ispeed = t->ispeed;
	k->c_ospeed = t->ospeed;
	memcpy(k->c_cc, t->cc.data, t->cc.len < NCCS ? t->cc.len : NCCS);
}

/* The termios under which queued bytes pass unchanged: no line editing,
 * echo, signals, translation or output processing. IXON and the start and
 * stop characters stay: changing them would tell a packet-mode master. */
static struct termios2 raw_of(const struct termios2 *k)
{
	struct termios2 r = *k;

	r.c_lflag &= ~(ICANON | ECHO | ECHOE | ECHOK | ECHONL | ECHOCTL | ECHOKE | ISIG | IEXTEN);
	r.c_iflag &= ~(ICRNL | INLCR | IGNCR | ISTRIP | IUCLC | PARMRK | BRKINT | IMAXBEL);
	r.c_oflag &= ~OPOST;
	r.c_cc[VMIN] = 1;
	r.c_cc[VTIME] = 0;
	return r;
}

/* ---- queues ---- */

/* Reads what fd's line discipline holds (TIOCINQ counts it); in packet
 * mode each read starts with a status byte. */
static int drain(int fd, bool packet, ProtobufCBinaryData *out, bool *hup)
{
	unsigned char buf[8192];
	int n;

	out->len = 0;
	out->data = NULL;
	for (;;) {
		struct pollfd pfd = {fd, POLLIN, 0};
		/* a poll that finds nothing waits for the bytes in flight */
		if (ioctl(fd, TIOCINQ, &n) || (!n && poll(&pfd, 1, 0) < 0) ||
		    (!n && ioctl(fd, TIOCINQ, &n)))
			return err_errno("cannot count the bytes queued in a pseudo-terminal");
		if (hup)
			*hup |= pfd.revents & POLLHUP;
		if (!n)
			return 0;
		if (n > (int)sizeof(buf) - 1)
			n = sizeof(buf) - 1;
		ssize_t r = read(fd, buf, n + packet);
		if (r <= 0)
			return err_errno("cannot read the bytes queued in a pseudo-terminal");
		if (packet && buf[0])
			continue; /* a status report, not data */
		if (out->len + r > MAX_QUEUE)
			return err_set("a pseudo-terminal queues more than %d bytes", MAX_QUEUE);
		unsigned char *grown = realloc(out->data, out->len + r + 1);
		if (!grown)
			return err_set("out of memory");
		out->data = grown;
		memcpy(out->data + out->len, buf + packet, r - packet);
		out->len += r - packet;
	}
}

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Writes len bytes into fd, and waits until reader's line discipline
 * holds want bytes (the pty's buffers are emptied by a kernel worker). */
static int feed(int fd, const ProtobufCBinaryData *d, int reader, int want)
{
	long long deadline = now_ns() + SETTLE_NS;
	int n = -1;

	if (d->len && write(fd, d->data, d->len) != (ssize_t)d->len)
		return err_errno("cannot write %zu bytes back into pts %s", d->len, "queue");
	while (!ioctl(reader, TIOCINQ, &n) && n < want && now_ns() < deadline)
		sched_yield();
	if (n < want)
		return err_set("a pseudo-terminal took %d of %d bytes written back", n, want);
	return 0;
}

/* Puts both queues of a pair back: the slave's input through the master,
 * the master's through the slave, under the raw termios. */
static int refill(int master, int slave, const PtyEntry *e)
{
	struct termios2 saved, raw;
	int ret;

	termios_to(&saved, e->termios);
	raw = raw_of(&saved);
	if (ioctl(slave, TCSETS2, &raw))
		return err_errno("cannot set a raw termios on pts %u", e->index);
	ret = feed(master, &e->to_slave, slave, e->to_slave.len) ||
	      feed(slave, &e->to_master, master, e->to_master.len);
	if (ioctl(slave, TCSETS2, &saved) && !ret)
		ret = err_errno("cannot set the termios of pts %u", e->index);
	return ret ? -1 : 0;
}

/* A slave of its own for cryo, or -1 when the pair needs none: opening
 * and closing the only slave would tell the master it was closed. */
static int own_slave(int master, const PtyEntry *e, bool others)
{
	int fd;

	if (!others && !e->slave_closed && !e->to_master.len && !e->to_slave.len)
		return -1;
	fd = ioctl(master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		err_errno("cannot open the slave of pts %u", e->index);
	return fd;
}
/* Takes both queues out of a pair, the slave's under the raw termios. */
static int take_queues(int master, int slave, PtyEntry *e)
{
	struct termios2 saved, raw;
	bool hup = false;
	int ret;

	if (drain(master, e->packet, &e->to_master, slave < 0 ? &hup : NULL))
		return -1;
	e->has_slave_closed = true;
	e->slave_closed = hup;
	if (slave < 0)
		return 0;
	termios_to(&saved, e->termios);
	raw = raw_of(&saved);
	if (ioctl(slave, TCSETS2, &raw))
		return err_errno("cannot set a raw termios on pts %u", e->index);
	ret = drain(slave, false, &e->to_slave, NULL);
	if (ioctl(slave, TCSETS2, &saved) && !ret)
		ret = err_errno("cannot set the termios of pts %u back", e->index);
	return ret;
}

/* ---- sessions ---- */

/* tpgid of /proc/PID/stat: the foreground group of its terminal. */
static pid_t foreground_of(pid_t pid)
{
	char *buf, *p;
	int tpgid = 0;

	if (proc_read(pid, "stat", &buf, NULL))
		return -1;
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %d", &tpgid) != 1)
		tpgid = -1;
	free(buf);
	return tpgid;
}

static unsigned stat_tty(dev_t d)
{
	return (minor(d) & 0xff) | (major(d) << 8) | ((minor(d) & ~0xffu) << 12);
}

/* The session leader of the tree whose controlling terminal pts index is. */
static int find_session(struct dump_tree *tree, PtyEntry *e)
{
	unsigned dev = stat_tty(makedev(PTS_MAJOR + e->index / 256, e->index % 256));

	for (int i = 0; i < tree->nr_procs; i++) {
		struct dump_ctx *p = tree->procs[i];
		if (p->zombie || (unsigned)p->stat.tty_nr != dev)
			continue;
		if (p->stat.session != p->pid && !find_side(tree, e->index, true))
			continue;
		if (p->stat.session != p->pid) {
			bool led = false;
			for (int k = 0; k < tree->nr_procs; k++)
				led |= tree->procs[k]->pid == p->stat.session;
			if (!led)
				return err_set("pid %d has pts %u as its controlling terminal, "
					       "but its session leader %d is not in the tree",
					       p->pid, e->index, p->stat.session);
			continue;
		}
		e->has_session = e->has_fg_pgrp = true;
		e->session = p->pid;
		e->fg_pgrp = foreground_of(p->pid);
		if ((int)e->fg_pgrp < 0)
			return err_set("cannot read the foreground group of pts %u", e->index);
	}
	return 0;
}

/* The pair's state, read through its master (and a slave of the tree). */
static int dump_pair(struct dump_tree *tree, struct dump_file *m)
{
	PtyEntry *e = m->entry.pty;
	struct dump_file *s = find_side(tree, e->index, false);
	struct termios2 k;
	struct winsize ws;
	int pkt = 0, lck = 0;

	e->termios = calloc(1, sizeof(*e->termios));
	if (!e->termios)
		return err_set("out of memory");
	termios_entry__init(e->termios);
	if (!(e->termios->cc.data = malloc(NCCS)))
		return err_set("out of memory");
	if (ioctl(m->local_fd, TCGETS2, &k) || ioctl(m->local_fd, TIOCGWINSZ, &ws) ||
	    ioctl(m->local_fd, TIOCGPKT, &pkt) || ioctl(m->local_fd, TIOCGPTLCK, &lck))
		return err_errno("fd %d of pid %d: cannot read the state of pts %u", m->first_fd,
				 m->first_pid, e->index);
	termios_from(e->termios, &k);
	e->has_ws_row = e->has_ws_col = e->has_ws_xpixel = e->has_ws_ypixel = true;
	e->ws_row = ws.ws_row;
	e->ws_col = ws.ws_col;
	e->ws_xpixel = ws.ws_xpixel;
	e->ws_ypixel = ws.ws_ypixel;
	e->has_packet = e->has_locked = true;
	e->packet = pkt;
	e->locked = lck;
	e->has_to_slave = e->has_to_master = true;
	if (find_session(tree, e))
		return -1;
	return take_queues(m->local_fd, s ? s->local_fd : -1, e);
}

/* A slave whose master was closed: hung up (reads give EOF, writes EIO,
 * poll everything), its /dev/pts node gone and its index free. */
static bool hung_up(const struct dump_file *f)
{
	struct pollfd p = {f->local_fd, POLLIN, 0};
	size_t n = strlen(f->path);

	return f->entry.kind == FILE_KIND__PTY && n > 10 &&
	       !strcmp(f->path + n - 10, " (deleted)") && poll(&p, 1, 0) == 1 &&
	       (p.revents & POLLHUP) && (p.revents & POLLERR);
}

/* A slave whose master is outside the tree: the terminal of a shell job. */
static int outside_slave(struct dump_tree *tree, struct dump_file *f)
{
	pty_free_entry(&f->entry);
	f->entry.kind = FILE_KIND__TTY;
	return tty_dump_shell_job(tree->opts, f, f->first_pid, f->first_fd);
}

static int pty_dump_finish(struct dump_tree *tree)
{
	for (int i = 0; i < tree->nr_files; i++) {
		struct dump_file *f = &tree->files[i];
		if ((f->entry.kind != FILE_KIND__PTY && f->entry.kind != FILE_KIND__DEVTTY) ||
		    f->entry.pty->master)
			continue;
		if (hung_up(f)) {
			f->entry.pty->has_hung = true;
			f->entry.pty->hung = true;
		} else if (!find_side(tree, f->entry.pty->index, true) && outside_slave(tree, f)) {
			return -1;
		}
	}
	for (int i = 0; i < tree->nr_files; i++) {
		struct dump_file *f = &tree->files[i];
		if (f->entry.kind == FILE_KIND__PTY && f->entry.pty->master && dump_pair(tree, f))
			return -1;
	}
	return 0;
}

/* The tree goes on: the queues read out of each pair go back in. */
static void pty_dump_end(struct dump_tree *tree, enum dump_end how)
{
	if (how == DUMP_END_KILL)
		return;
	for (int i = 0; i < tree->nr_files; i++) {
		struct dump_file *m = &tree->files[i];
		PtyEntry *e = m->entry.kind == FILE_KIND__PTY ? m->entry.pty : NULL;
		if (!e || !e->master || !e->termios || !e->has_slave_closed)
			continue;
		struct dump_file *s = find_side(tree, e->index, false);
		int own = s ? -1 : own_slave(m->local_fd, e, false);
		if (!s && own < 0)
			continue;
		if (refill(m->local_fd, s ? s->local_fd : own, e))
			pr_warn("pts %u: the queued bytes could not all be written back: %s",
				e->index, err_text());
		if (own >= 0)
			close(own);
	}
}

/* ---- restore, in cryo ---- */

static const FileEntry *restore_side(const struct restore_tree *tree, uint32_t index, bool master)
{
	for (size_t i = 0; i < tree->nr_files; i++) {
		const FileEntry *o = tree->files[i];
		if (o->kind == FILE_KIND__PTY && o->pty && o->pty->index == index &&
		    o->pty->master == master && !o->pty->hung)
			return o;
	}
	return NULL;
}

static int validate_master(const struct restore_tree *tree, const FileEntry *fe,
			   const struct fd_use *use)
{
	const PtyEntry *e = fe->pty;
	char path[64];
	struct stat st;

	if (!e->termios || e->termios->cc.len != NCCS || !e->has_slave_closed)
		return err_set("files.img: pseudo-terminal %u of pid %d has no termios", fe->id,
			       use->pid);
	for (size_t i = 0; i < tree->nr_files; i++)
		if (tree->files[i] != fe && tree->files[i]->kind == FILE_KIND__PTY &&
		    tree->files[i]->pty && tree->files[i]->pty->master &&
		    tree->files[i]->pty->index == e->index)
			return err_set("files.img: two masters of pts %u", e->index);
	snprintf(path, sizeof(path), "/dev/pts/%u", e->index);
	if (!stat(path, &st))
		return err_set("pts %u (fd %d of pid %d) is taken: %s exists, and a restore needs "
			       "the same index",
			       e->index, use->fd, use->pid, path);
	return 0;
}

static int devtty_validate(const struct restore_tree *tree, const FileEntry *fe,
			   const struct fd_use *use)
{
	if (!fe->pty || !restore_side(tree, fe->pty->index, true))
		return err_set("files.img: /dev/tty of pid %d names no pty of the tree", use->pid);
	return 0;
}

static int pty_validate(const struct restore_tree *tree, const FileEntry *fe,
			const struct fd_use *use)
{
	if (!fe->pty || fe->pty->index >= (1u << 20))
		return err_set("files.img: pseudo-terminal %u of pid %d is malformed", fe->id,
			       use->pid);
	if (fe->pty->master)
		return validate_master(tree, fe, use);
	if (fe->pty->hung)
		return 0;
	if (!restore_side(tree, fe->pty->index, true))
		return err_set("files.img: pts %u of pid %d has no master", fe->pty->index,
			       use->pid);
	return 0;
}

/* ---- restore, in the root ---- */

/* Opens /dev/ptmx until the kernel gives index: it hands out the lowest
 * free one, so the lower free ones are held meanwhile. */
static int open_index(uint32_t index)
{
	int *held = malloc((index + 1) * sizeof(*held)), n = 0, fd = -1;
	unsigned got = 0;

	if (!held)
		return err_set("out of memory");
	for (;;) {
		fd = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (fd < 0 || ioctl(fd, TIOCGPTN, &got)) {
			err_errno("cannot open /dev/ptmx for pts %u", index);
			break;
		}
		if (got == index)
			break;
		if (got > index || n == (int)index) {
			err_set("pts %u is taken (the kernel gave pts %u)", index, got);
			break;
		}
		held[n++] = fd;
	}
	if (got != index && fd >= 0) {
		close(fd);
		fd = -1;
	}
	while (n--)
		close(held[n]);
	free(held);
	return fd;
}

/* The pair's state on a master just made (and its own slave, if any). */
static int set_pair(int master, int slave, const PtyEntry *e)
{
	struct termios2 k;
	struct winsize ws = {e->ws_row, e->ws_col, e->ws_xpixel, e->ws_ypixel};
	int pkt = e->packet;

	termios_to(&k, e->termios);
	if (slave >= 0 ? refill(master, slave, e) : ioctl(master, TCSETS2, &k) ? -1 : 0)
		return err_wrap("pts %u", e->index);
	if (ioctl(master, TIOCSWINSZ, &ws) || (pkt && ioctl(master, TIOCPKT, &pkt)) ||
	    (e->excl && ioctl(master, TIOCEXCL)))
		return err_errno("cannot set the state of pts %u", e->index);
	return 0;
}

static int make_pair(struct restore_ctx *ctx, const PtyEntry *e, struct made_pty *mp)
{
	int unlock = 0;
	bool slaves = restore_side(ctx->tree, e->index, false) != NULL;

	mp->index = e->index;
	mp->pair = e;
	mp->slave = -1;
	mp->master = open_index(e->index);
	if (mp->master < 0)
		return -1;
	if (ioctl(mp->master, TIOCSPTLCK, &unlock))
		return err_errno("cannot unlock pts %u", e->index);
	mp->slave = own_slave(mp->master, e, slaves);
	if (mp->slave < 0 && (slaves || e->slave_closed || e->to_master.len || e->to_slave.len))
		return -1;
	return set_pair(mp->master, mp->slave, e);
}

static struct made_pty *made_pair(struct restore_ctx *ctx, uint32_t index)
{
	struct pty_made *m = ctx->pty_made;
	struct made_pty *grown;
	const FileEntry *master = restore_side(ctx->tree, index, true);

	for (size_t i = 0; m && i < m->nr; i++)
		if (m->v[i].index == index)
			return &m->v[i];
	if (!m && !(m = ctx->pty_made = calloc(1, sizeof(*m))))
		goto oom;
	grown = realloc(m->v, (m->nr + 1) * sizeof(*grown));
	if (!grown)
		goto oom;
	m->v = grown;
	m->nr++;
	if (make_pair(ctx, master->pty, &m->v[m->nr - 1]))
		return NULL;
	return &m->v[m->nr - 1];
oom:
	err_set("out of memory");
	return NULL;
}

/* A hung-up slave: the slave of a new pair whose master is closed. */
static int open_hung(const FileEntry *fe, int flags, int *fd)
{
	int m = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC), unlock = 0;

	if (m < 0 || ioctl(m, TIOCSPTLCK, &unlock) || (*fd = ioctl(m, TIOCGPTPEER, flags)) < 0) {
		err_errno("cannot make the hung-up pts %u", fe->pty->index);
		if (m >= 0)
			close(m);
		return -1;
	}
	close(m); /* the kernel hangs the slave up */
	return 0;
}

static int pty_open(struct restore_ctx *ctx, const FileEntry *fe, int *fd)
{
	int flags = (fe->flags & (O_ACCMODE | O_NONBLOCK | O_APPEND)) | O_NOCTTY;

	if (fe->pty->hung)
		return open_hung(fe, flags, fd);
	struct made_pty *mp = made_pair(ctx, fe->pty->index);
	if (!mp)
		return -1;
	if (fe->pty->master) {
		*fd = dup(mp->master);
		if (*fd < 0 || fcntl(*fd, F_SETFL, fe->flags & (O_NONBLOCK | O_APPEND)))
			return err_errno("cannot place the master of pts %u", fe->pty->index);
		return 0;
	}
	*fd = ioctl(mp->master, TIOCGPTPEER, flags);
	if (*fd < 0)
		return err_errno("cannot open pts %u", fe->pty->index);
	if (fe->pty->excl && ioctl(*fd, TIOCEXCL))
		return err_errno("cannot make pts %u exclusive", fe->pty->index);
	return 0;
}

/* Once the root made every description: locks, and cryo's own fds go. */
static void pty_drop_made(struct restore_ctx *ctx)
{
	struct pty_made *m = ctx->pty_made;
	int lock = 1;

	for (size_t i = 0; m && i < m->nr; i++) {
		if (m->v[i].pair->locked && m->v[i].master >= 0 &&
		    ioctl(m->v[i].master, TIOCSPTLCK, &lock))
			pr_warn("cannot lock pts %u: %s", m->v[i].index, strerror(errno));
		if (m->v[i].slave >= 0)
			close(m->v[i].slave);
		if (m->v[i].master >= 0)
			close(m->v[i].master);
	}
	if (m)
		free(m->v);
	free(m);
	ctx->pty_made = NULL;
}

/* ---- restore, in each new process: its controlling terminal ---- */

/* The session leader: its terminal, from the slave or master it inherits. */
static int take_terminal(struct restore_ctx *ctx, const FileEntry *master)
{
	const FileEntry *slave = restore_side(ctx->tree, master->pty->index, false);
	int slot = slave ? ctx_inherited_fd(ctx->tree, slave->id) : -1;
	int fd = slot;

	if (slot < 0) {
		slot = ctx_inherited_fd(ctx->tree, master->id);
		fd = slot < 0 ? -1 : ioctl(slot, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
	}
	if (fd < 0)
		return err_errno("pid %d cannot open pts %u, its controlling terminal", ctx->pid,
				 master->pty->index);
	int ret = ioctl(fd, TIOCSCTTY, 0);
	if (ret)
		err_errno("pid %d cannot take pts %u as its controlling terminal", ctx->pid,
			  master->pty->index);
	if (fd != slot)
		close(fd);
	return ret;
}

/* The leader of the foreground group: its group to the foreground. */
static int take_foreground(struct restore_ctx *ctx, const FileEntry *master)
{
	pid_t me = getpid();
	int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);

	/* every signal is blocked here: a background group may take it */
	if (fd < 0 || ioctl(fd, TIOCSPGRP, &me)) {
		err_errno("pid %d cannot bring its group to the foreground of pts %u", ctx->pid,
			  master->pty->index);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

int pty_restore_session(struct restore_ctx *ctx)
{
	for (size_t i = 0; i < ctx->tree->nr_files; i++) {
		const FileEntry *fe = ctx->tree->files[i];
		if (fe->kind != FILE_KIND__PTY || !fe->pty->master || !fe->pty->session)
			continue;
		if (fe->pty->session == (uint32_t)ctx->pid && take_terminal(ctx, fe))
			return -1;
		if (fe->pty->fg_pgrp == (uint32_t)ctx->pid &&
		    fe->pty->session != (uint32_t)ctx->pid &&
		    ctx->core->sid == (int32_t)fe->pty->session && take_foreground(ctx, fe))
			return -1;
	}
	return 0;
}

/* /dev/tty, opened by its process once its terminal is there. */
static int devtty_open(struct restore_ctx *ctx, const FileEntry *fe, int *fd)
{
	*fd = open("/dev/tty", (fe->flags & (O_ACCMODE | O_NONBLOCK | O_APPEND)) | O_NOCTTY);
	if (*fd < 0)
		return err_errno("pid %d cannot open /dev/tty (pts %u)", ctx->pid, fe->pty->index);
	return 0;
}

static void pty_describe(const FileEntry *fe, char *buf, size_t len)
{
	const PtyEntry *e = fe->pty;

	if (!e)
		snprintf(buf, len, "pseudo-terminal (malformed)");
	else if (!e->master)
		snprintf(buf, len, "pts %u slave%s%s", e->index, e->excl ? ", exclusive" : "",
			 e->hung ? ", hung up (its master closed)" : "");
	else
		snprintf(buf, len,
			 "pts %u master, %ux%u%s%s, %zu bytes to the slave, %zu to the "
			 "master%s",
			 e->index, e->ws_col, e->ws_row, e->packet ? ", packet mode" : "",
			 e->locked ? ", locked" : "", e->to_slave.len, e->to_master.len,
			 e->session ? ", a session's terminal" : "");
}

const struct fd_kind pty_kind = {
    .name = "pseudo-terminal",
    .kind = FILE_KIND__PTY,
    .by_root = true,
    .recognise = pty_recognise,
    .dump = pty_dump,
    .dump_finish = pty_dump_finish,
    .dump_end = pty_dump_end,
    .free_entry = pty_free_entry,
    .validate = pty_validate,
    .open = pty_open,
    .drop_made = pty_drop_made,
    .describe = pty_describe,
};

const struct fd_kind devtty_kind = {
    .name = "/dev/tty",
    .kind = FILE_KIND__DEVTTY,
    .never_shared = true,
    .recognise = devtty_recognise,
    .dump = devtty_dump,
    .free_entry = pty_free_entry,
    .validate = devtty_validate,
    .open = devtty_open,
};
