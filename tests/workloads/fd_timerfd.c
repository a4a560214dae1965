/* fd_timerfd.c: workload with timerfds: a periodic monotonic timer with unread
 * expirations, an absolute realtime one-shot, an expired unread boottime one-shot, a
 * disarmed one, an absolute periodic monotonic one and a cancel-on-set realtime one;
 * checks ticks, remaining times, intervals, deadlines, settime flags and fd flags. */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MS 1000000LL

static long long ns_of(const struct timespec *t)
{
	return t->tv_sec * 1000000000LL + t->tv_nsec;
}

static long long now_ns(clockid_t c)
{
	struct timespec t;

	clock_gettime(c, &t);
	return ns_of(&t);
}

static struct timespec ts_of(long long ns)
{
	struct timespec t = {ns / 1000000000LL, ns % 1000000000LL};
	return t;
}

static void arm(int fd, int flags, long long value, long long interval)
{
	struct itimerspec its = {.it_value = ts_of(value), .it_interval = ts_of(interval)};

	if (timerfd_settime(fd, flags, &its, NULL))
		wl_die("timerfd_settime: %s", strerror(errno));
}

/* The settime flags of timerfd FD from its fdinfo (octal there), -1 if missing. */
static int fdinfo_flags(int fd)
{
	return (int)wl_fdinfo_num(fd, "settime flags:", 8);
}

static void gettime(int fd, long long *value, long long *interval)
{
	struct itimerspec its;

	if (timerfd_gettime(fd, &its))
		wl_die("timerfd_gettime: %s", strerror(errno));
	*value = ns_of(&its.it_value);
	*interval = ns_of(&its.it_interval);
}

int main(void)
{
	int per = timerfd_create(CLOCK_MONOTONIC, 0);
	int abs_rt = timerfd_create(CLOCK_REALTIME, TFD_CLOEXEC);
	int fired = timerfd_create(CLOCK_BOOTTIME, TFD_NONBLOCK);
	int idle = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	int abs_per = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
	int cancel = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK);
	long long t_arm, deadline, v, iv, n;

	wl_init();
	if (per < 0 || abs_rt < 0 || fired < 0 || idle < 0 || abs_per < 0 || cancel < 0)
		wl_die("timerfd_create: %s", strerror(errno));
	t_arm = now_ns(CLOCK_MONOTONIC);
	arm(per, 0, 50 * MS, 100 * MS);
	deadline = now_ns(CLOCK_REALTIME) + 4000 * MS;
	arm(abs_rt, TFD_TIMER_ABSTIME, deadline, 0);
	arm(fired, 0, 20 * MS, 0);
	arm(abs_per, TFD_TIMER_ABSTIME, now_ns(CLOCK_MONOTONIC) + 200 * MS, 250 * MS);
	arm(cancel, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET,
	    now_ns(CLOCK_REALTIME) + 3600000 * MS, 0);
	usleep(320 * 1000); /* per: 3 unread expirations, fired: expired */

	wl_ready();
	wl_wait_go();

	wl_check_fd_flags("per", per, O_RDWR, 0);
	wl_check_fd_flags("abs_rt", abs_rt, O_RDWR, FD_CLOEXEC);
	wl_check_fd_flags("fired", fired, O_RDWR | O_NONBLOCK, 0);
	wl_check_fd_flags("idle", idle, O_RDWR | O_NONBLOCK, FD_CLOEXEC);
	wl_check("abs_rt_flags", fdinfo_flags(abs_rt) == TFD_TIMER_ABSTIME, "settime flags %#o",
		 fdinfo_flags(abs_rt));
	wl_check("abs_per_flags", fdinfo_flags(abs_per) == TFD_TIMER_ABSTIME, "settime flags %#o",
		 fdinfo_flags(abs_per));
	wl_check("cancel_flags",
		 fdinfo_flags(cancel) == (TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET),
		 "settime flags %#o", fdinfo_flags(cancel));
	wl_check("per_flags0", fdinfo_flags(per) == 0, "settime flags %#o", fdinfo_flags(per));

	/* periodic: the unread expirations are all there, never more than time allows */
	gettime(per, &v, &iv);
	wl_check("per_interval", iv == 100 * MS, "interval %lld ns", iv);
	wl_check("per_value", v > 0 && v <= 100 * MS, "value %lld ns", v);
	n = wl_read_u64(per);
	{
		long long most = (now_ns(CLOCK_MONOTONIC) - t_arm - 50 * MS) / (100 * MS) + 1;
		wl_check("per_ticks", n >= 3 && n <= most, "read %lld expirations, want 3..%lld", n,
			 most);
	}
	{
		long long a, b;
		wl_read_u64(per);
		a = now_ns(CLOCK_MONOTONIC);
		n = wl_read_u64(per);
		b = now_ns(CLOCK_MONOTONIC);
		wl_check("per_period", n == 1 && b - a > 50 * MS && b - a < 200 * MS,
			 "%lld expirations after %lld ms", n, (b - a) / MS);
	}

	/* expired one-shot: one tick, then nothing */
	gettime(fired, &v, &iv);
	wl_check("fired_disarmed", v == 0 && iv == 0, "value %lld interval %lld", v, iv);
	n = wl_read_u64(fired);
	wl_check("fired_tick", n == 1, "read %lld", n);
	n = wl_read_u64(fired);
	wl_check("fired_once", n == -EAGAIN, "second read %lld", n);

	/* disarmed */
	gettime(idle, &v, &iv);
	wl_check("idle_zero", v == 0 && iv == 0, "value %lld interval %lld", v, iv);
	n = wl_read_u64(idle);
	wl_check("idle_eagain", n == -EAGAIN, "read %lld", n);

	/* absolute periodic */
	gettime(abs_per, &v, &iv);
	wl_check("abs_per_interval", iv == 250 * MS && v > 0 && v <= 250 * MS,
		 "value %lld interval %lld", v, iv);
	n = wl_read_u64(abs_per);
	wl_check("abs_per_ticks", n >= 1, "read %lld", n);

	/* cancel-on-set: an hour left */
	gettime(cancel, &v, &iv);
	wl_check("cancel_value", v > 3500000 * MS && v <= 3600000 * MS && iv == 0,
		 "value %lld interval %lld", v, iv);

	/* absolute realtime one-shot: fires at its deadline, not later, not earlier (if the
	 * checkpoint took longer than its 4 s, it has fired once by now) */
	gettime(abs_rt, &v, &iv);
	{
		long long left = deadline - now_ns(CLOCK_REALTIME);
		if (left > 10 * MS)
			wl_check("abs_rt_value", iv == 0 && v > 0 && llabs(v - left) < 100 * MS,
				 "value %lld ms, deadline in %lld ms", v / MS, left / MS);
		else
			wl_check("abs_rt_value", iv == 0 && v < 20 * MS,
				 "value %lld ms, deadline %lld ms ago", v / MS, -left / MS);
	}
	n = wl_read_u64(abs_rt);
	{
		long long late = now_ns(CLOCK_REALTIME) - deadline;
		wl_check("abs_rt_fire", n == 1 && late >= 0,
			 "read %lld, %lld ms after the deadline", n, late / MS);
		if (late < 1000 * MS) /* it was waited for: it must come on time */
			wl_check("abs_rt_on_time", late < 100 * MS, "fired %lld ms late",
				 late / MS);
	}
	wl_done();
}
