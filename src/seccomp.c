/*
 * seccomp: each thread's seccomp mode, strict or filters, with its chain of
 * filters.
 *
 * Dump: the mode is the Seccomp: line of /proc/TID/status; the filters are
 * read with PTRACE_SECCOMP_GET_FILTER (index 0 is the most recent; the list
 * ends with ENOENT) and their LOG / SPEC_ALLOW flags with
 * PTRACE_SECCOMP_GET_METADATA, and saved oldest first. Nothing is injected:
 * the thread is only read.
 *
 * Restore: installed by seccomp() injected into each thread, oldest filter
 * first, after every other state but the credentials (installing a filter
 * without no_new_privs needs CAP_SYS_ADMIN, which the credentials may drop;
 * no_new_privs itself is restored by schedule.c). Before that, every thread
 * gets PTRACE_O_SUSPEND_SECCOMP, so the calls cryo still injects (the
 * credentials, unmapping the trampoline) pass the filters just installed.
 * The longest run of oldest filters that every thread has alike is
 * installed once, from the leader, with SECCOMP_FILTER_FLAG_TSYNC: the
 * threads then share that chain as they did, and a later TSYNC of the
 * program still works. Each thread adds the rest of its own; strict mode
 * comes last of all. A filter whose user-notification listener the process
 * holds is installed with SECCOMP_FILTER_FLAG_NEW_LISTENER (with TSYNC, also
 * TSYNC_ESRCH, which the kernel requires) and its listener placed on its fd
 * (seccomp_notify.c).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#include "images.h"
#include "infra/inject.h"
#include "infra/log.h"
#include "infra/proc.h"
#include "seccomp.h"

#define FILTER_FLAGS (SECCOMP_FILTER_FLAG_LOG | SECCOMP_FILTER_FLAG_SPEC_ALLOW)
#define PROG_OFF     64 /* where the instructions go in the scratch */
#ifndef SECCOMP_FILTER_FLAG_TSYNC_ESRCH
#define SECCOMP_FILTER_FLAG_TSYNC_ESRCH (1UL << 4)
#endif

/* ---- dump ---- */

/* Filter `index` (0: the most recent) of tid; 1 if there is none. */
static int read_filter(pid_t tid, unsigned long index, SeccompFilter **out)
{
	struct __ptrace_seccomp_metadata md = {.filter_off = index};
	long n = ptrace(PTRACE_SECCOMP_GET_FILTER, tid, index, NULL);
	SeccompFilter *f;

	if (n < 0 && errno == ENOENT)
		return 1;
	if (n <= 0)
		return err_errno("cannot read seccomp filter %lu of thread %d", index, tid);
	if (ptrace(PTRACE_SECCOMP_GET_METADATA, tid, sizeof(md), &md) < 0)
		return err_errno("cannot read the flags of seccomp filter %lu of thread %d", index,
				 tid);
	f = malloc(sizeof(*f));
	if (!f)
		return err_set("out of memory");
	seccomp_filter__init(f);
	f->insns.data = malloc(n * sizeof(struct sock_filter));
	if (!f->insns.data) {
		free(f);
		return err_set("out of memory");
	}
	f->insns.len = n * sizeof(struct sock_filter);
	f->flags = md.flags & FILTER_FLAGS;
	*out = f;
	if (ptrace(PTRACE_SECCOMP_GET_FILTER, tid, index, f->insns.data) != n)
		return err_errno("seccomp filter %lu of thread %d changed while read", index, tid);
	return 0;
}

static int dump_filters(pid_t tid, ThreadEntry *e)
{
	for (unsigned long i = 0;; i++) {
		SeccompFilter *f = NULL, **grown;
		int r = read_filter(tid, i, &f);
		if (r > 0)
			break;
		grown = realloc(e->seccomp_filters, (i + 1) * sizeof(*grown));
		if (!grown) {
			if (f)
				free(f->insns.data);
			free(f);
			return err_set("out of memory");
		}
		e->seccomp_filters = grown;
		if (f)
			grown[e->n_seccomp_filters++] = f;
		if (r < 0)
			return -1;
	}
	/* read newest first; kept oldest first, the order to install them in */
	for (size_t i = 0, j = e->n_seccomp_filters; i + 1 < j--; i++) {
		SeccompFilter *x = e->seccomp_filters[i];
		e->seccomp_filters[i] = e->seccomp_filters[j];
		e->seccomp_filters[j] = x;
	}
	return 0;
}

int seccomp_dump(struct dump_ctx *ctx)
{
	struct proc_status st;

	for (int i = 0; i < ctx->nr_threads; i++) {
		ThreadEntry *e = ctx->core->threads[i];
		if (proc_read_status(e->tid, &st))
			return -1;
		if (!st.seccomp)
			continue;
		e->has_seccomp_mode = true;
		e->seccomp_mode = st.seccomp;
		if (st.seccomp == SECCOMP_MODE_FILTER && dump_filters(e->tid, e))
			return err_wrap("thread %d", e->tid);
	}
	return 0;
}

