/*
 * signals: dispositions and the process-directed queue (per process); the
 * blocked mask, the thread-directed queue and the alternate signal stack
 * (per thread).
 *
 * The blocked mask and the queues are read with ptrace (PTRACE_GETSIGMASK,
 * PTRACE_PEEKSIGINFO), so queued signals stay queued in the original. The
 * dispositions and sigaltstack are not exposed anywhere else and are read
 * by injected rt_sigaction/sigaltstack calls (the 62 rt_sigaction in one
 * batch, inject_calls: one stop instead of 62). On restore the dispositions
 * and the stack are set by injection, the queued signals are re-queued by
 * the process to itself (rt_tgsigqueueinfo keeps every siginfo field), and
 * the mask is set last, so nothing is delivered before the task runs.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>

#include "infra/inject.h"
#include "posix_timers.h"
#include "signals.h"
#include "infra/log.h"
#include "infra/ptrace.h"

#define NSIG_KERNEL  64
#define SIGINFO_SIZE 128

struct kernel_sigaction {
	uint64_t handler, flags, restorer, mask;
};

struct kernel_stack {
	uint64_t sp;
	int32_t flags;
	int32_t pad;
	uint64_t size;
};

static bool reads_action(int sig)
{
	return sig != SIGKILL && sig != SIGSTOP;
}

/* Every handler in one stop of the tracee where it can be: one
 * rt_sigaction(sig, NULL, &old) a signal, the old actions into ka[sig]. */
static int read_actions(struct dump_ctx *ctx, struct kernel_sigaction *ka)
{
	struct inject_call_desc calls[NSIG_KERNEL];
	size_t len = (NSIG_KERNEL + 1) * sizeof(*ka), n = 0;
	uint64_t out;

	if (inject_calls_out(&ctx->inj, NSIG_KERNEL, len, &out))
		return -1;
	for (int sig = 1; sig <= NSIG_KERNEL; sig++)
		if (reads_action(sig))
			calls[n++] = (struct inject_call_desc){
			    SYS_rt_sigaction, {sig, 0, out + sig * sizeof(*ka), 8, 0, 0}};
	if (inject_calls(&ctx->inj, "reading the signal handlers", calls, n))
		return -1;
	return inject_read(ctx->pid, out, ka, len);
}

static int dump_sigaction(struct dump_ctx *ctx, int sig, const struct kernel_sigaction *ka)
{
	SigactionEntry *e;

	if (!ka->handler && !ka->flags && !ka->mask)
		return 0; /* SIG_DFL, nothing to restore */
	e = malloc(sizeof(*e));
	if (!e)
		return err_set("out of memory");
	sigaction_entry__init(e);
	e->sig = sig;
	e->handler = ka->handler;
	e->flags = ka->flags;
	e->restorer = ka->restorer;
	e->mask = ka->mask;
	ctx->core->sigactions[ctx->core->n_sigactions++] = e;
	return 0;
}

static int dump_queue(pid_t tid, bool shared, size_t *n, ProtobufCBinaryData **out)
{
	unsigned char buf[32 * SIGINFO_SIZE];
	struct __ptrace_peeksiginfo_args args = {
	    .off = 0, .flags = shared ? PTRACE_PEEKSIGINFO_SHARED : 0, .nr = 32};

	*n = 0;
	*out = NULL;
	for (;;) {
		long got = ptrace(PTRACE_PEEKSIGINFO, tid, &args, buf);
		if (got < 0)
			return err_errno("cannot read queued signals of thread %d", tid);
		if (got == 0)
			return 0;
		*out = realloc(*out, (*n + got) * sizeof(**out));
		if (!*out)
			return err_set("out of memory");
		for (long i = 0; i < got; i++) {
			void *si = malloc(SIGINFO_SIZE);
			if (!si)
				return err_set("out of memory");
			memcpy(si, buf + i * SIGINFO_SIZE, SIGINFO_SIZE);
			(*out)[(*n)++] = (ProtobufCBinaryData){.len = SIGINFO_SIZE, .data = si};
		}
		args.off += got;
	}
}

static int dump_altstack(struct dump_thread *t)
{
	struct kernel_stack ss;

	if (inject_call(t->inj, "reading the signal stack", SYS_sigaltstack, 0, t->inj->scratch, 0,
			0, 0, 0, NULL) ||
	    inject_read(t->tid, t->inj->scratch, &ss, sizeof(ss)))
		return -1;
	t->e->altstack_sp = ss.sp;
	t->e->altstack_size = ss.size;
	t->e->altstack_flags = ss.flags;
	return 0;
}

