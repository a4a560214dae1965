/* pipe_closed_end.c: pipes and a FIFO whose other end every process has
 * closed are not "outside" the checkpoint: they are restored with that end
 * closed. A pipe whose writers are gone holds data, then polls POLLIN|POLLHUP
 * and reads its data then 0 (end of file); a pipe whose readers are gone
 * polls POLLERR and a write fails with EPIPE; a FIFO read end whose writer
 * came and went polls POLLIN|POLLHUP and reads its data then 0. The same is
 * checked before the checkpoint, so the two can be compared. */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static short revents(int fd, short events)
{
	struct pollfd p = {fd, events, 0};

	return poll(&p, 1, 0) == 1 ? p.revents : 0;
}

/* The read end rfd: POLLIN|POLLHUP, the data "MSG", then end of file. */
static void check_reader(const char *name, int rfd, const char *msg)
{
	char buf[64], what[64];
	short ev = revents(rfd, POLLIN);
	ssize_t n;

	snprintf(what, sizeof(what), "%s_pollhup", name);
	wl_check(what, ev == (POLLIN | POLLHUP), "revents 0x%x", ev);
	n = read(rfd, buf, sizeof(buf));
	snprintf(what, sizeof(what), "%s_data", name);
	wl_check(what, n == (ssize_t)strlen(msg) && !memcmp(buf, msg, n), "read %zd", n);
	snprintf(what, sizeof(what), "%s_eof", name);
	n = read(rfd, buf, sizeof(buf));
	wl_check(what, n == 0, "read %zd (%s)", n, n < 0 ? strerror(errno) : "");
	ev = revents(rfd, POLLIN);
	snprintf(what, sizeof(what), "%s_hup_only", name);
	wl_check(what, ev == POLLHUP, "revents 0x%x", ev);
}

/* The write end wfd: POLLERR, and a write fails with EPIPE. */
static void check_writer(int wfd)
{
	short ev = revents(wfd, POLLOUT);

	wl_check("w_pollerr", (ev & POLLERR) != 0, "revents 0x%x", ev);
	errno = 0;
	wl_check("w_epipe", write(wfd, "x", 1) < 0 && errno == EPIPE, "errno %s", strerror(errno));
}

static void check_all(int r, int w, int f)
{
	check_reader("r", r, "no writer");
	check_writer(w);
	check_reader("fifo", f, "fifo data");
}

int main(void)
{
	int a[2], b[2], f, fw;
	char path[4096];

	wl_init();
	signal(SIGPIPE, SIG_IGN);
	if (pipe(a) || pipe(b))
		wl_die("pipe: %s", strerror(errno));
	if (write(a[1], "no writer", 9) != 9)
		wl_die("write: %s", strerror(errno));
	close(a[1]);
	close(b[0]);
	wl_path("fifo", path, sizeof(path));
	unlink(path);
	if (mkfifo(path, 0600))
		wl_die("mkfifo: %s", strerror(errno));
	f = open(path, O_RDONLY | O_NONBLOCK);
	fw = open(path, O_WRONLY | O_NONBLOCK);
	if (f < 0 || fw < 0 || write(fw, "fifo data", 9) != 9)
		wl_die("fifo: %s", strerror(errno));
	close(fw);
	/* what the kernel gives now, without consuming anything */
	wl_check("before_r", revents(a[0], POLLIN) == (POLLIN | POLLHUP), "a");
	wl_check("before_w", (revents(b[1], POLLOUT) & POLLERR) != 0, "b");
	wl_check("before_fifo", revents(f, POLLIN) == (POLLIN | POLLHUP), "fifo");

	wl_ready();
	wl_wait_go();

	check_all(a[0], b[1], f);
	unlink(path);
	wl_done();
}
