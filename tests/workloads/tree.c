/* tree.c: a small process tree with everything that makes trees hard:
 *   - child A: its own process group; it has a grandchild (A1) in that group;
 *   - child B: its own session (setsid);
 *   - child C: joins A's process group (a group led by a sibling);
 *   - zombies: Z1 exited with status 7, Z2 killed by SIGKILL, neither reaped;
 *   - a pipe from B to the root with 3000 bytes in flight at the checkpoint,
 *     and more written after it (nothing lost, nothing repeated);
 *   - a regular file description shared by root and A (one offset);
 *   - child D: a child subreaper, stopped by SIGSTOP at the checkpoint: it
 *     must come back stopped, and go on when the root sends SIGCONT.
 * After `go` every process checks its own ids and parent, A1 and C report
 * through their exit status, and the root checks all of it, including the
 * zombies' wait statuses, which must be the ones they died with. */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define INFLIGHT 3000

static pid_t root;

static int ioctl_fionread(int fd, int *n)
{
	return ioctl(fd, FIONREAD, n);
}

/* A child's own checks: exit 0 when its ids and parent are as expected. */
static int ids_ok(pid_t want_ppid, pid_t want_pgid, pid_t want_sid)
{
	return getppid() == want_ppid && getpgid(0) == want_pgid && getsid(0) == want_sid;
}

static void grandchild(pid_t a)
{
	wl_wait_go();
	_exit(ids_ok(a, a, getsid(root)) ? 0 : 10);
}

static void child_a(int shared_fd)
{
	pid_t a1, self = getpid();
	int st;

	setpgid(0, 0);
	a1 = fork();
	if (a1 == 0)
		grandchild(self);
	wl_wait_go();
	/* the shared description: the root moved the offset to 100 before the dump */
	if (lseek(shared_fd, 0, SEEK_CUR) != 100)
		_exit(20);
	lseek(shared_fd, 200, SEEK_SET);
	if (waitpid(a1, &st, 0) != a1 || !WIFEXITED(st) || WEXITSTATUS(st))
		_exit(21);
	_exit(ids_ok(root, self, getsid(root)) ? 0 : 22);
}

static void child_b(int wfd)
{
	char buf[INFLIGHT];

	setsid();
	memset(buf, 'b', sizeof(buf));
	if (write(wfd, buf, sizeof(buf)) != sizeof(buf))
		_exit(30);
	wl_wait_go();
	memset(buf, 'B', 100);
	if (write(wfd, buf, 100) != 100)
		_exit(31);
	_exit(getsid(0) == getpid() && getppid() == root ? 0 : 32);
}

static void child_c(pid_t a)
{
	/* A makes its group itself: wait for it */
	while (getpgid(a) != a)
		usleep(1000);
	setpgid(0, a);
	wl_wait_go();
	_exit(ids_ok(root, a, getsid(root)) ? 0 : 40);
}

static void child_d(void)
{
	int flag = 0;

	prctl(PR_SET_CHILD_SUBREAPER, 1);
	raise(SIGSTOP);
	prctl(PR_GET_CHILD_SUBREAPER, &flag);
	_exit(flag == 1 && getppid() == root ? 0 : 50);
}

static char proc_state(pid_t pid)
{
	char path[64], buf[512], *p;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return '?';
	p = fgets(buf, sizeof(buf), f) ? strrchr(buf, ')') : NULL;
	fclose(f);
	return p && p[1] ? p[2] : '?';
}

static pid_t spawn(void (*fn)(int), int arg)
{
	pid_t pid = fork();

	if (pid < 0)
		wl_die("fork: %s", strerror(errno));
	if (pid == 0)
		fn(arg);
	return pid;
}

static void run_a(int fd)
{
	child_a(fd);
}
static void run_b(int fd)
{
	child_b(fd);
}
static void run_c(int a)
{
	child_c(a);
}
static void run_d(int unused)
{
	(void)unused;
	child_d();
}
static void run_z1(int unused)
{
	(void)unused;
	_exit(7);
}
static void run_z2(int unused)
{
	(void)unused;
	for (;;)
		pause();
}

static void check_child(const char *name, pid_t pid)
{
	int st;
	pid_t r = waitpid(pid, &st, 0);

	wl_check(name, r == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
		 "waitpid %d: %d, status 0x%x", pid, r, st);
}

static void check_pipe(int rfd)
{
	char buf[INFLIGHT + 200];
	size_t got = 0;
	ssize_t n;
	int bad = -1;

	while (got < INFLIGHT + 100 && (n = read(rfd, buf + got, sizeof(buf) - got)) > 0)
		got += n;
	for (size_t i = 0; i < got && bad < 0; i++)
		if (buf[i] != (i < INFLIGHT ? 'b' : 'B'))
			bad = i;
	wl_check("pipe_data", got == INFLIGHT + 100 && bad < 0,
		 "read %zu bytes (want %d), first wrong byte at %d", got, INFLIGHT + 100, bad);
}

int main(void)
{
	int p[2], shared, st;
	pid_t a, b, c, d, z1, z2;
	char path[4096];

	wl_init();
	root = getpid();
	setpgid(0, 0);
	wl_path("shared.dat", path, sizeof(path));
	shared = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (shared < 0 || ftruncate(shared, 4096) || pipe(p))
		wl_die("setup: %s", strerror(errno));
	a = spawn(run_a, shared);
	b = spawn(run_b, p[1]);
	close(p[1]);
	c = spawn(run_c, a);
	d = spawn(run_d, 0);
	z1 = spawn(run_z1, 0);
	z2 = spawn(run_z2, 0);
	kill(z2, SIGKILL);
	/* both zombies must be dead, and B's bytes in the pipe, before ready */
	siginfo_t si;
	waitid(P_PID, z1, &si, WEXITED | WNOWAIT);
	waitid(P_PID, z2, &si, WEXITED | WNOWAIT);
	lseek(shared, 100, SEEK_SET);
	for (int i = 0; i < 2000; i++) {
		int avail = 0;
		if (!ioctl_fionread(p[0], &avail) && avail >= INFLIGHT && getpgid(c) == a &&
		    getsid(b) == b && getpgid(a) == a && proc_state(d) == 'T')
			break;
		usleep(1000);
	}
	wl_ready();
	wl_wait_go();

	wl_check("stopped_child", proc_state(d) == 'T', "child D is in state %c, not T",
		 proc_state(d));
	kill(d, SIGCONT);
	check_child("child_d", d);
	check_pipe(p[0]);
	check_child("child_a", a);
	check_child("child_b", b);
	check_child("child_c", c);
	wl_check("shared_offset", lseek(shared, 0, SEEK_CUR) == 200,
		 "offset %lld after the child moved it to 200",
		 (long long)lseek(shared, 0, SEEK_CUR));
	wl_check("zombie_exit",
		 waitpid(z1, &st, WNOHANG) == z1 && WIFEXITED(st) && WEXITSTATUS(st) == 7,
		 "zombie %d: status 0x%x", z1, st);
	st = 0;
	wl_check("zombie_signal",
		 waitpid(z2, &st, WNOHANG) == z2 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
		 "zombie %d: status 0x%x", z2, st);
	wl_check("root_ids", getpgid(0) == getpid(), "pgid %d", getpgid(0));
	wl_check("no_more_children", waitpid(-1, &st, WNOHANG) < 0 && errno == ECHILD,
		 "an unexpected child");
	wl_done();
}
