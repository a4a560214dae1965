/* fd_fifo.c: workload with named pipes (FIFOs) whose both ends it holds:
 * a read end and a write end with unread data, one O_RDWR description
 * with data, and an empty one. Data, flags, size and identity must survive. */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define N1 70000
#define N2 3000

static void check_fifo(const char *tag, int fd, const char *path)
{
	char l[PATH_MAX + 16];
	struct stat a, b;

	wl_fd_link(fd, l, sizeof(l));
	wl_check(tag,
		 !strcmp(l, path) && !fstat(fd, &a) && !stat(path, &b) && S_ISFIFO(a.st_mode) &&
		     a.st_ino == b.st_ino && a.st_dev == b.st_dev,
		 "fd %d -> %s, expected the FIFO %s", fd, l, path);
}

int main(void)
{
	char p1[PATH_MAX], p2[PATH_MAX], p3[PATH_MAX];
	static unsigned char buf[N1 + 100];
	int r1, w1, rw2, r3, w3, n, sz1;

	wl_init();
	wl_path("fifo-one", p1, sizeof(p1));
	wl_path("fifo-two", p2, sizeof(p2));
	wl_path("fifo-three", p3, sizeof(p3));
	if (mkfifo(p1, 0600) || mkfifo(p2, 0640) || mkfifo(p3, 0600))
		wl_die("mkfifo: %s", strerror(errno));
	r1 = open(p1, O_RDONLY | O_NONBLOCK);
	w1 = open(p1, O_WRONLY);
	rw2 = open(p2, O_RDWR | O_NONBLOCK);
	r3 = open(p3, O_RDONLY | O_NONBLOCK);
	w3 = open(p3, O_WRONLY | O_NONBLOCK);
	if (r1 < 0 || w1 < 0 || rw2 < 0 || r3 < 0 || w3 < 0)
		wl_die("open: %s", strerror(errno));
	if (fcntl(r1, F_SETFL, 0) || fcntl(w1, F_SETPIPE_SZ, 256 * 1024) < 0)
		wl_die("fcntl: %s", strerror(errno));
	sz1 = fcntl(r1, F_GETPIPE_SZ);
	if (!wl_write_pattern(w1, N1, 1))
		wl_die("write 1: %s", strerror(errno));
	if (!wl_write_pattern(rw2, N2, 2))
		wl_die("write 2: %s", strerror(errno));

	wl_ready();
	wl_wait_go();

	check_fifo("r1_fifo", r1, p1);
	check_fifo("w1_fifo", w1, p1);
	check_fifo("rw2_fifo", rw2, p2);
	check_fifo("r3_fifo", r3, p3);
	check_fifo("w3_fifo", w3, p3);
	wl_check_fl("r1_flags", r1, O_ACCMODE | O_NONBLOCK, O_RDONLY);
	wl_check_fl("w1_flags", w1, O_ACCMODE | O_NONBLOCK, O_WRONLY);
	wl_check_fl("rw2_flags", rw2, O_ACCMODE | O_NONBLOCK, O_RDWR | O_NONBLOCK);
	wl_check_fl("r3_flags", r3, O_ACCMODE | O_NONBLOCK, O_RDONLY | O_NONBLOCK);
	wl_check_fl("w3_flags", w3, O_ACCMODE | O_NONBLOCK, O_WRONLY | O_NONBLOCK);
	n = fcntl(r1, F_GETPIPE_SZ);
	wl_check("fifo1_size", n == sz1, "pipe size %d, expected %d", n, sz1);

	n = wl_fionread(r1);
	wl_check("fifo1_fionread", n == N1, "FIONREAD %d, expected %d", n, N1);
	wl_check_queued("fifo1", r1, N1, 1); /* fifo1_len, fifo1_data, fifo1_empty */

	memset(buf, 0, sizeof(buf));
	n = read(rw2, buf, sizeof(buf));
	wl_check("fifo2_len", n == N2, "read %d of %d", n, N2);
	wl_check_pattern("fifo2_data", buf, N2, 2);
	errno = 0;
	n = read(rw2, buf, 1);
	wl_check("fifo2_eagain", n < 0 && errno == EAGAIN, "read %d errno %d", n, errno);

	errno = 0;
	n = read(r3, buf, 1);
	wl_check("fifo3_empty", n < 0 && errno == EAGAIN, "read %d errno %d", n, errno);
	n = write(w3, "ping", 4);
	memset(buf, 0, 8);
	wl_check("fifo3_roundtrip", n == 4 && read(r3, buf, 8) == 4 && !memcmp(buf, "ping", 4),
		 "write %d, read '%.4s'", n, buf);
	n = write(w1, "pong", 4);
	memset(buf, 0, 8);
	wl_check("fifo1_roundtrip", n == 4 && read(r1, buf, 8) == 4 && !memcmp(buf, "pong", 4),
		 "write %d, read '%.4s'", n, buf);
	wl_done();
}
