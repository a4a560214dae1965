/* fd_pidfd.c: pidfds (a new kind, opened late): one of a child (O_NONBLOCK),
 * one of the process itself, one of a child that has exited and been
 * reaped. After go: fdinfo names the same pids (-1 for the exited one), the
 * flags are kept; the exited one polls readable and waitid on it gives
 * ECHILD; the living child's does not poll readable, takes an fd of the
 * child (pidfd_getfd: its file holds what it wrote), signals it
 * (pidfd_send_signal SIGUSR1, on which it exits 7) and waits for it
 * (waitid P_PIDFD: status 7 of that pid); the own pidfd signals itself
 * (signal 0). */
#include "wl.h"

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

#ifndef PIDFD_NONBLOCK
#define PIDFD_NONBLOCK O_NONBLOCK
#endif
#define CHILD_FD 10

static volatile sig_atomic_t got_usr1;

static void on_usr1(int sig)
{
	(void)sig;
	got_usr1 = 1;
}

static int pidfd_open(pid_t pid, unsigned flags)
{
	return syscall(SYS_pidfd_open, pid, flags);
}

/* The child: a memfd on CHILD_FD holding "child data", then pause until
 * SIGUSR1, then exit 7. */
static int child_setup(void *arg)
{
	int m = memfd_create("child-file", 0);

	(void)arg;
	wl_on_signal(SIGUSR1, on_usr1);
	if (m < 0 || write(m, "child data", 10) != 10 || dup2(m, CHILD_FD) < 0)
		return -1;
	close(m);
	return 0;
}

static void child_body(void *arg)
{
	(void)arg;
	while (!got_usr1)
		pause();
	_exit(7);
}

static long fdinfo_pid(int fd)
{
	return wl_fdinfo_num(fd, "Pid:", 10);
}

int main(void)
{
	int pa, self, dead, got;
	pid_t kid, gone;
	siginfo_t si;
	char buf[16] = {0};

	wl_init();
	kid = wl_fork_ready(child_setup, child_body, NULL);
	pa = pidfd_open(kid, PIDFD_NONBLOCK);
	self = pidfd_open(getpid(), 0);
	gone = fork();
	if (gone == 0)
		_exit(3);
	dead = pidfd_open(gone, 0);
	if (pa < 0 || self < 0 || dead < 0 || waitpid(gone, NULL, 0) != gone)
		wl_die("pidfd_open: %s", strerror(errno));

	wl_ready();
	wl_wait_go();

	wl_check("kid_pid", fdinfo_pid(pa) == kid, "Pid %ld, expected %d", fdinfo_pid(pa), kid);
	wl_check("self_pid", fdinfo_pid(self) == getpid(), "Pid %ld, expected %d", fdinfo_pid(self),
		 getpid());
	wl_check("dead_pid", fdinfo_pid(dead) == -1, "Pid %ld, expected -1", fdinfo_pid(dead));
	wl_check_fd_flags("kid", pa, O_RDWR | O_NONBLOCK, FD_CLOEXEC);
	wl_check_fd_flags("self", self, O_RDWR, FD_CLOEXEC);
	wl_check("dead_readable", wl_revents(dead, POLLIN) & POLLIN, "revents %#x",
		 wl_revents(dead, POLLIN));
	wl_check("dead_echild",
		 waitid(P_PIDFD, dead, &si, WEXITED | WNOHANG) < 0 && errno == ECHILD, "waitid: %s",
		 strerror(errno));
	wl_check("kid_not_readable", wl_revents(pa, POLLIN) == 0, "revents %#x",
		 wl_revents(pa, POLLIN));
	got = syscall(SYS_pidfd_getfd, pa, CHILD_FD, 0);
	wl_check("kid_getfd",
		 got >= 0 && pread(got, buf, 10, 0) == 10 && !strcmp(buf, "child data"),
		 "pidfd_getfd: %s, read \"%s\"", got < 0 ? strerror(errno) : "ok", buf);
	wl_check("self_signal", syscall(SYS_pidfd_send_signal, self, 0, NULL, 0) == 0,
		 "pidfd_send_signal: %s", strerror(errno));
	wl_check("kid_signal", syscall(SYS_pidfd_send_signal, pa, SIGUSR1, NULL, 0) == 0,
		 "pidfd_send_signal: %s", strerror(errno));
	/* it polls readable once the child has exited (its fd is O_NONBLOCK:
	 * waitid would not wait) */
	struct pollfd p = {.fd = pa, .events = POLLIN};
	wl_check("kid_exit_readable", poll(&p, 1, 5000) == 1, "the child did not exit");
	memset(&si, 0, sizeof(si));
	wl_check("kid_wait",
		 waitid(P_PIDFD, pa, &si, WEXITED) == 0 && si.si_pid == kid &&
		     si.si_code == CLD_EXITED && si.si_status == 7,
		 "waitid: %s, pid %d code %d status %d", strerror(errno), si.si_pid, si.si_code,
		 si.si_status);
	wl_done();
}
