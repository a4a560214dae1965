/*
 * task: who the process is and what it registered with the kernel: pid,
 * parent, process group and session, name, personality, resource limits and
 * the parent-death signal; per thread, its name, the rseq area, the robust
 * futex list and clear_child_tid.
 *
 * Most of it is read from /proc and ptrace; clear_child_tid and the
 * parent-death signal only through injected prctl calls. On restore the
 * limits, personality, name and session are set by the new process itself in
 * C; the registrations that point into the target's memory (rseq, robust
 * list, clear_child_tid) are made by injection once that memory exists. The
 * rseq area cryo's own glibc registered, which the new process inherits, is
 * dropped before cryo's memory is unmapped, or the kernel would fault on it.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <linux/membarrier.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "images.h"
#include "infra/inject.h"
#include "share.h"
#include "task.h"
#include "pty.h"
#include "tty.h"
#include "infra/log.h"
#include "infra/uapi.h"

#define RSEQ_FLAG_UNREGISTER 1

static int dump_rlimits(struct dump_ctx *ctx)
{
	CoreEntry *core = ctx->core;
	struct inject_call_desc calls[RLIM_NLIMITS];
	struct rlimit rl[RLIM_NLIMITS];
	uint64_t out;

	if (inject_calls_out(&ctx->inj, RLIM_NLIMITS, sizeof(rl), &out))
		return -1;
	/* asked by the task itself: prlimit from outside needs its uids or
	 * CAP_SYS_RESOURCE; all in one stop (inject_calls) */
	for (int r = 0; r < RLIM_NLIMITS; r++)
		calls[r] = (struct inject_call_desc){SYS_prlimit64,
						     {0, r, 0, out + r * sizeof(rl[0]), 0, 0}};
	if (inject_calls(&ctx->inj, "reading the resource limits", calls, RLIM_NLIMITS) ||
	    inject_read(ctx->pid, out, rl, sizeof(rl)))
		return -1;
	core->rlimits = calloc(RLIM_NLIMITS, sizeof(*core->rlimits));
	if (!core->rlimits)
		return err_set("out of memory");
	for (int r = 0; r < RLIM_NLIMITS; r++) {
		RlimitEntry *e = malloc(sizeof(*e));
		if (!e)
			return err_set("out of memory");
		rlimit_entry__init(e);
		e->resource = r;
		e->cur = rl[r].rlim_cur;
		e->max = rl[r].rlim_max;
		core->rlimits[core->n_rlimits++] = e;
	}
	return 0;
}

static int dump_rseq(struct dump_thread *t)
{
	struct cryo_rseq_configuration conf;
	RseqEntry *e;

	if (ptrace(PTRACE_GET_RSEQ_CONFIGURATION, t->tid, sizeof(conf), &conf) < 0) {
		if (errno == EIO || errno == EINVAL)
			return 0; /* the kernel predates it: rseq cannot be saved */
		return err_errno("cannot read the rseq registration of thread %d", t->tid);
	}
	if (!conf.rseq_abi_pointer)
		return 0;
	e = malloc(sizeof(*e));
	if (!e)
		return err_set("out of memory");
	rseq_entry__init(e);
	e->ptr = conf.rseq_abi_pointer;
	e->size = conf.rseq_abi_size;
	e->signature = conf.signature;
	t->e->rseq = e;
	return 0;
}

static int read_thread_comm(pid_t pid, pid_t tid, char **comm)
{
	char name[64];
	size_t len;

	snprintf(name, sizeof(name), "task/%d/comm", tid);
	if (proc_read(pid, name, comm, &len))
		return -1;
	if (len && (*comm)[len - 1] == '\n')
		(*comm)[len - 1] = '\0';
	return 0;
}

