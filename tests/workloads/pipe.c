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

int main(void)
{
	int a[2], b[2], n;
	static unsigned char buf[N1 + 100];
	char la0[64], l[64]; /* pipe inode numbers may change: compare ends */
	int sz_b;

	wl_init();
	if (pipe(a) || pipe2(b, O_NONBLOCK))
		wl_die("pipe: %s", strerror(errno));
	if (fcntl(b[0], F_SETPIPE_SZ, 128 * 1024) < 0)
		wl_die("F_SETPIPE_SZ: %s", strerror(errno));
	sz_b = fcntl(b[0], F_GETPIPE_SZ);
	if (!wl_write_pattern(a[1], N1, 1))
		wl_die("write a: %s", strerror(errno));
	if (!wl_write_pattern(b[1], N2, 2))
		wl_die("write b: %s", strerror(errno));
	wl_fd_link(a[0], la0, sizeof(la0));

	wl_ready();
	wl_wait_go();

	/* identity: both ends of one pipe name the same pipe, the two differ */
	wl_fd_link(a[0], l, sizeof(l));
	wl_check("a_link_r", strncmp(l, "pipe:[", 6) == 0, "fd %d -> %s (was %s)", a[0], l, la0);
	{
		char l1[64], m0[64], m1[64];
		wl_fd_link(a[1], l1, sizeof(l1));
		wl_fd_link(b[0], m0, sizeof(m0));
		wl_fd_link(b[1], m1, sizeof(m1));
		wl_check("a_same_pipe", strcmp(l, l1) == 0, "%s vs %s", l, l1);
		wl_check("b_same_pipe", strcmp(m0, m1) == 0 && strncmp(m0, "pipe:[", 6) == 0,
			 "%s vs %s", m0, m1);
		wl_check("a_b_differ", strcmp(l, m0) != 0, "both %s", l);
	}

	/* flags */
	wl_check_fl("a0_flags", a[0], O_ACCMODE | O_NONBLOCK, O_RDONLY);
	wl_check_fl("a1_flags", a[1], O_ACCMODE | O_NONBLOCK, O_WRONLY);
	wl_check_fl("b0_flags", b[0], O_ACCMODE | O_NONBLOCK, O_RDONLY | O_NONBLOCK);
	wl_check_fl("b1_flags", b[1], O_ACCMODE | O_NONBLOCK, O_WRONLY | O_NONBLOCK);
	n = fcntl(b[0], F_GETPIPE_SZ);
	wl_check("b_pipe_size", n == sz_b, "pipe size %d, expected %d", n, sz_b);

	/* data of pipe a: exactly N1 bytes, the right ones (a_len, a_data, a_empty) */
	n = wl_fionread(a[0]);
	wl_check("a_fionread", n == N1, "FIONREAD %d, expected %d", n, N1);
	wl_check_queued("a", a[0], N1, 1);

	/* data of pipe b: N2 bytes in one read, then EAGAIN */
	n = wl_fionread(b[0]);
	wl_check("b_fionread", n == N2, "FIONREAD %d, expected %d", n, N2);
	memset(buf, 0, sizeof(buf));
	n = read(b[0], buf, sizeof(buf));
	wl_check("b_read_len", n == N2, "read %d of %d", n, N2);
	wl_check_pattern("b_data", buf, N2, 2);
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
		n = wl_read_full(b[0], big, sizeof(big));
		wl_check("b_big_read", n == (int)sizeof(big), "read %d", n);
	}
	wl_done();
}
