/* pipe_ends.c: pipes whose two ends differ in O_NONBLOCK, and pipe buffer
 * sizes at both limits.
 *   - pipe p: read end O_NONBLOCK, write end blocking, 5000 bytes queued;
 *   - pipe q: write end O_NONBLOCK, read end blocking, its size raised to
 *     pipe-max-size (/proc/sys/fs/pipe-max-size, at most 1 MiB here: past
 *     it needs CAP_SYS_RESOURCE), more than 64 KiB queued;
 *   - pipe r: shrunk to one page and full, write end O_NONBLOCK.
 * After restore: each end's flags, each pipe's F_GETPIPE_SZ, the queued
 * bytes (FIONREAD, contents), a read on p's empty non-blocking end gives
 * EAGAIN, q takes exactly its free pages' worth more before EAGAIN, r's full
 * pipe refuses a write with EAGAIN and takes one after a read. */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NP	5000
#define NQ	70000
#define MAX_CAP (1 << 20)
#define R_SIZE	4096

static int pipe_max_size(void)
{
	FILE *f = fopen("/proc/sys/fs/pipe-max-size", "r");
	int n = 0;

	if (!f || fscanf(f, "%d", &n) != 1)
		wl_die("cannot read pipe-max-size");
	fclose(f);
	return n < MAX_CAP ? n : MAX_CAP;
}

static void set_nonblock(int fd)
{
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK))
		wl_die("F_SETFL: %s", strerror(errno));
}

static void check_size(const char *name, int fd, int want)
{
	int n = fcntl(fd, F_GETPIPE_SZ);

	wl_check(name, n == want, "pipe size %d, expected %d", n, want);
}

/* Writes to the non-blocking FD until EAGAIN: how much it took. */
static long fill(int fd)
{
	static char buf[65536];
	long total = 0;
	ssize_t n;

	while ((n = write(fd, buf, sizeof(buf))) > 0)
		total += n;
	return n < 0 && errno == EAGAIN ? total : -1;
}

int main(void)
{
	int p[2], q[2], r[2], qsize, n;
	static unsigned char buf[R_SIZE];

	wl_init();
	if (pipe(p) || pipe(q) || pipe(r))
		wl_die("pipe: %s", strerror(errno));
	set_nonblock(p[0]);
	set_nonblock(q[1]);
	set_nonblock(r[1]);
	qsize = pipe_max_size();
	if (fcntl(q[0], F_SETPIPE_SZ, qsize) < 0 || fcntl(r[0], F_SETPIPE_SZ, R_SIZE) < 0)
		wl_die("F_SETPIPE_SZ: %s", strerror(errno));
	qsize = fcntl(q[0], F_GETPIPE_SZ);
	if (qsize < NQ + 4096)
		wl_die("pipe-max-size %d is too small for the test", qsize);
	if (!wl_write_pattern(p[1], NP, 1) || !wl_write_pattern(q[1], NQ, 2) ||
	    !wl_write_pattern(r[1], R_SIZE, 3))
		wl_die("write: %s", strerror(errno));

	wl_ready();
	wl_wait_go();

	wl_check_fl("p0_flags", p[0], O_ACCMODE | O_NONBLOCK, O_RDONLY | O_NONBLOCK);
	wl_check_fl("p1_flags", p[1], O_ACCMODE | O_NONBLOCK, O_WRONLY);
	wl_check_fl("q0_flags", q[0], O_ACCMODE | O_NONBLOCK, O_RDONLY);
	wl_check_fl("q1_flags", q[1], O_ACCMODE | O_NONBLOCK, O_WRONLY | O_NONBLOCK);
	wl_check_fl("r1_flags", r[1], O_ACCMODE | O_NONBLOCK, O_WRONLY | O_NONBLOCK);
	check_size("p_size", p[0], 65536);
	check_size("q_size", q[1], qsize);
	check_size("r_size", r[0], R_SIZE);

	n = wl_fionread(q[0]);
	wl_check("q_fionread", n == NQ, "FIONREAD %d, expected %d", n, NQ);
	long more = fill(q[1]);
	/* a pipe holds pages: the queued bytes fill ceil(NQ / 4096) of them */
	int room = qsize - (NQ + 4095) / 4096 * 4096;
	wl_check("q_room", more == room, "took %ld more bytes, expected %d", more, room);

	unsigned char *qd = malloc(NQ);
	size_t got = 0;
	ssize_t k;
	while (qd && got < NQ && (k = read(q[0], qd + got, NQ - got)) > 0)
		got += k;
	wl_check("q_read", got == NQ, "read %zu of %d", got, NQ);
	wl_check_pattern("q_data", qd, got, 2);
	free(qd);

	errno = 0;
	n = write(r[1], "x", 1);
	wl_check("r_full", n < 0 && errno == EAGAIN, "write gave %d (%s)", n, strerror(errno));
	n = read(r[0], buf, sizeof(buf));
	wl_check("r_read", n == R_SIZE, "read %d of %d", n, R_SIZE);
	wl_check_pattern("r_data", buf, R_SIZE, 3);
	n = write(r[1], "x", 1);
	wl_check("r_write_after_read", n == 1, "write gave %d (%s)", n, strerror(errno));

	wl_check_queued("p", p[0], NP, 1);
	errno = 0;
	n = read(p[0], buf, 1);
	wl_check("p_eagain", n < 0 && errno == EAGAIN, "read gave %d (%s)", n, strerror(errno));
	wl_done();
}
