/*
 * Syscall injection by single-stepping a `syscall` instruction (inject.h).
 * After the step the kernel reports a SIGTRAP stop at syscall exit; the
 * next injection (or inject_end) suppresses it. orig_rax is set to -1 for
 * injected calls so that the kernel's syscall-restart logic, which runs
 * when a stop ends, never touches them; inject_end() restores the original
 * orig_rax/rax so that an interrupted syscall restarts as the kernel would.
 *
 * inject_setup() needs a `syscall` before it can map anything: it borrows
 * the first byte pair 0f 05 of an executable mapping (the vDSO's first),
 * read through /proc/PID/mem. A process with none (no vDSO, and code that
 * is unreadable or has no such pair) gets one written over the word at its
 * instruction pointer with PTRACE_POKEDATA, which writes even read-only
 * code, as a debugger's breakpoint does: just long enough to map cryo's
 * code page (two injected calls), then the word is put back, on every path.
 *
 * In a process being dumped (inject_setup) every call puts the task's own
 * registers and signal mask back as soon as it is done, so that between
 * two calls the task is exactly as it was stopped: if cryo dies then (a
 * SIGKILL, a crash), the kernel detaches it and it goes on from its own
 * instruction, instead of running into the injected code or dying of the
 * step's SIGTRAP (each call ends parked in a PTRACE_EVENT_STOP). Only the
 * microseconds of one call are left exposed (and the poke above). The
 * processes of a restore die with cryo anyway (PTRACE_O_EXITKILL).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "infra/inject.h"
#include "infra/log.h"
#include "infra/ptrace.h"

#define MAX_EVENT_STOPS 16
#define PAGE		4096ULL
#define SCAN_CHUNK	65536
/* `syscall` (0f 05), then int3s: a stray resume traps at once */
#define SYSCALL_WORD 0xcccccccccccc050fULL

int inject_read(pid_t pid, uint64_t addr, void *buf, size_t len)
{
	struct iovec local = {.iov_base = buf, .iov_len = len};
	struct iovec remote = {.iov_base = (void *)addr, .iov_len = len};
	ssize_t n = process_vm_readv(pid, &local, 1, &remote, 1, 0);

	if (n != (ssize_t)len)
		return err_errno("cannot read %zu bytes at 0x%llx in pid %d", len,
				 (unsigned long long)addr, pid);
	return 0;
}

int inject_write(pid_t pid, uint64_t addr, const void *buf, size_t len)
{
	struct iovec local = {.iov_base = (void *)buf, .iov_len = len};
	struct iovec remote = {.iov_base = (void *)addr, .iov_len = len};
	ssize_t n = process_vm_writev(pid, &local, 1, &remote, 1, 0);

	if (n != (ssize_t)len)
		return err_errno("cannot write %zu bytes at 0x%llx in pid %d", len,
				 (unsigned long long)addr, pid);
	return 0;
}

/* ---- begin and end ---- */

int inject_begin(struct inject *inj, pid_t pid)
{
	memset(inj, 0, sizeof(*inj));
	inj->pid = pid;
	if (ptrace_get_regs(pid, &inj->saved) || ptrace_get_sigmask(pid, &inj->saved_mask))
		return -1;
	/* pending signals stay queued instead of interrupting the injected calls */
	return ptrace_set_sigmask(pid, ~0ULL);
}

void inject_use(struct inject *inj, uint64_t syscall_ip, uint64_t scratch, size_t scratch_len)
{
	inj->syscall_ip = syscall_ip;
	inj->scratch = scratch;
	inj->scratch_len = scratch_len;
}

int inject_begin_thread(struct inject *inj, pid_t tid, const struct inject *leader)
{
	if (inject_begin(inj, tid))
		return -1;
	/* one address space: the leader's instruction and scratch serve it, and
	 * the leader's inject_end() unmaps them */
	inject_use(inj, leader->syscall_ip, leader->scratch, leader->scratch_len);
	inj->between_as_is = leader->between_as_is;
	return inj->between_as_is ? ptrace_set_sigmask(tid, inj->saved_mask) : 0;
}

/* The munmap runs from the code page it removes: the step's trap comes at
 * the syscall's exit, before the task could return there. */
