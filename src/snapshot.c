/*
 * snapshot: the copy-on-write snapshot of a frozen process's memory
 * (snapshot.h). Owns the snapshot child, from its fork to its reaping.
 *
 * The fork: injected into the frozen target, a short piece of code runs
 * clone3 (exit_signal 0: its end sends its parent no signal, and wait()
 * without __WALL never sees it; CLONE_PIDFD: cryo can watch it). The child
 * comes back from clone3 in that same code, never in the program's: it
 * names itself SNAPSHOT_COMM, leaves the process group (no killpg of the
 * program reaches it), closes every fd it inherited but the read end of a
 * pipe whose write end only cryo holds, and blocks in read() on it; when
 * read returns (the pipe closed: cryo is done, or dead) it exits. Every
 * signal is blocked in it (inherited from the injection's mask). The
 * scratch memory it reads into is cryo's own shared page, never the
 * snapshot's pages. Copying the page tables is the only frozen cost: about
 * 15 ms per GiB of 4 KiB pages here (docs/design.md).
 *
 * The guardian: a fork of cryo, made while frozen, which takes over the
 * pipes' write ends and waits on a pipe of its own from cryo. When that
 * closes (cryo finished, failed or was killed) it closes the snapshot
 * pipes, waits for each child to exit, and reaps it: only its parent can,
 * so the guardian seizes one thread of the target for a moment and injects
 * wait4(child, __WALL | WNOHANG). So no child is left behind, running or a
 * zombie, whatever happens to cryo.
 *
 * A process gets no snapshot (its memory is then read while frozen, as
 * without -R) if it has seccomp filters (the child would run its syscalls
 * under them unsuspended), if it refuses executable memory (no code page),
 * or if the fork fails (a pid or memory limit).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/sched.h>

#include "infra/inject.h"
#include "infra/log.h"
#include "infra/proc.h"
#include "infra/ptrace.h"
#include "snapshot.h"

#define GUARD_WAIT_MS 10000
#define CHILD_WAIT_MS 5000

/* Scratch layout: the pipe's two fds, the pidfd, clone3's arguments, the
 * child's name, the byte it reads into. */
#define AT_PIPE	 0
#define AT_PIDFD 8
#define AT_ARGS	 64
#define AT_NAME	 256
#define AT_BUF	 512

/* Entered with rbx = the pipe's write end, r12 = its read end, r13 = a
 * byte of scratch, r14 = the name, r15 = clone3's arguments (hand
 * assembled; the source is in docs/design.md's words):
 *   close(rbx); rax = clone3(r15, 88); if rax != 0 goto parent
 *   prctl(PR_SET_NAME, r14); setpgid(0, 0)
 *   if r12: close_range(0, r12 - 1, 0); close_range(r12 + 1, ~0U, 0)
 *   again: read(r12, r13, 1); if -EINTR goto again; exit_group(0)
 *   parent: r15 = rax; close(r12); rax = r15; int3 */
static const unsigned char snapshot_code[] = {
    0xb8, 0x03, 0x00, 0x00, 0x00, 0x48, 0x89, 0xdf, 0x0f, 0x05, 0xb8, 0xb3, 0x01, 0x00, 0x00,
    0x4c, 0x89, 0xff, 0xbe, 0x58, 0x00, 0x00, 0x00, 0x0f, 0x05, 0x48, 0x85, 0xc0, 0x75, 0x62,
    0xb8, 0x9d, 0x00, 0x00, 0x00, 0xbf, 0x0f, 0x00, 0x00, 0x00, 0x4c, 0x89, 0xf6, 0x0f, 0x05,
    0xb8, 0x6d, 0x00, 0x00, 0x00, 0x31, 0xff, 0x31, 0xf6, 0x0f, 0x05, 0x4d, 0x85, 0xe4, 0x74,
    0x10, 0xb8, 0xb4, 0x01, 0x00, 0x00, 0x31, 0xff, 0x49, 0x8d, 0x74, 0x24, 0xff, 0x31, 0xd2,
    0x0f, 0x05, 0xb8, 0xb4, 0x01, 0x00, 0x00, 0x49, 0x8d, 0x7c, 0x24, 0x01, 0xbe, 0xff, 0xff,
    0xff, 0xff, 0x31, 0xd2, 0x0f, 0x05, 0x31, 0xc0, 0x4c, 0x89, 0xe7, 0x4c, 0x89, 0xee, 0xba,
    0x01, 0x00, 0x00, 0x00, 0x0f, 0x05, 0x48, 0x83, 0xf8, 0xfc, 0x74, 0xeb, 0xb8, 0xe7, 0x00,
    0x00, 0x00, 0x31, 0xff, 0x0f, 0x05, 0xeb, 0xe0, 0x49, 0x89, 0xc7, 0xb8, 0x03, 0x00, 0x00,
    0x00, 0x4c, 0x89, 0xe7, 0x0f, 0x05, 0x4c, 0x89, 0xf8, 0xcc,
};