/* ---- restore ---- */

static bool same_filter(const SeccompFilter *a, const SeccompFilter *b)
{
	return a->flags == b->flags && a->insns.len == b->insns.len &&
	       !memcmp(a->insns.data, b->insns.data, a->insns.len);
}

/* How many of the oldest filters every thread has alike. */
static size_t shared_filters(const struct restore_ctx *ctx)
{
	const ThreadEntry *lead = ctx->threads[0].e;
	size_t n = lead->n_seccomp_filters;

	for (size_t i = 1; i < ctx->nr_threads; i++) {
		const ThreadEntry *e = ctx->threads[i].e;
		size_t k = 0;
		while (k < n && k < e->n_seccomp_filters &&
		       same_filter(lead->seccomp_filters[k], e->seccomp_filters[k]))
			k++;
		n = k;
	}
	return n;
}

/* Installs filter k of thread t's entry (tid_key: the thread it is filter k
 * of, 0 for a chain the threads share). */
static int install_filter(struct restore_ctx *ctx, struct restore_thread *t, size_t k,
			  pid_t tid_key, unsigned long flags)
{
	const SeccompFilter *f = t->e->seccomp_filters[k];
	bool listen = seccomp_notify_wanted(ctx, tid_key, k);
	struct sock_fprog prog = {.len = f->insns.len / sizeof(struct sock_filter)};
	uint64_t insns, addr;
	long ret;

	if (!f->insns.len || f->insns.len % sizeof(struct sock_filter) || f->insns.len > 0xffff * 8)
		return err_set("a seccomp filter of %zu bytes is not a BPF program", f->insns.len);
	if (inject_scratch_put(t->inj, PROG_OFF, f->insns.data, f->insns.len, &insns))
		return -1;
	prog.filter = (struct sock_filter *)(uintptr_t)insns;
	if (listen)
		flags |= SECCOMP_FILTER_FLAG_NEW_LISTENER |
			 (flags & SECCOMP_FILTER_FLAG_TSYNC ? SECCOMP_FILTER_FLAG_TSYNC_ESRCH : 0);
	if (inject_scratch_put(t->inj, 0, &prog, sizeof(prog), &addr) ||
	    inject_call(t->inj, "installing a seccomp filter", SYS_seccomp, SECCOMP_SET_MODE_FILTER,
			flags | (f->flags & FILTER_FLAGS), addr, 0, 0, 0, &ret))
		return -1;
	if (listen)
		return seccomp_notify_place(ctx, t->inj, tid_key, k, ret);
	/* with TSYNC, a positive result names a thread that could not follow */
	if (ret > 0)
		return err_set("thread %ld could not take the shared seccomp filters", ret);
	return 0;
}

static int install_own(struct restore_ctx *ctx, struct restore_thread *t, size_t from)
{
	const ThreadEntry *e = t->e;

	for (size_t k = from; k < e->n_seccomp_filters; k++)
		if (install_filter(ctx, t, k, t->tid, 0))
			return err_wrap("thread %d", t->tid);
	return 0;
}

static bool any_seccomp(const struct restore_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nr_threads; i++)
		if (ctx->threads[i].e->seccomp_mode)
			return true;
	return false;
}

/* The filters must not stop what cryo injects after them. */
static int suspend_all(struct restore_ctx *ctx)
{
	long opts = PTRACE_O_EXITKILL | PTRACE_O_SUSPEND_SECCOMP;

	if (ctx->nr_threads > 1)
		opts |= PTRACE_O_TRACECLONE;
	for (size_t i = 0; i < ctx->nr_threads; i++)
		if (ptrace(PTRACE_SETOPTIONS, ctx->threads[i].tid, 0, opts))
			return err_errno("cannot suspend seccomp in thread %d (restoring its "
					 "filters needs CAP_SYS_ADMIN)",
					 ctx->threads[i].tid);
	return 0;
}

int seccomp_restore(struct restore_ctx *ctx)
{
	size_t shared;

	if (!any_seccomp(ctx))
		return 0;
	if (suspend_all(ctx))
		return -1;
	shared = shared_filters(ctx);
	for (size_t k = 0; k < shared; k++)
		if (install_filter(ctx, &ctx->threads[0], k, 0,
				   ctx->nr_threads > 1 ? SECCOMP_FILTER_FLAG_TSYNC : 0))
			return -1;
	for (size_t i = 0; i < ctx->nr_threads; i++)
		if (install_own(ctx, &ctx->threads[i], shared))
			return -1;
	for (size_t i = 0; i < ctx->nr_threads; i++) {
		struct restore_thread *t = &ctx->threads[i];
		if (t->e->seccomp_mode == SECCOMP_MODE_STRICT &&
		    inject_call(t->inj, "entering seccomp strict mode", SYS_seccomp,
				SECCOMP_SET_MODE_STRICT, 0, 0, 0, 0, 0, NULL))
			return err_wrap("thread %d", t->tid);
	}
	return 0;
}
