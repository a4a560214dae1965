/* sleep_futex.c: checkpointed inside FUTEX_WAIT; an ITIMER_REAL handler sets the
 * word and does FUTEX_WAKE ~1.5 s later. The wait must not return before that. */
#include "wl.h"

#include <errno.h>
#include <stdio.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <unistd.h>

static volatile uint32_t word;
static volatile sig_atomic_t fired;

static long futex(volatile uint32_t *uaddr, int op, uint32_t val)
{
	return syscall(SYS_futex, uaddr, op, val, NULL, NULL, 0);
}

static void on_alarm(int sig)
{
	(void)sig;
	fired++;
	word = 1;
	futex(&word, FUTEX_WAKE_PRIVATE, 1);
}

int main(void)
{
	long r;
	int err, early = 0;
	double t0, el;

	wl_init();
	t0 = wl_ready_alarm(on_alarm, 1.5);
	for (;;) {
		r = futex(&word, FUTEX_WAIT_PRIVATE, 0);
		err = errno;
		if (word == 1)
			break;
		/* returned while the word is still 0: a spurious wakeup */
		early++;
		printf("wl: futex returned early: %ld errno %s\n", r, strerror(err));
		if (early > 100)
			break;
	}
	el = wl_now() - t0;
	wl_check("futex_ret", r == 0 || (r < 0 && (err == EAGAIN || err == EINTR)),
		 "returned %ld errno %s", r, strerror(err));
	wl_check("futex_no_early_wakeup", early == 0, "%d early returns", early);
	wl_check("futex_word", word == 1, "word %u", word);
	wl_check("futex_handler_once", fired == 1, "handler ran %d times", (int)fired);
	wl_check_elapsed("futex", el, 1.4, 15);
	wl_done();
}
