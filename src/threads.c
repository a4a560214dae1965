/*
 * threads: every thread of the process, each with its own tid.
 *
 * Dump: the freeze seizes every tid listed in /proc/PID/task and lists
 * again until a pass finds no new one; a stopped thread cannot clone, so
 * the set is then final. Each thread is injected into in turn through the
 * leader's vDSO `syscall` and scratch (they share one address space) to read
 * what only it can tell; cpu.c, signals.c and task.c fill its ThreadEntry.
 *
 * Restore: once the address space is rebuilt, the leader is made to run
 * clone3(CLONE_THREAD, set_tid = the tid) through the trampoline, under
 * PTRACE_O_TRACECLONE, so every new thread starts stopped and traced and
 * never runs a user instruction of its own before its registers are set.
 * Each thread then registers its rseq area, robust list and clear_child_tid,
 * gets its signal stack, name and credentials, and all are released
 * together after the leader has unmapped the trampoline.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/sched.h>

#include "cpu.h"
#include "creds.h"
#include "infra/inject.h"
#include "schedule.h"
#include "signals.h"
#include "task.h"
#include "threads.h"
#include "infra/log.h"
#include "infra/ptrace.h"

#define CLONE_THREAD_FLAGS                                                                         \
	(CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM)

/* ---- dump ---- */

static struct dump_thread *find_thread(struct dump_ctx *ctx, pid_t tid)
{
	for (int i = 0; i < ctx->nr_threads; i++)
		if (ctx->threads[i].tid == tid)
			return &ctx->threads[i];
	return NULL;
}

static bool task_exists(pid_t pid, pid_t tid)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/task/%d", pid, tid);
	return access(path, F_OK) == 0;
}

/* A process in a group stop, seized, reports that stop (PTRACE_EVENT_STOP)
 * with the signal that stopped it in the siginfo. */
static int read_stop_signal(struct dump_ctx *ctx)
{
	siginfo_t si;

	if (ptrace(PTRACE_GETSIGINFO, ctx->pid, 0, &si))
		return err_errno("cannot read the stop signal of pid %d", ctx->pid);
	ctx->stop_signal = si.si_signo;
	return 0;
}

/* CRIU's default for --timeout: a task that does not stop by then sleeps
 * where no signal wakes it, and the dump gives up rather than hang. */
#define FREEZE_TIMEOUT_S 10

/* Seizes and stops one thread; a thread that exited meanwhile is skipped. */
static int freeze_one(struct dump_ctx *ctx, pid_t tid, int *added)
{
	struct dump_thread *grown, *t;

	grown = realloc(ctx->threads, (ctx->nr_threads + 1) * sizeof(*grown));
	if (!grown)
		return err_set("out of memory");
	ctx->threads = grown;
	if (ptrace_seize_stop(tid, ctx->opts->timeout ? ctx->opts->timeout : FREEZE_TIMEOUT_S)) {
		if (tid != ctx->pid && !task_exists(ctx->pid, tid))
			return 0;
		return err_wrap("freezing thread %d of pid %d", tid, ctx->pid);
	}
	if (tid == ctx->pid && ctx->state == 'T' && read_stop_signal(ctx))
		return -1;
	t = &ctx->threads[ctx->nr_threads++];
	memset(t, 0, sizeof(*t));
	t->tid = tid;
	t->seized = true;
	(*added)++;
	return 0;
}

/* One pass over /proc/PID/task; *added counts the threads newly frozen. */
static int freeze_pass(struct dump_ctx *ctx, int *added)
{
	char path[64];
	struct dirent *de;
	DIR *d;
	int ret = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", ctx->pid);
	d = opendir(path);
	if (!d)
		return err_errno("cannot list the threads of pid %d", ctx->pid);
	while (!ret && (de = readdir(d))) {
		pid_t tid = atoi(de->d_name);
		if (tid > 0 && !find_thread(ctx, tid))
			ret = freeze_one(ctx, tid, added);
	}
	closedir(d);
	return ret;
}

