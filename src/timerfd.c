/*
 * timerfd: a timer's clock, its next expiry and interval, its settime flags
 * and the expirations not yet read.
 *
 * Dump: fdinfo gives clockid, ticks, settime flags, it_value (time left)
 * and it_interval. A periodic timer that expired unread is only brought up
 * to date by the kernel when someone asks (until then fdinfo shows one tick
 * and no time left), so the dump first calls timerfd_gettime() on its own
 * duplicate: that forwards the timer exactly as the owner's next read would,
 * and changes nothing the owner can observe. The timer's clock is read
 * right after, so that an absolute timer keeps its absolute expiry.
 *
 * Restore: timerfd_create + timerfd_settime (relative timers get the time
 * that was left, absolute ones the same deadline), then the unread ticks
 * are put back with TFD_IOC_SET_TICKS (settime resets them). Setting the
 * ticks overwrites the counter, so the restore makes sure the timer cannot
 * expire between the two calls: when the first expiry is close it waits
 * for it (poll) and adds it, otherwise it checks the clock afterwards.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include <linux/timerfd.h>

#include "anonfd.h"
#include "infra/log.h"

#define NSEC	   1000000000ULL
#define NEAR_NS	   (50 * 1000000ULL) /* an expiry this close is waited for */
#define DUMP_TRIES 50

struct tfd_state {
	int clockid;
	unsigned long long ticks;
	unsigned flags;
	unsigned long long vs, vn, is, in;
};

/* clock_gettime for a timer's clock (the alarm clocks read like their base) */
static int read_clock(int clockid, struct timespec *ts)
{
	if (clockid == CLOCK_REALTIME_ALARM)
		clockid = CLOCK_REALTIME;
	else if (clockid == CLOCK_BOOTTIME_ALARM)
		clockid = CLOCK_BOOTTIME;
	return clock_gettime(clockid, ts);
}

static int parse_state(const char *info, struct tfd_state *s)
{
	const char *c = anonfd_field(info, "clockid:"), *t = anonfd_field(info, "ticks:");
	const char *f = anonfd_field(info, "settime flags:");
	const char *v = anonfd_field(info, "it_value:"), *i = anonfd_field(info, "it_interval:");

	if (!c || !t || !f || !v || !i)
		return -1;
	s->clockid = strtol(c, NULL, 10);
	s->ticks = strtoull(t, NULL, 10);
	s->flags = strtoul(f, NULL, 8);
	if (sscanf(v, " (%llu, %llu)", &s->vs, &s->vn) != 2 ||
	    sscanf(i, " (%llu, %llu)", &s->is, &s->in) != 2)
		return -1;
	return 0;
}

/* Does this kernel have TFD_IOC_SET_TICKS (CONFIG_CHECKPOINT_RESTORE)? */
static bool can_set_ticks(void)
{
	unsigned long long zero = 0;
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
	bool ok;

	if (fd < 0)
		return false;
	ok = ioctl(fd, TFD_IOC_SET_TICKS, &zero) < 0 && errno == EINVAL;
	close(fd);
	return ok;
}

/* A consistent view: forwarded, and not caught between expiry and forwarding. */
static int read_state(struct dump_ctx *ctx, struct dump_file *f, int fd, struct tfd_state *s,
		      struct timespec *now)
{
	char name[64], *info;
	struct itimerspec its;

	snprintf(name, sizeof(name), "fdinfo/%d", fd);
	for (int try = 0; try < DUMP_TRIES; try++) {
		if (timerfd_gettime(f->local_fd, &its))
			return err_errno("fd %d of pid %d (timerfd): timerfd_gettime", fd,
					 ctx->pid);
		if (proc_read(ctx->pid, name, &info, NULL))
			return err_wrap("fd %d of pid %d (timerfd)", fd, ctx->pid);
		int bad = parse_state(info, s);
		free(info);
		if (bad)
			return err_set("fd %d of pid %d (timerfd): cannot parse its fdinfo", fd,
				       ctx->pid);
		if (read_clock(s->clockid, now))
			return err_errno("fd %d of pid %d (timerfd): cannot read clock %d", fd,
					 ctx->pid, s->clockid);
		if (!(s->ticks && !s->vs && !s->vn && (s->is || s->in)))
			return 0;
	}
	return err_set("fd %d of pid %d (timerfd): its interval is too short to read a stable "
		       "state",
		       fd, ctx->pid);
}

static int dump_state(struct dump_ctx *ctx, struct dump_file *f, int fd, const char *info)
{
	struct tfd_state s;
	struct timespec now;
	TimerfdEntry *e;

	(void)info; /* read again, after the timer is forwarded */
	if (read_state(ctx, f, fd, &s, &now))
		return -1;
	if (s.ticks && !can_set_ticks())
		return err_set("fd %d of pid %d (timerfd) has %llu unread expirations and this "
			       "kernel cannot restore them (no TFD_IOC_SET_TICKS)",
			       fd, ctx->pid, s.ticks);
	e = malloc(sizeof(*e));
	if (!e)
		return err_set("out of memory");
	timerfd_entry__init(e);
	e->clockid = s.clockid;
	e->ticks = s.ticks;
	e->settime_flags = s.flags;
	e->value_sec = s.vs;
	e->value_nsec = s.vn;
	e->interval_sec = s.is;
	e->interval_nsec = s.in;
	e->now_sec = now.tv_sec;
	e->now_nsec = now.tv_nsec;
	f->entry.timerfd = e;
	return 0;
}

