/* tree_clone_share.c: kids made by clone(2) sharing state with the root.
 *   - kid F: CLONE_FILES (one fd table);
 *   - kid S: CLONE_FS (one cwd, root and umask);
 *   - kid B: CLONE_FILES | CLONE_FS (a second process on the same table).
 * Before the checkpoint F opens "f-pre.dat" (the root must see that fd), S
 * moves the shared cwd into "sub", the root sets umask 027.
 * After `go`, over sequencing pipes (shared descriptions), each side proves
 * the sharing to the other: an fd F opens is seen by the root (same inode),
 * an fd the root closes is gone in F and B; an fd B opens is seen by F; a
 * chdir by S moves the root and B; a umask set by the root is S's; the
 * write lock F took on lock.dat is still held (another process's F_GETLK
 * sees it). Kids report through their exit status. */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define WAIT_MS 5000

struct chan {
	int to[2], from[2]; /* root -> kid, kid -> root */
};

static struct chan cf, cs, cb;
static char base[PATH_MAX], sub[PATH_MAX + 8];

static void send_int(int fd, int v)
{
	if (write(fd, &v, sizeof(v)) != sizeof(v))
		wl_die("sequencing write: %s", strerror(errno));
}

/* The next int on FD within WAIT_MS, or -1 (checked as NAME). */
static int recv_int(const char *name, int fd)
{
	struct pollfd pf = {.fd = fd, .events = POLLIN};
	int r, v = -1;
	ssize_t n;

	/* a poll the checkpoint interrupted returns EINTR, as after a signal */
	while ((r = poll(&pf, 1, WAIT_MS)) < 0 && errno == EINTR)
		;
	n = r == 1 ? read(fd, &v, sizeof(v)) : -1;

	wl_check(name, n == sizeof(v), "waiting on fd %d: poll %d, read %zd", fd, r, n);
	return n == sizeof(v) ? v : -1;
}

static void make_file(const char *name, const char *text)
{
	char p[PATH_MAX];
	int fd = open(wl_path(name, p, sizeof(p)), O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text) || close(fd))
		wl_die("cannot write %s: %s", name, strerror(errno));
}

static int open_file(const char *name)
{
	char p[PATH_MAX];
	int fd = open(wl_path(name, p, sizeof(p)), O_RDONLY);

	if (fd < 0)
		wl_die("cannot open %s: %s", name, strerror(errno));
	return fd;
}

/* Checks NAME: fd FD is open on file NAME of the work dir. */
static void check_fd_is(const char *name, int fd, const char *file)
{
	char p[PATH_MAX];
	struct stat a, b;
	bool ok = fd >= 0 && !fstat(fd, &a) && !stat(wl_path(file, p, sizeof(p)), &b) &&
		  a.st_ino == b.st_ino && a.st_dev == b.st_dev;

	wl_check(name, ok, "fd %d is not open on %s (%s)", fd, file, strerror(errno));
}

static void check_closed(const char *name, int fd)
{
	int r = fcntl(fd, F_GETFD);

	wl_check(name, r < 0 && errno == EBADF, "fd %d: F_GETFD gave %d (%s), expected EBADF", fd,
		 r, r < 0 ? strerror(errno) : "open");
}

static void check_cwd(const char *name, const char *want)
{
	char cwd[PATH_MAX];

	wl_check(name, getcwd(cwd, sizeof(cwd)) && !strcmp(cwd, want), "cwd '%s', expected '%s'",
		 cwd, want);
}

static pid_t clone_kid(unsigned long flags, void (*fn)(void))
{
	long pid = syscall(SYS_clone, flags | SIGCHLD, 0, NULL, NULL, 0);

	if (pid < 0)
		wl_die("clone 0x%lx: %s", flags, strerror(errno));
	if (pid == 0) {
		fn();
		_exit(wl_failures() ? 1 : 0);
	}
	return pid;
}

static void open_chan(struct chan *c)
{
	if (pipe(c->to) || pipe(c->from))
		wl_die("pipe: %s", strerror(errno));
}

/* ---- the kids ---- */

/* The kind of lock another process finds on [0, 100) of lock.dat. */
static int lock_seen(void)
{
	char p[PATH_MAX];
	int fd = open(wl_path("lock.dat", p, sizeof(p)), O_RDWR);
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 100};

	if (fd < 0 || fcntl(fd, F_GETLK, &fl))
		wl_die("F_GETLK: %s", strerror(errno));
	close(fd);
	return fl.l_type;
}

