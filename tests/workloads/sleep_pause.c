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
	struct sigaction sa;
	struct itimerval it = {{0, 0}, {1, 500 * 1000}};
	int r, err;
	double t0, el;

	wl_init();
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGALRM, &sa, NULL);
	wl_ready();
	t0 = wl_now();
	setitimer(ITIMER_REAL, &it, NULL);
	r = pause();
	err = errno;
	el = wl_now() - t0;
	wl_check("pause_ret", r == -1 && err == EINTR, "returned %d errno %s", r, strerror(err));
	wl_check("pause_handler_once", fired == 1, "handler ran %d times", (int)fired);
	wl_check("pause_not_early", el >= 1.4, "returned after %.3f s", el);
	wl_check("pause_not_late", el < 15, "returned after %.3f s", el);
	wl_done();
}