static int unmap_own(struct inject *inj)
{
	int ret = 0;

	if (inj->own && inject_call(inj, "unmapping cryo's scratch memory", SYS_munmap, inj->own,
				    inj->own_len, 0, 0, 0, 0, NULL))
		ret = -1;
	inj->own = 0;
	inject_use(inj, 0, 0, 0);
	return ret;
}

int inject_end(struct inject *inj)
{
	int ret = unmap_own(inj);

	if (ptrace_set_regs(inj->pid, &inj->saved) || ptrace_set_sigmask(inj->pid, inj->saved_mask))
		return -1;
	return ret;
}

/* ---- one call ---- */

/* Every signal blocked while the call runs, so that a pending one waits
 * instead of stopping the step; then regs for the call. */
static int enter_call(struct inject *inj, const struct user_regs_struct *regs)
{
	if (inj->between_as_is && ptrace_set_sigmask(inj->pid, ~0ULL))
		return -1;
	return ptrace_set_regs(inj->pid, regs);
}

/* A call ends in a SIGTRAP signal-delivery stop (the step's, or the
 * batch's int3): a tracer that died there would leave that SIGTRAP to be
 * delivered, and kill the task. PTRACE_INTERRUPT, then a resume that
 * drops the signal, brings it to a PTRACE_EVENT_STOP before any of its
 * code runs (the kernel handles the pending trap first), as the freeze
 * left it: a stop the task simply leaves if cryo dies. */
static int park(struct inject *inj)
{
	int status;

	if (ptrace(PTRACE_INTERRUPT, inj->pid, 0, 0) || ptrace(PTRACE_CONT, inj->pid, 0, 0))
		return err_errno("cannot park pid %d after an injected call", inj->pid);
	for (int stops = 0; stops <= MAX_EVENT_STOPS; stops++) {
		int sig = ptrace_wait_stop(inj->pid, &status);
		if (sig < 0)
			return err_wrap("parking pid %d after an injected call", inj->pid);
		if (status >> 16 == PTRACE_EVENT_STOP)
			return 0;
		/* every signal is blocked: only a stray trap could come here */
		if (ptrace(PTRACE_CONT, inj->pid, 0, 0))
			return err_errno("cannot park pid %d after an injected call", inj->pid);
	}
	return err_set("pid %d does not come to a stop after an injected call", inj->pid);
}

/* The task's own registers and mask again, in a stop it can be left in
 * (see the top of the file). */
static int leave_call(struct inject *inj)
{
	if (!inj->between_as_is)
		return 0;
	return park(inj) || ptrace_set_regs(inj->pid, &inj->saved) ||
		       ptrace_set_sigmask(inj->pid, inj->saved_mask)
		   ? -1
		   : 0;
}

int inject_syscall(struct inject *inj, long nr, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
		   uint64_t a5, uint64_t a6, long *ret)
{
	struct user_regs_struct regs = inj->saved;
	int status, sig;

	if (!inj->syscall_ip)
		return err_set("pid %d: no syscall instruction to inject syscall %ld through",
			       inj->pid, nr);
	regs.rip = inj->syscall_ip;
	regs.rax = nr;
	regs.orig_rax = -1;
	regs.rdi = a1;
	regs.rsi = a2;
	regs.rdx = a3;
	regs.r10 = a4;
	regs.r8 = a5;
	regs.r9 = a6;
	regs.eflags &= ~(1UL << 8); /* TF: the kernel sets it for the step */
	if (enter_call(inj, &regs))
		return -1;
	/* Event stops may come before the step's trap: a traced clone, or the
	 * group-stop of a stopped task, which re-traps once when resumed. */
	for (int stops = 0;; stops++) {
		if (stops > MAX_EVENT_STOPS)
			return err_set("syscall %ld in pid %d keeps stopping (status 0x%x)", nr,
				       inj->pid, status);
		if (ptrace(PTRACE_SINGLESTEP, inj->pid, 0, 0))
			return err_errno("cannot step pid %d through syscall %ld", inj->pid, nr);
		sig = ptrace_wait_stop(inj->pid, &status);
		if (sig < 0)
			return err_wrap("running syscall %ld in pid %d", nr, inj->pid);
		if (!(status >> 16))
			break;
	}
	if (sig != SIGTRAP) {
		siginfo_t si = {0};
		ptrace(PTRACE_GETSIGINFO, inj->pid, 0, &si);
		ptrace_get_regs(inj->pid, &regs);
		return err_set(
		    "syscall %ld in pid %d stopped by signal %d (code %d, address %p) at "
		    "0x%llx instead of a trap",
		    nr, inj->pid, sig, si.si_code, si.si_addr, (unsigned long long)regs.rip);
	}
	if (ptrace_get_regs(inj->pid, &regs) || leave_call(inj))
		return -1;
	if (regs.rip != inj->syscall_ip + 2)
		return err_set("syscall %ld in pid %d ended at 0x%llx, not after the syscall", nr,
			       inj->pid, (unsigned long long)regs.rip);
	*ret = (long)regs.rax;
	return 0;
}

