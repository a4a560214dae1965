/*
 * ptrace helpers. A seized task is stopped with PTRACE_INTERRUPT, which
 * leaves its state untouched (no signal is queued, unlike SIGSTOP), so a
 * dump that is abandoned can release the task exactly as it was.
 *
 * Once stopped it is given PTRACE_O_SUSPEND_SECCOMP: its seccomp filters, or
 * strict mode, would forbid (or punish) the calls cryo injects. Suspension
 * is a property of the tracing, not of the task's seccomp state, which it
 * leaves as it was: the kernel drops it on detach, and the task is filtered
 * again from its next instruction on. It is set only once the task is
 * stopped, so that none of the task's own code ever runs unfiltered.
 */
#include <elf.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include "infra/log.h"
#include "infra/proc.h"
#include "infra/ptrace.h"

/* What waitpid's status says: the stop signal, or the end as an error. */
static int ptrace_wait_stop_status(pid_t pid, pid_t r, int status)
{
	if (r < 0)
		return err_errno("waiting for pid %d", pid);
	if (WIFEXITED(status))
		return err_set("pid %d exited with status %d", pid, WEXITSTATUS(status));
	if (WIFSIGNALED(status))
		return err_set("pid %d was killed by signal %d (%s)", pid, WTERMSIG(status),
			       strsignal(WTERMSIG(status)));
	return WIFSTOPPED(status) ? WSTOPSIG(status) : -2;
}

int ptrace_wait_stop(pid_t pid, int *status)
{
	for (;;) {
		pid_t r = waitpid(pid, status, __WALL);
		if (r < 0 && errno == EINTR)
			continue;
		int sig = ptrace_wait_stop_status(pid, r, *status);
		if (sig != -2)
			return sig;
	}
}

int ptrace_set_options(pid_t pid, long opts, bool *suspended)
{
	bool got = true;

	/* the kernel grants the suspension only to a tracer with CAP_SYS_ADMIN
	 * that is not under seccomp itself (EPERM), if built with
	 * CONFIG_CHECKPOINT_RESTORE (EINVAL) */
	if (ptrace(PTRACE_SETOPTIONS, pid, 0, opts | PTRACE_O_SUSPEND_SECCOMP)) {
		if (errno != EPERM && errno != EINVAL)
			return err_errno("cannot set ptrace options on pid %d", pid);
		got = false;
		if (ptrace(PTRACE_SETOPTIONS, pid, 0, opts))
			return err_errno("cannot set ptrace options on pid %d", pid);
	}
	if (suspended)
		*suspended = got;
	return 0;
}

/* Without the suspension, a task under seccomp cannot be injected into. */
static int suspend_seccomp(pid_t pid)
{
	struct proc_status st;
	bool suspended;

	if (ptrace_set_options(pid, 0, &suspended))
		return -1;
	if (suspended)
		return 0;
	if (proc_read_status(pid, &st))
		return -1;
	if (st.seccomp)
		return err_set(
		    "pid %d runs under seccomp (mode %d) and cryo may not suspend it "
		    "(PTRACE_O_SUSPEND_SECCOMP needs CAP_SYS_ADMIN, with cryo itself "
		    "not under seccomp): its filters would forbid the calls cryo injects",
		    pid, st.seccomp);
	return 0;
}

/* waitpid for pid's next stop, polled until deadline (monotonic µs, 0:
 * none): 1 if it stopped, 0 if the deadline passed first, -1 on error. */
static int wait_until(pid_t pid, int *status, unsigned long long deadline)
{
	struct timespec pause = {0, 10000};

	if (!deadline)
		return ptrace_wait_stop(pid, status) < 0 ? -1 : 1;
	for (;;) {
		struct timespec now;
		pid_t r = waitpid(pid, status, __WALL | WNOHANG);
		if (r < 0 && errno == EINTR)
			continue;
		if (r != 0) /* a stop or an end: ptrace_wait_stop tells them apart */
			return ptrace_wait_stop_status(pid, r, *status) < 0 ? -1 : 1;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((unsigned long long)now.tv_sec * 1000000 + now.tv_nsec / 1000 >= deadline)
			return 0;
		nanosleep(&pause, NULL);
		if (pause.tv_nsec < 1000000)
			pause.tv_nsec *= 2;
	}
}

/* A task that does not stop sleeps where no signal wakes it (state D): a
 * vfork parent until its child execs or exits, a read of a hung NFS or
 * FUSE file. It stays seized, not stopped, until cryo exits, which lets it
 * go untouched (a running tracee cannot be detached). */
static int not_stopped(pid_t pid, unsigned timeout_s)
{
	struct proc_stat st;
	char wchan[64] = "";
	char *buf = NULL;

	if (!proc_read_stat(pid, &st) && !proc_read(pid, "wchan", &buf, NULL) && buf)
		snprintf(wchan, sizeof(wchan), "%s", buf);
	free(buf);
	return err_set("pid %d did not stop within %u s (state %c%s%s): cryo gives up "
		       "and leaves it as it was (--timeout sets the limit)",
		       pid, timeout_s, st.state ? st.state : '?', wchan[0] ? ", in " : "", wchan);
}

static int wait_interrupted(pid_t pid, unsigned timeout_s)
{
	unsigned long long deadline = 0;
	int status;

	if (timeout_s) {
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		deadline =
		    (now.tv_sec + (unsigned long long)timeout_s) * 1000000 + now.tv_nsec / 1000;
	}
	for (;;) {
		int r = wait_until(pid, &status, deadline);
		if (r <= 0)
			return r ? -1 : not_stopped(pid, timeout_s);
		/* PTRACE_EVENT_STOP: the interrupt (or a group-stop) has landed */
		if (status >> 16 == PTRACE_EVENT_STOP)
			return 0;
		/* a signal arrived first: let it be delivered as it would have been */
		if (ptrace(PTRACE_CONT, pid, 0, WSTOPSIG(status)))
			return err_errno("cannot resume pid %d to deliver signal %d", pid,
					 WSTOPSIG(status));
	}
}

int ptrace_seize_stop(pid_t pid, unsigned timeout_s)
{
	if (ptrace(PTRACE_SEIZE, pid, 0, 0))
		return err_errno("cannot seize pid %d", pid);
	if (ptrace(PTRACE_INTERRUPT, pid, 0, 0))
		return err_errno("cannot interrupt pid %d", pid);
	if (wait_interrupted(pid, timeout_s))
		return -1;
	if (suspend_seccomp(pid)) {
		ptrace_release(pid);
		return -1;
	}
	return 0;
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
