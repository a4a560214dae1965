/*
 * ptrace helpers. A seized task is stopped with PTRACE_INTERRUPT, which
 * leaves its state untouched (no signal is queued, unlike SIGSTOP), so a
 * dump that is abandoned can release the task exactly as it was.
 */
#include <elf.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include "infra/log.h"
#include "infra/ptrace.h"

int ptrace_wait_stop(pid_t pid, int *status)
{
	for (;;) {
		pid_t r = waitpid(pid, status, __WALL);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return err_errno("waiting for pid %d", pid);
		if (WIFEXITED(*status))
			return err_set("pid %d exited with status %d", pid, WEXITSTATUS(*status));
		if (WIFSIGNALED(*status))
			return err_set("pid %d was killed by signal %d (%s)", pid,
				       WTERMSIG(*status), strsignal(WTERMSIG(*status)));
		if (WIFSTOPPED(*status))
			return WSTOPSIG(*status);
	}
}

int ptrace_seize_stop(pid_t pid)
{
	int status;

	if (ptrace(PTRACE_SEIZE, pid, 0, 0))
		return err_errno("cannot seize pid %d", pid);
	if (ptrace(PTRACE_INTERRUPT, pid, 0, 0))
		return err_errno("cannot interrupt pid %d", pid);
	for (;;) {
		int sig = ptrace_wait_stop(pid, &status);
		if (sig < 0)
			return -1;
		/* PTRACE_EVENT_STOP: the interrupt (or a group-stop) has landed */
		if (status >> 16 == PTRACE_EVENT_STOP)
			return 0;
		/* a signal arrived first: let it be delivered as it would have been */
		if (ptrace(PTRACE_CONT, pid, 0, sig))
			return err_errno("cannot resume pid %d to deliver signal %d", pid, sig);
	}
}

static int regset(pid_t pid, int req, int type, void *buf, size_t *len, const char *what)
{
	struct iovec iov = {.iov_base = buf, .iov_len = *len};

	if (ptrace(req, pid, (void *)(long)type, &iov))
		return err_errno("cannot %s %s of pid %d",
				 req == PTRACE_GETREGSET ? "read" : "write", what, pid);
	*len = iov.iov_len;
	return 0;
}

int ptrace_get_regs(pid_t pid, struct user_regs_struct *regs)
{
	size_t len = sizeof(*regs);

	return regset(pid, PTRACE_GETREGSET, NT_PRSTATUS, regs, &len, "registers");
}

int ptrace_set_regs(pid_t pid, const struct user_regs_struct *regs)
{
	size_t len = sizeof(*regs);

	return regset(pid, PTRACE_SETREGSET, NT_PRSTATUS, (void *)regs, &len, "registers");
}

int ptrace_get_xstate(pid_t pid, void *buf, size_t *len)
{
	return regset(pid, PTRACE_GETREGSET, NT_X86_XSTATE, buf, len, "FPU/xstate");
}

int ptrace_set_xstate(pid_t pid, const void *buf, size_t len)
{
	return regset(pid, PTRACE_SETREGSET, NT_X86_XSTATE, (void *)buf, &len, "FPU/xstate");
}

int ptrace_get_sigmask(pid_t pid, uint64_t *mask)
{
	if (ptrace(PTRACE_GETSIGMASK, pid, sizeof(*mask), mask))
		return err_errno("cannot read signal mask of pid %d", pid);
	return 0;
}

int ptrace_set_sigmask(pid_t pid, uint64_t mask)
{
	if (ptrace(PTRACE_SETSIGMASK, pid, sizeof(mask), &mask))
		return err_errno("cannot set signal mask of pid %d", pid);
	return 0;
}

int ptrace_release(pid_t pid)
{
	if (ptrace(PTRACE_DETACH, pid, 0, 0))
		return err_errno("cannot detach from pid %d", pid);
	return 0;
}
