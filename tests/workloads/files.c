/* files.c: workload with many kinds of fds (regular files at offsets, O_APPEND,
 * access modes, close-on-exec, a directory, /dev/null|zero|urandom, dup'ed fds
 * sharing an offset, high fd numbers); checks each fd after checkpoint/restore. */
#include "wl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NF 16
struct fdrec {
	const char *what;
	int fd;
	int fl, fdfl;
	off_t off;
	char link[PATH_MAX];
};
static struct fdrec recs[NF];
static int nrec;
static char fdlist_before[4096];

static void record(const char *what, int fd)
{
	struct fdrec *r = &recs[nrec++];

	if (fd < 0)
		wl_die("open %s: %s", what, strerror(errno));
	r->what = what;
	r->fd = fd;
	r->fl = fcntl(fd, F_GETFL);
	r->fdfl = fcntl(fd, F_GETFD);
	r->off = lseek(fd, 0, SEEK_CUR);
	wl_fd_link(fd, r->link, sizeof(r->link));
}

/* sorted list of open fd numbers, as text */
static void fd_list(char *out, size_t len)
{
	int fds[1024], n = 0, i, j, dfd;
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	size_t pos = 0;

	out[0] = 0;
	if (!d)
		return;
	dfd = dirfd(d);
	while ((e = readdir(d)) && n < 1024) {
		if (e->d_name[0] == '.')
			continue;
		if (atoi(e->d_name) != dfd)
			fds[n++] = atoi(e->d_name);
	}
	closedir(d);
	for (i = 0; i < n; i++)
		for (j = i + 1; j < n; j++)
			if (fds[j] < fds[i]) {
				int t = fds[i];
				fds[i] = fds[j];
				fds[j] = t;
			}
	for (i = 0; i < n && pos < len - 16; i++)
		pos += snprintf(out + pos, len - pos, "%d ", fds[i]);
}

static unsigned char pat(int i)
{
	return (unsigned char)('a' + (i * 31 + i / 97) % 26);
}

static void write_file(const char *name, int n)
{
	static unsigned char buf[8192];

	for (int i = 0; i < n; i++)
		buf[i] = pat(i);
	wl_mkfile(name, buf, n, 0644);
}

static off_t fsize(int fd)
{
	struct stat st;

	return fstat(fd, &st) ? -1 : st.st_size;
}

