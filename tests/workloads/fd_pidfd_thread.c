/* fd_pidfd_thread.c: thread pidfds (pidfd_open with PIDFD_THREAD). Fd A names a
 * thread of the process that is not its leader, fd B is dup(A) (same description, no
 * FD_CLOEXEC); fd C names the leader thread with PIDFD_NONBLOCK; fd D a thread that has
 * exited since; fd E a thread of a child process. After go: each names the same tid
 * (-1 for D), keeps O_EXCL (PIDFD_THREAD) and its flags, A and B are still one
 * description; a signal sent through A reaches that thread and no other; A does not
 * poll readable until the thread exits, then does; D polls readable; signal 0 through
 * E reaches the child's thread. Also fd F, a (process) pidfd of a child that has
 * exited but is not reaped: it names that pid, polls readable, and waitid(P_PIDFD) on
 * it reaps the child with its status 5. */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/kcmp.h>

#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL
#endif
#ifndef PIDFD_NONBLOCK
#define PIDFD_NONBLOCK O_NONBLOCK
#endif

static volatile pid_t got_usr1_tid;
static volatile int stop_worker;
static pid_t worker_tid;

static void on_usr1(int sig)
{
	(void)sig;
	got_usr1_tid = gettid();
}

static void *worker(void *arg)
{
	(void)arg;
	__atomic_store_n(&worker_tid, gettid(), __ATOMIC_SEQ_CST);
	while (!stop_worker)
		usleep(2000);
	return NULL;
}

static void *quick(void *arg)
{
	int *go = arg;
	char c;

	(void)!read(go[0], &c, 1);
	return NULL;
}

static int pidfd_open(pid_t pid, unsigned flags)
{
	int fd = syscall(SYS_pidfd_open, pid, flags);

	if (fd < 0)
		wl_die("pidfd_open %d: %s", pid, strerror(errno));
	return fd;
}

