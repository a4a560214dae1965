/*
 * seccomp_notify: a seccomp user-notification listener, the fd seccomp()
 * returns for a filter installed with SECCOMP_FILTER_FLAG_NEW_LISTENER,
 * held by the process whose thread installed the filter (one of its
 * threads answers the notifications).
 *
 * Dump: the kernel names no filter for a listener (its fdinfo shows none),
 * but a chain has at most one listener (the kernel refuses a second with
 * EBUSY) and only a filter that returns SECCOMP_RET_USER_NOTIF sends to
 * it: the listener is that filter's, which must be the only such filter of
 * the holding process (threads that share a chain have it at the same
 * place: it counts once). A notification not received yet (the listener
 * polls readable) cannot be put back: it stops the dump. One received and
 * not answered yet is taken back by the kernel when the freeze interrupts
 * the waiting thread, whose syscall is made again after restore (the
 * supervisor's answer to the old id gets ENOENT, as after a signal).
 * A listener of another process's filter (passed with SCM_RIGHTS, or held
 * across a fork) is refused: only the thread that installs a filter gets
 * its listener, while it is rebuilt, and the restorer has no channel left
 * then to pass it into another process (its service fds are closed, and a
 * parent is rebuilt before its children).
 *
 * Restore: the process opens a placeholder (/dev/null) on the fd; when
 * seccomp.c installs the filter it asks seccomp_notify_wanted(), adds
 * NEW_LISTENER, and hands the new listener to seccomp_notify_place(),
 * which moves it onto the fd numbers (dup3, FD_CLOEXEC kept).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#include "anonfd.h"
#include "infra/inject.h"
#include "infra/log.h"
#include "seccomp.h"

/* Does the program return SECCOMP_RET_USER_NOTIF (as a constant)? */
bool seccomp_filter_notifies(const SeccompFilter *f)
{
	const struct sock_filter *in = (const struct sock_filter *)f->insns.data;

	for (size_t i = 0; i < f->insns.len / sizeof(*in); i++)
		if (in[i].code == (BPF_RET | BPF_K) &&
		    (in[i].k & SECCOMP_RET_ACTION_FULL) == SECCOMP_RET_USER_NOTIF)
			return true;
	return false;
}

/* ---- dump ---- */

/* The one filter of ctx that notifies: *tid (the first thread with it), *k. */
static int find_filter(const struct dump_ctx *ctx, int fd, SeccompNotifyEntry *e)
{
	const SeccompFilter *found = NULL;

	for (int i = 0; i < ctx->nr_threads; i++) {
		const ThreadEntry *t = ctx->core->threads[i];
		for (size_t k = 0; k < t->n_seccomp_filters; k++) {
			const SeccompFilter *f = t->seccomp_filters[k];
			if (!seccomp_filter_notifies(f))
				continue;
			if (!found) {
				found = f;
				e->tid = t->tid;
				e->filter = k;
			} else if (k != e->filter || f->insns.len != found->insns.len ||
				   memcmp(f->insns.data, found->insns.data, f->insns.len))
				return err_set("fd %d of pid %d (seccomp listener): more than one "
					       "filter of the process notifies: which one it "
					       "listens to cannot be told",
					       fd, ctx->pid);
		}
	}
	if (!found)
		return err_set("fd %d of pid %d is the seccomp listener of another process's "
			       "filter: not supported yet (a listener is made only by the thread "
			       "that installs the filter, and cryo has no channel to hand it to "
			       "another process once the tree is being rebuilt)",
			       fd, ctx->pid);
	return 0;
}

static int dump_state(struct dump_ctx *ctx, struct dump_file *f, int fd, const char *info)
{
	struct pollfd p = {.fd = f->local_fd, .events = POLLIN};
	SeccompNotifyEntry *e = malloc(sizeof(*e));

	(void)info;
	if (!e)
		return err_set("out of memory");
	seccomp_notify_entry__init(e);
	f->entry.seccomp_notify = e;
	if (poll(&p, 1, 0) < 0)
		return err_errno("fd %d of pid %d (seccomp listener): poll", fd, ctx->pid);
	if (p.revents & POLLIN)
		return err_set("fd %d of pid %d (seccomp listener) has a notification not received "
			       "yet, which cannot be put back",
			       fd, ctx->pid);
	return find_filter(ctx, fd, e);
}

