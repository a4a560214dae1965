/* pty_pair.c: two pseudo-terminal pairs held by one process. Pair A: the
 * slave in raw mode with its own termios (speed 9600, odd c_cc values, no
 * echo), a 50x132 window, the slave exclusive, 300 bytes queued for the
 * slave's reader (written to the master) and 500 queued for the master's
 * (written to the slave), the master non-blocking on two fds. Pair B: the
 * master in packet mode and locked again after its slave was opened, a
 * 24x80 window with pixel sizes, 40 bytes queued for the master. After
 * restore each checks: the same pts numbers (TIOCGPTN, ptsname, the
 * slave's rdev), termios, windows, modes, lock, exclusive modes, every
 * queued byte read back exactly and nothing more, and both pairs still
 * carry data both ways. */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#define DUP_FD 30

struct pair {
	int m, s;
	int index;
	char name[64];
	dev_t rdev;
};

static void open_pair(struct pair *p, int mflags)
{
	struct stat st;

	p->m = posix_openpt(O_RDWR | O_NOCTTY | mflags);
	if (p->m < 0 || grantpt(p->m) || unlockpt(p->m) || ioctl(p->m, TIOCGPTN, &p->index))
		wl_die("ptmx: %s", strerror(errno));
	snprintf(p->name, sizeof(p->name), "%s", ptsname(p->m));
	p->s = open(p->name, O_RDWR | O_NOCTTY);
	if (p->s < 0 || fstat(p->s, &st))
		wl_die("open %s: %s", p->name, strerror(errno));
	p->rdev = st.st_rdev;
}

static void check_ids(const char *tag, const struct pair *p)
{
	char name[64];
	struct stat st;
	int index = -1;

	snprintf(name, sizeof(name), "%s_index", tag);
	wl_check(name, !ioctl(p->m, TIOCGPTN, &index) && index == p->index, "index %d, want %d",
		 index, p->index);
	snprintf(name, sizeof(name), "%s_ptsname", tag);
	const char *now = ptsname(p->m);
	wl_check(name, now && !strcmp(now, p->name), "%s, want %s", now ? now : "?", p->name);
	snprintf(name, sizeof(name), "%s_rdev", tag);
	wl_check(name, !fstat(p->s, &st) && st.st_rdev == p->rdev, "slave rdev changed");
}

static struct termios a_termios(void)
{
	struct termios t;

	memset(&t, 0, sizeof(t));
	t.c_iflag = IXON | IGNPAR;
	t.c_oflag = 0;
	t.c_cflag = CS8 | CREAD | CLOCAL | PARENB | PARODD;
	t.c_lflag = 0;
	for (int i = 0; i < NCCS; i++)
		t.c_cc[i] = 0x10 + i;
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	cfsetispeed(&t, B9600);
	cfsetospeed(&t, B9600);
	return t;
}

static void check_termios(const char *name, int fd, const struct termios *want)
{
	struct termios t;

	if (!wl_check(name, !tcgetattr(fd, &t), "tcgetattr: %s", strerror(errno)))
		return;
	wl_check(name,
		 t.c_iflag == want->c_iflag && t.c_oflag == want->c_oflag &&
		     t.c_cflag == want->c_cflag && t.c_lflag == want->c_lflag &&
		     !memcmp(t.c_cc, want->c_cc, NCCS) && cfgetospeed(&t) == cfgetospeed(want),
		 "iflag %o oflag %o cflag %o lflag %o, want %o %o %o %o", t.c_iflag, t.c_oflag,
		 t.c_cflag, t.c_lflag, want->c_iflag, want->c_oflag, want->c_cflag, want->c_lflag);
}

static void check_winsize(const char *name, int fd, const struct winsize *want)
{
	struct winsize ws = {0, 0, 0, 0};

	wl_check(name, !ioctl(fd, TIOCGWINSZ, &ws) && !memcmp(&ws, want, sizeof(ws)),
		 "%ux%u (%ux%u px), want %ux%u", ws.ws_col, ws.ws_row, ws.ws_xpixel, ws.ws_ypixel,
		 want->ws_col, want->ws_row);
}

static int get_int(int fd, unsigned long req)
{
	int v = -1;

	return ioctl(fd, req, &v) ? -errno : v;
}

/* Reads n bytes of pattern seed through a packet-mode master (each read
 * starts with TIOCPKT_DATA) and checks nothing more is queued. */
static void check_packet_queue(const char *name, int fd, size_t n, int seed)
{
	unsigned char buf[4096], data[4096];
	size_t got = 0;
	bool status_ok = true;

	while (got < n) {
		struct pollfd pfd = {fd, POLLIN, 0};
		if (poll(&pfd, 1, 2000) != 1)
			break;
		ssize_t r = read(fd, buf, sizeof(buf));
		if (r <= 0)
			break;
		status_ok &= buf[0] == TIOCPKT_DATA;
		size_t take = (size_t)(r - 1) < n - got ? (size_t)(r - 1) : n - got;
		memcpy(data + got, buf + 1, take);
		got += r - 1;
	}
	char nm[64];
	snprintf(nm, sizeof(nm), "%s_len", name);
	wl_check(nm, got == n && status_ok, "got %zu bytes, want %zu (status bytes ok: %d)", got, n,
		 status_ok);
	snprintf(nm, sizeof(nm), "%s_data", name);
	wl_check_pattern(nm, data, got < n ? got : n, seed);
	snprintf(nm, sizeof(nm), "%s_empty", name);
	wl_check(nm, wl_revents(fd, POLLIN) == 0, "more queued");
}

