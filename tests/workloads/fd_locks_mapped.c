/* fd_locks_mapped.c: workload holding file locks through files it only maps,
 * their fds closed (as a JVM holds its perf-data file), dumped with
 * --file-locks: an exclusive flock on a file mapped shared; an OFD write
 * lock on a range of a file mapped shared; a shared flock on a file mapped
 * shared and deleted; an OFD read lock on a file mapped private. After go:
 * no fd of any of them is open; a child finds each lock held (flock
 * refused, F_OFD_GETLK names the range and type, pid -1) and the ranges
 * around free; the shared mappings are still the files (a write through
 * the mapping is read through a new fd); and the locks are the mappings':
 * unmapping a file frees its lock. */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define SIZE 8192

enum { F_EX, F_OFD, F_DEL, F_PRIV, NR };
static const char *const names[NR] = {"map-flock-ex", "map-ofd-write", "map-flock-deleted",
				      "map-ofd-private"};
static unsigned char *maps[NR];

static void setlk(int fd, short type, off_t start, off_t len)
{
	struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len};

	if (fcntl(fd, F_OFD_SETLK, &fl))
		wl_die("F_OFD_SETLK: %s", strerror(errno));
}

/* Creates file I, locks it with LOCK (a function of its fd), maps it and
 * closes the fd (the deleted one is unlinked first). */
static void make(int i, int prot, int flags, void (*lock)(int fd))
{
	char p[PATH_MAX];
	unsigned char data[SIZE];
	int fd;

	wl_fill(data, SIZE, i + 1);
	wl_mkfile(wl_path(names[i], p, sizeof(p)), data, SIZE, 0644);
	fd = open(p, O_RDWR);
	if (fd < 0)
		wl_die("open %s: %s", p, strerror(errno));
	lock(fd);
	maps[i] = mmap(NULL, SIZE, prot, flags, fd, 0);
	if (maps[i] == MAP_FAILED)
		wl_die("mmap %s: %s", p, strerror(errno));
	if (i == F_DEL && unlink(p))
		wl_die("unlink: %s", strerror(errno));
	close(fd);
}

static void lock_ex(int fd)
{
	if (flock(fd, LOCK_EX))
		wl_die("flock: %s", strerror(errno));
}
static void lock_sh(int fd)
{
	if (flock(fd, LOCK_SH))
		wl_die("flock: %s", strerror(errno));
}
static void lock_ofd_write(int fd)
{
	setlk(fd, F_WRLCK, 100, 50);
}
static void lock_ofd_read(int fd)
{
	setlk(fd, F_RDLCK, 0, 0);
}

/* A new description of file I: by path, or through the mapping if deleted. */
static int open_file(int i)
{
	char p[PATH_MAX];

	if (i == F_DEL)
		snprintf(p, sizeof(p), "/proc/self/map_files/%lx-%lx", (unsigned long)maps[i],
			 (unsigned long)maps[i] + SIZE);
	else
		wl_path(names[i], p, sizeof(p));
	return open(p, O_RDWR);
}

static void flock_nb(const char *tag, int i, int op, bool want_ok)
{
	int fd = open_file(i), r = fd < 0 ? -1 : flock(fd, op | LOCK_NB), err = errno;

	if (want_ok)
		wl_check(tag, r == 0, "flock %s: %s", names[i], strerror(err));
	else
		wl_check(tag, r < 0 && err == EWOULDBLOCK,
			 "flock %s: %d (%s), expected EWOULDBLOCK", names[i], r,
			 r ? strerror(err) : "taken");
	if (fd >= 0)
		close(fd);
}

