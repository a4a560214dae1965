/* pipe.c: workload with two pipes (both ends inside) holding unread data; checks
 * that the data, flags, pipe size and pipe identity survive checkpoint/restore. */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define N1 10000
#define N2 3000

static unsigned char pat(int pipe_no, int i)
{
	return (unsigned char)(i * 7 + i / 251 + pipe_no * 13);
}

static void fdlink(int fd, char *buf, size_t len)
{
	char p[64];
	ssize_t n;

	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	n = readlink(p, buf, len - 1);
	buf[n < 0 ? 0 : n] = 0;
}

static int read_all(int fd, unsigned char *buf, int n)
{
	int got = 0;

	while (got < n) {
		ssize_t r = read(fd, buf + got, n - got);
		if (r <= 0)
			return r < 0 ? -errno : got;
		got += r;
	}
	return got;
}

int main(void)
{
	int a[2], b[2], i, n, fl;
	static unsigned char buf[N1 + 100];
	char la0[64], l[64]; /* pipe inode numbers may change: compare ends */
	int sz_b;

	wl_init();
	if (pipe(a) || pipe2(b, O_NONBLOCK))
		wl_die("pipe: %s", strerror(errno));
	if (fcntl(b[0], F_SETPIPE_SZ, 128 * 1024) < 0)
		wl_die("F_SETPIPE_SZ: %s", strerror(errno));
	sz_b = fcntl(b[0], F_GETPIPE_SZ);
	for (i = 0; i < N1; i++)
		buf[i] = pat(1, i);
	if (write(a[1], buf, N1) != N1)
		wl_die("write a");
	for (i = 0; i < N2; i++)
		buf[i] = pat(2, i);
	if (write(b[1], buf, N2) != N2)
		wl_die("write b");
	fdlink(a[0], la0, sizeof(la0));

	wl_ready();
	wl_wait_go();

	/* identity: both ends of one pipe name the same pipe, the two differ */
	fdlink(a[0], l, sizeof(l));
	wl_check("a_link_r", strncmp(l, "pipe:[", 6) == 0, "fd %d -> %s (was %s)", a[0], l, la0);
	{
		char l1[64], m0[64], m1[64];
		fdlink(a[1], l1, sizeof(l1));
		fdlink(b[0], m0, sizeof(m0));
		fdlink(b[1], m1, sizeof(m1));
		wl_check("a_same_pipe", strcmp(l, l1) == 0, "%s vs %s", l, l1);
		wl_check("b_same_pipe", strcmp(m0, m1) == 0 && strncmp(m0, "pipe:[", 6) == 0,
			 "%s vs %s", m0, m1);
		wl_check("a_b_differ", strcmp(l, m0) != 0, "both %s", l);
	}

	/* flags */
	fl = fcntl(a[0], F_GETFL);
	wl_check("a0_flags", (fl & (O_ACCMODE | O_NONBLOCK)) == O_RDONLY, "flags %#x", fl);
	fl = fcntl(a[1], F_GETFL);
	wl_check("a1_flags", (fl & (O_ACCMODE | O_NONBLOCK)) == O_WRONLY, "flags %#x", fl);
	fl = fcntl(b[0], F_GETFL);
	wl_check("b0_flags", (fl & (O_ACCMODE | O_NONBLOCK)) == (O_RDONLY | O_NONBLOCK),
		 "flags %#x", fl);
	fl = fcntl(b[1], F_GETFL);
	wl_check("b1_flags", (fl & (O_ACCMODE | O_NONBLOCK)) == (O_WRONLY | O_NONBLOCK),
		 "flags %#x", fl);
	n = fcntl(b[0], F_GETPIPE_SZ);
	wl_check("b_pipe_size", n == sz_b, "pipe size %d, expected %d", n, sz_b);

	/* data of pipe a: exactly N1 bytes, the right ones */
	if (ioctl(a[0], FIONREAD, &n) < 0)
		n = -errno;
	wl_check("a_fionread", n == N1, "FIONREAD %d, expected %d", n, N1);
	memset(buf, 0, sizeof(buf));
	n = read_all(a[0], buf, N1);
	wl_check("a_read_len", n == N1, "read %d of %d", n, N1);
	for (i = 0; i < N1 && buf[i] == pat(1, i); i++)
		;
	wl_check("a_data", i == N1, "byte %d is %#x, expected %#x", i, buf[i], pat(1, i));
	{
		struct pollfd pf = {.fd = a[0], .events = POLLIN};
		int pr = poll(&pf, 1, 0);
		wl_check("a_empty", pr == 0, "poll says %d (revents %#x): extra data", pr,
			 pf.revents);
	}

	/* data of pipe b: N2 bytes then EAGAIN */
	if (ioctl(b[0], FIONREAD, &n) < 0)
		n = -errno;
	wl_check("b_fionread", n == N2, "FIONREAD %d, expected %d", n, N2);
	memset(buf, 0, sizeof(buf));
	n = read(b[0], buf, sizeof(buf));
	wl_check("b_read_len", n == N2, "read %d of %d", n, N2);
	for (i = 0; i < N2 && buf[i] == pat(2, i); i++)
		;
	wl_check("b_data", i == N2, "byte %d is %#x, expected %#x", i, buf[i], pat(2, i));
	errno = 0;
	n = read(b[0], buf, 1);
	wl_check("b_eagain", n < 0 && errno == EAGAIN, "read returned %d errno %d", n, errno);

	/* both still work */
	n = write(a[1], "hello", 5);
	wl_check("a_write", n == 5, "write %d", n);
	memset(buf, 0, 8);
	n = read(a[0], buf, 8);
	wl_check("a_roundtrip", n == 5 && memcmp(buf, "hello", 5) == 0, "read %d '%.5s'", n, buf);
	{
		/* the 128 KiB pipe takes more than 64 KiB without blocking */
		static unsigned char big[100000];
		n = write(b[1], big, sizeof(big));
		wl_check("b_big_write", n == (int)sizeof(big), "write %d", n);
		n = read_all(b[0], big, sizeof(big));
		wl_check("b_big_read", n == (int)sizeof(big), "read %d", n);
	}
	wl_done();
}
