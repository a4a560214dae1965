/* fd_deleted.c: workload with regular files deleted while open: contents,
 * offsets, flags, mode, times and shared descriptions must survive, and the
 * files must still be deleted (no link, "PATH (deleted)") after restore. */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SIZE_A (300 * 1024 + 123)

static void check_deleted(const char *name, int fd, const char *path)
{
	char want[PATH_MAX + 16], got[PATH_MAX + 16], tag[64];
	struct stat st;

	snprintf(want, sizeof(want), "%s (deleted)", path);
	wl_fd_link(fd, got, sizeof(got));
	snprintf(tag, sizeof(tag), "%s_link", name);
	wl_check(tag, !strcmp(got, want), "fd %d -> '%s', expected '%s'", fd, got, want);
	snprintf(tag, sizeof(tag), "%s_nlink", name);
	wl_check(tag, !fstat(fd, &st) && st.st_nlink == 0, "st_nlink %lu",
		 (unsigned long)st.st_nlink);
	snprintf(tag, sizeof(tag), "%s_gone", name);
	wl_check(tag, access(path, F_OK) != 0, "%s exists again", path);
}

int main(void)
{
	char pa[PATH_MAX], pb[PATH_MAX];
	static unsigned char buf[SIZE_A + 100];
	struct stat st_a0, st, st2;
	int a1, a1dup, a2, b, n;
	off_t off;

	wl_init();
	wl_path("deleted-a.bin", pa, sizeof(pa));
	wl_path("deleted-b.txt", pb, sizeof(pb));
	a1 = open(pa, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (a1 < 0 || !wl_write_pattern(a1, SIZE_A, 0))
		wl_die("create %s: %s", pa, strerror(errno));
	a2 = open(pa, O_WRONLY | O_APPEND);
	a1dup = dup(a1);
	b = open(pb, O_RDONLY | O_CREAT, 0444);
	if (a2 < 0 || a1dup < 0 || b < 0)
		wl_die("open: %s", strerror(errno));
	if (fchmod(a1, 0640) || unlink(pa) || unlink(pb))
		wl_die("chmod/unlink: %s", strerror(errno));
	lseek(a1, 12345, SEEK_SET);
	fstat(a1, &st_a0);

	wl_ready();
	wl_wait_go();

	check_deleted("a1", a1, pa);
	check_deleted("a2", a2, pa);
	check_deleted("b", b, pb);
	wl_check("a_size", !fstat(a1, &st) && st.st_size == SIZE_A, "size %lld",
		 (long long)st.st_size);
	wl_check("a_mode", (st.st_mode & 07777) == 0640, "mode %o", st.st_mode & 07777);
	wl_check("a_mtime",
		 st.st_mtim.tv_sec == st_a0.st_mtim.tv_sec &&
		     st.st_mtim.tv_nsec == st_a0.st_mtim.tv_nsec,
		 "mtime %lld.%09ld, was %lld.%09ld", (long long)st.st_mtim.tv_sec,
		 st.st_mtim.tv_nsec, (long long)st_a0.st_mtim.tv_sec, st_a0.st_mtim.tv_nsec);
	wl_check("a_same_inode", !fstat(a2, &st2) && st2.st_ino == st.st_ino,
		 "a1 inode %lu, a2 inode %lu", (unsigned long)st.st_ino, (unsigned long)st2.st_ino);
	wl_check("b_empty", !fstat(b, &st) && st.st_size == 0, "size %lld", (long long)st.st_size);
	wl_check("b_mode", (st.st_mode & 07777) == 0444, "mode %o", st.st_mode & 07777);

	off = lseek(a1, 0, SEEK_CUR);
	wl_check("a1_offset", off == 12345, "offset %lld", (long long)off);
	wl_check_fl("a1_flags", a1, O_ACCMODE | O_APPEND, O_RDWR);
	wl_check_fl("a2_flags", a2, O_ACCMODE | O_APPEND, O_WRONLY | O_APPEND);
	wl_check_fl("b_flags", b, O_ACCMODE, O_RDONLY);

	memset(buf, 0, sizeof(buf));
	n = pread(a1, buf, sizeof(buf), 0);
	wl_check("a_len", n == SIZE_A, "read %d of %d", n, SIZE_A);
	wl_check_pattern("a_data", buf, SIZE_A, 0);

	/* a1 and a1dup share one description (offset), a2 appends to the same file */
	lseek(a1dup, 100, SEEK_SET);
	off = lseek(a1, 0, SEEK_CUR);
	wl_check("a1_dup_shared", off == 100, "offset via a1 %lld after seeking a1dup",
		 (long long)off);
	n = write(a2, "tail", 4);
	wl_check("a2_append", n == 4 && pread(a1, buf, 4, SIZE_A) == 4 && !memcmp(buf, "tail", 4),
		 "write %d, then read '%.4s' at the end", n, buf);
	off = lseek(a1, 0, SEEK_CUR);
	wl_check("a1_offset_kept", off == 100, "offset %lld", (long long)off);
	wl_done();
}