int threads_freeze(struct dump_ctx *ctx)
{
	int added = 0;

	/* the leader first: threads[0] */
	if (freeze_one(ctx, ctx->pid, &added))
		return -1;
	if (!added)
		return err_set("pid %d exited while being frozen", ctx->pid);
	do {
		added = 0;
		if (freeze_pass(ctx, &added))
			return -1;
	} while (added);
	/* the array no longer moves */
	for (int i = 0; i < ctx->nr_threads; i++)
		ctx->threads[i].inj = i == 0 ? &ctx->inj : &ctx->threads[i].own_inj;
	return 0;
}

static int dump_one(struct dump_ctx *ctx, struct dump_thread *t)
{
	if (t->inj != &ctx->inj) {
		if (inject_begin_thread(t->inj, t->tid, &ctx->inj))
			return -1;
		t->injecting = true;
	}
	t->e = malloc(sizeof(*t->e));
	if (!t->e)
		return err_set("out of memory");
	thread_entry__init(t->e);
	t->e->tid = t->tid;
	ctx->core->threads[ctx->core->n_threads++] = t->e;
	if (cpu_dump_thread(ctx, t) || signals_dump_thread(ctx, t) || task_dump_thread(ctx, t) ||
	    sched_dump_thread(ctx, t))
		return err_wrap("thread %d", t->tid);
	if (t->injecting) {
		t->injecting = false;
		return inject_end(t->inj);
	}
	return 0;
}

/* Needs the leader's injection begun and its scratch mapped. */
int threads_dump(struct dump_ctx *ctx)
{
	ctx->core->threads = calloc(ctx->nr_threads, sizeof(*ctx->core->threads));
	if (!ctx->core->threads)
		return err_set("out of memory");
	for (int i = 0; i < ctx->nr_threads; i++)
		if (dump_one(ctx, &ctx->threads[i]))
			return -1;
	return 0;
}

/* Puts every thread back as it was (the leader's injection is ended by the
 * caller first) and detaches. */
void threads_release(struct dump_ctx *ctx)
{
	for (int i = 0; i < ctx->nr_threads; i++) {
		struct dump_thread *t = &ctx->threads[i];
		if (t->injecting && inject_end(t->inj))
			pr_warn("thread %d may not go on exactly as it was: %s", t->tid,
				err_text());
		t->injecting = false;
		if (t->seized && ptrace_release(t->tid))
			pr_warn("thread %d: %s", t->tid, err_text());
		t->seized = false;
	}
}

static void reap(pid_t tid)
{
	while (waitpid(tid, NULL, __WALL) < 0 && errno == EINTR)
		;
}

/* Kills the process once its checkpoint is committed; every traced thread
 * reports its exit to cryo and is reaped here, the leader last. */
int threads_kill(struct dump_ctx *ctx)
{
	if (kill(ctx->pid, SIGKILL))
		return err_errno("checkpoint committed, but pid %d could not be killed", ctx->pid);
	for (int i = ctx->nr_threads - 1; i >= 0; i--) {
		reap(ctx->threads[i].tid);
		ctx->threads[i].seized = false;
	}
	return 0;
}

void threads_dump_free(struct dump_ctx *ctx)
{
	free(ctx->threads);
	ctx->threads = NULL;
	ctx->nr_threads = 0;
}

/* ---- restore ---- */

static bool tid_in_use(pid_t tid)
{
	return kill(tid, 0) == 0 || errno != ESRCH;
}

int threads_validate(struct restore_ctx *ctx)
{
	const CoreEntry *core = ctx->core;

	if (!core->n_threads || core->threads[0]->tid != ctx->pid)
		return err_set("core-%d.img: the first thread is not the leader", ctx->pid);
	ctx->threads = calloc(core->n_threads, sizeof(*ctx->threads));
	if (!ctx->threads)
		return err_set("out of memory");
	ctx->nr_threads = core->n_threads;
	for (size_t i = 0; i < core->n_threads; i++) {
		const ThreadEntry *e = core->threads[i];
		struct restore_thread *t = &ctx->threads[i];
		for (size_t j = 0; j < i; j++)
			if (core->threads[j]->tid == e->tid)
				return err_set("core-%d.img: thread %d appears twice", ctx->pid,
					       e->tid);
		if (e->tid <= 1)
			return err_set("core-%d.img: bad thread id %d", ctx->pid, e->tid);
		if (i > 0 && tid_in_use(e->tid))
			return err_set("thread id %d of pid %d is already in use: cannot restore "
				       "the checkpoint with its original ids",
				       e->tid, ctx->pid);
		if (cpu_validate_thread(ctx, e))
			return -1;
		t->tid = e->tid;
		t->e = e;
		t->inj = i == 0 ? &ctx->inj : &t->own_inj;
	}
	return 0;
}