int inject_call(struct inject *inj, const char *what, long nr, uint64_t a1, uint64_t a2,
		uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6, long *ret)
{
	long r;

	if (inject_syscall(inj, nr, a1, a2, a3, a4, a5, a6, &r))
		return err_wrap("%s", what);
	if (r < 0 && r > -4096) {
		errno = -r;
		return err_errno("%s in pid %d", what, inj->pid);
	}
	if (ret)
		*ret = r;
	return 0;
}

/* ---- scratch memory ---- */

static int scratch_range(const struct inject *inj, size_t off, size_t len)
{
	if (off <= inj->scratch_len && len <= inj->scratch_len - off)
		return 0;
	return err_set("pid %d: scratch space of %zu bytes exceeded by %zu", inj->pid,
		       inj->scratch_len, off + len - inj->scratch_len);
}

int inject_scratch_put(struct inject *inj, size_t off, const void *data, size_t len, uint64_t *addr)
{
	if (scratch_range(inj, off, len) || inject_write(inj->pid, inj->scratch + off, data, len))
		return -1;
	if (addr)
		*addr = inj->scratch + off;
	return 0;
}

int inject_scratch_get(struct inject *inj, size_t off, void *data, size_t len)
{
	if (scratch_range(inj, off, len))
		return -1;
	return inject_read(inj->pid, inj->scratch + off, data, len);
}

/* ---- batches ---- */

/* The loop below, hand assembled (r12: the table, r13: entries left):
 *  0: test r13,r13        3: jz 63           5: mov rax,[r12]
 *  9: mov rdi,[r12+8]    14: mov rsi,[r12+16] 19: mov rdx,[r12+24]
 * 24: mov r10,[r12+32]   29: mov r8,[r12+40]  34: mov r9,[r12+48]
 * 39: syscall            41: mov [r12+56],rax 46: cmp rax,-4095
 * 52: jae 63             54: add r12,64       58: dec r13
 * 61: jmp 0              63: int3 */
const unsigned char inject_batch_code[64] = {
    0x4d, 0x85, 0xed, 0x74, 0x3a, 0x49, 0x8b, 0x04, 0x24, 0x49, 0x8b, 0x7c, 0x24, 0x08, 0x49, 0x8b,
    0x74, 0x24, 0x10, 0x49, 0x8b, 0x54, 0x24, 0x18, 0x4d, 0x8b, 0x54, 0x24, 0x20, 0x4d, 0x8b, 0x44,
    0x24, 0x28, 0x4d, 0x8b, 0x4c, 0x24, 0x30, 0x0f, 0x05, 0x49, 0x89, 0x44, 0x24, 0x38, 0x48, 0x3d,
    0x01, 0xf0, 0xff, 0xff, 0x73, 0x09, 0x49, 0x83, 0xc4, 0x40, 0x49, 0xff, 0xcd, 0xeb, 0xc1, 0xcc,
};

struct batch_entry {
	uint64_t nr, a[6], ret;
};

/* Lets the tracee run until the batch's int3 (event stops are passed). */
static int run_to_trap(struct inject *inj, struct user_regs_struct *regs)
{
	int status, sig;

	for (int stops = 0; stops <= MAX_EVENT_STOPS; stops++) {
		if (ptrace(PTRACE_CONT, inj->pid, 0, 0))
			return err_errno("cannot resume pid %d for a batch of calls", inj->pid);
		sig = ptrace_wait_stop(inj->pid, &status);
		if (sig < 0)
			return err_wrap("running a batch of calls in pid %d", inj->pid);
		if (status >> 16)
			continue;
		if (ptrace_get_regs(inj->pid, regs))
			return -1;
		if (sig != SIGTRAP)
			return err_set("a batch of calls in pid %d stopped by signal %d at 0x%llx",
				       inj->pid, sig, (unsigned long long)regs->rip);
		return 0;
	}
	return err_set("a batch of calls in pid %d keeps stopping", inj->pid);
}