static void getlk(const char *tag, int i, short type, off_t start, short want_type,
		  off_t want_start, off_t want_len)
{
	struct flock fl = {.l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = 1};
	int fd = open_file(i);

	if (fd < 0 || fcntl(fd, F_OFD_GETLK, &fl)) {
		wl_check(tag, false, "F_OFD_GETLK on %s: %s", names[i], strerror(errno));
	} else if (want_type == F_UNLCK) {
		wl_check(tag, fl.l_type == F_UNLCK, "byte %lld of %s is locked (type %d)",
			 (long long)start, names[i], fl.l_type);
	} else {
		wl_check(tag,
			 fl.l_type == want_type && fl.l_pid == -1 && fl.l_start == want_start &&
			     fl.l_len == want_len,
			 "type %d pid %d range %lld+%lld, expected type %d pid -1 range %lld+%lld",
			 fl.l_type, fl.l_pid, (long long)fl.l_start, (long long)fl.l_len, want_type,
			 (long long)want_start, (long long)want_len);
	}
	if (fd >= 0)
		close(fd);
}

static void child_checks(void)
{
	flock_nb("flock_ex_held", F_EX, LOCK_SH, false);
	flock_nb("flock_deleted_shared", F_DEL, LOCK_SH, true);
	flock_nb("flock_deleted_held", F_DEL, LOCK_EX, false);
	getlk("ofd_write_held", F_OFD, F_RDLCK, 120, F_WRLCK, 100, 50);
	getlk("ofd_write_before_free", F_OFD, F_WRLCK, 99, F_UNLCK, 0, 0);
	getlk("ofd_write_after_free", F_OFD, F_WRLCK, 150, F_UNLCK, 0, 0);
	getlk("ofd_read_held", F_PRIV, F_WRLCK, 5000, F_RDLCK, 0, 0);
	getlk("ofd_read_shared", F_PRIV, F_RDLCK, 5000, F_UNLCK, 0, 0);
}

/* No fd of this process is open on any of the files. */
static void check_no_fd(void)
{
	char link[PATH_MAX], want[PATH_MAX];
	int found = 0;

	for (int fd = 0; fd < 1024; fd++) {
		wl_fd_link(fd, link, sizeof(link));
		for (int i = 0; i < NR; i++)
			if (strstr(link, wl_path(names[i], want, sizeof(want))))
				found++;
	}
	wl_check("no_fd", found == 0, "%d fds are open on the locked files", found);
}

/* A write through the shared mapping of file I reaches the file. */
static void check_shared(const char *tag, int i)
{
	unsigned char got[16];
	int fd;

	memcpy(maps[i] + 1000, "after-restore!!", 16);
	fd = open_file(i);
	wl_check(tag,
		 fd >= 0 && pread(fd, got, 16, 1000) == 16 && !memcmp(got, "after-restore!!", 16),
		 "the file does not hold what was written through its mapping");
	if (fd >= 0)
		close(fd);
}

int main(void)
{
	pid_t kid;

	wl_init();
	make(F_EX, PROT_READ | PROT_WRITE, MAP_SHARED, lock_ex);
	make(F_OFD, PROT_READ | PROT_WRITE, MAP_SHARED, lock_ofd_write);
	make(F_DEL, PROT_READ | PROT_WRITE, MAP_SHARED, lock_sh);
	make(F_PRIV, PROT_READ, MAP_PRIVATE, lock_ofd_read);

	wl_ready();
	wl_wait_go();

	check_no_fd();
	for (int i = 0; i < NR; i++)
		wl_check_pattern(names[i], maps[i], SIZE, i + 1);
	kid = fork();
	if (kid < 0)
		wl_die("fork: %s", strerror(errno));
	if (kid == 0) {
		child_checks();
		_exit(wl_failures() ? 1 : 0);
	}
	wl_check_child("child_checks", kid);
	check_shared("flock_ex_mapping_shared", F_EX);
	check_shared("ofd_mapping_shared", F_OFD);
	/* the locks are the mappings': unmapping frees them */
	munmap(maps[F_EX], SIZE);
	munmap(maps[F_OFD], SIZE);
	kid = fork();
	if (kid == 0) {
		flock_nb("flock_freed_by_munmap", F_EX, LOCK_EX, true);
		getlk("ofd_freed_by_munmap", F_OFD, F_WRLCK, 120, F_UNLCK, 0, 0);
		_exit(wl_failures() ? 1 : 0);
	}
	wl_check_child("freed_by_munmap", kid);
	wl_done();
}