/* Process-wide: the dispositions and the process-directed queue. */
int signals_dump(struct dump_ctx *ctx)
{
	CoreEntry *core = ctx->core;

	struct kernel_sigaction ka[NSIG_KERNEL + 1] = {0};

	core->sigactions = calloc(NSIG_KERNEL, sizeof(*core->sigactions));
	if (!core->sigactions)
		return err_set("out of memory");
	if (read_actions(ctx, ka))
		return -1;
	for (int sig = 1; sig <= NSIG_KERNEL; sig++)
		if (reads_action(sig) && dump_sigaction(ctx, sig, &ka[sig]))
			return -1;
	return dump_queue(ctx->pid, true, &core->n_pending_shared, &core->pending_shared);
}

/* Per thread: the blocked mask, the thread-directed queue, the signal stack. */
int signals_dump_thread(struct dump_ctx *ctx, struct dump_thread *t)
{
	(void)ctx;
	t->e->blocked = t->inj->saved_mask;
	if (dump_queue(t->tid, false, &t->e->n_pending, &t->e->pending))
		return -1;
	return dump_altstack(t);
}

static int restore_sigaction(struct restore_ctx *ctx, const SigactionEntry *e)
{
	struct kernel_sigaction ka = {e->handler, e->flags, e->restorer, e->mask};
	uint64_t addr;

	if (e->sig < 1 || e->sig > NSIG_KERNEL || e->sig == SIGKILL || e->sig == SIGSTOP)
		return err_set("core-%d.img: handler for bad signal %u", ctx->pid, e->sig);
	if (inject_scratch_put(&ctx->inj, 0, &ka, sizeof(ka), &addr))
		return -1;
	return inject_call(&ctx->inj, "restoring a signal handler", SYS_rt_sigaction, e->sig, addr,
			   0, 8, 0, 0, NULL);
}

/* Queues a signal again, to the process (tid 0, sent by the leader) or to
 * one thread (sent by that thread): the kernel accepts a siginfo that looks
 * like kill()'s or tgkill()'s only from the task whose id it is sent to. */
static int requeue(struct restore_ctx *ctx, struct inject *inj, const ProtobufCBinaryData *si,
		   pid_t tid)
{
	siginfo_t info;
	uint64_t addr;

	if (si->len != SIGINFO_SIZE)
		return err_set("core-%d.img: bad queued signal record", ctx->pid);
	memcpy(&info, si->data, sizeof(info));
	if (posix_timers_requeues(ctx->core, &info))
		return 0; /* the timer queues it again itself */
	if (inject_scratch_put(inj, 0, &info, sizeof(info), &addr))
		return -1;
	if (!tid)
		return inject_call(inj, "re-queueing a signal", SYS_rt_sigqueueinfo, ctx->child,
				   info.si_signo, addr, 0, 0, 0, NULL);
	return inject_call(inj, "re-queueing a signal", SYS_rt_tgsigqueueinfo, ctx->child, tid,
			   info.si_signo, addr, 0, 0, NULL);
}

int signals_restore(struct restore_ctx *ctx)
{
	const CoreEntry *core = ctx->core;

	for (size_t i = 0; i < core->n_sigactions; i++)
		if (restore_sigaction(ctx, core->sigactions[i]))
			return -1;
	for (size_t i = 0; i < core->n_pending_shared; i++)
		if (requeue(ctx, &ctx->inj, &core->pending_shared[i], 0))
			return -1;
	return 0;
}

int signals_restore_thread(struct restore_ctx *ctx, struct restore_thread *t)
{
	const ThreadEntry *e = t->e;
	struct kernel_stack ss = {.sp = e->altstack_sp,
				  .flags = e->altstack_flags & ~SS_ONSTACK,
				  .size = e->altstack_size};

	if (!(ss.flags & SS_DISABLE) || ss.sp) {
		uint64_t addr;
		if (inject_scratch_put(t->inj, 0, &ss, sizeof(ss), &addr) ||
		    inject_call(t->inj, "restoring the signal stack", SYS_sigaltstack, addr, 0, 0,
				0, 0, 0, NULL))
			return -1;
	}
	for (size_t i = 0; i < e->n_pending; i++)
		if (requeue(ctx, t->inj, &e->pending[i], t->tid))
			return -1;
	return 0;
}

int signals_restore_mask(struct restore_ctx *ctx, struct restore_thread *t)
{
	(void)ctx;
	return ptrace_set_sigmask(t->tid, t->e->blocked);
}
