/* sleep_nanosleep.c: checkpointed inside a relative nanosleep(1.5 s); after
 * restore the sleep must return 0 and never end early. */
#include "wl.h"

#include <errno.h>
#include <string.h>
#include <time.h>

int main(void)
{
	struct timespec req = {1, 500 * 1000 * 1000}, rem = {0, 0};
	double t0, el;
	int r;

	wl_init();
	wl_ready();
	t0 = wl_now();
	r = nanosleep(&req, &rem);
	el = wl_now() - t0;
	wl_check("nanosleep_ret", r == 0, "returned %d errno %s", r, strerror(errno));
	wl_check_elapsed("nanosleep", el, 1.5, 15);
	wl_done();
}
