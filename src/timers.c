/*
 * timers: the three interval timers (ITIMER_REAL, _VIRTUAL, _PROF).
 * Read by injected getitimer, set again by injected setitimer; the time
 * left keeps counting from where it was when the task was frozen.
 */
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/time.h>

#include "context.h"
#include "infra/log.h"

static uint64_t tv_us(const struct timeval *tv)
{
	return tv->tv_sec * 1000000ULL + tv->tv_usec;
}

int timers_dump(struct dump_ctx *ctx)
{
	CoreEntry *core = ctx->core;

	core->itimers = calloc(3, sizeof(*core->itimers));
	if (!core->itimers)
		return err_set("out of memory");
	for (int which = ITIMER_REAL; which <= ITIMER_PROF; which++) {
		struct itimerval it;
		ItimerEntry *e;
		if (inject_call(&ctx->inj, "reading an interval timer", SYS_getitimer, which,
				ctx->inj.scratch, 0, 0, 0, 0, NULL) ||
		    inject_read(ctx->pid, ctx->inj.scratch, &it, sizeof(it)))
			return -1;
		if (!it.it_value.tv_sec && !it.it_value.tv_usec)
			continue; /* disarmed */
		e = malloc(sizeof(*e));
		if (!e)
			return err_set("out of memory");
		itimer_entry__init(e);
		e->which = which;
		e->interval_us = tv_us(&it.it_interval);
		e->value_us = tv_us(&it.it_value);
		core->itimers[core->n_itimers++] = e;
	}
	return 0;
}

int timers_restore(struct restore_ctx *ctx)
{
	for (size_t i = 0; i < ctx->core->n_itimers; i++) {
		const ItimerEntry *e = ctx->core->itimers[i];
		struct itimerval it = {
			.it_interval = {e->interval_us / 1000000, e->interval_us % 1000000},
			.it_value = {e->value_us / 1000000, e->value_us % 1000000},
		};
		if (e->which > ITIMER_PROF)
			return err_set("core-%d.img: bad timer %u", ctx->pid, e->which);
		uint64_t addr = restore_scratch_put(ctx, 0, &it, sizeof(it));
		if (inject_call(&ctx->inj, "restoring an interval timer", SYS_setitimer, e->which,
				addr, 0, 0, 0, 0, NULL))
			return -1;
	}
	return 0;
}
