/*
 * cpu: general-purpose registers and the FPU/SSE/AVX state (xsave), per thread.
 *
 * Both come from PTRACE_GETREGSET (NT_PRSTATUS, NT_X86_XSTATE) and go back
 * with PTRACE_SETREGSET just before the restored task is released. A task
 * stopped inside a system call is saved as if about to enter it again: the
 * kernel would restart it on resume (-ERESTARTSYS and friends), so the saved
 * ip is moved back over the 2-byte `syscall` and rax holds the call number.
 * Calls the kernel would resume through restart_syscall() instead
 * (-ERESTART_RESTARTBLOCK: relative nanosleep and clock_nanosleep, poll,
 * futex with a timeout) keep what they resume with in the kernel's restart
 * block, which does not survive a checkpoint: they return EINTR after the
 * restore, as after a signal, so a sleep does not start over. The kernel
 * wrote the time left where the caller gave room for it when it
 * interrupted the call. An absolute sleep (-ERESTARTNOHAND) is re-entered
 * and sleeps to its deadline; select, pselect and ppoll have already
 * updated their timeout and are re-entered with what is left. With
 * --leave-running the original keeps its registers and restart block.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "infra/log.h"
#include "infra/ptrace.h"

#define ERESTARTSYS	      512
#define ERESTARTNOINTR	      513
#define ERESTARTNOHAND	      514
#define ERESTART_RESTARTBLOCK 516
#define XSAVE_MAX	      (64 * 1024)

static void regs_to_entry(const struct user_regs_struct *r, UserRegs *e)
{
	user_regs__init(e);
	e->r15 = r->r15, e->r14 = r->r14, e->r13 = r->r13, e->r12 = r->r12;
	e->bp = r->rbp, e->bx = r->rbx, e->r11 = r->r11, e->r10 = r->r10;
	e->r9 = r->r9, e->r8 = r->r8, e->ax = r->rax, e->cx = r->rcx;
	e->dx = r->rdx, e->si = r->rsi, e->di = r->rdi, e->orig_ax = r->orig_rax;
	e->ip = r->rip, e->cs = r->cs, e->flags = r->eflags, e->sp = r->rsp;
	e->ss = r->ss, e->fs_base = r->fs_base, e->gs_base = r->gs_base;
	e->ds = r->ds, e->es = r->es, e->fs = r->fs, e->gs = r->gs;
}

static void entry_to_regs(const UserRegs *e, struct user_regs_struct *r)
{
	r->r15 = e->r15, r->r14 = e->r14, r->r13 = e->r13, r->r12 = e->r12;
	r->rbp = e->bp, r->rbx = e->bx, r->r11 = e->r11, r->r10 = e->r10;
	r->r9 = e->r9, r->r8 = e->r8, r->rax = e->ax, r->rcx = e->cx;
	r->rdx = e->dx, r->rsi = e->si, r->rdi = e->di, r->orig_rax = e->orig_ax;
	r->rip = e->ip, r->cs = e->cs, r->eflags = e->flags, r->rsp = e->sp;
	r->ss = e->ss, r->fs_base = e->fs_base, r->gs_base = e->gs_base;
	r->ds = e->ds, r->es = e->es, r->fs = e->fs, r->gs = e->gs;
}

/* Rewinds a task stopped in a restartable syscall to re-enter it; one the
 * kernel would resume through its restart block returns EINTR instead. */
static bool rewind_syscall(struct user_regs_struct *r)
{
	long nr = (long)r->orig_rax, err = -(long)r->rax;

	r->orig_rax = -1;
	if (nr < 0)
		return false;
	if (err == ERESTART_RESTARTBLOCK) {
		r->rax = -EINTR;
		return false;
	}
	if (err != ERESTARTSYS && err != ERESTARTNOINTR && err != ERESTARTNOHAND)
		return false;
	r->rax = nr;
	r->rip -= 2;
	return true;
}

int cpu_dump_thread(struct dump_ctx *ctx, struct dump_thread *t)
{
	struct user_regs_struct regs = t->inj->saved;
	ThreadEntry *te = t->e;
	UserRegs *e = malloc(sizeof(*e));
	size_t len = ctx->tree->kd.xsave_size ? ctx->tree->kd.xsave_size : XSAVE_MAX;
	void *xsave = malloc(XSAVE_MAX);

	te->regs = e;
	te->xsave.data = xsave;
	if (!e || !xsave)
		return err_set("out of memory dumping registers of thread %d", t->tid);
	user_regs__init(e);
	if (len > XSAVE_MAX)
		len = XSAVE_MAX;
	if (ptrace_get_xstate(t->tid, xsave, &len))
		return -1;
	if (rewind_syscall(&regs)) {
		te->has_restart_syscall = true;
		te->restart_syscall = regs.rax;
	}
	regs_to_entry(&regs, e);
	te->xsave.len = len;
	return 0;
}

int cpu_validate_thread(struct restore_ctx *ctx, const ThreadEntry *e)
{
	const InventoryEntry *inv = ctx->tree->dir.inventory;

	if (inv->xcr0 & ~ctx->tree->kd.xcr0)
		return err_set("the checkpoint's CPU state uses features this CPU lacks "
			       "(xcr0 0x%llx, this CPU 0x%llx)",
			       (unsigned long long)inv->xcr0,
			       (unsigned long long)ctx->tree->kd.xcr0);
	if (e->xsave.len < 576 || e->xsave.len > XSAVE_MAX)
		return err_set("core-%d.img: bad xsave area of %zu bytes in thread %d", ctx->pid,
			       e->xsave.len, e->tid);
	if (e->regs->cs != 0x33 || e->regs->ss != 0x2b)
		return err_set("core-%d.img: thread %d is not 64-bit (cs 0x%llx); not supported",
			       ctx->pid, e->tid, (unsigned long long)e->regs->cs);
	return 0;
}

int cpu_restore_thread(struct restore_ctx *ctx, struct restore_thread *t)
{
	struct user_regs_struct regs;

	(void)ctx;
	memset(&regs, 0, sizeof(regs));
	entry_to_regs(t->e->regs, &regs);
	if (ptrace_set_xstate(t->tid, t->e->xsave.data, t->e->xsave.len))
		return -1;
	return ptrace_set_regs(t->tid, &regs);
}
