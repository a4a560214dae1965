/* fd_lease.c: leases (dumped with --file-locks): a read lease on rd.dat
 * (opened O_RDONLY) and a write lease on wr.dat (opened O_WRONLY), with
 * F_SETSIG SIGUSR1 on the write lease's fd. After `go` F_GETLEASE must
 * give both back, /proc/locks must list both as this process's, and a
 * child that opens wr.dat (O_RDONLY|O_NONBLOCK) must be refused with
 * EWOULDBLOCK while this process is told to give the lease up by SIGUSR1
 * (the break goes to the lease's owner, with its signal); once it lets go
 * (F_UNLCK), the child's open works. */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t breaks;

static void on_break(int sig)
{
	(void)sig;
	breaks++;
}

static int open_file(const char *name, int flags)
{
	int fd;

	wl_mkfile(name, "lease", 5, 0644);
	fd = open(name, flags);
	if (fd < 0)
		wl_die("open %s: %s", name, strerror(errno));
	return fd;
}

/* How many LEASE ACTIVE lines of /proc/locks are this process's. */
static int leases_listed(void)
{
	char line[256], want[32];
	int n = 0;
	FILE *f = fopen("/proc/locks", "r");

	snprintf(want, sizeof(want), " %d ", getpid());
	while (f && fgets(line, sizeof(line), f))
		n += strstr(line, "LEASE") && strstr(line, "ACTIVE") && strstr(line, want);
	if (f)
		fclose(f);
	return n;
}

static void check_leases(int rd, int wr, const char *when)
{
	char name[64];
	int r = fcntl(rd, F_GETLEASE), w = fcntl(wr, F_GETLEASE), n = leases_listed();

	snprintf(name, sizeof(name), "%s_read_lease", when);
	wl_check(name, r == F_RDLCK, "F_GETLEASE %d, want F_RDLCK", r);
	snprintf(name, sizeof(name), "%s_write_lease", when);
	wl_check(name, w == F_WRLCK, "F_GETLEASE %d, want F_WRLCK", w);
	snprintf(name, sizeof(name), "%s_proc_locks", when);
	wl_check(name, n == 2, "%d leases of this process in /proc/locks, want 2", n);
}

static void check_break(int wr)
{
	pid_t kid = fork();
	int st;

	if (kid == 0) {
		int fd = open("wr.dat", O_RDONLY | O_NONBLOCK);
		_exit(fd < 0 && errno == EWOULDBLOCK ? 0 : 1);
	}
	waitpid(kid, &st, 0);
	wl_check("break_refused_open", WIFEXITED(st) && WEXITSTATUS(st) == 0,
		 "the child's open was not refused with EWOULDBLOCK (status %#x)", st);
	for (int i = 0; i < 200 && !breaks; i++)
		usleep(5000);
	wl_check("break_signal", breaks > 0, "no SIGUSR1 came for the lease break");
	if (fcntl(wr, F_SETLEASE, F_UNLCK))
		wl_die("F_UNLCK: %s", strerror(errno));
	int fd = open("wr.dat", O_RDONLY | O_NONBLOCK);
	wl_check("open_after_release", fd >= 0, "open: %s", strerror(errno));
}

int main(void)
{
	int rd, wr;

	wl_init();
	wl_on_signal(SIGUSR1, on_break);
	rd = open_file("rd.dat", O_RDONLY);
	wr = open_file("wr.dat", O_WRONLY);
	if (fcntl(rd, F_SETLEASE, F_RDLCK) || fcntl(wr, F_SETSIG, SIGUSR1) ||
	    fcntl(wr, F_SETLEASE, F_WRLCK))
		wl_die("F_SETLEASE: %s", strerror(errno));
	check_leases(rd, wr, "set");

	wl_ready();
	wl_wait_go();

	check_leases(rd, wr, "restored");
	check_break(wr);
	wl_done();
}