/* The leader runs clone3 through the trampoline; the new thread starts
 * stopped (auto-attached by PTRACE_O_TRACECLONE) and is taken over at once. */
static int create_one(struct restore_ctx *ctx, struct restore_thread *t)
{
	pid_t set_tid = t->tid;
	struct clone_args args = {.flags = CLONE_THREAD_FLAGS, .set_tid_size = 1};
	uint64_t tid_addr, args_addr;
	long tid;
	int status;

	if (inject_scratch_put(&ctx->inj, 256, &set_tid, sizeof(set_tid), &tid_addr))
		return -1;
	args.set_tid = tid_addr;
	if (inject_scratch_put(&ctx->inj, 0, &args, sizeof(args), &args_addr))
		return -1;
	if (inject_call(&ctx->inj, "creating a thread (clone3)", SYS_clone3, args_addr,
			sizeof(args), 0, 0, 0, 0, &tid))
		return err_wrap("thread %d", t->tid);
	if (tid != t->tid)
		return err_set("thread %d was created as %ld", t->tid, tid);
	t->created = true;
	if (ptrace_wait_stop(t->tid, &status) < 0)
		return -1;
	return inject_begin_thread(t->inj, t->tid, &ctx->inj);
}

int threads_restore_create(struct restore_ctx *ctx)
{
	ctx->threads[0].created = true;
	if (ctx->nr_threads < 2)
		return 0;
	if (ptrace(PTRACE_SETOPTIONS, ctx->child, 0, PTRACE_O_EXITKILL | PTRACE_O_TRACECLONE))
		return err_errno("cannot set ptrace options on pid %d", ctx->pid);
	for (size_t i = 1; i < ctx->nr_threads; i++)
		if (create_one(ctx, &ctx->threads[i]))
			return -1;
	return 0;
}

int threads_restore(struct restore_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nr_threads; i++) {
		struct restore_thread *t = &ctx->threads[i];
		if (task_restore_thread(ctx, t) || signals_restore_thread(ctx, t))
			return err_wrap("thread %d", t->tid);
	}
	return 0;
}

int threads_restore_creds(struct restore_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nr_threads; i++)
		if (creds_restore_thread(ctx, &ctx->threads[i]))
			return err_wrap("thread %d", ctx->threads[i].tid);
	return 0;
}

static bool stopped(const CoreEntry *core)
{
	return !strcmp(core->state, "T");
}

static int stop_signal(const CoreEntry *core)
{
	int sig = core->has_stop_signal ? (int)core->stop_signal : SIGSTOP;

	return sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU ? sig : SIGSTOP;
}

static int detach(struct restore_thread *t, int sig)
{
	if (ptrace(PTRACE_DETACH, t->tid, 0, sig))
		return err_errno("cannot detach from thread %d", t->tid);
	t->created = false;
	return 0;
}

/* Registers and masks go in once nothing more is injected (the trampoline
 * is gone); then every thread is let go. */
int threads_restore_release(struct restore_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nr_threads; i++) {
		struct restore_thread *t = &ctx->threads[i];
		if (cpu_restore_thread(ctx, t) || signals_restore_mask(ctx, t))
			return -1;
	}
	if (stopped(ctx->core) || ctx->opts->leave_stopped) {
		/* released stopped by its own stop signal (or SIGSTOP for
		 * --leave-stopped), its parent told of it: the leader first, so
		 * that every other thread joins the group stop before it could run */
		if (detach(&ctx->threads[0], stop_signal(ctx->core)))
			return -1;
		for (size_t i = 1; i < ctx->nr_threads; i++)
			if (detach(&ctx->threads[i], 0))
				return -1;
		return 0;
	}
	for (size_t i = ctx->nr_threads; i-- > 0;)
		if (detach(&ctx->threads[i], 0))
			return -1;
	return 0;
}

void threads_restore_free(struct restore_ctx *ctx)
{
	free(ctx->threads);
	ctx->threads = NULL;
	ctx->nr_threads = 0;
}