/* A child with a second thread; its tid comes back on a pipe. */
static pid_t start_child(pid_t *tid)
{
	int p[2];
	pid_t pid;

	if (pipe(p))
		wl_die("pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		wl_die("fork: %s", strerror(errno));
	if (pid == 0) {
		pthread_t t;
		if (pthread_create(&t, NULL, worker, NULL))
			_exit(2);
		while (!__atomic_load_n(&worker_tid, __ATOMIC_SEQ_CST))
			usleep(1000);
		if (write(p[1], &worker_tid, sizeof(worker_tid)) != sizeof(worker_tid))
			_exit(2);
		for (;;)
			pause();
	}
	close(p[1]);
	if (read(p[0], tid, sizeof(*tid)) != sizeof(*tid))
		wl_die("the child did not start");
	close(p[0]);
	return pid;
}

/* The fd flags, and PIDFD_THREAD among its open flags. */
static void check_thread_fd(const char *name, int fd, int want_fl, int want_fd)
{
	char n[32];

	wl_check_fd_flags(name, fd, want_fl, want_fd);
	snprintf(n, sizeof(n), "%s_thread", name);
	wl_check(n, fcntl(fd, F_GETFL) & PIDFD_THREAD, "no PIDFD_THREAD (O_EXCL) in its flags");
}

static long fd_pid(int fd)
{
	return wl_fdinfo_num(fd, "Pid:", 10);
}

int main(void)
{
	int a, b, c, d, e, f, go[2];
	siginfo_t si;
	pthread_t tw, tq;
	pid_t kid, kid_tid, zombie, me = getpid();

	wl_init();
	wl_on_signal(SIGUSR1, on_usr1);
	kid = start_child(&kid_tid);
	if (pthread_create(&tw, NULL, worker, NULL) || pipe(go) ||
	    pthread_create(&tq, NULL, quick, go))
		wl_die("pthread_create");
	while (!__atomic_load_n(&worker_tid, __ATOMIC_SEQ_CST))
		usleep(1000);
	a = pidfd_open(worker_tid, PIDFD_THREAD);
	b = dup(a);
	c = pidfd_open(me, PIDFD_THREAD | PIDFD_NONBLOCK);
	{
		/* the quick thread's tid: from /proc/self/task, the one that is neither */
		d = -1;
		for (pid_t t = me + 1; t < me + 64 && d < 0; t++)
			if (t != worker_tid && t != kid && t != kid_tid && !tgkill(me, t, 0))
				d = pidfd_open(t, PIDFD_THREAD);
		if (d < 0)
			wl_die("no third thread found");
	}
	if (write(go[1], "x", 1) != 1 || pthread_join(tq, NULL))
		wl_die("the quick thread did not end");
	for (int i = 0; i < 1000 && fd_pid(d) != -1; i++)
		usleep(1000);
	e = pidfd_open(kid_tid, PIDFD_THREAD);
	zombie = fork();
	if (zombie == 0)
		_exit(5);
	if (zombie < 0 || waitid(P_PID, zombie, &si, WEXITED | WNOWAIT))
		wl_die("the zombie: %s", strerror(errno));
	f = pidfd_open(zombie, 0);
	if (b < 0 || fd_pid(d) != -1)
		wl_die("setup: b %d, exited thread's pid %ld", b, fd_pid(d));

	wl_ready();
	wl_wait_go();

	wl_check("a_pid", fd_pid(a) == worker_tid, "A names %ld, want %d", fd_pid(a), worker_tid);
	check_thread_fd("a", a, O_RDWR, FD_CLOEXEC);
	check_thread_fd("b", b, O_RDWR, 0);
	wl_check("a_b_shared", syscall(SYS_kcmp, me, me, KCMP_FILE, a, b) == 0,
		 "A and B are no longer one description");
	wl_check("c_pid", fd_pid(c) == me, "C names %ld, want %d", fd_pid(c), me);
	check_thread_fd("c", c, O_RDWR | O_NONBLOCK, FD_CLOEXEC);
	wl_check("d_pid", fd_pid(d) == -1, "D names %ld, want -1", fd_pid(d));
	check_thread_fd("d", d, O_RDWR, FD_CLOEXEC);
	wl_check("d_readable", wl_revents(d, POLLIN) & POLLIN, "the exited thread's pidfd");
	wl_check("e_pid", fd_pid(e) == kid_tid, "E names %ld, want %d", fd_pid(e), kid_tid);
	wl_check("e_signal", syscall(SYS_pidfd_send_signal, e, 0, NULL, 0) == 0,
		 "signal 0 through E: %s", strerror(errno));
	wl_check("a_not_readable", !(wl_revents(a, POLLIN) & POLLIN), "A polls readable");
	if (syscall(SYS_pidfd_send_signal, a, SIGUSR1, NULL, 0))
		wl_die("pidfd_send_signal: %s", strerror(errno));
	for (int i = 0; i < 500 && !got_usr1_tid; i++)
		usleep(1000);
	wl_check("a_signal", got_usr1_tid == worker_tid,
		 "SIGUSR1 through A reached tid %d, want %d", got_usr1_tid, worker_tid);
	stop_worker = 1;
	pthread_join(tw, NULL);
	{
		struct pollfd p = {.fd = a, .events = POLLIN};
		wl_check("a_exit", poll(&p, 1, 1000) == 1 && (p.revents & POLLIN),
			 "A does not poll readable after the thread ended");
	}
	wl_check("f_pid", fd_pid(f) == zombie, "F names %ld, want %d", fd_pid(f), zombie);
	wl_check("f_readable", wl_revents(f, POLLIN) & POLLIN, "the zombie's pidfd");
	memset(&si, 0, sizeof(si));
	wl_check("f_wait",
		 !waitid(P_PIDFD, f, &si, WEXITED) && si.si_pid == zombie && si.si_status == 5,
		 "waitid on F: %s, pid %d status %d", strerror(errno), si.si_pid, si.si_status);
	kill(kid, SIGKILL);
	waitpid(kid, NULL, 0);
	wl_done();
}
