/* fd_eventfd.c: workload with eventfds (plain blocking with a counter above 32 bits,
 * semaphore non-blocking, empty close-on-exec, one shared by two fds); checks the
 * counters, the semaphore mode, flags and sharing survive checkpoint/restore. */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define BIG	  0x100000005ULL
#define SHARED_FD 20

int main(void)
{
	uint64_t v = BIG - 5;
	int plain = eventfd(5, 0);
	int sem = eventfd(3, EFD_SEMAPHORE | EFD_NONBLOCK);
	int empty = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	int64_t r;

	wl_init();
	if (plain < 0 || sem < 0 || empty < 0)
		wl_die("eventfd: %s", strerror(errno));
	if (write(plain, &v, sizeof(v)) != sizeof(v))
		wl_die("write: %s", strerror(errno));
	if (dup2(plain, SHARED_FD) != SHARED_FD)
		wl_die("dup2: %s", strerror(errno));

	wl_ready();
	wl_wait_go();

	wl_check_fd_flags("plain", plain, O_RDWR, 0);
	wl_check_fd_flags("shared", SHARED_FD, O_RDWR, 0);
	wl_check_fd_flags("sem", sem, O_RDWR | O_NONBLOCK, 0);
	wl_check_fd_flags("empty", empty, O_RDWR | O_NONBLOCK, FD_CLOEXEC);
	r = wl_fdinfo_num(sem, "eventfd-semaphore:", 10);
	wl_check("sem_mode", r == 1, "eventfd-semaphore: %" PRId64 " (-1: missing)", r);
	r = wl_fdinfo_num(plain, "eventfd-semaphore:", 10);
	wl_check("plain_mode", r == 0, "eventfd-semaphore: %" PRId64 " (-1: missing)", r);

	r = wl_read_u64(plain);
	wl_check("plain_value", r == (int64_t)BIG, "read %" PRId64 ", want %llu", r, BIG);
	wl_check("plain_empty", wl_revents(plain, POLLIN) == 0, "still readable after read (%d)",
		 wl_revents(plain, POLLIN));
	for (int i = 0; i < 3; i++) {
		r = wl_read_u64(sem);
		wl_check("sem_read", r == 1, "semaphore read %d gave %" PRId64, i, r);
	}
	r = wl_read_u64(sem);
	wl_check("sem_drained", r == -EAGAIN, "4th semaphore read gave %" PRId64, r);
	r = wl_read_u64(empty);
	wl_check("empty_eagain", r == -EAGAIN, "read of the empty eventfd gave %" PRId64, r);

	v = 7;
	wl_check("empty_write", write(empty, &v, sizeof(v)) == sizeof(v), "write: %s",
		 strerror(errno));
	r = wl_read_u64(empty);
	wl_check("empty_roundtrip", r == 7, "read %" PRId64, r);
	v = 11;
	wl_check("shared_write", write(SHARED_FD, &v, sizeof(v)) == sizeof(v), "write: %s",
		 strerror(errno));
	r = wl_read_u64(plain);
	wl_check("shared_same", r == 11, "read through fd %d gave %" PRId64, plain, r);
	wl_done();
}