/* What each thread registered with the kernel, and its name. */
int task_dump_thread(struct dump_ctx *ctx, struct dump_thread *t)
{
	ThreadEntry *e = t->e;
	uint64_t head = 0, word = 0;
	size_t len = 0;

	if (read_thread_comm(ctx->pid, t->tid, &e->comm))
		return -1;
	if (syscall(SYS_get_robust_list, t->tid, &head, &len))
		return err_errno("cannot read the robust futex list of thread %d", t->tid);
	e->robust_list_head = head;
	e->robust_list_len = len;
	if (inject_call(t->inj, "reading clear_child_tid", SYS_prctl, PR_GET_TID_ADDRESS,
			t->inj->scratch, 0, 0, 0, 0, NULL) ||
	    inject_read(t->tid, t->inj->scratch, &word, sizeof(word)))
		return -1;
	e->clear_child_tid = word;
	return dump_rseq(t);
}

static int dump_pdeathsig(struct dump_ctx *ctx)
{
	uint64_t word = 0;

	if (inject_call(&ctx->inj, "reading the parent-death signal", SYS_prctl, PR_GET_PDEATHSIG,
			ctx->inj.scratch, 0, 0, 0, 0, NULL) ||
	    inject_read(ctx->pid, ctx->inj.scratch, &word, sizeof(int)))
		return -1;
	ctx->core->pdeathsig = (uint32_t)word;
	word = 0;
	if (inject_call(&ctx->inj, "reading the child-subreaper flag", SYS_prctl,
			PR_GET_CHILD_SUBREAPER, ctx->inj.scratch, 0, 0, 0, 0, NULL) ||
	    inject_read(ctx->pid, ctx->inj.scratch, &word, sizeof(int)))
		return -1;
	ctx->core->has_child_subreaper = true;
	ctx->core->child_subreaper = word != 0;
	return 0;
}

static int read_personality(pid_t pid, uint32_t *persona)
{
	char *buf;

	if (proc_read(pid, "personality", &buf, NULL))
		return -1;
	*persona = strtoul(buf, NULL, 16);
	free(buf);
	return 0;
}

/* The REGISTER_* commands the process gave membarrier(2): the kernel
 * tells them since 6.3; before, nothing is recorded (and a process that
 * relies on one would get EPERM after restore). */
static int dump_membarrier(struct dump_ctx *ctx)
{
	long mask;

	if (inject_syscall(&ctx->inj, SYS_membarrier, MEMBARRIER_CMD_GET_REGISTRATIONS, 0, 0, 0, 0,
			   0, &mask))
		return -1;
	if (mask >= 0) {
		ctx->core->has_membarrier_registrations = true;
		ctx->core->membarrier_registrations = mask;
	}
	return 0;
}

int task_dump(struct dump_ctx *ctx)
{
	CoreEntry *core = ctx->core;
	/* as it was before the freeze, which shows every task as traced */
	char state[2] = {ctx->state, '\0'};

	core->pid = ctx->pid;
	core->ppid = ctx->stat.ppid;
	core->pgid = ctx->stat.pgrp;
	core->sid = ctx->stat.session;
	core->comm = strdup(ctx->stat.comm);
	core->state = strdup(state);
	if (!core->comm || !core->state)
		return err_set("out of memory");
	core->exit_signal = ctx->stat.exit_signal;
	if (ctx->stop_signal) {
		core->has_stop_signal = true;
		core->stop_signal = ctx->stop_signal;
	}
	if (read_personality(ctx->pid, &core->personality))
		return -1;
	return share_dump(ctx) || dump_rlimits(ctx) || dump_pdeathsig(ctx) || dump_membarrier(ctx)
		   ? -1
		   : 0;
}

int task_write(struct dump_ctx *ctx)
{
	return image_write_one(&ctx->tree->dir, IMAGE_CORE, ctx->pid, &ctx->core->base);
}