_Static_assert(sizeof(struct clone_args) == 88, "clone3's argument size in snapshot_code");

/* ---- the fork ---- */

static int take_fd(const struct dump_ctx *ctx, int fd)
{
	int mine = syscall(SYS_pidfd_getfd, ctx->pidfd, fd, 0);

	if (mine < 0)
		return err_errno("cannot take fd %d of pid %d", fd, ctx->pid);
	return mine;
}

static void close_in_target(struct dump_ctx *ctx, int fd)
{
	if (fd >= 0 &&
	    inject_call(&ctx->inj, "closing a snapshot fd", SYS_close, fd, 0, 0, 0, 0, 0, NULL))
		pr_warn("pid %d keeps fd %d of cryo's: %s", ctx->pid, fd, err_text());
}

/* "Pid:" of a pidfd: the pid in cryo's namespace. */
static pid_t pidfd_pid(int pidfd)
{
	char path[64], line[128];
	pid_t pid = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", pidfd);
	f = fopen(path, "re");
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "Pid: %d", &pid) == 1)
			break;
	if (f)
		fclose(f);
	return pid;
}

/* The pipe in the target; cryo takes its write end (closed in the target
 * by snapshot_code before it forks: the child inherits only the read end). */
static int make_pipe(struct dump_ctx *ctx, int tfds[2], int *hold)
{
	uint64_t at;
	int zero[2] = {-1, -1};

	if (inject_scratch_put(&ctx->inj, AT_PIPE, zero, sizeof(zero), &at) ||
	    inject_call(&ctx->inj, "making the snapshot's pipe", SYS_pipe2, at, O_CLOEXEC, 0, 0, 0,
			0, NULL) ||
	    inject_scratch_get(&ctx->inj, AT_PIPE, tfds, 2 * sizeof(int)))
		return -1;
	*hold = take_fd(ctx, tfds[1]);
	return *hold < 0 ? -1 : 0;
}

/* Runs the fork; *child: clone3's result as the target sees it. */
static int run_fork(struct dump_ctx *ctx, const int tfds[2], long *child)
{
	struct inject *inj = &ctx->inj;
	struct clone_args args = {.flags = CLONE_PIDFD, .exit_signal = 0};
	struct user_regs_struct regs = inj->saved;
	uint64_t code, a_args, a_name;
	int minus1 = -1;

	args.pidfd = inj->scratch + AT_PIDFD;
	if (inject_scratch_put(inj, AT_PIDFD, &minus1, sizeof(minus1), NULL) ||
	    inject_scratch_put(inj, AT_ARGS, &args, sizeof(args), &a_args) ||
	    inject_scratch_put(inj, AT_NAME, SNAPSHOT_COMM, sizeof(SNAPSHOT_COMM), &a_name) ||
	    inject_put_code(inj, snapshot_code, sizeof(snapshot_code), &code))
		return -1;
	regs.rip = code;
	regs.rbx = tfds[1];
	regs.r15 = a_args;
	regs.r12 = tfds[0];
	regs.r13 = inj->scratch + AT_BUF;
	regs.r14 = a_name;
	if (inject_run(inj, &regs))
		return -1;
	if (regs.rip != code + sizeof(snapshot_code)) {
		return err_set("the snapshot fork in pid %d ended at 0x%llx", ctx->pid,
			       (unsigned long long)regs.rip);
	}
	*child = (long)regs.rax;
	return 0;
}

/* The child's pidfd (and its pid) into cryo, closed in the target. */
static int take_child(struct dump_ctx *ctx, struct snapshot *s)
{
	int tpidfd = -1;

	if (inject_scratch_get(&ctx->inj, AT_PIDFD, &tpidfd, sizeof(tpidfd)))
		return -1;
	s->pidfd = tpidfd >= 0 ? take_fd(ctx, tpidfd) : -1;
	close_in_target(ctx, tpidfd);
	if (s->pidfd < 0)
		return -1;
	s->pid = pidfd_pid(s->pidfd);
	return s->pid > 0 ? 0 : err_set("cannot tell the pid of pid %d's snapshot", ctx->pid);
}

static void snapshot_free(struct snapshot *s)
{
	for (size_t i = 0; i < s->nr_copies; i++) {
		free(s->copies[i].ranges);
		if (s->copies[i].data)
			munmap(s->copies[i].data, s->copies[i].len);
	}
	free(s->copies);
	if (s->hold_fd >= 0)
		close(s->hold_fd);
	if (s->pidfd >= 0)
		close(s->pidfd);
	free(s);
}

