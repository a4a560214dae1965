/* sleep_read.c: checkpointed inside a blocking read() on a pipe; an ITIMER_REAL
 * handler (SA_RESTART) writes the awaited bytes ~1.5 s later, and the restarted
 * read must return exactly them. */
#include "wl.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

static const char msg[] = "the-awaited-bytes-0123456789";
static int p[2];
static volatile sig_atomic_t fired;

static void on_alarm(int sig)
{
	(void)sig;
	fired++;
	if (write(p[1], msg, sizeof(msg) - 1) < 0)
		fired = 100;
}

int main(void)
{
	char buf[256];
	ssize_t r;
	double t0, el;

	wl_init();
	if (pipe(p))
		wl_die("pipe: %s", strerror(errno));
	memset(buf, 0, sizeof(buf));
	t0 = wl_ready_alarm(on_alarm, 1.5);
	r = read(p[0], buf, sizeof(buf));
	el = wl_now() - t0;
	wl_check("read_ret", r == (ssize_t)sizeof(msg) - 1, "read returned %zd errno %s", r,
		 strerror(errno));
	wl_check("read_data", memcmp(buf, msg, sizeof(msg) - 1) == 0, "got '%.64s'", buf);
	wl_check("read_handler_once", fired == 1, "handler ran %d times", (int)fired);
	wl_check_elapsed("read", el, 1.4, 15);
	wl_done();
}
