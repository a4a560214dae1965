/* fs_removed.c: a working directory and nodes removed while in use: the
 * process works in "gone-cwd", removed; holds a directory of mode 0751
 * removed ("gone-dir"), one whose parent was removed too
 * ("gone-parent/child"), and /dev/null and /dev/zero nodes of its own
 * ("my-null", "my-zero") unlinked. After go: /proc/self/cwd and each fd
 * read "PATH (deleted)", getcwd fails with ENOENT, the directories are
 * empty, unlinked, of their mode, and nothing can be created in them; the
 * devices are the same devices (rdev) and work; none of the names exists
 * again. */
#include "wl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static char base[PATH_MAX / 2];

static const char *at(const char *name, char *buf)
{
	snprintf(buf, PATH_MAX, "%s/%.1000s", base, name);
	return buf;
}

static int removed_dir(const char *name, mode_t mode, bool parent_too)
{
	char p[PATH_MAX], q[PATH_MAX];
	int fd;

	if (parent_too && mkdir(at("gone-parent", q), 0755))
		wl_die("mkdir: %s", strerror(errno));
	if (mkdir(at(name, p), 0700) || chmod(p, mode))
		wl_die("mkdir %s: %s", p, strerror(errno));
	fd = open(p, O_RDONLY | O_DIRECTORY);
	if (fd < 0 || rmdir(p) || (parent_too && rmdir(q)))
		wl_die("open/rmdir %s: %s", p, strerror(errno));
	return fd;
}

static int removed_dev(const char *name, dev_t dev, int flags)
{
	char p[PATH_MAX];
	int fd;

	if (mknod(at(name, p), S_IFCHR | 0640, dev))
		wl_die("mknod %s: %s", p, strerror(errno));
	fd = open(p, flags);
	if (fd < 0 || unlink(p))
		wl_die("open/unlink %s: %s", p, strerror(errno));
	return fd;
}

static void check_link(const char *tag, const char *proc, const char *name)
{
	char link[PATH_MAX], want[PATH_MAX + 16], p[PATH_MAX];
	ssize_t n = readlink(proc, link, sizeof(link) - 1);

	link[n > 0 ? n : 0] = 0;
	snprintf(want, sizeof(want), "%s (deleted)", at(name, p));
	wl_check(tag, !strcmp(link, want), "%s reads %s, expected %s", proc, link, want);
}

static void check_dir(const char *tag, int fd, const char *name, mode_t mode)
{
	char t[64], proc[64], p[PATH_MAX];
	struct stat st;
	int n = 0;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	snprintf(t, sizeof(t), "%s_link", tag);
	check_link(t, proc, name);
	snprintf(t, sizeof(t), "%s_stat", tag);
	wl_check(t,
		 !fstat(fd, &st) && S_ISDIR(st.st_mode) && (st.st_mode & 07777) == mode &&
		     st.st_nlink == 0,
		 "mode %o, %lu links", st.st_mode, (unsigned long)st.st_nlink);
	snprintf(t, sizeof(t), "%s_empty", tag);
	DIR *d = fdopendir(dup(fd));
	while (d && readdir(d))
		n++;
	if (d)
		closedir(d);
	wl_check(t, d && n == 0, "%d entries", n);
	snprintf(t, sizeof(t), "%s_no_create", tag);
	int c = openat(fd, "x", O_CREAT | O_WRONLY, 0600);
	wl_check(t, c < 0 && errno == ENOENT, "openat O_CREAT gave %d (%s)", c, strerror(errno));
	snprintf(t, sizeof(t), "%s_gone", tag);
	wl_check(t, access(at(name, p), F_OK) && errno == ENOENT, "%s exists again", p);
}

static void check_dev(const char *tag, int fd, const char *name, dev_t dev)
{
	char t[64], proc[64], buf[16] = "not zero";
	struct stat st;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	snprintf(t, sizeof(t), "%s_link", tag);
	check_link(t, proc, name);
	snprintf(t, sizeof(t), "%s_rdev", tag);
	wl_check(t, !fstat(fd, &st) && S_ISCHR(st.st_mode) && st.st_rdev == dev && st.st_nlink == 0,
		 "rdev %u:%u, %lu links", major(st.st_rdev), minor(st.st_rdev),
		 (unsigned long)st.st_nlink);
	snprintf(t, sizeof(t), "%s_works", tag);
	if (dev == makedev(1, 3))
		wl_check(t, write(fd, "x", 1) == 1 && read(fd, buf, 1) == 0, "null does not work");
	else
		wl_check(t, read(fd, buf, 8) == 8 && !memcmp(buf, "\0\0\0\0\0\0\0\0", 8),
			 "zero does not read zeros");
}

int main(void)
{
	char p[PATH_MAX], buf[PATH_MAX];
	int dir, nested, null, zero;

	wl_init();
	wl_path(".", p, sizeof(p));
	snprintf(base, sizeof(base), "%.2000s", p);
	base[strlen(base) - 2] = 0; /* "DIR/." */
	dir = removed_dir("gone-dir", 0751, false);
	nested = removed_dir("gone-parent/child", 0700, true);
	null = removed_dev("my-null", makedev(1, 3), O_RDWR);
	zero = removed_dev("my-zero", makedev(1, 5), O_RDONLY);
	if (mkdir(at("gone-cwd", p), 0710) || chdir(p) || rmdir(p))
		wl_die("cwd: %s", strerror(errno));

	wl_ready();
	wl_wait_go();

	check_link("cwd_link", "/proc/self/cwd", "gone-cwd");
	wl_check("cwd_getcwd", !getcwd(buf, sizeof(buf)) && errno == ENOENT, "getcwd gave %s", buf);
	struct stat st;
	wl_check("cwd_stat", !stat(".", &st) && (st.st_mode & 07777) == 0710 && st.st_nlink == 0,
		 "mode %o, %lu links", st.st_mode, (unsigned long)st.st_nlink);
	check_dir("dir", dir, "gone-dir", 0751);
	check_dir("nested", nested, "gone-parent/child", 0700);
	wl_check("nested_parent_gone", access(at("gone-parent", p), F_OK) && errno == ENOENT,
		 "%s exists again", p);
	check_dev("null", null, "my-null", makedev(1, 3));
	check_dev("zero", zero, "my-zero", makedev(1, 5));
	wl_done();
}