static int fork_snapshot(struct dump_ctx *ctx, struct snapshot *s)
{
	int tfds[2] = {-1, -1};
	long child = -1;
	bool ran = false; /* snapshot_code ran to its end: it closed the pipe's fds */
	unsigned long long t = now_us();
	int ret = make_pipe(ctx, tfds, &s->hold_fd);

	if (!ret) {
		ret = run_fork(ctx, tfds, &child);
		ran = !ret;
	}
	pr_debug("pid %d: pipe and fork took %llu us", ctx->pid, now_us() - t);
	if (ran && child < 0) {
		errno = -child;
		ret = err_errno("pid %d cannot fork its snapshot", ctx->pid);
	}
	if (child > 0) {
		s->pid_in_target = child;
		if (take_child(ctx, s) && !ret)
			ret = -1;
	}
	for (int i = 0; i < 2 && !ran; i++)
		close_in_target(ctx, tfds[i]);
	return ret;
}

int snapshot_take(struct dump_ctx *ctx)
{
	struct snapshot *s = calloc(1, sizeof(*s));
	unsigned long long t = now_us();

	if (!s)
		return err_set("out of memory");
	s->hold_fd = s->pidfd = -1;
	if (ctx->status.seccomp) {
		pr_info("pid %d has seccomp filters: its memory is read while it is frozen",
			ctx->pid);
		free(s);
		return 0;
	}
	if (fork_snapshot(ctx, s)) {
		if (s->pid_in_target > 0) {
			/* a child there is one that must not stay: end it now */
			close(s->hold_fd);
			s->hold_fd = -1;
			ctx->snap = s;
			return -1;
		}
		pr_info("no snapshot of pid %d (%s): its memory is read while it is frozen",
			ctx->pid, err_text());
		err_clear();
		snapshot_free(s);
		return 0;
	}
	ctx->snap = s;
	ctx->tree->stats.snapshot_time_us += now_us() - t;
	pr_info("pid %d: snapshot child %d forked in %llu us", ctx->pid, s->pid, now_us() - t);
	return 0;
}

pid_t snapshot_source_pid(const struct dump_ctx *ctx)
{
	return ctx->snap ? ctx->snap->pid : ctx->pid;
}

static bool has_advice(const VmaEntry *v, const char *flag)
{
	for (size_t i = 0; i < v->n_advice; i++)
		if (!strcmp(v->advice[i], flag))
			return true;
	return false;
}

bool snapshot_lacks(const VmaEntry *v)
{
	return v->kind == VMA_KIND__ANON_SHARED || v->droppable || has_advice(v, "dc") ||
	       has_advice(v, "wf");
}

/* ---- copies of what the child lacks ---- */

struct snapshot_copy *snapshot_copy_add(struct snapshot *s, uint64_t start)
{
	struct snapshot_copy *grown = realloc(s->copies, (s->nr_copies + 1) * sizeof(*grown));

	if (!grown) {
		err_set("out of memory copying memory while frozen");
		return NULL;
	}
	s->copies = grown;
	grown += s->nr_copies++;
	memset(grown, 0, sizeof(*grown));
	grown->start = start;
	return grown;
}

/* The data grows by mremap: no copy of what is there already. */
unsigned char *snapshot_copy_range(struct snapshot_copy *c, uint64_t start, uint64_t end)
{
	size_t len = c->len + (end - start);
	void *p = c->data
		      ? mremap(c->data, c->len, len, MREMAP_MAYMOVE)
		      : mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		err_errno("cannot hold %zu bytes copied while frozen", len);
		return NULL;
	}
	c->data = p;
	if (c->nr == c->cap) {
		uint64_t *r = realloc(c->ranges, (c->cap ? 4 * c->cap : 32) * sizeof(*r));
		if (!r) {
			err_set("out of memory copying memory while frozen");
			return NULL;
		}
		c->ranges = r;
		c->cap = c->cap ? 2 * c->cap : 16;
	}
	c->ranges[2 * c->nr] = start;
	c->ranges[2 * c->nr + 1] = end;
	c->nr++;
	c->len = len;
	return c->data + len - (end - start);
}

const struct snapshot_copy *snapshot_copy_of(const struct snapshot *s, uint64_t start)
{
	for (size_t i = 0; s && i < s->nr_copies; i++)
		if (s->copies[i].start == start)
			return &s->copies[i];
	return NULL;
}

/* ---- the guardian ---- */

/* Waits up to ms for fd to become readable (a pipe closed, a pidfd's
 * process exited). */
static bool wait_readable(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	unsigned long long end = now_us() + ms * 1000ULL;
	int n;

	do {
		n = poll(&p, 1, ms);
	} while (n < 0 && errno == EINTR && now_us() < end);
	return n > 0;
}