static void timerfd_free(FileEntry *fe)
{
	free(fe->timerfd);
	fe->timerfd = NULL;
}

static int check_state(const struct restore_tree *tree, const FileEntry *fe)
{
	const TimerfdEntry *e = fe->timerfd;

	(void)tree;
	if (!e)
		return err_set("timerfd without its state");
	if (e->clockid != CLOCK_REALTIME && e->clockid != CLOCK_MONOTONIC &&
	    e->clockid != CLOCK_BOOTTIME && e->clockid != CLOCK_REALTIME_ALARM &&
	    e->clockid != CLOCK_BOOTTIME_ALARM)
		return err_set("timerfd with unknown clock %d", e->clockid);
	if (e->settime_flags & ~(TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET))
		return err_set("timerfd with unknown settime flags %#x", e->settime_flags);
	if (e->value_nsec >= NSEC || e->interval_nsec >= NSEC || e->now_nsec >= NSEC ||
	    e->value_sec > (1ULL << 40) || e->interval_sec > (1ULL << 40) ||
	    e->now_sec > (1ULL << 40))
		return err_set("timerfd with out-of-range times");
	return 0;
}

static unsigned long long ts_ns(const struct timespec *ts)
{
	return ts->tv_sec * NSEC + ts->tv_nsec;
}

/* Arms the timer; *due: the first expiry on its clock, in ns (0: disarmed). */
static int arm(int fd, const TimerfdEntry *e, unsigned long long *due)
{
	struct itimerspec its = {
	    .it_value = {e->value_sec, e->value_nsec},
	    .it_interval = {e->interval_sec, e->interval_nsec},
	};
	bool armed = e->value_sec || e->value_nsec;
	struct timespec now;

	if (read_clock(e->clockid, &now))
		return err_errno("cannot read clock %d", e->clockid);
	*due = 0;
	if (armed && (e->settime_flags & TFD_TIMER_ABSTIME)) {
		unsigned long long abs =
		    e->now_sec * NSEC + e->now_nsec + e->value_sec * NSEC + e->value_nsec;
		its.it_value.tv_sec = abs / NSEC;
		its.it_value.tv_nsec = abs % NSEC;
		*due = abs;
	} else if (armed) {
		*due = ts_ns(&now) + e->value_sec * NSEC + e->value_nsec;
	}
	if (timerfd_settime(fd, e->settime_flags, &its, NULL))
		return err_errno("cannot arm the timer (clock %d, flags %#x)", e->clockid,
				 e->settime_flags);
	return 0;
}

static int ticks_now(int fd, unsigned long long *ticks)
{
	char name[64], *info;
	struct tfd_state s;
	int bad;

	snprintf(name, sizeof(name), "fdinfo/%d", fd);
	if (proc_read(0, name, &info, NULL))
		return -1;
	bad = parse_state(info, &s);
	free(info);
	if (bad)
		return err_set("cannot parse the fdinfo of a new timerfd");
	*ticks = s.ticks;
	return 0;
}

static int set_ticks(int fd, unsigned long long ticks)
{
	if (ioctl(fd, TFD_IOC_SET_TICKS, &ticks))
		return err_errno("cannot restore %llu unread expirations (TFD_IOC_SET_TICKS)",
				 ticks);
	return 0;
}

/* Puts the unread ticks back without losing an expiry that races with it. */
static int restore_ticks(int fd, const TimerfdEntry *e)
{
	for (int try = 0; try < 10; try++) {
		unsigned long long due, fired = 0;
		struct timespec now;
		if (arm(fd, e, &due) || read_clock(e->clockid, &now))
			return -1;
		if (due && due <= ts_ns(&now) + NEAR_NS) {
			/* wait for the first expiry: after it, the timer stays still until read */
			struct pollfd p = {.fd = fd, .events = POLLIN};
			int ms = (due > ts_ns(&now) ? (due - ts_ns(&now)) / 1000000 : 0) + 1000;
			if (poll(&p, 1, ms) != 1)
				return err_set("the timer did not expire when due");
			if (ticks_now(fd, &fired))
				return -1;
			return set_ticks(fd, e->ticks + fired);
		}
		if (set_ticks(fd, e->ticks) || read_clock(e->clockid, &now))
			return -1;
		if (!due || ts_ns(&now) < due)
			return 0; /* no expiry can have come before the ticks were set */
	}
	return err_set("cannot set the unread expirations before the timer expires");
}

static int make(struct restore_ctx *ctx, const FileEntry *fe, int *fd)
{
	const TimerfdEntry *e = fe->timerfd;
	unsigned long long due;

	(void)ctx;
	*fd = timerfd_create(e->clockid, TFD_CLOEXEC);
	if (*fd < 0)
		return err_errno("cannot create a timerfd on clock %d", e->clockid);
	if (e->ticks)
		return restore_ticks(*fd, e);
	return arm(*fd, e, &due);
}

static const struct anonfd_type type = {"anon_inode:[timerfd]", "timerfd", O_RDWR, 0};

ANONFD_OPS(type, dump_state, check_state, make)

const struct fd_kind timerfd_kind = {
    .name = "timerfd",
    .kind = FILE_KIND__TIMERFD,
    .recognise = anon_recognise,
    .dump = anon_dump,
    .free_entry = timerfd_free,
    .validate = anon_validate,
    .open = anon_open,
};
