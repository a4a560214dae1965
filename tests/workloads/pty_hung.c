/* pty_hung.c: the ends whose other side is gone. H: a pty slave whose
 * master was closed (its /dev/pts node gone, the slave hung up); C: a pty
 * master whose slave was opened and closed again; W: a pipe's write end
 * whose read end was closed; R: a pipe's read end whose write end was
 * closed after 100 bytes were queued. After restore: H reads EOF, writes
 * fail with EIO and polls POLLHUP; C's read fails with EIO and it polls
 * POLLHUP; W's write fails with EPIPE (SIGPIPE ignored); R gives its 100
 * bytes, then EOF. */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static int open_master(char *name, size_t len)
{
	int m = posix_openpt(O_RDWR | O_NOCTTY);

	if (m < 0 || grantpt(m) || unlockpt(m))
		wl_die("ptmx: %s", strerror(errno));
	snprintf(name, len, "%s", ptsname(m));
	return m;
}

int main(void)
{
	char name[64], buf[16];
	int h, c, w[2], r[2];

	wl_init();
	signal(SIGPIPE, SIG_IGN);
	int hm = open_master(name, sizeof(name));
	if ((h = open(name, O_RDWR | O_NOCTTY)) < 0)
		wl_die("open %s: %s", name, strerror(errno));
	close(hm);
	c = open_master(name, sizeof(name));
	int cs = open(name, O_RDWR | O_NOCTTY);
	if (cs < 0)
		wl_die("open %s: %s", name, strerror(errno));
	close(cs);
	if (pipe(w) || pipe(r))
		wl_die("pipe: %s", strerror(errno));
	close(w[0]);
	if (!wl_write_pattern(r[1], 100, 4))
		wl_die("write: %s", strerror(errno));
	close(r[1]);

	wl_ready();
	wl_wait_go();

	wl_check("h_eof", read(h, buf, sizeof(buf)) == 0, "read did not give EOF");
	errno = 0;
	wl_check("h_write_eio", write(h, "x", 1) < 0 && errno == EIO, "write: %s", strerror(errno));
	wl_check("h_pollhup", wl_revents(h, POLLIN) & POLLHUP, "revents %#x",
		 wl_revents(h, POLLIN));
	errno = 0;
	wl_check("c_read_eio", read(c, buf, sizeof(buf)) < 0 && errno == EIO, "read: %s",
		 strerror(errno));
	wl_check("c_pollhup", wl_revents(c, POLLIN) & POLLHUP, "revents %#x",
		 wl_revents(c, POLLIN));
	errno = 0;
	wl_check("w_epipe", write(w[1], "x", 1) < 0 && errno == EPIPE, "write: %s",
		 strerror(errno));
	unsigned char data[100];
	wl_check("r_data", wl_read_full(r[0], data, 100) == 100, "short read");
	wl_check_pattern("r_pattern", data, 100, 4);
	wl_check("r_eof", read(r[0], buf, sizeof(buf)) == 0, "no EOF after the data");
	wl_done();
}