int inject_run(struct inject *inj, struct user_regs_struct *regs)
{
	regs->orig_rax = -1;
	regs->eflags &= ~(1UL << 8);
	return enter_call(inj, regs) || run_to_trap(inj, regs) || leave_call(inj) ? -1 : 0;
}

size_t inject_batch_max(const struct inject *inj)
{
	return inj->scratch_len / sizeof(struct batch_entry);
}

int inject_batch(struct inject *inj, uint64_t code_ip, const struct inject_call_desc *calls,
		 size_t n, size_t *done, long *err)
{
	struct user_regs_struct regs = inj->saved;
	struct batch_entry *t = calloc(n ? n : 1, sizeof(*t));
	uint64_t table, last;
	int ret = -1;

	if (!t)
		return err_set("out of memory");
	for (size_t i = 0; i < n; i++) {
		t[i].nr = calls[i].nr;
		memcpy(t[i].a, calls[i].a, sizeof(t[i].a));
	}
	if (inject_scratch_put(inj, 0, t, n * sizeof(*t), &table))
		goto out;
	regs.rip = code_ip;
	regs.r12 = table;
	regs.r13 = n;
	regs.orig_rax = -1;
	regs.eflags &= ~(1UL << 8);
	if (enter_call(inj, &regs) || run_to_trap(inj, &regs) || leave_call(inj))
		goto out;
	if (regs.rip != code_ip + sizeof(inject_batch_code)) {
		err_set("a batch of calls in pid %d ended at 0x%llx", inj->pid,
			(unsigned long long)regs.rip);
		goto out;
	}
	last = regs.r12;
	*done = (last - table) / sizeof(*t);
	*err = *done < n ? (long)regs.rax : 0;
	ret = *done <= n ? 0 : err_set("a batch of calls in pid %d ran past its end", inj->pid);
out:
	free(t);
	return ret;
}

int inject_calls_out(const struct inject *inj, size_t n, size_t len, uint64_t *out)
{
	size_t off = (n * sizeof(struct batch_entry) + 63) & ~(size_t)63;

	if (off + len > inj->scratch_len)
		return err_set("pid %d: no scratch room for %zu calls and %zu bytes of results",
			       inj->pid, n, len);
	*out = inj->scratch + off;
	return 0;
}

/* The results of the n calls the last batch ran, from its table. */
static int batch_results(struct inject *inj, size_t n, long *ret)
{
	struct batch_entry *t = malloc((n ? n : 1) * sizeof(*t));

	if (!t)
		return err_set("out of memory");
	if (inject_scratch_get(inj, 0, t, n * sizeof(*t))) {
		free(t);
		return -1;
	}
	for (size_t i = 0; i < n; i++)
		ret[i] = (long)t[i].ret;
	free(t);
	return 0;
}

static int run_calls(struct inject *inj, const char *what, const struct inject_call_desc *calls,
		     size_t n, long *ret)
{
	uint64_t ip;
	size_t done;
	long err;

	if (n <= inject_batch_max(inj) &&
	    !inject_put_code(inj, inject_batch_code, sizeof(inject_batch_code), &ip)) {
		if (inject_batch(inj, ip, calls, n, &done, &err))
			return -1;
		if (done == n)
			return ret ? batch_results(inj, n, ret) : 0;
		errno = (int)-err;
		return err_errno("%s in pid %d", what, inj->pid);
	}
	err_clear(); /* no code page: one call at a time */
	for (size_t i = 0; i < n; i++)
		if (inject_call(inj, what, calls[i].nr, calls[i].a[0], calls[i].a[1], calls[i].a[2],
				calls[i].a[3], calls[i].a[4], calls[i].a[5], ret ? &ret[i] : NULL))
			return -1;
	return 0;
}

int inject_calls(struct inject *inj, const char *what, const struct inject_call_desc *calls,
		 size_t n)
{
	return run_calls(inj, what, calls, n, NULL);
}

int inject_calls_ret(struct inject *inj, const char *what, const struct inject_call_desc *calls,
		     size_t n, long *ret)
{
	return run_calls(inj, what, calls, n, ret);
}

/* ---- a process cryo did not make: a syscall instruction of its own ---- */

