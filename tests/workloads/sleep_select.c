/* sleep_select.c: checkpointed inside select() on an idle pipe with a 1.5 s
 * timeout; after restore it times out (returns 0, no fd set), never early. */
#include "wl.h"

#include <errno.h>
#include <string.h>
#include <sys/select.h>
#include <unistd.h>

int main(void)
{
	struct timeval tv = {1, 500 * 1000};
	fd_set rf;
	int p[2], r;
	double t0, el;

	wl_init();
	if (pipe(p))
		wl_die("pipe: %s", strerror(errno));
	FD_ZERO(&rf);
	FD_SET(p[0], &rf);
	wl_ready();
	t0 = wl_now();
	r = select(p[0] + 1, &rf, NULL, NULL, &tv);
	el = wl_now() - t0;
	wl_check("select_ret", r == 0, "returned %d errno %s", r, strerror(errno));
	wl_check("select_fdset", !FD_ISSET(p[0], &rf), "pipe fd reported readable");
	wl_check_elapsed("select", el, 1.5, 15);
	wl_check("select_pipe_works", write(p[1], "x", 1) == 1, "write failed");
	wl_done();
}