static void kid_files(void)
{
	int pre = open_file("f-pre.dat"), gone, post, from_b;
	char p[PATH_MAX];
	int lk = open(wl_path("lock.dat", p, sizeof(p)), O_RDWR);
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 100};

	/* a POSIX lock of the shared table, taken by this kid */
	if (lk < 0 || fcntl(lk, F_SETLK, &fl))
		wl_die("F_SETLK: %s", strerror(errno));
	send_int(cf.from[1], pre);
	/* after go */
	gone = recv_int("f_go", cf.to[0]);
	post = open_file("f-post.dat");
	send_int(cf.from[1], post);
	/* the root has closed `gone` now, and B has opened one */
	from_b = recv_int("f_step2", cf.to[0]);
	check_closed("f_sees_root_close", gone);
	check_fd_is("f_sees_b_open", from_b, "b-post.dat");
}

static void kid_fs(void)
{
	if (chdir(sub))
		wl_die("chdir %s: %s", sub, strerror(errno));
	send_int(cs.from[1], 1);
	/* after go */
	recv_int("s_go", cs.to[0]);
	mode_t m = umask(0);
	umask(m);
	wl_check("s_sees_root_umask", m == 0027, "umask %03o, expected 027", m);
	check_cwd("s_cwd_after_restore", sub);
	if (chdir(base))
		wl_die("chdir %s: %s", base, strerror(errno));
	umask(0066);
	send_int(cs.from[1], 2);
}

static void kid_both(void)
{
	int gone, post;

	send_int(cb.from[1], 1);
	gone = recv_int("b_go", cb.to[0]);
	check_cwd("b_cwd_after_restore", sub);
	post = open_file("b-post.dat");
	send_int(cb.from[1], post);
	recv_int("b_step2", cb.to[0]);
	check_closed("b_sees_root_close", gone);
	check_cwd("b_sees_s_chdir", base);
}

/* ---- the root ---- */

int main(void)
{
	pid_t f, s, b;
	int pre, gone, post, from_b;

	wl_init();
	if (!getcwd(base, sizeof(base)))
		wl_die("getcwd: %s", strerror(errno));
	snprintf(sub, sizeof(sub), "%s/sub", base);
	if (mkdir(sub, 0755) && errno != EEXIST)
		wl_die("mkdir sub: %s", strerror(errno));
	make_file("f-pre.dat", "pre");
	make_file("f-post.dat", "post");
	make_file("b-post.dat", "b");
	make_file("gone.dat", "gone");
	make_file("lock.dat", "lock");
	open_chan(&cf);
	open_chan(&cs);
	open_chan(&cb);
	gone = open_file("gone.dat");
	umask(0027);
	f = clone_kid(CLONE_FILES, kid_files);
	s = clone_kid(CLONE_FS, kid_fs);
	pre = recv_int("f_ready", cf.from[0]);
	recv_int("s_ready", cs.from[0]);
	b = clone_kid(CLONE_FILES | CLONE_FS, kid_both);
	recv_int("b_ready", cb.from[0]);
	wl_ready();
	wl_wait_go();

	check_fd_is("root_sees_f_pre_open", pre, "f-pre.dat");
	/* asked from another process (a fork: its own table) */
	pid_t asker = fork();
	if (asker == 0)
		_exit(lock_seen() == F_WRLCK ? 0 : 1);
	wl_check_child("lock_of_shared_table_held", asker);
	check_cwd("root_cwd_moved_by_s", sub);
	send_int(cf.to[1], gone);
	send_int(cb.to[1], gone);
	post = recv_int("f_post", cf.from[0]);
	check_fd_is("root_sees_f_post_open", post, "f-post.dat");
	from_b = recv_int("b_post", cb.from[0]);
	check_fd_is("root_sees_b_open", from_b, "b-post.dat");
	close(gone);
	send_int(cf.to[1], from_b);
	/* S moves the cwd back to base and sets umask 066 */
	send_int(cs.to[1], 1);
	recv_int("s_done", cs.from[0]);
	check_cwd("root_sees_s_chdir", base);
	mode_t m = umask(0);
	umask(m);
	wl_check("root_sees_s_umask", m == 0066, "umask %03o, expected 066", m);
	send_int(cb.to[1], 1);
	wl_check_child("kid_files", f);
	wl_check_child("kid_fs", s);
	wl_check_child("kid_both", b);
	wl_done();
}