/* core-PID.img: a zombie's holds only its ids and its wait status. */
int task_load(struct restore_ctx *ctx)
{
	if (image_load_one(&ctx->tree->dir, IMAGE_CORE, ctx->pid, (ProtobufCMessage **)&ctx->core))
		return -1;
	if (ctx->core->pid != ctx->pid)
		return err_set("core-%d.img describes pid %d", ctx->pid, ctx->core->pid);
	ctx->zombie = !strcmp(ctx->core->state, "Z");
	return 0;
}

int task_validate(struct restore_ctx *ctx)
{
	char comm[64] = "";

	if (ctx->pid <= 1)
		return err_set("checkpoint holds an invalid pid %d", ctx->pid);
	if (kill(ctx->pid, 0) == 0 || errno == EPERM) {
		proc_readlink(ctx->pid, "exe", comm, sizeof(comm));
		return err_set("pid %d is already in use%s%s%s: cannot restore the checkpoint "
			       "with its original pid",
			       ctx->pid, comm[0] ? " (by " : "", comm, comm[0] ? ")" : "");
	}
	for (size_t i = 0; i < ctx->core->n_rlimits; i++)
		if (ctx->core->rlimits[i]->resource >= RLIM_NLIMITS)
			return err_set("core-%d.img: bad resource limit %u", ctx->pid,
				       ctx->core->rlimits[i]->resource);
	return 0;
}

/* A hard limit above ours cannot be raised without CAP_SYS_RESOURCE: the
 * limit is then kept as high as allowed, with a warning. */
static int restore_rlimit(const RlimitEntry *e)
{
	struct rlimit want = {e->cur, e->max}, have;

	if (!setrlimit(e->resource, &want))
		return 0;
	if (errno != EPERM || getrlimit(e->resource, &have))
		return err_errno("cannot set resource limit %u", e->resource);
	want.rlim_max = have.rlim_max;
	if (want.rlim_cur > want.rlim_max)
		want.rlim_cur = want.rlim_max;
	pr_warn("resource limit %u: hard limit %llu cannot be raised here, kept at %llu",
		e->resource, (unsigned long long)e->max, (unsigned long long)have.rlim_max);
	if (setrlimit(e->resource, &want))
		return err_errno("cannot set resource limit %u", e->resource);
	return 0;
}

/* The group a saved group id stands for now: the root's own group may have
 * been outside the checkpoint, and is now the one the root restored into. */
pid_t task_actual_group(const struct restore_ctx *ctx, pid_t pgid)
{
	const struct restore_ctx *root = ctx->tree->procs[0];

	if (pgid == root->core->pgid)
		return getpgid(root->pid);
	return pgid;
}

/* Before the process forks: the session or the group it leads, for its
 * children to be born in (the root's are its own or, when led from outside
 * the checkpoint, the restorer's). A member joins its group later. */
int task_make_ids(struct restore_ctx *ctx)
{
	const CoreEntry *core = ctx->core;

	if (!ctx->parent && ctx->opts->shell_job)
		return tty_restore_session(ctx);
	if (core->sid == core->pid) {
		if (setsid() < 0)
			return err_errno("cannot create the session of pid %d", ctx->pid);
	} else if (core->pgid == core->pid || ctx->keeps_group) {
		if (setpgid(0, 0))
			return err_errno("cannot create the process group of pid %d", ctx->pid);
	} else if (!ctx->parent) {
		pr_info("pid %d joins the restorer's session and group: its own (%d/%d) are "
			"led by processes outside the checkpoint",
			ctx->pid, core->sid, core->pgid);
	}
	return 0;
}

int task_restore_session(struct restore_ctx *ctx)
{
	/* then its terminal, if it leads a session of a pty of the tree */
	return task_make_ids(ctx) || pty_restore_session(ctx) ? -1 : 0;
}

/* Its leader may be made later, elsewhere in the tree: the group exists
 * once that leader runs (5 s at most). */
