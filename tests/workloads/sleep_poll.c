/* sleep_poll.c: checkpointed inside poll() on an idle pipe with a 1.5 s timeout;
 * after restore it times out (returns 0, no revents), never early. */
#include "wl.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
	struct pollfd pf;
	int p[2], r;
	double t0, el;

	wl_init();
	if (pipe(p))
		wl_die("pipe: %s", strerror(errno));
	pf.fd = p[0];
	pf.events = POLLIN;
	pf.revents = 0;
	wl_ready();
	t0 = wl_now();
	r = poll(&pf, 1, 1500);
	el = wl_now() - t0;
	wl_check("poll_ret", r == 0, "returned %d errno %s", r, strerror(errno));
	wl_check("poll_revents", pf.revents == 0, "revents %#x", pf.revents);
	wl_check_elapsed("poll", el, 1.5, 15);
	wl_done();
}