/* wait4 injected into one thread of the child's parent, seized for it. */
static int reap_in(const struct dump_ctx *ctx, pid_t tid, long child)
{
	struct inject inj;
	long ret = 0;
	int failed;

	if (ptrace_seize_stop(tid, 5))
		return -1;
	failed = inject_begin(&inj, tid) || inject_setup_borrowed(&inj, &ctx->vmas) ||
		 inject_syscall(&inj, SYS_wait4, child, 0, __WALL | WNOHANG, 0, 0, 0, &ret);
	if (inject_end(&inj))
		failed = 1;
	ptrace_release(tid);
	return failed || ret != child ? -1 : 0;
}

/* The child has its pipe closed: once it has exited, its parent (let go,
 * not traced by cryo any more) waits for it. */
static void reap(const struct dump_ctx *ctx, const struct snapshot *s)
{
	if (s->pidfd < 0)
		usleep(50000); /* cannot be watched: time to read EOF and exit */
	else if (!wait_readable(s->pidfd, CHILD_WAIT_MS)) {
		syscall(SYS_pidfd_send_signal, s->pidfd, SIGKILL, NULL, 0);
		wait_readable(s->pidfd, CHILD_WAIT_MS);
	}
	if (kill(ctx->pid, 0) && errno == ESRCH)
		return; /* the parent is gone, and its zombies with it */
	for (int i = 0; i < ctx->nr_threads; i++)
		if (!reap_in(ctx, ctx->threads[i].tid, s->pid_in_target))
			return;
	pr_warn("the snapshot child %d of pid %d could not be reaped: %s", s->pid, ctx->pid,
		err_text());
}

/* Closes every fd but the guardian's: cmd and the snapshots' fds. */
static void guard_close_others(struct dump_tree *tree, int cmd)
{
	int keep[2 * tree->nr_procs + 1], n = 0;

	keep[n++] = cmd;
	for (int i = 0; i < tree->nr_procs; i++)
		if (tree->procs[i]->snap) {
			keep[n++] = tree->procs[i]->snap->hold_fd;
			keep[n++] = tree->procs[i]->snap->pidfd;
		}
	proc_close_all_but(keep, n);
}

static void __attribute__((noreturn)) guard_main(struct dump_tree *tree, int cmd)
{
	char c;

	/* a ^C meant for cryo must not stop the cleanup half-way */
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	guard_close_others(tree, cmd);
	while (read(cmd, &c, 1) < 0 && errno == EINTR)
		;
	for (int i = 0; i < tree->nr_procs; i++)
		if (tree->procs[i]->snap)
			close(tree->procs[i]->snap->hold_fd);
	for (int i = 0; i < tree->nr_procs; i++)
		if (tree->procs[i]->snap)
			reap(tree->procs[i], tree->procs[i]->snap);
	_exit(0);
}

int snapshot_guard(struct dump_tree *tree)
{
	int p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC))
		return err_errno("cannot make the snapshot guardian's pipe");
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return err_errno("cannot fork the snapshot guardian");
	}
	if (!pid) {
		close(p[1]);
		guard_main(tree, p[0]);
	}
	close(p[0]);
	tree->snap_guard = pid;
	tree->snap_guard_fd = p[1];
	tree->snap_guard_pidfd = syscall(SYS_pidfd_open, pid, 0);
	for (int i = 0; i < tree->nr_procs; i++) {
		struct snapshot *s = tree->procs[i]->snap;
		if (s && s->hold_fd >= 0) {
			close(s->hold_fd); /* the guardian's now: it outlives cryo */
			s->hold_fd = -1;
		}
	}
	return 0;
}

void snapshot_release_all(struct dump_tree *tree)
{
	bool guarded = tree->snap_guard != 0;
	struct err_stash failure; /* a dump's error stays the one reported */

	err_stash(&failure);

	if (guarded) {
		close(tree->snap_guard_fd);
		if (tree->snap_guard_pidfd < 0 ||
		    !wait_readable(tree->snap_guard_pidfd, GUARD_WAIT_MS))
			pr_warn("the snapshot guardian %d is still at work", tree->snap_guard);
		waitpid(tree->snap_guard, NULL, WNOHANG);
		if (tree->snap_guard_pidfd >= 0)
			close(tree->snap_guard_pidfd);
		tree->snap_guard = 0;
	}
	for (int i = 0; i < tree->nr_procs; i++) {
		struct snapshot *s = tree->procs[i]->snap;
		if (!s)
			continue;
		if (!guarded) { /* no guardian was made: cryo does its work */
			if (s->hold_fd >= 0)
				close(s->hold_fd);
			s->hold_fd = -1;
			reap(tree->procs[i], s);
		}
		snapshot_free(s);
		tree->procs[i]->snap = NULL;
	}
	err_unstash(&failure);
}
