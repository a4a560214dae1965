/* mem_aio.c: Linux AIO contexts (io_setup) with completed events not yet
 * reaped. Context A: 6 reads of a file submitted, 2 reaped; context B: 133
 * reads submitted and reaped 10 at a time but the last 3, so that its ring
 * has wrapped (its tail is behind its head's start); context C: everything
 * reaped. After `go`, for each: the ring is mapped at the address that is
 * the context id, named "/[aio] (deleted)", its header (size, head, tail)
 * is as before, io_getevents() gives back exactly the events not reaped
 * (data, obj, res), in order, and nothing more; new reads submitted to the
 * context complete and are reaped with the right data (the kernel completes
 * after the old events); io_destroy() works. */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <linux/aio_abi.h>

#define PG	 4096
#define FILE_PGS 8

struct ring_head {
	uint32_t id, nr, head, tail, magic, compat_features, incompat_features, header_length;
};

struct actx {
	const char *name;
	int submit, reap_step, leave; /* requests, reaped in steps of, left unreaped */
	aio_context_t id;
	struct ring_head head;
	struct iocb cbs[160];
	unsigned char buf[FILE_PGS][PG];
};

static struct actx ctxs[] = {
    {"a", 6, 2, 4, 0, {0}, {{0}}, {{0}}},
    {"b", 133, 10, 3, 0, {0}, {{0}}, {{0}}},
    {"c", 5, 5, 0, 0, {0}, {{0}}, {{0}}},
};
#define NCTX (sizeof(ctxs) / sizeof(ctxs[0]))

static int fd;
static unsigned char data[FILE_PGS * PG]; /* the file: pattern 7 */

static long getevents(aio_context_t id, long min, long max, struct io_event *ev)
{
	struct timespec zero = {0, 0};

	return syscall(SYS_io_getevents, id, min, max, ev, min ? NULL : &zero);
}

/* Submits request I of C: page I % FILE_PGS of the file, data = I. */
static void submit(struct actx *c, int i)
{
	struct iocb *cb = &c->cbs[i % 160], *list[1] = {cb};

	memset(cb, 0, sizeof(*cb));
	cb->aio_data = 1000 + i;
	cb->aio_lio_opcode = IOCB_CMD_PREAD;
	cb->aio_fildes = fd;
	cb->aio_buf = (uintptr_t)c->buf[i % FILE_PGS];
	cb->aio_nbytes = PG;
	cb->aio_offset = (i % FILE_PGS) * PG;
	if (syscall(SYS_io_submit, c->id, 1, list) != 1)
		wl_die("io_submit %s: %s", c->name, strerror(errno));
}

static void set_up(struct actx *c)
{
	struct io_event ev[16];
	int reaped = 0;

	if (syscall(SYS_io_setup, 32, &c->id))
		wl_die("io_setup: %s", strerror(errno));
	for (int i = 0; i < c->submit; i++) {
		submit(c, i);
		/* reap in steps, all but the last `leave` */
		while (c->submit - c->leave - reaped >= c->reap_step &&
		       i + 1 - reaped >= c->reap_step) {
			if (getevents(c->id, c->reap_step, c->reap_step, ev) != c->reap_step)
				wl_die("io_getevents %s: %s", c->name, strerror(errno));
			reaped += c->reap_step;
		}
	}
	if (c->submit - reaped != c->leave)
		wl_die("%s: %d left unreaped, expected %d", c->name, c->submit - reaped, c->leave);
	memcpy(&c->head, (void *)c->id, sizeof(c->head));
}

static bool ring_maps_line(aio_context_t id)
{
	char *buf = NULL, head[32];
	size_t cap = 0;
	bool found = false;
	FILE *f = fopen("/proc/self/maps", "r");

	snprintf(head, sizeof(head), "%lx-", (unsigned long)id);
	while (f && getline(&buf, &cap, f) > 0)
		if (!strncmp(buf, head, strlen(head)) && strstr(buf, " rw-s ") &&
		    strstr(buf, "/[aio] (deleted)"))
			found = true;
	if (f)
		fclose(f);
	free(buf);
	return found;
}

static void check_events(struct actx *c, const char *what, int first, int n)
{
	struct io_event ev[16];
	char name[64];
	long got = getevents(c->id, 0, 16, ev);
	int bad = -1;

	for (int k = 0; k < n && k < got && bad < 0; k++) {
		int i = first + k;
		if (ev[k].data != (uint64_t)(1000 + i) ||
		    ev[k].obj != (uint64_t)(uintptr_t)&c->cbs[i % 160] || ev[k].res != PG)
			bad = k;
	}
	snprintf(name, sizeof(name), "%s_%s_events", c->name, what);
	wl_check(name, got == n && bad < 0, "%ld events (expected %d), event %d wrong", got, n,
		 bad);
	for (int k = 0; k < n; k++) {
		int i = first + k;
		snprintf(name, sizeof(name), "%s_%s_data%d", c->name, what, k);
		wl_check(name, !memcmp(c->buf[i % FILE_PGS], data + (i % FILE_PGS) * PG, PG),
			 "the buffer of read %d is not the file's page %d", i, i % FILE_PGS);
	}
}

static void check(struct actx *c)
{
	struct ring_head now;
	char name[64];

	snprintf(name, sizeof(name), "%s_ring_mapped", c->name);
	wl_check(name, ring_maps_line(c->id), "no \"/[aio] (deleted)\" mapping at %#lx",
		 (unsigned long)c->id);
	memcpy(&now, (void *)c->id, sizeof(now));
	snprintf(name, sizeof(name), "%s_ring_header", c->name);
	wl_check(name, now.nr == c->head.nr && now.head == c->head.head && now.tail == c->head.tail,
		 "nr %u head %u tail %u, expected %u %u %u", now.nr, now.head, now.tail, c->head.nr,
		 c->head.head, c->head.tail);
	check_events(c, "pending", c->submit - c->leave, c->leave);
	for (int i = 0; i < 3; i++)
		submit(c, c->submit + i);
	check_events(c, "new", c->submit, 3);
	snprintf(name, sizeof(name), "%s_io_destroy", c->name);
	wl_check(name, syscall(SYS_io_destroy, c->id) == 0, "%s", strerror(errno));
}

int main(void)
{
	char path[4096];

	wl_init();
	wl_fill(data, sizeof(data), 7);
	wl_mkfile(wl_path("aio.data", path, sizeof(path)), data, sizeof(data), 0600);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		wl_die("open: %s", strerror(errno));
	for (size_t i = 0; i < NCTX; i++)
		set_up(&ctxs[i]);
	wl_ready();
	wl_wait_go();
	for (size_t i = 0; i < NCTX; i++)
		check(&ctxs[i]);
	wl_done();
}
