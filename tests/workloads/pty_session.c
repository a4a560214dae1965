/* pty_session.c: a session whose controlling terminal is a pty of the
 * tree. The root R holds the master; its child C calls setsid(), takes the
 * slave as its controlling terminal (TIOCSCTTY) on fds 0-2 and forks G in
 * a group of its own, which C makes the terminal's foreground group; G
 * also holds /dev/tty open. R queues a line for the slave, C one for the
 * master. After `go`: C checks its session, that the slave is its
 * controlling terminal (TIOCGSID), the foreground group is G and that
 * what it writes reaches the master; G checks its session and group, that
 * it is in the foreground, its /dev/tty fd, a fresh open("/dev/tty"), and
 * reads the line R queued (echo is off); R checks the line C queued and what C
 * writes after restore. Children report through their exit status and
 * their own check lines. */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#define TTY_FD 10

static void wait_file(const char *path)
{
	while (access(path, F_OK))
		usleep(5000);
}

/* The checks of a child whose fds 0-2 are the terminal go to a file. */
static void log_to(const char *file)
{
	char buf[64];
	int out = open(wl_path(file, buf, sizeof(buf)), O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (out < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
		wl_die("%s: %s", file, strerror(errno));
	close(out);
}

static void run_g(pid_t c, const char *name)
{
	int tty;
	char buf[64];

	log_to("g.log");
	tty = open("/dev/tty", O_RDWR);

	if (tty < 0 || dup2(tty, TTY_FD) != TTY_FD)
		wl_die("G: /dev/tty: %s", strerror(errno));
	close(tty);
	if (creat("g.ready", 0600) < 0)
		wl_die("G: creat: %s", strerror(errno));
	wl_wait_go();
	struct stat a, b;
	wl_check("g_session", getsid(0) == c, "sid %d, want %d", getsid(0), c);
	wl_check("g_group", getpgrp() == getpid(), "pgrp %d", getpgrp());
	wl_check("g_foreground", tcgetpgrp(TTY_FD) == getpid(), "tcgetpgrp %d", tcgetpgrp(TTY_FD));
	wl_check("g_devtty_same", !fstat(TTY_FD, &a) && !stat(name, &b) && a.st_rdev == 0x500,
		 "fd %d is not /dev/tty", TTY_FD);
	int fresh = open("/dev/tty", O_RDWR | O_NOCTTY);
	wl_check("g_devtty_open", fresh >= 0, "open /dev/tty: %s", strerror(errno));
	wl_check("g_ttyname", fresh >= 0 && !strcmp(ttyname(0) ? ttyname(0) : "", name),
		 "ttyname(0) %s, want %s", ttyname(0) ? ttyname(0) : "?", name);
	ssize_t r = read(0, buf, sizeof(buf));
	wl_check("g_line", r == 7 && !memcmp(buf, "from r\n", 7), "read %zd", r);
	wl_done();
}

static void run_c(const char *name)
{
	pid_t g;
	int s;

	if (setsid() < 0 || (s = open(name, O_RDWR)) < 0 || ioctl(s, TIOCSCTTY, 0) ||
	    dup2(s, 0) < 0 || dup2(s, 1) < 0 || dup2(s, 2) < 0)
		wl_die("C: terminal %s: %s", name, strerror(errno));
	close(s);
	struct termios t;
	if (tcgetattr(0, &t))
		wl_die("C: tcgetattr: %s", strerror(errno));
	t.c_lflag &= ~ECHO;
	if (tcsetattr(0, TCSANOW, &t))
		wl_die("C: tcsetattr: %s", strerror(errno));
	g = fork();
	if (g < 0)
		wl_die("fork: %s", strerror(errno));
	if (!g) {
		setpgid(0, 0);
		run_g(getppid(), name);
	}
	setpgid(g, g);
	signal(SIGTTOU, SIG_IGN);
	if (tcsetpgrp(0, g))
		wl_die("C: tcsetpgrp: %s", strerror(errno));
	if (write(1, "from c\n", 7) != 7)
		wl_die("C: write: %s", strerror(errno));
	wait_file("g.ready");
	if (creat("c.ready", 0600) < 0)
		wl_die("C: creat: %s", strerror(errno));
	wl_wait_go();
	pid_t sid = -1;
	log_to("c.log");
	wl_check("c_session", getsid(0) == getpid(), "sid %d", getsid(0));
	wl_check("c_ctty", !ioctl(s = open("/dev/tty", O_RDWR), TIOCGSID, &sid) && sid == getpid(),
		 "TIOCGSID %d (%s)", sid, strerror(errno));
	wl_check("c_foreground", tcgetpgrp(s) == g, "tcgetpgrp %d, want %d", tcgetpgrp(s), g);
	wl_check("c_write", write(s, "again c\n", 8) == 8, "write: %s", strerror(errno));
	wl_check_child("c_g", g);
	wl_done();
}

/* A child's check lines, into this process's output. */
static void show_log(const char *file)
{
	char path[64], line[256];
	FILE *f = fopen(wl_path(file, path, sizeof(path)), "r");
	bool done = false;

	while (f && fgets(line, sizeof(line), f)) {
		fputs(line, stdout);
		done |= !!strstr(line, "wl: done, 0 failure");
	}
	if (f)
		fclose(f);
	wl_check(file, done, "the child's checks failed or did not end");
}

int main(void)
{
	int m = posix_openpt(O_RDWR | O_NOCTTY);
	char name[64], buf[64];
	pid_t c;

	wl_init();
	if (m < 0 || grantpt(m) || unlockpt(m))
		wl_die("ptmx: %s", strerror(errno));
	snprintf(name, sizeof(name), "%s", ptsname(m));
	c = fork();
	if (c < 0)
		wl_die("fork: %s", strerror(errno));
	if (!c)
		run_c(name);
	wait_file("c.ready");
	if (write(m, "from r\n", 7) != 7)
		wl_die("write: %s", strerror(errno));
	usleep(100 * 1000);
	wl_ready();
	wl_wait_go();
	/* the slave translates \n to \r\n on output: "from c" was queued
	 * before the checkpoint, "again c" is written after */
	const char want[] = "from c\r\nagain c\r\n";
	size_t got = 0;
	struct pollfd pfd = {m, POLLIN, 0};
	while (got < sizeof(want) - 1 && poll(&pfd, 1, 3000) == 1) {
		ssize_t r = read(m, buf + got, sizeof(buf) - got);
		if (r <= 0)
			break;
		got += r;
	}
	wl_check("r_lines", got == sizeof(want) - 1 && !memcmp(buf, want, got),
		 "read %zu bytes: %.*s", got, (int)got, buf);
	wl_check_child("r_c", c);
	show_log("c.log");
	show_log("g.log");
	wl_done();
}
