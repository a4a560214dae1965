/* sleep_clock_nanosleep.c: checkpointed inside clock_nanosleep(CLOCK_MONOTONIC,
 * TIMER_ABSTIME) 1.5 s ahead; after restore it returns 0 at/after the deadline. */
#include "wl.h"

#include <string.h>
#include <time.h>

int main(void)
{
	struct timespec dl, now;
	double t0, el;
	int r;

	wl_init();
	clock_gettime(CLOCK_MONOTONIC, &dl);
	t0 = dl.tv_sec + dl.tv_nsec / 1e9;
	dl.tv_nsec += 500 * 1000 * 1000;
	dl.tv_sec += 1 + dl.tv_nsec / 1000000000;
	dl.tv_nsec %= 1000000000;
	wl_ready();
	r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &dl, NULL);
	clock_gettime(CLOCK_MONOTONIC, &now);
	el = now.tv_sec + now.tv_nsec / 1e9 - t0;
	wl_check("clock_nanosleep_ret", r == 0, "returned %d (%s)", r, strerror(r));
	wl_check("clock_nanosleep_deadline",
		 now.tv_sec > dl.tv_sec || (now.tv_sec == dl.tv_sec && now.tv_nsec >= dl.tv_nsec),
		 "woke at %ld.%09ld before deadline %ld.%09ld", (long)now.tv_sec, now.tv_nsec,
		 (long)dl.tv_sec, dl.tv_nsec);
	wl_check("clock_nanosleep_not_late", el < 15, "slept %.3f s", el);
	wl_done();
}
