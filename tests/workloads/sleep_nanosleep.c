/* sleep_nanosleep.c: checkpointed inside a relative nanosleep(1.5 s) of a
 * program that sleeps again for what is left after EINTR (coreutils' sleep).
 * Restored, the call returns EINTR once (its restart block is gone) with the
 * time left, and the sleep never ends early; left running, it just ends. */
#include "wl.h"

#include <errno.h>
#include <string.h>
#include <time.h>

int main(void)
{
	struct timespec req = {1, 500 * 1000 * 1000};
	double t0, el;
	int r, eintr = 0;

	wl_init();
	wl_ready();
	t0 = wl_now();
	while ((r = nanosleep(&req, &req)) && errno == EINTR)
		eintr++;
	el = wl_now() - t0;
	wl_check("nanosleep_ret", r == 0, "returned %d errno %s", r, strerror(errno));
	wl_check("nanosleep_eintr", eintr == (wl_restored() ? 1 : 0), "%d EINTR returns", eintr);
	wl_check_elapsed("nanosleep", el, 1.5, 15);
	wl_done();
}
