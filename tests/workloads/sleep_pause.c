/* sleep_pause.c: checkpointed inside pause(); it must return -1/EINTR only after
 * the ITIMER_REAL handler (~1.5 s after ready) ran. */
#include "wl.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

static volatile sig_atomic_t fired;

static void on_alarm(int sig)
{
	(void)sig;
	fired++;
}

int main(void)
{
	int r, err;
	double t0, el;

	wl_init();
	t0 = wl_ready_alarm(on_alarm, 1.5);
	r = pause();
	err = errno;
	el = wl_now() - t0;
	wl_check("pause_ret", r == -1 && err == EINTR, "returned %d errno %s", r, strerror(err));
	wl_check("pause_handler_once", fired == 1, "handler ran %d times", (int)fired);
	wl_check_elapsed("pause", el, 1.4, 15);
	wl_done();
}
