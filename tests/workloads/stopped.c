/* stopped.c: children stopped by each stop signal while inside a system
 * call, each in a process group of its own (so that the job-control signals
 * stop it: the group is not orphaned), none of them waited for before the
 * checkpoint:
 *   - K1 in read() on an empty pipe, stopped by SIGSTOP;
 *   - K2 in nanosleep(3 s), stopped by SIGTSTP;
 *   - K3 in select() on an empty pipe, stopped by SIGTTIN;
 *   - K4 in write() to a full pipe, stopped by SIGTTOU;
 *   - K5 with three threads in read() on an empty pipe, stopped by SIGSTOP.
 * After the checkpoint each is still stopped (every thread), its parent is
 * told so by waitpid(WUNTRACED) with the same stop signal, and on SIGCONT it
 * finishes its call as if nothing happened (K2's sleep, looping on EINTR as
 * coreutils' sleep does, lasts its 3 s of running time). */
#include "wl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NKIDS	 5
#define FULL_MAX (1 << 20)

static int pipes[NKIDS][2];
static const int stop_sigs[NKIDS] = {SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU, SIGSTOP};

static void read_one(int fd)
{
	char c;

	_exit(read(fd, &c, 1) == 1 && c == 'x' ? 0 : 10);
}

static void kid_sleep(void)
{
	struct timespec req = {3, 0};
	double t0 = wl_now();

	while (nanosleep(&req, &req) && errno == EINTR)
		;
	_exit(wl_now() - t0 >= 3 ? 0 : 11);
}

static void kid_select(int fd)
{
	fd_set rf;

	FD_ZERO(&rf);
	FD_SET(fd, &rf);
	_exit(select(fd + 1, &rf, NULL, NULL, NULL) == 1 && FD_ISSET(fd, &rf) ? 0 : 12);
}

/* Fills the pipe, then blocks writing one byte more. */
static void kid_write(int fd)
{
	char c = 'y';

	_exit(write(fd, &c, 1) == 1 ? 0 : 13);
}

static void *thread_read(void *arg)
{
	char c;

	return (void *)(long)(read((int)(long)arg, &c, 1) == 1 && c == 'x');
}

static void kid_threads(int fd)
{
	pthread_t th[3];
	int ok = 0;

	for (int i = 0; i < 3; i++)
		pthread_create(&th[i], NULL, thread_read, (void *)(long)fd);
	for (int i = 0; i < 3; i++) {
		void *r;
		pthread_join(th[i], &r);
		ok += r != NULL;
	}
	_exit(ok == 3 ? 0 : 14);
}

static pid_t spawn(int i)
{
	pid_t kid = fork();

	if (kid < 0)
		wl_die("fork: %s", strerror(errno));
	if (kid)
		return kid;
	setpgid(0, 0);
	if (i == 0)
		read_one(pipes[i][0]);
	if (i == 1)
		kid_sleep();
	if (i == 2)
		kid_select(pipes[i][0]);
	if (i == 3)
		kid_write(pipes[i][1]);
	kid_threads(pipes[i][0]);
	return 0;
}

/* The state letters of every thread of PID, into OUT ("" if gone). */
static void thread_states(pid_t pid, char *out, size_t len)
{
	char path[320], buf[512];
	struct dirent *d;
	size_t n = 0;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	out[0] = 0;
	if (!(dir = opendir(path)))
		return;
	while ((d = readdir(dir)) && n + 1 < len) {
		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/stat", pid, d->d_name);
		FILE *f = fopen(path, "r");
		char *p = f && fgets(buf, sizeof(buf), f) ? strrchr(buf, ')') : NULL;
		if (f)
			fclose(f);
		if (p && p[1] && p[2])
			out[n++] = p[2];
	}
	out[n] = 0;
	closedir(dir);
}

static bool all_stopped(pid_t pid, size_t nthreads)
{
	char st[32];

	thread_states(pid, st, sizeof(st));
	return strlen(st) == nthreads && strspn(st, "T") == nthreads;
}

static void wait_stopped(pid_t pid, size_t nthreads)
{
	for (int i = 0; i < 5000 && !all_stopped(pid, nthreads); i++)
		usleep(1000);
	if (!all_stopped(pid, nthreads))
		wl_die("child %d did not stop", pid);
}

/* The stop report waitpid gives the parent: the stop signal, or -1. */
static int stop_report(pid_t pid)
{
	int status;

	for (int i = 0; i < 5000; i++) {
		pid_t r = waitpid(pid, &status, WUNTRACED | WNOHANG);
		if (r == pid)
			return WIFSTOPPED(status) ? WSTOPSIG(status) : -1;
		if (r < 0)
			return -1;
		usleep(1000);
	}
	return -1;
}

int main(void)
{
	static const size_t nthreads[NKIDS] = {1, 1, 1, 1, 4};
	static char fill[FULL_MAX];
	pid_t kids[NKIDS];
	ssize_t queued = 0;

	wl_init();
	for (int i = 0; i < NKIDS; i++)
		if (pipe(pipes[i]))
			wl_die("pipe: %s", strerror(errno));
	fcntl(pipes[3][1], F_SETFL, O_NONBLOCK);
	for (ssize_t w; (w = write(pipes[3][1], fill, sizeof(fill))) > 0;)
		queued += w;
	fcntl(pipes[3][1], F_SETFL, 0);
	for (int i = 0; i < NKIDS; i++) {
		kids[i] = spawn(i);
		usleep(100 * 1000); /* let it reach its call */
		kill(kids[i], stop_sigs[i]);
		wait_stopped(kids[i], nthreads[i]);
	}
	wl_ready();
	wl_wait_go();
	for (int i = 0; i < NKIDS; i++) {
		char name[32], st[32];
		thread_states(kids[i], st, sizeof(st));
		snprintf(name, sizeof(name), "k%d_stopped", i + 1);
		wl_check(name, all_stopped(kids[i], nthreads[i]), "thread states '%s'", st);
		snprintf(name, sizeof(name), "k%d_stop_report", i + 1);
		int sig = stop_report(kids[i]);
		wl_check(name, sig == stop_sigs[i], "waitpid reports %d, expected %s", sig,
			 strsignal(stop_sigs[i]));
		kill(kids[i], SIGCONT);
	}
	for (int i = 0; i < NKIDS; i++)
		for (int n = 0; n < (i == 4 ? 3 : 1); n++)
			if (i != 1 && i != 3 && write(pipes[i][1], "x", 1) != 1)
				wl_die("write: %s", strerror(errno));
	wl_check("k4_drained", wl_read_full(pipes[3][0], fill, queued) == queued,
		 "could not read back the %zd bytes queued", queued);
	for (int i = 0; i < NKIDS; i++) {
		char name[32];
		snprintf(name, sizeof(name), "k%d_finished", i + 1);
		wl_check_child(name, kids[i]);
	}
	wl_done();
}
