/* itimer_pending.c: an ITIMER_REAL (100 ms, every 100 ms) that expired
 * while SIGALRM is blocked, so at the checkpoint its SIGALRM is pending and
 * the kernel shows 0 time left (it re-arms the timer only when the signal
 * is dequeued). After restore: SIGALRM is still pending (once), the timer
 * is still armed with the same interval, and once unblocked SIGALRM keeps
 * arriving, every interval. */
#include "wl.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static volatile sig_atomic_t n_alrm;

static void on_alrm(int sig)
{
	(void)sig;
	n_alrm++;
}

int main(void)
{
	struct itimerval r = {{0, 100 * 1000}, {0, 100 * 1000}}, now;
	sigset_t alrm, pending;
	double t0;

	wl_init();
	wl_on_signal(SIGALRM, on_alrm);
	sigemptyset(&alrm);
	sigaddset(&alrm, SIGALRM);
	sigprocmask(SIG_BLOCK, &alrm, NULL);
	setitimer(ITIMER_REAL, &r, NULL);
	struct timespec wait = {0, 300 * 1000 * 1000};
	nanosleep(&wait, NULL);
	getitimer(ITIMER_REAL, &now);
	sigpending(&pending);
	if (!sigismember(&pending, SIGALRM) || timerisset(&now.it_value))
		wl_die("the timer did not expire into a pending SIGALRM (left %ld us)",
		       (long)now.it_value.tv_usec);

	wl_ready();
	wl_wait_go();

	sigpending(&pending);
	wl_check("sigalrm_pending", sigismember(&pending, SIGALRM), "SIGALRM is not pending");
	getitimer(ITIMER_REAL, &now);
	wl_check("interval_kept", now.it_interval.tv_sec == 0 && now.it_interval.tv_usec == 100000,
		 "interval %ld.%06ld s", (long)now.it_interval.tv_sec, (long)now.it_interval.tv_usec);
	t0 = wl_now();
	sigprocmask(SIG_UNBLOCK, &alrm, NULL);
	wl_check("pending_delivered", n_alrm == 1, "%d SIGALRM at unblock", (int)n_alrm);
	while (n_alrm < 4 && wl_now() - t0 < 2) {
		struct timespec ts = {0, 5 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	wl_check("timer_still_fires", n_alrm >= 4, "%d SIGALRM in %.2f s after unblock",
		 (int)n_alrm, wl_now() - t0);
	wl_done();
}
