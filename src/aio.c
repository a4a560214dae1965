/*
 * aio: Linux AIO contexts (io_setup). A context is known to its process by
 * its id, which is the address of its ring: a shared mapping of the kernel's
 * ("/[aio] (deleted)") with a header (the ring's size, the head the process
 * reaps from, the tail the kernel completes at) and the completion events.
 *
 * Dump: the whole ring is read through /proc/PID/mem and kept with its VMA
 * (the header says how many events it holds and which are not reaped yet).
 * Requests still in flight are not visible from outside the kernel (no
 * procfs file counts them): the requests a process submits to files and
 * sockets mostly complete inside io_submit; one that had not completed is
 * lost (noted in the README).
 *
 * Restore, injected into the new process once its memory layout is in
 * place: io_setup() for a ring of the same size, which the kernel puts
 * where it likes; mremap() moves it to the old address, and the kernel
 * follows (the context id becomes the old one, aio_ring_mremap). The
 * kernel completes at its own copy of the tail, which only completions
 * move: as many empty reads (0 bytes from the executable's service fd, which
 * complete inside io_submit) are submitted and reaped as the old tail says,
 * then the old events are written into the ring and its head set back, so
 * that the events completed and not reaped are reaped again, in order, and
 * the next completion lands after them.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/aio_abi.h>

#include "aio.h"
#include "infra/inject.h"
#include "infra/log.h"

#define AIO_RING_MAGIC 0xa10a10a1
#define PRIME_CHUNK    32

/* The ring's header (struct aio_ring of fs/aio.c, the process's ABI). */
struct ring_head {
	uint32_t id, nr, head, tail, magic, compat_features, incompat_features, header_length;
};

bool aio_is_ring(const struct proc_vma *pv)
{
	return pv->shared && pv->path && !strcmp(pv->path, "/[aio] (deleted)");
}

static int check_ring(const struct ring_head *h, size_t len, const char *where, uint64_t at)
{
	if (h->magic != AIO_RING_MAGIC || h->header_length != sizeof(*h) || !h->nr ||
	    sizeof(*h) + (uint64_t)h->nr * sizeof(struct io_event) > len || h->head >= h->nr ||
	    h->tail >= h->nr)
		return err_set("%s: the AIO ring at 0x%llx has a bad header (nr %u, head %u, tail "
			       "%u)",
			       where, (unsigned long long)at, h->nr, h->head, h->tail);
	return 0;
}

int aio_dump_ring(pid_t pid, const struct proc_vma *pv, VmaEntry *v)
{
	char path[64], where[32];
	size_t len = pv->end - pv->start;
	unsigned char *buf = malloc(len);
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (!buf || fd < 0 || pread(fd, buf, len, pv->start) != (ssize_t)len) {
		if (fd >= 0)
			close(fd);
		free(buf);
		return err_errno("cannot read the AIO ring at 0x%llx of pid %d",
				 (unsigned long long)pv->start, pid);
	}
	close(fd);
	v->kind = VMA_KIND__AIO_RING;
	v->has_aio_ring = true;
	v->aio_ring.data = buf;
	v->aio_ring.len = len;
	snprintf(where, sizeof(where), "pid %d", pid);
	return check_ring((const struct ring_head *)buf, len, where, pv->start);
}

/* Moves the kernel's tail to TAIL: TAIL requests completed and reaped. */
static int prime_tail(struct restore_ctx *ctx, uint64_t id, uint32_t tail)
{
	struct iocb cbs[PRIME_CHUNK];
	uint64_t ptrs[PRIME_CHUNK], cb_at, ptr_at, ev_at;
	long got;

	memset(cbs, 0, sizeof(cbs));
	for (int i = 0; i < PRIME_CHUNK; i++) {
		cbs[i].aio_lio_opcode = IOCB_CMD_PREAD;
		cbs[i].aio_fildes = ctx->exe_fd;
	}
	if (inject_scratch_put(&ctx->inj, 0, cbs, sizeof(cbs), &cb_at))
		return -1;
	for (int i = 0; i < PRIME_CHUNK; i++)
		ptrs[i] = cb_at + i * sizeof(struct iocb);
	if (inject_scratch_put(&ctx->inj, sizeof(cbs), ptrs, sizeof(ptrs), &ptr_at))
		return -1;
	ev_at = ptr_at + sizeof(ptrs);
	for (uint32_t done = 0; done < tail; done += got) {
		long n = tail - done < PRIME_CHUNK ? tail - done : PRIME_CHUNK;
		if (inject_call(&ctx->inj, "submitting empty AIO reads", SYS_io_submit, id, n,
				ptr_at, 0, 0, 0, &got) ||
		    inject_call(&ctx->inj, "reaping empty AIO reads", SYS_io_getevents, id, got,
				got, ev_at, 0, 0, &got))
			return -1;
		if (got <= 0)
			return err_set("pid %d: the AIO context at 0x%llx completes no request",
				       ctx->pid, (unsigned long long)id);
	}
	return 0;
}

/* The events and the head, written into the ring the kernel now fills. */
static int refill_ring(struct restore_ctx *ctx, const VmaEntry *v, const struct ring_head *old)
{
	struct ring_head now;

	if (inject_read(ctx->child, v->start, &now, sizeof(now)))
		return -1;
	if (now.tail != old->tail || now.head != old->tail)
		return err_set("pid %d: the AIO ring at 0x%llx is at %u/%u after %u empty reads",
			       ctx->pid, (unsigned long long)v->start, now.head, now.tail,
			       old->tail);
	if (inject_write(ctx->child, v->start + sizeof(now), v->aio_ring.data + sizeof(now),
			 old->nr * sizeof(struct io_event)))
		return -1;
	return inject_write(ctx->child, v->start + offsetof(struct ring_head, head), &old->head,
			    sizeof(old->head));
}

int aio_restore_ring(struct restore_ctx *ctx, const VmaEntry *v)
{
	const struct ring_head *old = (const struct ring_head *)v->aio_ring.data;
	struct ring_head now;
	uint64_t id_at, id = 0, len = v->end - v->start;
	long ret;

	if (!v->has_aio_ring || v->aio_ring.len != len ||
	    check_ring(old, len, "mm image", v->start))
		return err_set("pid %d: no valid AIO ring saved for 0x%llx", ctx->pid,
			       (unsigned long long)v->start);
	/* the kernel asks for twice as many events, and 2 more, in whole pages */
	if (inject_scratch_put(&ctx->inj, 0, &id, sizeof(id), &id_at) ||
	    inject_call(&ctx->inj, "making an AIO context (io_setup)", SYS_io_setup,
			(old->nr - 2) / 2, id_at, 0, 0, 0, 0, NULL) ||
	    inject_scratch_get(&ctx->inj, 0, &id, sizeof(id)) ||
	    inject_read(ctx->child, id, &now, sizeof(now)))
		return -1;
	if (now.nr != old->nr)
		return err_set("pid %d: the AIO ring of 0x%llx made again holds %u events, not %u "
			       "(a kernel or a machine with more CPUs?)",
			       ctx->pid, (unsigned long long)v->start, now.nr, old->nr);
	if (id != v->start && inject_call(&ctx->inj, "moving the AIO ring", SYS_mremap, id, len,
					  len, MREMAP_MAYMOVE | MREMAP_FIXED, v->start, 0, &ret))
		return -1;
	return prime_tail(ctx, v->start, old->tail) || refill_ring(ctx, v, old) ? -1 : 0;
}
