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
