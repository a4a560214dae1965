/* fd_memfd.c: workload with memfds: contents, size, name, seals, mode,
 * offsets, flags and a second description of the same memfd must survive. */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SIZE_1 (200 * 1024 + 7)

static void check_name(const char *tag, int fd, const char *name)
{
	char want[300], got[300];

	snprintf(want, sizeof(want), "/memfd:%s (deleted)", name);
	wl_fd_link(fd, got, sizeof(got));
	wl_check(tag, !strcmp(got, want), "fd %d -> '%s', expected '%s'", fd, got, want);
}

static void check_seals(const char *tag, int fd, int want)
{
	int s = fcntl(fd, F_GET_SEALS);

	wl_check(tag, s == want, "seals %#x, expected %#x", s, want);
}

int main(void)
{
	static unsigned char buf[SIZE_1 + 100];
	char p[64];
	int m1, m1r, m2, m3, i, n;
	struct stat st, st2;
	off_t off;

	wl_init();
	m1 = memfd_create("wl memfd one", MFD_ALLOW_SEALING);
	m2 = memfd_create("two", 0);
	m3 = memfd_create("three:sealed", MFD_ALLOW_SEALING | MFD_CLOEXEC);
	if (m1 < 0 || m2 < 0 || m3 < 0)
		wl_die("memfd_create: %s", strerror(errno));
	if (!wl_write_pattern(m1, SIZE_1, 0) || lseek(m1, 777, SEEK_SET) != 777)
		wl_die("write m1: %s", strerror(errno));
	if (fcntl(m1, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW))
		wl_die("seal m1: %s", strerror(errno));
	snprintf(p, sizeof(p), "/proc/self/fd/%d", m1);
	m1r = open(p, O_RDONLY);
	if (m1r < 0 || lseek(m1r, 5, SEEK_SET) != 5)
		wl_die("reopen m1: %s", strerror(errno));
	if (ftruncate(m2, 5000) || pwrite(m2, "hello", 5, 4000) != 5 || fchmod(m2, 0600))
		wl_die("m2: %s", strerror(errno));
	if (write(m3, "sealed data", 11) != 11 ||
	    fcntl(m3, F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SEAL))
		wl_die("m3: %s", strerror(errno));
	wl_ready();
	wl_wait_go();

	check_name("m1_name", m1, "wl memfd one");
	check_name("m1r_name", m1r, "wl memfd one");
	check_name("m2_name", m2, "two");
	check_name("m3_name", m3, "three:sealed");
	check_seals("m1_seals", m1, F_SEAL_SHRINK | F_SEAL_GROW);
	check_seals("m1r_seals", m1r, F_SEAL_SHRINK | F_SEAL_GROW);
	check_seals("m2_seals", m2, F_SEAL_SEAL);
	check_seals("m3_seals", m3, F_SEAL_WRITE | F_SEAL_SEAL);

	wl_check("m1_same_inode", !fstat(m1, &st) && !fstat(m1r, &st2) && st.st_ino == st2.st_ino,
		 "inodes %lu and %lu", (unsigned long)st.st_ino, (unsigned long)st2.st_ino);
	wl_check("m1_nlink", st.st_nlink == 0, "st_nlink %lu", (unsigned long)st.st_nlink);
	wl_check("m1_size", st.st_size == SIZE_1, "size %lld", (long long)st.st_size);
	off = lseek(m1, 0, SEEK_CUR);
	wl_check("m1_offset", off == 777, "offset %lld", (long long)off);
	off = lseek(m1r, 0, SEEK_CUR);
	wl_check("m1r_offset", off == 5, "offset %lld", (long long)off);
	wl_check_fl("m1_flags", m1, O_ACCMODE, O_RDWR);
	wl_check_fl("m1r_flags", m1r, O_ACCMODE, O_RDONLY);
	wl_check_fdfl("m3_cloexec", m3, FD_CLOEXEC);
	wl_check_fdfl("m1_no_cloexec", m1, 0);

	memset(buf, 0, sizeof(buf));
	n = pread(m1r, buf, sizeof(buf), 0);
	wl_check("m1_len", n == SIZE_1, "read %d of %d", n, SIZE_1);
	wl_check_pattern("m1_data", buf, SIZE_1, 0);
	errno = 0;
	wl_check("m1_grow_sealed", ftruncate(m1, SIZE_1 + 4096) < 0 && errno == EPERM,
		 "ftruncate beyond the size: errno %d", errno);

	wl_check("m2_size", !fstat(m2, &st) && st.st_size == 5000, "size %lld",
		 (long long)st.st_size);
	wl_check("m2_mode", (st.st_mode & 0777) == 0600, "mode %o", st.st_mode & 0777);
	memset(buf, 1, 5000);
	n = pread(m2, buf, 5000, 0);
	for (i = 0; i < 4000 && buf[i] == 0; i++)
		;
	wl_check("m2_data",
		 n == 5000 && i == 4000 && !memcmp(buf + 4000, "hello", 5) && buf[4005] == 0,
		 "read %d, first non-zero byte at %d", n, i);
	off = lseek(m2, 0, SEEK_CUR);
	wl_check("m2_offset", off == 0, "offset %lld", (long long)off);

	memset(buf, 0, 16);
	n = pread(m3, buf, 16, 0);
	wl_check("m3_data", n == 11 && !memcmp(buf, "sealed data", 11), "read %d '%.11s'", n, buf);
	errno = 0;
	wl_check("m3_write_sealed", pwrite(m3, "x", 1, 0) < 0 && errno == EPERM,
		 "write to a write-sealed memfd: errno %d", errno);
	/* still a working memfd: a shared read-only mapping of it */
	{
		void *map = mmap(NULL, 4096, PROT_READ, MAP_SHARED, m3, 0);
		wl_check("m3_mmap", map != MAP_FAILED && !memcmp(map, "sealed data", 11),
			 "mmap: %s", map == MAP_FAILED ? strerror(errno) : "wrong data");
	}
	wl_done();
}
