/* fd_proc.c: files of /proc held open (opened late at restore): the
 * process's own /proc/self/status (at offset 10) and /proc/self/fd (a
 * directory), its child's /proc/KID/cmdline, and, in the child, its
 * parent's /proc/PPID/comm. After go: each fd reads /proc/PID/... of the
 * same pid, at its offset, and its contents are the restored process's:
 * status names this pid, the fd directory lists the fd itself, cmdline is
 * the child's, comm the parent's. */
#include "wl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void check_link(const char *tag, int fd, pid_t pid, const char *rest)
{
	char link[PATH_MAX], want[PATH_MAX];

	wl_fd_link(fd, link, sizeof(link));
	snprintf(want, sizeof(want), "/proc/%d/%s", pid, rest);
	wl_check(tag, !strcmp(link, want), "link %s, expected %s", link, want);
}

static void child(pid_t parent, int hold)
{
	char buf[64] = {0};
	char p[64];
	int fd;

	snprintf(p, sizeof(p), "/proc/%d/comm", parent);
	fd = open(p, O_RDONLY);
	if (fd < 0)
		_exit(2);
	wl_wait_go();
	check_link("kid_comm_link", fd, parent, "comm");
	wl_check("kid_comm", pread(fd, buf, sizeof(buf) - 1, 0) > 0 && !strcmp(buf, "fd_proc\n"),
		 "comm reads \"%s\"", buf);
	/* alive until the parent has read its cmdline */
	while (read(hold, buf, 1) > 0)
		;
	_exit(wl_failures() ? 1 : 0);
}

int main(int argc, char **argv)
{
	char buf[4096] = {0}, want[64];
	int status, fdir, cmd, n;
	pid_t kid;
	DIR *d;

	(void)argc;
	int hold[2];

	wl_init();
	if (pipe(hold))
		wl_die("pipe: %s", strerror(errno));
	kid = fork();
	if (kid < 0)
		wl_die("fork: %s", strerror(errno));
	if (kid == 0) {
		close(hold[1]);
		child(getppid(), hold[0]);
	}
	close(hold[0]);
	status = open("/proc/self/status", O_RDONLY);
	fdir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY);
	snprintf(want, sizeof(want), "/proc/%d/cmdline", kid);
	cmd = open(want, O_RDONLY);
	if (status < 0 || fdir < 0 || cmd < 0 || lseek(status, 10, SEEK_SET) != 10)
		wl_die("open /proc: %s", strerror(errno));
	usleep(100000); /* the child has its fd open */

	wl_ready();
	wl_wait_go();

	check_link("status_link", status, getpid(), "status");
	check_link("fd_dir_link", fdir, getpid(), "fd");
	check_link("kid_cmdline_link", cmd, kid, "cmdline");
	wl_check("status_pos", lseek(status, 0, SEEK_CUR) == 10, "offset %lld",
		 (long long)lseek(status, 0, SEEK_CUR));
	n = pread(status, buf, sizeof(buf) - 1, 0);
	snprintf(want, sizeof(want), "\nPid:\t%d\n", getpid());
	wl_check("status_pid", n > 0 && strstr(buf, want), "status has no \"%s\"", want + 1);
	d = fdopendir(dup(fdir));
	bool seen = false;
	for (struct dirent *e; d && (e = readdir(d));)
		seen |= atoi(e->d_name) == status;
	if (d)
		closedir(d);
	wl_check("fd_dir_lists", seen, "/proc/self/fd does not list fd %d", status);
	memset(buf, 0, sizeof(buf));
	n = pread(cmd, buf, sizeof(buf) - 1, 0);
	wl_check("kid_cmdline", n > 0 && !strcmp(buf, argv[0]), "the child's cmdline is \"%s\"",
		 buf);
	close(hold[1]);
	wl_check_child("kid", kid);
	wl_done();
}
