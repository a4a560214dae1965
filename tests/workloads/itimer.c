/* itimer.c: workload with ITIMER_REAL (with interval), ITIMER_VIRTUAL and
 * ITIMER_PROF armed; checks they are still armed with plausible remaining
 * values and unchanged intervals after checkpoint/restore, and that SIGALRM
 * keeps arriving. */
#include "wl.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static volatile sig_atomic_t n_alrm, n_vt, n_prof;

static void h(int sig)
{
	if (sig == SIGALRM)
		n_alrm++;
	else if (sig == SIGVTALRM)
		n_vt++;
	else
		n_prof++;
}

static double tv(struct timeval t)
{
	return t.tv_sec + t.tv_usec / 1e6;
}

static void check_timer(const char *name, int which, struct itimerval *set, double minv)
{
	struct itimerval now;
	char n1[64], n2[64];

	getitimer(which, &now);
	snprintf(n1, sizeof(n1), "%s_value", name);
	snprintf(n2, sizeof(n2), "%s_interval", name);
	wl_check(n1, tv(now.it_value) > minv && tv(now.it_value) <= tv(set->it_value),
		 "remaining %.6f s, expected in (%.3f, %.6f]", tv(now.it_value), minv,
		 tv(set->it_value));
	wl_check(n2,
		 now.it_interval.tv_sec == set->it_interval.tv_sec &&
		     now.it_interval.tv_usec == set->it_interval.tv_usec,
		 "interval %.6f s, expected %.6f", tv(now.it_interval), tv(set->it_interval));
}

int main(void)
{
	struct itimerval r = {{0, 500 * 1000}, {1, 500 * 1000}};
	struct itimerval v = {{50, 250 * 1000}, {100, 0}};
	struct itimerval p = {{30, 0}, {200, 125 * 1000}};
	struct itimerval r0, v0, p0;
	double t0;

	wl_init();
	wl_on_signal(SIGALRM, h);
	wl_on_signal(SIGVTALRM, h);
	wl_on_signal(SIGPROF, h);
	setitimer(ITIMER_VIRTUAL, &v, NULL);
	setitimer(ITIMER_PROF, &p, NULL);
	/* what the kernel made of them (CPU timers get a tick added): upper bounds */
	getitimer(ITIMER_VIRTUAL, &v0);
	getitimer(ITIMER_PROF, &p0);
	setitimer(ITIMER_REAL, &r, NULL);
	getitimer(ITIMER_REAL, &r0);

	wl_ready();
	wl_wait_go();

	check_timer("itimer_real", ITIMER_REAL, &r0, 0);
	/* CPU timers: this process used well under 10 s of CPU */
	check_timer("itimer_virtual", ITIMER_VIRTUAL, &v0, tv(v.it_value) - 10);
	check_timer("itimer_prof", ITIMER_PROF, &p0, tv(p.it_value) - 10);
	wl_check("no_cpu_timer_fired", n_vt == 0 && n_prof == 0, "SIGVTALRM %d SIGPROF %d",
		 (int)n_vt, (int)n_prof);

	/* SIGALRM: first shot within 3 s of go, then the interval keeps firing */
	t0 = wl_now();
	while (n_alrm < 3 && wl_now() - t0 < 4) {
		struct timespec ts = {0, 5 * 1000 * 1000};
		nanosleep(&ts, NULL);
		if (n_alrm == 0 && wl_now() - t0 > 3)
			break;
	}
	wl_check("sigalrm_arrives", n_alrm >= 1, "no SIGALRM within %.2f s of go", wl_now() - t0);
	wl_check("sigalrm_repeats", n_alrm >= 3, "only %d SIGALRM within %.2f s of go", (int)n_alrm,
		 wl_now() - t0);
	wl_done();
}
