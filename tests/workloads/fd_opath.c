/* fd_opath.c: workload with O_PATH descriptors of a file, a directory, a
 * symlink (O_NOFOLLOW), a FIFO and a deleted file: after restore each names
 * the same object, keeps its flags, and works with fstat/openat/readlinkat. */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void check_same(const char *tag, int fd, const struct stat *was)
{
	struct stat st = {0};

	wl_check(tag, !fstat(fd, &st) && st.st_ino == was->st_ino && st.st_dev == was->st_dev,
		 "inode %lu, was %lu", (unsigned long)st.st_ino, (unsigned long)was->st_ino);
}

/* Reads a file through an O_PATH fd, the way programs do: /proc/self/fd. */
static int read_via(int fd, char *buf, size_t len)
{
	char p[64];
	int r, n;

	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	r = open(p, O_RDONLY);
	if (r < 0)
		return -errno;
	n = read(r, buf, len);
	close(r);
	return n;
}

int main(void)
{
	char dir[PATH_MAX], file[PATH_MAX], lnk[PATH_MAX], fifo[PATH_MAX], gone[PATH_MAX];
	char inner[PATH_MAX + 16], buf[256], l[PATH_MAX + 16];
	struct stat s_file, s_dir, s_lnk, s_fifo, s_gone;
	int f, d, sl, ff, g, t, n;

	wl_init();
	wl_path("opath-dir", dir, sizeof(dir));
	wl_path("opath-file", file, sizeof(file));
	wl_path("opath-link", lnk, sizeof(lnk));
	wl_path("opath-fifo", fifo, sizeof(fifo));
	wl_path("opath-gone", gone, sizeof(gone));
	snprintf(inner, sizeof(inner), "%s/inner.txt", dir);
	if (mkdir(dir, 0750) || symlink("opath-file", lnk) || mkfifo(fifo, 0600))
		wl_die("setup: %s", strerror(errno));
	wl_mkfile(file, "file data", 9, 0644);
	wl_mkfile(inner, "inner data", 10, 0644);
	wl_mkfile(gone, "gone data", 9, 0600);
	f = open(file, O_PATH);
	d = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	sl = open(lnk, O_PATH | O_NOFOLLOW);
	ff = open(fifo, O_PATH);
	g = open(gone, O_PATH);
	if (f < 0 || d < 0 || sl < 0 || ff < 0 || g < 0)
		wl_die("open O_PATH: %s", strerror(errno));
	fstat(f, &s_file);
	fstat(d, &s_dir);
	fstat(sl, &s_lnk);
	fstat(ff, &s_fifo);
	fstat(g, &s_gone);
	if (unlink(gone))
		wl_die("unlink: %s", strerror(errno));

	wl_ready();
	wl_wait_go();

	/* all flags but O_LARGEFILE, exactly */
	wl_check_fl("file_flags", f, ~O_LARGEFILE, O_PATH);
	wl_check_fl("dir_flags", d, ~O_LARGEFILE, O_PATH | O_DIRECTORY);
	wl_check_fl("link_flags", sl, ~O_LARGEFILE, O_PATH | O_NOFOLLOW);
	wl_check_fl("fifo_flags", ff, ~O_LARGEFILE, O_PATH);
	wl_check_fl("gone_flags", g, ~O_LARGEFILE, O_PATH);
	wl_check_fdfl("dir_cloexec", d, FD_CLOEXEC);
	wl_check_fdfl("file_no_cloexec", f, 0);
	check_same("file_same", f, &s_file);
	check_same("dir_same", d, &s_dir);
	check_same("link_same", sl, &s_lnk);
	check_same("fifo_same", ff, &s_fifo);
	wl_check("link_is_link", S_ISLNK(s_lnk.st_mode), "mode %o", s_lnk.st_mode);

	wl_fd_link(f, l, sizeof(l));
	wl_check("file_link", !strcmp(l, file), "-> %s", l);
	wl_fd_link(sl, l, sizeof(l));
	wl_check("link_link", !strcmp(l, lnk), "-> %s", l);

	/* O_PATH: I/O refused, the path usable */
	errno = 0;
	wl_check("file_no_read", read(f, buf, 1) < 0 && errno == EBADF, "read: errno %d", errno);
	n = read_via(f, buf, sizeof(buf));
	wl_check("file_read_via_proc", n == 9 && !memcmp(buf, "file data", 9), "read %d", n);
	t = openat(d, "inner.txt", O_RDONLY);
	n = t < 0 ? -errno : (int)read(t, buf, sizeof(buf));
	if (t >= 0)
		close(t);
	wl_check("dir_openat", n == 10 && !memcmp(buf, "inner data", 10), "openat+read: %d", n);
	n = readlinkat(sl, "", buf, sizeof(buf));
	wl_check("link_readlinkat", n == 10 && !memcmp(buf, "opath-file", 10), "readlinkat: %d", n);
	{
		struct stat st;
		wl_check("file_fstatat",
			 !fstatat(f, "", &st, AT_EMPTY_PATH) && st.st_ino == s_file.st_ino &&
			     st.st_size == 9,
			 "fstatat AT_EMPTY_PATH");
	}

	/* the deleted one: same contents, still deleted */
	{
		struct stat st;
		char want[PATH_MAX + 16];
		snprintf(want, sizeof(want), "%s (deleted)", gone);
		wl_fd_link(g, l, sizeof(l));
		wl_check("gone_link", !strcmp(l, want), "-> '%s', expected '%s'", l, want);
		wl_check("gone_nlink",
			 !fstat(g, &st) && st.st_nlink == 0 && st.st_size == 9 &&
			     (st.st_mode & 07777) == 0600,
			 "nlink %lu size %lld mode %o", (unsigned long)st.st_nlink,
			 (long long)st.st_size, st.st_mode & 07777);
		n = read_via(g, buf, sizeof(buf));
		wl_check("gone_data", n == 9 && !memcmp(buf, "gone data", 9), "read %d", n);
	}
	wl_done();
}