/* One byte each way through the pair, as its termios passes it. */
static void check_carries(const char *name, struct pair *p, bool packet)
{
	unsigned char buf[8];
	char nm[64];

	snprintf(nm, sizeof(nm), "%s_to_slave", name);
	/* pair B's slave is canonical: a line */
	wl_check(nm, write(p->m, "x\n", 2) == 2 && read(p->s, buf, 2) >= 1 && buf[0] == 'x',
		 "no byte through the slave");
	snprintf(nm, sizeof(nm), "%s_to_master", name);
	struct pollfd pfd = {p->m, POLLIN, 0};
	ssize_t r = write(p->s, "y", 1) == 1 && poll(&pfd, 1, 2000) == 1 ? read(p->m, buf, 8) : -1;
	wl_check(nm, packet ? r == 2 && buf[0] == 0 && buf[1] == 'y' : r == 1 && buf[0] == 'y',
		 "read %zd", r);
}

int main(void)
{
	struct pair a, b;
	struct termios ta = a_termios(), tb;
	struct winsize wa = {50, 132, 0, 0}, wb = {24, 80, 640, 480};
	int one = 1;

	wl_init();
	open_pair(&a, O_NONBLOCK);
	open_pair(&b, 0);
	if (tcsetattr(a.s, TCSANOW, &ta) || ioctl(a.m, TIOCSWINSZ, &wa) || ioctl(a.s, TIOCEXCL) ||
	    dup2(a.m, DUP_FD) != DUP_FD || ioctl(b.m, TIOCSWINSZ, &wb) ||
	    ioctl(b.m, TIOCPKT, &one) || tcgetattr(b.s, &tb))
		wl_die("setup: %s", strerror(errno));
	/* pair B's slave must not add carriage returns to what it sends,
	 * nor echo */
	tb.c_oflag &= ~OPOST;
	tb.c_lflag &= ~ECHO;
	/* what the kernel holds (a pty has no parity, say) */
	if (tcsetattr(b.s, TCSANOW, &tb) || tcgetattr(b.s, &tb) || tcgetattr(a.s, &ta))
		wl_die("tcsetattr: %s", strerror(errno));
	if (!wl_write_pattern(a.m, 300, 1) || !wl_write_pattern(a.s, 500, 2) ||
	    !wl_write_pattern(b.s, 40, 3))
		wl_die("write: %s", strerror(errno));
	if (ioctl(b.m, TIOCSPTLCK, &one))
		wl_die("lock: %s", strerror(errno));
	usleep(100 * 1000); /* the pty's worker moves the bytes to the line disciplines */

	wl_ready();
	wl_wait_go();

	check_ids("a", &a);
	check_ids("b", &b);
	check_termios("a_termios", a.s, &ta);
	check_termios("b_termios", b.s, &tb);
	check_winsize("a_winsize", a.m, &wa);
	check_winsize("a_winsize_slave", a.s, &wa);
	check_winsize("b_winsize", b.m, &wb);
	wl_check("a_packet", get_int(a.m, TIOCGPKT) == 0, "%d", get_int(a.m, TIOCGPKT));
	wl_check("b_packet", get_int(b.m, TIOCGPKT) == 1, "%d", get_int(b.m, TIOCGPKT));
	wl_check("a_lock", get_int(a.m, TIOCGPTLCK) == 0, "%d", get_int(a.m, TIOCGPTLCK));
	wl_check("b_lock", get_int(b.m, TIOCGPTLCK) == 1, "%d", get_int(b.m, TIOCGPTLCK));
	wl_check("a_slave_excl", get_int(a.s, TIOCGEXCL) == 1, "%d", get_int(a.s, TIOCGEXCL));
	wl_check("b_slave_excl", get_int(b.s, TIOCGEXCL) == 0, "%d", get_int(b.s, TIOCGEXCL));
	wl_check_fd_flags("a_master", a.m, O_RDWR | O_NONBLOCK, 0);
	wl_check_fd_flags("a_master_dup", DUP_FD, O_RDWR | O_NONBLOCK, 0);
	wl_check_fd_flags("b_master", b.m, O_RDWR, 0);
	wl_check("a_dup_same", get_int(DUP_FD, TIOCGPTN) == a.index, "fd %d is not pair A", DUP_FD);
	wl_check_queued("a_to_slave", a.s, 300, 1);
	wl_check_queued("a_to_master", a.m, 500, 2);
	check_packet_queue("b_to_master", b.m, 40, 3);
	check_carries("a", &a, false);
	check_carries("b", &b, true);
	wl_done();
}