int main(void)
{
	int rw, ro, ap, wo, dir, dnull, dzero, durand, sh, shdup, hi, hi2, i, n;
	char wd[PATH_MAX], buf[256], fdlist[4096];
	ssize_t r;

	wl_init();
	if (!getcwd(wd, sizeof(wd)))
		wl_die("getcwd");
	write_file("data.bin", 8192);
	write_file("shared.bin", 4096);
	write_file("log.txt", 100);
	mkdir("sub", 0755);
	write_file("sub/inner.txt", 64);

	rw = open("data.bin", O_RDWR);
	record("rw", rw);
	lseek(rw, 1234, SEEK_SET);
	recs[nrec - 1].off = 1234;
	ro = open("data.bin", O_RDONLY | O_NONBLOCK | O_NOATIME);
	lseek(ro, 4000, SEEK_SET);
	record("ro", ro);
	ap = open("log.txt", O_WRONLY | O_APPEND);
	if (write(ap, "0123456789", 10) != 10)
		wl_die("append");
	record("append", ap);
	wo = open("wo.bin", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_DSYNC, 0600);
	if (write(wo, "abcdefghijklmnopqrst", 20) != 20)
		wl_die("wo");
	lseek(wo, 10, SEEK_SET);
	record("wronly_cloexec", wo);
	dir = open("sub", O_RDONLY | O_DIRECTORY);
	record("dir", dir);
	dnull = open("/dev/null", O_RDWR);
	record("devnull", dnull);
	dzero = open("/dev/zero", O_RDONLY | O_CLOEXEC);
	record("devzero", dzero);
	durand = open("/dev/urandom", O_RDONLY);
	record("devurandom", durand);
	sh = open("shared.bin", O_RDWR);
	lseek(sh, 777, SEEK_SET);
	record("shared", sh);
	shdup = dup(sh);
	record("shared_dup", shdup);
	hi = dup2(sh, 100);
	fcntl(hi, F_SETFD, FD_CLOEXEC);
	record("shared_fd100", hi);
	hi2 = fcntl(dnull, F_DUPFD, 200);
	record("devnull_fd200", hi2);
	fd_list(fdlist_before, sizeof(fdlist_before));

	wl_ready();
	wl_wait_go();

	fd_list(fdlist, sizeof(fdlist));
	wl_check("fd_table", strcmp(fdlist, fdlist_before) == 0, "fds now [%s], before [%s]",
		 fdlist, fdlist_before);
	for (i = 0; i < nrec; i++) {
		struct fdrec *e = &recs[i];
		char name[64], link[PATH_MAX];
		int fl = fcntl(e->fd, F_GETFL), fdfl = fcntl(e->fd, F_GETFD);
		off_t off = lseek(e->fd, 0, SEEK_CUR);

		wl_fd_link(e->fd, link, sizeof(link));
		snprintf(name, sizeof(name), "%s_flags", e->what);
		wl_check(name, fl == e->fl, "fd %d F_GETFL %#o, expected %#o", e->fd, fl, e->fl);
		snprintf(name, sizeof(name), "%s_cloexec", e->what);
		wl_check(name, fdfl == e->fdfl, "fd %d F_GETFD %d, expected %d", e->fd, fdfl,
			 e->fdfl);
		snprintf(name, sizeof(name), "%s_offset", e->what);
		if (strncmp(e->link, "/dev/", 5))
			wl_check(name, off == e->off, "fd %d offset %lld, expected %lld", e->fd,
				 (long long)off, (long long)e->off);
		snprintf(name, sizeof(name), "%s_path", e->what);
		wl_check(name, strcmp(link, e->link) == 0, "fd %d -> '%s', expected '%s'", e->fd,
			 link, e->link);
	}

	/* contents at the offsets */
	r = read(rw, buf, 16);
	for (i = 0; i < 16 && buf[i] == (char)pat(1234 + i); i++)
		;
	wl_check("rw_read_at_offset", r == 16 && i == 16, "read %zd, mismatch at %d", r, i);
	r = read(ro, buf, 16);
	for (i = 0; i < 16 && buf[i] == (char)pat(4000 + i); i++)
		;
	wl_check("ro_read_at_offset", r == 16 && i == 16, "read %zd, mismatch at %d", r, i);
	errno = 0;
	r = write(ro, "x", 1);
	wl_check("ro_is_readonly", r < 0 && errno == EBADF, "write returned %zd errno %d", r,
		 errno);
	r = write(rw, "XY", 2);
	r = pread(ro, buf, 2, 1250);
	wl_check("rw_write_at_offset", r == 2 && buf[0] == 'X' && buf[1] == 'Y', "pread %zd '%.2s'",
		 r, buf);

	/* O_APPEND: a write after seeking to 0 still lands at the end */
	lseek(ap, 0, SEEK_SET);
	r = write(ap, "TAIL", 4);
	n = fsize(ap);
	wl_check("append_size", r == 4 && n == 114, "write %zd, size %d (expected 114)", r, n);
	{
		int rd = open("log.txt", O_RDONLY);
		r = pread(rd, buf, 14, 100);
		close(rd);
		wl_check("append_content", r == 14 && memcmp(buf, "0123456789TAIL", 14) == 0,
			 "tail '%.14s'", buf);
	}

	/* write-only fd at offset 10 */
	errno = 0;
	r = read(wo, buf, 1);
	wl_check("wo_is_writeonly", r < 0 && errno == EBADF, "read returned %zd errno %d", r,
		 errno);
	r = write(wo, "KLM", 3);
	{
		int rd = open("wo.bin", O_RDONLY);
		memset(buf, 0, sizeof(buf));
		n = read(rd, buf, sizeof(buf));
		close(rd);
		wl_check("wo_content",
			 r == 3 && n == 20 && memcmp(buf, "abcdefghijKLMnopqrst", 20) == 0,
			 "file '%.*s'", n > 0 ? n : 0, buf);
	}

	/* devices */
	memset(buf, 1, 64);
	r = read(dzero, buf, 64);
	for (i = 0; i < 64 && buf[i] == 0; i++)
		;
	wl_check("devzero_reads_zeros", r == 64 && i == 64, "read %zd, nonzero at %d", r, i);
	r = read(dnull, buf, 64);
	wl_check("devnull_read_eof", r == 0, "read %zd", r);
	r = write(hi2, buf, 64);
	wl_check("devnull_write", r == 64, "write %zd", r);
	r = read(durand, buf, 64);
	wl_check("devurandom_read", r == 64, "read %zd", r);

	/* shared offset among sh, shdup and fd 100; separate from a fresh open */
	lseek(sh, 50, SEEK_SET);
	wl_check("dup_shares_offset",
		 lseek(shdup, 0, SEEK_CUR) == 50 && lseek(hi, 0, SEEK_CUR) == 50,
		 "offsets %lld %lld after seeking the original to 50",
		 (long long)lseek(shdup, 0, SEEK_CUR), (long long)lseek(hi, 0, SEEK_CUR));
	r = read(hi, buf, 10);
	wl_check("dup_read_moves_all",
		 r == 10 && lseek(sh, 0, SEEK_CUR) == 60 && buf[0] == (char)pat(50),
		 "read %zd offset %lld", r, (long long)lseek(sh, 0, SEEK_CUR));
	wl_check("separate_descriptions", lseek(rw, 0, SEEK_CUR) != lseek(ro, 0, SEEK_CUR),
		 "rw and ro share an offset");

	/* directory fd: openat and fchdir */
	{
		int f = openat(dir, "inner.txt", O_RDONLY);
		r = f >= 0 ? read(f, buf, 8) : -1;
		wl_check("dir_openat", r == 8 && buf[0] == (char)pat(0), "openat fd %d read %zd", f,
			 r);
		if (f >= 0)
			close(f);
	}
	{
		char cwd[PATH_MAX], want[PATH_MAX + 8];
		int ok = fchdir(dir) == 0 && getcwd(cwd, sizeof(cwd));
		snprintf(want, sizeof(want), "%s/sub", wd);
		wl_check("dir_fchdir", ok && strcmp(cwd, want) == 0, "cwd '%s', expected '%s'",
			 ok ? cwd : "?", want);
		wl_check("dir_relative_open", access("inner.txt", R_OK) == 0,
			 "inner.txt not found");
	}
	wl_done();
}