static bool executable(const struct proc_vma *v)
{
	/* [vsyscall] is emulated by the kernel: only its three entry points run */
	return (v->prot & PROT_EXEC) && !(v->path && !strcmp(v->path, "[vsyscall]"));
}

/* The address of the first byte pair 0f 05 in [start, end), or 0. What
 * cannot be read (a file mapping past its file's end) ends the search. */
static uint64_t scan_range(int mem, uint64_t start, uint64_t end)
{
	unsigned char buf[SCAN_CHUNK];
	bool prev_0f = false;

	for (uint64_t a = start; a < end; a += SCAN_CHUNK) {
		size_t len = end - a < SCAN_CHUNK ? end - a : SCAN_CHUNK;
		ssize_t n = pread(mem, buf, len, a);
		if (n <= 0)
			return 0;
		if (prev_0f && buf[0] == 0x05)
			return a - 1;
		for (ssize_t i = 0; i + 1 < n; i++)
			if (buf[i] == 0x0f && buf[i + 1] == 0x05)
				return a + i;
		if ((size_t)n < len)
			return 0;
		prev_0f = buf[n - 1] == 0x0f;
	}
	return 0;
}

/* A `syscall` the process has: in its vDSO first (small, and there unless
 * unmapped), then in any other executable mapping. *ip = 0: none. */
static int find_syscall(pid_t pid, const struct proc_vmas *vmas, uint64_t *ip, const char **where)
{
	char path[64];
	int mem;

	*ip = 0;
	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	mem = open(path, O_RDONLY | O_CLOEXEC);
	if (mem < 0)
		return err_errno("cannot open %s", path);
	for (int vdso = 1; vdso >= 0 && !*ip; vdso--) {
		for (int i = 0; i < vmas->nr && !*ip; i++) {
			const struct proc_vma *v = &vmas->v[i];
			bool is_vdso = v->path && !strcmp(v->path, "[vdso]");
			if (is_vdso == vdso && executable(v))
				*ip = scan_range(mem, v->start, v->end);
			if (*ip)
				*where = v->path ? v->path : "anonymous memory";
		}
	}
	close(mem);
	return 0;
}

struct poke {
	uint64_t addr; /* 0: nothing written */
	long orig;
};

/* Where a `syscall` may be written: over the word at the ip if its mapping
 * is private (the write then reaches no other process), else at the start
 * of any private executable mapping. */
static int poke_site(const struct inject *inj, const struct proc_vmas *vmas, uint64_t *addr)
{
	uint64_t ip = inj->saved.rip;
	const struct proc_vma *any = NULL;

	for (int i = 0; i < vmas->nr; i++) {
		const struct proc_vma *v = &vmas->v[i];
		if (!executable(v) || v->shared)
			continue;
		if (ip >= v->start && ip < v->end) {
			*addr = ip & ~7ULL; /* a word within the same page */
			return 0;
		}
		if (!any)
			any = v;
	}
	if (!any)
		return err_set("pid %d has no syscall instruction and no private executable "
			       "mapping to write one in",
			       inj->pid);
	*addr = any->start;
	return 0;
}

static int poke_syscall(struct inject *inj, const struct proc_vmas *vmas, struct poke *p)
{
	uint64_t addr = 0;
	long word;

	if (poke_site(inj, vmas, &addr))
		return -1;
	errno = 0;
	word = ptrace(PTRACE_PEEKDATA, inj->pid, addr, 0);
	if (errno)
		return err_errno("cannot read the code at 0x%llx in pid %d",
				 (unsigned long long)addr, inj->pid);
	/* little-endian: the first two bytes of the word become 0f 05 */
	if (ptrace(PTRACE_POKEDATA, inj->pid, addr, (word & ~0xffffL) | 0x050f))
		return err_errno("cannot write a syscall instruction at 0x%llx in pid %d",
				 (unsigned long long)addr, inj->pid);
	p->addr = addr;
	p->orig = word;
	inj->syscall_ip = addr;
	return 0;
}

static int unpoke(struct inject *inj, struct poke *p)
{
	if (ptrace(PTRACE_POKEDATA, inj->pid, p->addr, p->orig))
		return err_errno("cannot put back the code at 0x%llx in pid %d",
				 (unsigned long long)p->addr, inj->pid);
	if (inj->syscall_ip == p->addr)
		inj->syscall_ip = 0;
	p->addr = 0;
	return 0;
}