static void notify_free(FileEntry *fe)
{
	free(fe->seccomp_notify);
	fe->seccomp_notify = NULL;
}

/* ---- restore ---- */

/* The process of the tree whose thread tid is, and that thread's entry. */
static const struct restore_ctx *proc_of_thread(const struct restore_tree *tree, pid_t tid,
						const ThreadEntry **te)
{
	for (size_t i = 0; i < tree->nr_procs; i++) {
		const struct restore_ctx *p = tree->procs[i];
		for (size_t t = 0; !p->zombie && t < p->core->n_threads; t++)
			if (p->core->threads[t]->tid == tid) {
				*te = p->core->threads[t];
				return p;
			}
	}
	return NULL;
}

static bool holds(const struct restore_ctx *p, uint32_t id)
{
	for (size_t i = 0; i < p->nr_fds; i++)
		if (p->fds[i]->file_id == id)
			return true;
	return false;
}

static int check_state(const struct restore_tree *tree, const FileEntry *fe)
{
	const SeccompNotifyEntry *e = fe->seccomp_notify;
	const ThreadEntry *te = NULL;
	const struct restore_ctx *owner;

	if (!e)
		return err_set("seccomp listener without its state");
	owner = proc_of_thread(tree, e->tid, &te);
	if (!owner || e->filter >= te->n_seccomp_filters ||
	    !seccomp_filter_notifies(te->seccomp_filters[e->filter]))
		return err_set("the seccomp listener of filter %u of thread %d, which is not in "
			       "the checkpoint",
			       e->filter, e->tid);
	for (size_t i = 0; i < tree->nr_procs; i++)
		if (tree->procs[i] != owner && holds(tree->procs[i], fe->id))
			return err_set("the seccomp listener of pid %d is held by pid %d too: not "
				       "supported",
				       owner->pid, tree->procs[i]->pid);
	return 0;
}

static int make(struct restore_ctx *ctx, const FileEntry *fe, int *fd)
{
	(void)ctx;
	(void)fe;
	*fd = open("/dev/null", O_RDWR | O_CLOEXEC); /* until seccomp.c installs the filter */
	if (*fd < 0)
		return err_errno("cannot open /dev/null");
	return 0;
}

/* The listener entry of ctx for filter k of thread tid (0: of any thread). */
static const FileEntry *wanted(const struct restore_ctx *ctx, pid_t tid, size_t k)
{
	for (size_t i = 0; i < ctx->nr_fds; i++) {
		const FileEntry *fe = ctx_file(ctx->tree, ctx->fds[i]->file_id);
		if (fe->kind == FILE_KIND__SECCOMP_NOTIFY && fe->seccomp_notify->filter == k &&
		    (!tid || fe->seccomp_notify->tid == tid))
			return fe;
	}
	return NULL;
}

bool seccomp_notify_wanted(const struct restore_ctx *ctx, pid_t tid, size_t k)
{
	return wanted(ctx, tid, k) != NULL;
}

int seccomp_notify_place(struct restore_ctx *ctx, struct inject *inj, pid_t tid, size_t k,
			 long listener)
{
	const FileEntry *fe = wanted(ctx, tid, k);

	for (size_t i = 0; fe && i < ctx->nr_fds; i++) {
		const FdEntry *fd = ctx->fds[i];
		if (fd->file_id == fe->id &&
		    inject_call(inj, "placing a seccomp listener", SYS_dup3, listener, fd->fd,
				fd->cloexec ? O_CLOEXEC : 0, 0, 0, 0, NULL))
			return err_wrap("fd %u", fd->fd);
	}
	return inject_call(inj, "closing a seccomp listener", SYS_close, listener, 0, 0, 0, 0, 0,
			   NULL);
}

static const struct anonfd_type type = {"anon_inode:seccomp notify", "seccomp listener", O_RDWR, 0};

ANONFD_OPS(type, dump_state, check_state, make)

const struct fd_kind seccomp_notify_kind = {
    .name = "seccomp listener",
    .kind = FILE_KIND__SECCOMP_NOTIFY,
    .never_shared = true,
    .recognise = anon_recognise,
    .dump = anon_dump,
    .free_entry = notify_free,
    .validate = anon_validate,
    .open = anon_open,
};
