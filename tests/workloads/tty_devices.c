/* tty_devices.c: terminal devices of the machine held open by a process that is not
 * their session's (no --shell-job, O_NOCTTY, the workload has no controlling
 * terminal): a virtual console (/dev/tty1, O_RDWR), the console (/dev/console,
 * O_WRONLY) and a serial line (/dev/ttyS0, O_RDWR | O_NONBLOCK: no carrier wait).
 * Each that this machine lacks (or cannot open) is reported as not covered. After go:
 * each fd names the same path and device, keeps its flags, is still a terminal whose
 * line settings (c_cflag, speed) are the device's as before, and takes a zero-length
 * write; the process still has no controlling terminal. */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

struct dev {
	const char *path;
	int flags;
	int fd;
	dev_t rdev;
	struct termios t;
};

static void open_dev(struct dev *d)
{
	struct stat st;

	d->fd = open(d->path, d->flags | O_NOCTTY);
	if (d->fd < 0 || fstat(d->fd, &st) || tcgetattr(d->fd, &d->t)) {
		wl_not_covered(d->path, "cannot use %s here: %s", d->path, strerror(errno));
		if (d->fd >= 0)
			close(d->fd);
		d->fd = -1;
		return;
	}
	d->rdev = st.st_rdev;
}

static void check_dev(const struct dev *d)
{
	char name[64], link[256];
	struct termios t;
	struct stat st;

	if (d->fd < 0)
		return;
	wl_fd_link(d->fd, link, sizeof(link));
	snprintf(name, sizeof(name), "%s_path", d->path + 5);
	wl_check(name, !strcmp(link, d->path), "fd %d is %s", d->fd, link);
	snprintf(name, sizeof(name), "%s_rdev", d->path + 5);
	wl_check(name, !fstat(d->fd, &st) && st.st_rdev == d->rdev, "another device");
	wl_check_fd_flags(d->path + 5, d->fd, d->flags, 0);
	snprintf(name, sizeof(name), "%s_termios", d->path + 5);
	wl_check(name,
		 !tcgetattr(d->fd, &t) && t.c_cflag == d->t.c_cflag &&
		     cfgetospeed(&t) == cfgetospeed(&d->t),
		 "tcgetattr: %s", strerror(errno));
	snprintf(name, sizeof(name), "%s_write", d->path + 5);
	wl_check(name, write(d->fd, "", 0) == 0, "write: %s", strerror(errno));
}

int main(void)
{
	struct dev devs[] = {
	    {"/dev/tty1", O_RDWR, -1, 0, {0}},
	    {"/dev/console", O_WRONLY, -1, 0, {0}},
	    {"/dev/ttyS0", O_RDWR | O_NONBLOCK, -1, 0, {0}},
	};
	size_t n = sizeof(devs) / sizeof(devs[0]);
	int notty;

	wl_init();
	for (size_t i = 0; i < n; i++)
		open_dev(&devs[i]);
	notty = open("/dev/tty", O_RDWR) < 0 && errno == ENXIO;
	if (!notty)
		wl_die("the workload has a controlling terminal");

	wl_ready();
	wl_wait_go();

	for (size_t i = 0; i < n; i++)
		check_dev(&devs[i]);
	wl_check("no_ctty", open("/dev/tty", O_RDWR) < 0 && errno == ENXIO,
		 "the process has a controlling terminal now");
	wl_done();
}