/* cryo's own area: a page, the code page, the scratch. The code page is
 * private and never writable (PTRACE_POKEDATA writes it), so a process
 * denied writable-and-executable memory can have it; the shared memory on
 * both sides keeps it from merging with a mapping of the process. */
static int map_own(struct inject *inj, size_t scratch_len)
{
	size_t len = 2 * PAGE + (scratch_len + PAGE - 1) / PAGE * PAGE;
	long area, code;

	if (inject_call(inj, "mapping scratch memory", SYS_mmap, 0, len, PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS, -1, 0, &area))
		return -1;
	inj->own = area;
	inj->own_len = len;
	inj->scratch = area + 2 * PAGE;
	inj->scratch_len = len - 2 * PAGE;
	if (inject_call(inj, "mapping a code page", SYS_mmap, area + PAGE, PAGE,
			PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0,
			&code))
		return -1;
	if (ptrace(PTRACE_POKEDATA, inj->pid, code, SYSCALL_WORD))
		return err_errno("cannot write the code page at 0x%lx in pid %d", code, inj->pid);
	inj->syscall_ip = code;
	return 0;
}

int inject_put_code(struct inject *inj, const void *code, size_t len, uint64_t *ip)
{
	uint64_t at = inj->own + PAGE + sizeof(uint64_t);

	if (!inj->own || inj->syscall_ip != inj->own + PAGE)
		return err_set("pid %d has no code page of cryo's (executable memory refused)",
			       inj->pid);
	if (len > PAGE - sizeof(uint64_t))
		return err_set("%zu bytes of code do not fit cryo's code page", len);
	for (size_t off = 0; off < len; off += sizeof(long)) {
		long word = (long)0xccccccccccccccccULL; /* int3 after the end */
		memcpy(&word, (const char *)code + off,
		       len - off < sizeof(long) ? len - off : sizeof(long));
		if (ptrace(PTRACE_POKEDATA, inj->pid, at + off, word))
			return err_errno("cannot write code at 0x%llx in pid %d",
					 (unsigned long long)(at + off), inj->pid);
	}
	*ip = at;
	return 0;
}

int inject_setup_borrowed(struct inject *inj, const struct proc_vmas *vmas)
{
	const char *where = NULL;

	inj->between_as_is = true;
	if (ptrace_set_sigmask(inj->pid, inj->saved_mask) ||
	    find_syscall(inj->pid, vmas, &inj->syscall_ip, &where))
		return -1;
	if (!inj->syscall_ip)
		return err_set("pid %d has no syscall instruction to borrow", inj->pid);
	return 0;
}

/* A failure while the process holds a written `syscall`: cryo's area goes
 * through it, then the word is put back; the first error is the one kept. */
static int undo_poked(struct inject *inj, struct poke *p)
{
	char first[512], then[512];

	snprintf(first, sizeof(first), "%s", err_text());
	if (unmap_own(inj)) {
		snprintf(then, sizeof(then), "%s", err_text());
		err_set("%s (and then: %s)", first, then);
	} else {
		err_set("%s", first);
	}
	unpoke(inj, p); /* if even this fails, its error is the one to report */
	return -1;
}

int inject_setup(struct inject *inj, const struct proc_vmas *vmas, size_t scratch_len)
{
	struct poke poke = {0};
	const char *where = "written over the word at the instruction pointer";

	inj->between_as_is = true;
	if (ptrace_set_sigmask(inj->pid, inj->saved_mask))
		return -1;

	if (find_syscall(inj->pid, vmas, &inj->syscall_ip, &where) ||
	    (!inj->syscall_ip && poke_syscall(inj, vmas, &poke)))
		return -1;
	pr_debug("pid %d: first syscall instruction at 0x%llx (%s)", inj->pid,
		 (unsigned long long)inj->syscall_ip, where);
	if (map_own(inj, scratch_len)) {
		if (poke.addr)
			return undo_poked(inj, &poke);
		if (!inj->own)
			return -1;
		/* a process denied executable memory keeps lending its own */
		pr_debug("pid %d: %s: the first syscall instruction serves", inj->pid, err_text());
		err_clear();
		return 0;
	}
	pr_debug("pid %d: cryo's code page at 0x%llx, scratch at 0x%llx", inj->pid,
		 (unsigned long long)inj->syscall_ip, (unsigned long long)inj->scratch);
	return poke.addr ? unpoke(inj, &poke) : 0;
}