int task_join_group(struct restore_ctx *ctx)
{
	const CoreEntry *core = ctx->core;
	struct timespec tick = {0, 200 * 1000};
	pid_t group;

	if (!ctx->parent || core->sid == core->pid || core->pgid == core->pid)
		return 0;
	group = task_actual_group(ctx, core->pgid);
	for (int n = 0; getpgrp() != group && setpgid(0, group); n++) {
		if (errno != EPERM || n > 25000)
			return err_errno("pid %d cannot join process group %d", ctx->pid,
					 core->pgid);
		nanosleep(&tick, NULL);
	}
	return 0;
}

int task_restore_child(struct restore_ctx *ctx)
{
	const CoreEntry *core = ctx->core;

	for (size_t i = 0; i < core->n_rlimits; i++)
		if (restore_rlimit(core->rlimits[i]))
			return -1;
	if (personality(core->personality) < 0)
		return err_errno("cannot set personality 0x%x", core->personality);
	if (prctl(PR_SET_NAME, core->comm))
		return err_errno("cannot set the name of pid %d", ctx->pid);
	return 0;
}

int task_restore_unregister(struct restore_ctx *ctx)
{
	struct cryo_rseq_configuration conf;

	if (ptrace(PTRACE_GET_RSEQ_CONFIGURATION, ctx->child, sizeof(conf), &conf) < 0 ||
	    !conf.rseq_abi_pointer)
		return 0;
	return inject_call(&ctx->inj, "dropping the inherited rseq area", SYS_rseq,
			   conf.rseq_abi_pointer, conf.rseq_abi_size, RSEQ_FLAG_UNREGISTER,
			   conf.signature, 0, 0, NULL);
}

/* Registrations belong to the mm: once the address space is the target's. */
static int restore_membarrier(struct restore_ctx *ctx)
{
	uint32_t mask = ctx->core->membarrier_registrations;

	for (int bit = 0; bit < 32; bit++)
		if ((mask & (1u << bit)) &&
		    inject_call(&ctx->inj, "registering for membarrier", SYS_membarrier, 1u << bit,
				0, 0, 0, 0, 0, NULL))
			return -1;
	return 0;
}

int task_restore(struct restore_ctx *ctx)
{
	if (inject_call(&ctx->inj, "setting the parent-death signal", SYS_prctl, PR_SET_PDEATHSIG,
			ctx->core->pdeathsig, 0, 0, 0, 0, NULL))
		return -1;
	/* only once the whole tree is made: a subreaper would have taken the
	 * orphans that the restore sends to their parents (tree.c) */
	if (ctx->core->child_subreaper &&
	    inject_call(&ctx->inj, "making it a child subreaper", SYS_prctl, PR_SET_CHILD_SUBREAPER,
			1, 0, 0, 0, 0, NULL))
		return -1;
	return restore_membarrier(ctx);
}

int task_restore_thread(struct restore_ctx *ctx, struct restore_thread *t)
{
	const ThreadEntry *e = t->e;
	char name[16] = "";
	uint64_t addr;

	if (e->rseq && inject_call(t->inj, "registering the rseq area", SYS_rseq, e->rseq->ptr,
				   e->rseq->size, 0, e->rseq->signature, 0, 0, NULL))
		return -1;
	if (e->robust_list_head &&
	    inject_call(t->inj, "setting the robust futex list", SYS_set_robust_list,
			e->robust_list_head, e->robust_list_len, 0, 0, 0, 0, NULL))
		return -1;
	if (inject_call(t->inj, "setting clear_child_tid", SYS_set_tid_address, e->clear_child_tid,
			0, 0, 0, 0, 0, NULL))
		return -1;
	if (t->tid == ctx->child)
		return 0; /* the leader named itself while setting up */
	strncpy(name, e->comm, sizeof(name) - 1);
	if (inject_scratch_put(t->inj, 0, name, sizeof(name), &addr))
		return -1;
	return inject_call(t->inj, "naming a thread", SYS_prctl, PR_SET_NAME, addr, 0, 0, 0, 0,
			   NULL);
}
