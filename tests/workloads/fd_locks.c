/* fd_locks.c: workload holding file locks (dumped with --file-locks): POSIX
 * record locks (a write range and a read range to EOF), flock exclusive and
 * shared, and an OFD lock. After go, a child forked then must find each of
 * them held by this process (F_GETLK names its pid), and free ranges free. */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

static int open_new(const char *name)
{
	char p[PATH_MAX];
	int fd;

	wl_path(name, p, sizeof(p));
	fd = open(p, O_RDWR | O_CREAT, 0644);
	if (fd < 0 || ftruncate(fd, 1000))
		wl_die("open %s: %s", p, strerror(errno));
	return fd;
}

static int open_again(const char *name)
{
	char p[PATH_MAX];

	wl_path(name, p, sizeof(p));
	return open(p, O_RDWR);
}

static void setlk(int fd, int cmd, short type, off_t start, off_t len)
{
	struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};

	if (fcntl(fd, cmd, &fl))
		wl_die("lock: %s", strerror(errno));
}

/* F_GETLK (or F_OFD_GETLK) for a range; checks who and what blocks it. */
static void getlk(const char *tag, int fd, int cmd, short type, off_t start, short want_type,
		  pid_t want_pid, off_t want_start, off_t want_len)
{
	struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = 1};

	if (fcntl(fd, cmd, &fl)) {
		wl_check(tag, false, "F_GETLK: %s", strerror(errno));
		return;
	}
	if (want_type == F_UNLCK) {
		wl_check(tag, fl.l_type == F_UNLCK, "range at %lld is locked (type %d by pid %d)",
			 (long long)start, fl.l_type, fl.l_pid);
		return;
	}
	wl_check(tag,
		 fl.l_type == want_type && fl.l_pid == want_pid && fl.l_start == want_start &&
		     fl.l_len == want_len,
		 "type %d pid %d range %lld+%lld, expected type %d pid %d range %lld+%lld",
		 fl.l_type, fl.l_pid, (long long)fl.l_start, (long long)fl.l_len, want_type,
		 want_pid, (long long)want_start, (long long)want_len);
}

static void flock_nb(const char *tag, const char *name, int op, bool want_ok)
{
	int fd = open_again(name);
	int r = flock(fd, op | LOCK_NB);
	int err = errno;

	if (want_ok)
		wl_check(tag, r == 0, "flock %s: %s", name, strerror(err));
	else
		wl_check(tag, r < 0 && err == EWOULDBLOCK,
			 "flock %s: %d (%s), expected EWOULDBLOCK", name, r,
			 r ? strerror(err) : "taken");
	close(fd);
}

/* In a child process: every lock of the parent must be seen. */
static void child_checks(pid_t parent)
{
	int p = open_again("lock-posix");
	int o = open_again("lock-ofd");

	getlk("posix_write_held", p, F_GETLK, F_RDLCK, 50, F_WRLCK, parent, 0, 100);
	getlk("posix_gap_free", p, F_GETLK, F_WRLCK, 150, F_UNLCK, 0, 0, 0);
	getlk("posix_read_held", p, F_GETLK, F_WRLCK, 5000, F_RDLCK, parent, 200, 0);
	getlk("posix_read_shared", p, F_GETLK, F_RDLCK, 5000, F_UNLCK, 0, 0, 0);
	getlk("ofd_held", o, F_OFD_GETLK, F_RDLCK, 15, F_WRLCK, -1, 10, 10);
	getlk("ofd_vs_posix", o, F_GETLK, F_WRLCK, 12, F_WRLCK, -1, 10, 10);
	getlk("ofd_outside_free", o, F_OFD_GETLK, F_WRLCK, 20, F_UNLCK, 0, 0, 0);
	flock_nb("flock_ex_held", "lock-flock-ex", LOCK_SH, false);
	flock_nb("flock_sh_shared", "lock-flock-sh", LOCK_SH, true);
	flock_nb("flock_sh_held", "lock-flock-sh", LOCK_EX, false);
	flock_nb("flock_free", "lock-free", LOCK_EX, true);
	close(p);
	close(o);
}

static int count_lock_lines(int fd)
{
	char p[64], line[256];
	int n = 0;
	FILE *f;

	snprintf(p, sizeof(p), "/proc/self/fdinfo/%d", fd);
	f = fopen(p, "r");
	while (f && fgets(line, sizeof(line), f))
		n += !strncmp(line, "lock:", 5);
	if (f)
		fclose(f);
	return n;
}

int main(void)
{
	int p, fx, fs, o, fr, st;
	pid_t child;

	wl_init();
	p = open_new("lock-posix");
	fx = open_new("lock-flock-ex");
	fs = open_new("lock-flock-sh");
	o = open_new("lock-ofd");
	fr = open_new("lock-free");
	setlk(p, F_SETLK, F_WRLCK, 0, 100);
	setlk(p, F_SETLK, F_RDLCK, 200, 0);
	setlk(o, F_OFD_SETLK, F_WRLCK, 10, 10);
	if (flock(fx, LOCK_EX) || flock(fs, LOCK_SH))
		wl_die("flock: %s", strerror(errno));

	wl_ready();
	wl_wait_go();

	wl_check("fdinfo_posix", count_lock_lines(p) == 2, "%d lock lines", count_lock_lines(p));
	wl_check("fdinfo_flock", count_lock_lines(fx) == 1 && count_lock_lines(fs) == 1,
		 "%d and %d lock lines", count_lock_lines(fx), count_lock_lines(fs));
	wl_check("fdinfo_ofd", count_lock_lines(o) == 1, "%d lock lines", count_lock_lines(o));
	wl_check("fdinfo_free", count_lock_lines(fr) == 0, "%d lock lines", count_lock_lines(fr));
	child = fork();
	if (child < 0)
		wl_die("fork: %s", strerror(errno));
	if (child == 0) {
		child_checks(getppid());
		_exit(wl_failures() ? 1 : 0);
	}
	if (waitpid(child, &st, 0) != child)
		wl_die("waitpid: %s", strerror(errno));
	wl_check("child_checks", WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %#x", st);
	/* the locks are really this process's: it can drop and take them again */
	setlk(p, F_SETLK, F_UNLCK, 0, 0);
	wl_check("posix_unlock", count_lock_lines(p) == 0, "%d lock lines", count_lock_lines(p));
	wl_check("flock_unlock", flock(fx, LOCK_UN) == 0 && count_lock_lines(fx) == 0,
		 "flock LOCK_UN");
	wl_done();
}
