/* sleep_poll.c: checkpointed inside poll() on an idle pipe with a 1.5 s timeout,
 * in a program that polls again for what is left after EINTR. Restored, poll
 * returns EINTR once (its restart block is gone); left running, it is resumed.
 * Either way it times out in the end (0, no revents), never early. */
#include "wl.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

/* What is left of the 1.5 s timeout since T0, never negative (infinite). */
static int left_ms(double t0)
{
	int ms = 1500 - (int)((wl_now() - t0) * 1000);

	return ms > 0 ? ms : 0;
}

int main(void)
{
	struct pollfd pf;
	int p[2], r, eintr = 0;
	double t0, el;

	wl_init();
	if (pipe(p))
		wl_die("pipe: %s", strerror(errno));
	pf.fd = p[0];
	pf.events = POLLIN;
	pf.revents = 0;
	wl_ready();
	t0 = wl_now();
	while ((r = poll(&pf, 1, left_ms(t0))) < 0 && errno == EINTR)
		eintr++;
	el = wl_now() - t0;
	wl_check("poll_ret", r == 0, "returned %d errno %s", r, strerror(errno));
	wl_check("poll_eintr", eintr == (wl_restored() ? 1 : 0), "%d EINTR returns", eintr);
	wl_check("poll_revents", pf.revents == 0, "revents %#x", pf.revents);
	wl_check_elapsed("poll", el, 1.5, 15);
	wl_done();
}
