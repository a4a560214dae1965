/*
 * Syscall injection by single-stepping a `syscall` instruction (inject.h).
 * After the step the kernel reports a SIGTRAP stop at syscall exit; the
 * next injection (or inject_end) suppresses it. orig_rax is set to -1 for
 * injected calls so that the kernel's syscall-restart logic, which runs
 * when a stop ends, never touches them; inject_end() restores the original
 * orig_rax/rax so that an interrupted syscall restarts as the kernel would.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include "infra/inject.h"
#include "infra/log.h"
#include "infra/ptrace.h"

#define MAX_EVENT_STOPS 16

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

int inject_find_vdso_syscall(pid_t pid, uint64_t start, uint64_t end, uint64_t *ip)
{
	unsigned char buf[65536];
	size_t len = end - start;

	if (len > sizeof(buf))
		len = sizeof(buf);
	if (inject_read(pid, start, buf, len))
		return err_wrap("reading the vDSO");
	for (size_t i = 0; i + 1 < len; i++) {
		if (buf[i] == 0x0f && buf[i + 1] == 0x05) {
			*ip = start + i;
			return 0;
		}
	}
	return err_set("no syscall instruction in the vDSO of pid %d", pid);
}

int inject_begin(struct inject *inj, pid_t pid, uint64_t syscall_ip)
{
	memset(inj, 0, sizeof(*inj));
	inj->pid = pid;
	inj->syscall_ip = syscall_ip;
	if (ptrace_get_regs(pid, &inj->saved) || ptrace_get_sigmask(pid, &inj->saved_mask))
		return -1;
	/* pending signals stay queued instead of interrupting the injected calls */
	return ptrace_set_sigmask(pid, ~0ULL);
}

int inject_end(struct inject *inj)
{
	if (ptrace_set_regs(inj->pid, &inj->saved))
		return -1;
	return ptrace_set_sigmask(inj->pid, inj->saved_mask);
}

int inject_syscall(struct inject *inj, long nr, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
		   uint64_t a5, uint64_t a6, long *ret)
{
	struct user_regs_struct regs = inj->saved;
	int status, sig;

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
	if (ptrace_set_regs(inj->pid, &regs))
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
	if (ptrace_get_regs(inj->pid, &regs))
		return -1;
	if (regs.rip != inj->syscall_ip + 2)
		return err_set("syscall %ld in pid %d ended at 0x%llx, not after the syscall", nr,
			       inj->pid, (unsigned long long)regs.rip);
	*ret = (long)regs.rax;
	return 0;
}

int inject_scratch_map(struct inject *inj, size_t len)
{
	long addr;

	if (inject_syscall(inj, SYS_mmap, 0, len, PROT_READ | PROT_WRITE,
			   MAP_SHARED | MAP_ANONYMOUS, -1, 0, &addr))
		return -1;
	if (addr < 0 && addr > -4096) {
		errno = -addr;
		return err_errno("cannot map scratch memory in pid %d", inj->pid);
	}
	inj->scratch = addr;
	inj->scratch_len = len;
	return 0;
}

int inject_scratch_unmap(struct inject *inj)
{
	long ret;

	if (!inj->scratch)
		return 0;
	if (inject_syscall(inj, SYS_munmap, inj->scratch, inj->scratch_len, 0, 0, 0, 0, &ret))
		return -1;
	inj->scratch = 0;
	if (ret) {
		errno = -ret;
		return err_errno("cannot unmap scratch memory in pid %d", inj->pid);
	}
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

int inject_batch(struct inject *inj, uint64_t code_ip, uint64_t table,
		 const struct inject_call_desc *calls, size_t n, size_t *done, long *err)
{
	struct user_regs_struct regs = inj->saved;
	struct batch_entry *t = calloc(n ? n : 1, sizeof(*t));
	uint64_t last;
	int ret = -1;

	if (!t)
		return err_set("out of memory");
	for (size_t i = 0; i < n; i++) {
		t[i].nr = calls[i].nr;
		memcpy(t[i].a, calls[i].a, sizeof(t[i].a));
	}
	regs.rip = code_ip;
	regs.r12 = table;
	regs.r13 = n;
	regs.orig_rax = -1;
	regs.eflags &= ~(1UL << 8);
	if (inject_write(inj->pid, table, t, n * sizeof(*t)) || ptrace_set_regs(inj->pid, &regs) ||
	    run_to_trap(inj, &regs))
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
