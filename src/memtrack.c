/*
 * memtrack: which pages each process wrote since its last checkpoint, on a
 * kernel without soft-dirty: userfaultfd write-protection in asynchronous
 * mode (UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED: a write to a
 * protected page is let through by the kernel, which only clears the
 * page's protection), read and armed again in one step with PAGEMAP_SCAN
 * (PAGE_IS_WRITTEN, PM_SCAN_WP_MATCHING; PM_SCAN_CHECK_WPASYNC makes a VMA
 * that lost its registration -- new, moved by mremap, forked into -- an
 * EPERM rather than a silent "nothing written").
 *
 * The userfaultfd is made inside the target by an injected userfaultfd(2),
 * taken by cryo with pidfd_getfd and closed in the target at once: the
 * program never sees it. cryo registers the private VMAs (UFFDIO_REGISTER
 * MODE_WP) and arms their present pages, while the tree is frozen. The
 * registration lives as long as the uffd is open, so before the commit the
 * uffds go to a holder: a small detached process (comm "cryo-track") forked
 * by cryo, which keeps them and a pidfd of each tracked process, and exits
 * once they have all exited. chain.img records it (pid, start time) and,
 * per process, the pid, start time, fd number in the holder and the uffd's
 * inode. The next dump takes the uffds from it with pidfd_getfd (every one
 * of those checked) and kills it: tracking is consumed once, so a second
 * dump from the same parent, or one after a failed dump, finds it gone and
 * saves memory in full, saying so.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/userfaultfd.h>
#include <unistd.h>

#include "infra/log.h"
#include "infra/proc.h"
#include "infra/uapi.h"
#include "memtrack.h"

#define SCAN_VEC   512
#define MAX_HELD   4096
#define UFFD_FEATS (UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED)

struct memtrack {
	pid_t holder; /* the holder this dump made, until committed */
	size_t nr;
	ChainTracked *rec; /* what it holds */
	ChainTracked **recp;
};

uint64_t memtrack_start_time(pid_t pid)
{
	struct proc_stat st;

	if (proc_read_stat(pid, &st)) {
		err_clear(); /* gone: 0 matches no record */
		return 0;
	}
	return st.start_time;
}

static struct dump_ctx *proc_of(struct dump_tree *tree, pid_t pid)
{
	for (int i = 0; i < tree->nr_procs; i++)
		if (tree->procs[i]->pid == pid && !tree->procs[i]->zombie)
			return tree->procs[i];
	return NULL;
}

/* One uffd of the holder, if it is the one recorded for that process. */
static int take_one(struct dump_tree *tree, int holder_pidfd, const ChainTracked *t)
{
	struct dump_ctx *ctx = proc_of(tree, t->pid);
	struct stat st;
	int fd;

	if (!ctx || memtrack_start_time(t->pid) != t->start_time) {
		pr_info("pid %d of the parent is gone: its tracking is dropped", t->pid);
		return 0;
	}
	fd = syscall(SYS_pidfd_getfd, holder_pidfd, t->fd, 0);
	if (fd < 0 || fstat(fd, &st) || st.st_ino != t->uffd_ino) {
		if (fd >= 0)
			close(fd);
		pr_warn("the memory tracking of pid %d is gone (fd %d of the holder): its memory "
			"is saved in full",
			t->pid, t->fd);
		return 0;
	}
	ctx->track_uffd = fd;
	ctx->track_taken = true;
	return 0;
}

/* The holder named by the parent, if it is still that process. */
static int holder_open(const ChainEntry *parent)
{
	int pidfd;

	if (!parent->has_holder_pid || parent->holder_pid <= 0)
		return -1;
	pidfd = syscall(SYS_pidfd_open, parent->holder_pid, 0);
	if (pidfd < 0)
		return -1;
	if (memtrack_start_time(parent->holder_pid) != parent->holder_start_time) {
		close(pidfd);
		return -1;
	}
	return pidfd;
}

int memtrack_take(struct dump_tree *tree, const ChainEntry *parent)
{
	int pidfd;

	if (!parent || !parent->has_holder_pid) {
		pr_warn("the parent checkpoint %s armed no memory tracking: memory is saved in "
			"full",
			tree->opts->prev_images_dir);
		return 0;
	}
	pidfd = holder_open(parent);
	if (pidfd < 0) {
		pr_warn("the memory tracking of the parent checkpoint %s is gone (holder pid %d "
			"exited): memory is saved in full",
			tree->opts->prev_images_dir, parent->holder_pid);
		return 0;
	}
	for (size_t i = 0; i < parent->n_tracked; i++)
		take_one(tree, pidfd, parent->tracked[i]);
	/* consumed: nobody else may take what this dump re-arms */
	syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
	close(pidfd);
	return 0;
}

/* --track-mem means something only for a tree that goes on running. */
static bool wanted(const struct cryo_opts *opts)
{
	return opts->track_mem && (opts->leave_running || opts->leave_stopped);
}

bool memtrack_tracked(const struct dump_ctx *ctx)
{
	return ctx->track_taken;
}

/* A userfaultfd made by the process itself (it belongs to its mm), taken
 * by cryo and closed in the process: its fd table is as it was. */
int memtrack_inject(struct dump_ctx *ctx)
{
	struct uffdio_api api = {.api = UFFD_API, .features = UFFD_FEATS};
	long child_fd;
	int fd;

	if (!wanted(ctx->opts) || ctx->track_uffd >= 0)
		return 0;
	if (!ctx->tree->kd.uffd_wp_async || !ctx->tree->kd.pagemap_scan)
		return err_set("--track-mem: this kernel has no asynchronous userfaultfd "
			       "write-protection with PAGEMAP_SCAN (see cryo check)");
	if (inject_call(&ctx->inj, "making a userfaultfd", SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK,
			0, 0, 0, 0, 0, &child_fd))
		return -1;
	fd = syscall(SYS_pidfd_getfd, ctx->pidfd, child_fd, 0);
	if (fd < 0)
		err_errno("cannot take the userfaultfd of pid %d", ctx->pid);
	if (inject_call(&ctx->inj, "closing the userfaultfd", SYS_close, child_fd, 0, 0, 0, 0, 0,
			NULL) ||
	    fd < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (ioctl(fd, UFFDIO_API, &api)) {
		close(fd);
		return err_errno("pid %d: userfaultfd refuses asynchronous write-protection",
				 ctx->pid);
	}
	ctx->track_uffd = fd;
	return 0;
}

/* Present (or swapped) anonymous pages written since the last arm, armed
 * again; -2 when the VMA is not registered for async write-protect. */
static int scan_written(int pm_fd, uint64_t start, uint64_t end, memtrack_range_fn fn, void *arg)
{
	struct page_region vec[SCAN_VEC];
	struct pm_scan_arg a = {
	    .size = sizeof(a),
	    .flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC,
	    .start = start,
	    .end = end,
	    .vec = (uintptr_t)vec,
	    .vec_len = SCAN_VEC,
	    .category_mask = PAGE_IS_WRITTEN | PAGE_IS_FILE | PAGE_IS_PFNZERO,
	    .category_inverted = PAGE_IS_FILE | PAGE_IS_PFNZERO,
	    .category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
	    .return_mask = PAGE_IS_WRITTEN,
	};

	while (a.start < a.end) {
		long n = ioctl(pm_fd, PAGEMAP_SCAN, &a);
		if (n < 0 && errno == EPERM)
			return -2;
		if (n < 0)
			return err_errno("PAGEMAP_SCAN (write-protect) of 0x%llx-0x%llx failed",
					 (unsigned long long)a.start, (unsigned long long)a.end);
		for (long i = 0; fn && i < n; i++)
			if (fn(arg, vec[i].start, vec[i].end))
				return -1;
		a.start = a.walk_end;
	}
	return 0;
}

/* What one VMA's scan said, kept from the freeze until its pages are read. */
struct written_vma {
	uint64_t start;
	bool tracked;
	size_t nr, cap;
	uint64_t (*r)[2];
};

struct memtrack_scan {
	size_t nr;
	struct written_vma *v; /* in the order of the VMAs */
};

static int keep_range(void *arg, uint64_t start, uint64_t end)
{
	struct written_vma *w = arg;

	if (w->nr && w->r[w->nr - 1][1] == start) {
		w->r[w->nr - 1][1] = end;
		return 0;
	}
	if (w->nr == w->cap) {
		void *grown = realloc(w->r, (w->cap = w->cap ? 2 * w->cap : 16) * sizeof(*w->r));
		if (!grown)
			return err_set("out of memory keeping the pages written");
		w->r = grown;
	}
	w->r[w->nr][0] = start;
	w->r[w->nr++][1] = end;
	return 0;
}

static int scan_vma(struct dump_ctx *ctx, int pm_fd, const VmaEntry *v, struct written_vma *w)
{
	int r = scan_written(pm_fd, v->start, v->end, keep_range, w);

	w->start = v->start;
	w->tracked = r == 0;
	if (r == -2)
		pr_debug("pid %d: 0x%llx-0x%llx is new since the parent: saved in full", ctx->pid,
			 (unsigned long long)v->start, (unsigned long long)v->end);
	return r == -1 ? -1 : 0;
}

/* While frozen: the pages each private VMA wrote since the parent, read
 * and re-armed in one scan per VMA, kept for pages.c. */
static int collect_written(struct dump_ctx *ctx)
{
	struct memtrack_scan *ms;
	int pm_fd, ret = 0;

	if (!memtrack_tracked(ctx))
		return 0;
	ms = calloc(1, sizeof(*ms));
	if (!ms || !(ms->v = calloc(ctx->mm->n_vmas + 1, sizeof(*ms->v)))) {
		free(ms);
		return err_set("out of memory");
	}
	ctx->track_scan = ms;
	pm_fd = proc_open_file(ctx->pid, "pagemap", O_RDONLY);
	if (pm_fd < 0)
		return -1;
	for (size_t i = 0; !ret && i < ctx->mm->n_vmas; i++) {
		const VmaEntry *v = ctx->mm->vmas[i];
		if (v->kind == VMA_KIND__ANON_PRIVATE || v->kind == VMA_KIND__FILE_PRIVATE)
			ret = scan_vma(ctx, pm_fd, v, &ms->v[ms->nr++]);
	}
	close(pm_fd);
	return ret;
}

int memtrack_written(struct dump_ctx *ctx, const VmaEntry *v, memtrack_range_fn fn, void *arg)
{
	const struct memtrack_scan *ms = ctx->track_scan;

	for (size_t i = 0; ms && memtrack_tracked(ctx) && i < ms->nr; i++) {
		const struct written_vma *w = &ms->v[i];
		if (w->start != v->start)
			continue;
		for (size_t k = 0; w->tracked && k < w->nr; k++)
			if (fn(arg, w->r[k][0], w->r[k][1]))
				return -1;
		return w->tracked ? 1 : 0;
	}
	return 0;
}

static void scan_free(struct dump_ctx *ctx)
{
	struct memtrack_scan *ms = ctx->track_scan;

	for (size_t i = 0; ms && i < ms->nr; i++)
		free(ms->v[i].r);
	if (ms)
		free(ms->v);
	free(ms);
	ctx->track_scan = NULL;
}

static bool trackable(const VmaEntry *v)
{
	return (v->kind == VMA_KIND__ANON_PRIVATE || v->kind == VMA_KIND__FILE_PRIVATE) &&
	       !v->droppable;
}

/* Registers v (again: the same uffd and mode is a no-op) and arms its
 * present pages; 1 if the VMA is another userfaultfd's, 2 if the uffd is of
 * an mm the process left (it called execve since the parent). */
static int arm_vma(struct dump_ctx *ctx, int pm_fd, const VmaEntry *v)
{
	struct uffdio_register reg = {
	    .range = {.start = v->start, .len = v->end - v->start},
	    .mode = UFFDIO_REGISTER_MODE_WP,
	};

	if (ioctl(ctx->track_uffd, UFFDIO_REGISTER, &reg)) {
		/* ESRCH, ENOMEM (no such VMA): the uffd's mm is not this one */
		if (errno == EBUSY || errno == ESRCH || errno == ENOMEM)
			return errno == EBUSY ? 1 : 2;
		pr_debug("pid %d: 0x%llx-0x%llx cannot be tracked (%s): saved in full next time",
			 ctx->pid, (unsigned long long)v->start, (unsigned long long)v->end,
			 strerror(errno));
		return 0;
	}
	/* holes are not armed: a page first written later is written anyway */
	return scan_written(pm_fd, v->start, v->end, NULL, NULL) == -1 ? -1 : 0;
}

static void untrack(struct dump_ctx *ctx)
{
	close(ctx->track_uffd);
	ctx->track_uffd = -1;
	ctx->track_taken = false;
}

static int arm(struct dump_ctx *ctx)
{
	int pm_fd, r = 0;

	if (ctx->track_uffd < 0)
		return 0;
	if (!wanted(ctx->opts)) {
		/* consumed, not armed again: the registration goes (what the
		 * freeze point read stays usable) */
		close(ctx->track_uffd);
		ctx->track_uffd = -1;
		return 0;
	}
	pm_fd = proc_open_file(ctx->pid, "pagemap", O_RDONLY);
	if (pm_fd < 0)
		return -1;
	for (size_t i = 0; !r && i < ctx->mm->n_vmas; i++)
		if (trackable(ctx->mm->vmas[i]))
			r = arm_vma(ctx, pm_fd, ctx->mm->vmas[i]);
	close(pm_fd);
	if (r == 1) {
		pr_warn("pid %d has memory registered with another userfaultfd (its own, or the "
			"tracking of an earlier checkpoint that no dump took since: a cryo-track "
			"process): its memory is not tracked, and saved in full",
			ctx->pid);
		untrack(ctx);
		r = 0;
	} else if (r == 2) {
		/* dropped, not handed over: the next dump makes a new one */
		pr_info("pid %d has a new address space since the parent (execve): tracked "
			"from the next checkpoint on",
			ctx->pid);
		close(ctx->track_uffd);
		ctx->track_uffd = -1;
		r = 0;
	}
	return r;
}

int memtrack_freeze_point(struct dump_ctx *ctx)
{
	return collect_written(ctx) || arm(ctx) ? -1 : 0;
}

/* ---- the holder ---- */

/* Holds the uffds until every tracked process has exited. */
static void holder_main(int *uffds, int *pidfds, int n, int *keep)
{
	struct pollfd pfd[MAX_HELD];
	int left = n, null;

	memcpy(keep, uffds, n * sizeof(int));
	memcpy(keep + n, pidfds, n * sizeof(int));
	proc_close_all_but(keep, 2 * n);
	null = open("/dev/null", O_RDWR);
	for (int i = 0; null >= 0 && i < 3; i++)
		dup2(null, i);
	prctl(PR_SET_NAME, "cryo-track");
	signal(SIGHUP, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	for (int i = 0; i < n; i++)
		pfd[i] = (struct pollfd){.fd = pidfds[i], .events = POLLIN};
	while (left > 0) {
		if (poll(pfd, n, -1) < 0)
			continue;
		for (int i = 0; i < n; i++)
			if (pfd[i].fd >= 0 && pfd[i].revents) {
				close(uffds[i]);
				close(pfd[i].fd);
				pfd[i].fd = -1;
				left--;
			}
	}
	_exit(0);
}

/* Double fork: the holder is nobody's child but a subreaper's or init's,
 * in a session of its own; its pid comes back through a pipe. */
static pid_t holder_spawn(int *uffds, int *pidfds, int n, int *keep)
{
	int p[2];
	pid_t mid, pid = -1;

	if (pipe2(p, O_CLOEXEC))
		return err_errno("cannot make a pipe for the tracking holder");
	mid = fork();
	if (mid < 0) {
		close(p[0]);
		close(p[1]);
		return err_errno("cannot fork the tracking holder");
	}
	if (mid == 0) {
		setsid();
		pid_t h = fork();
		if (h == 0)
			holder_main(uffds, pidfds, n, keep);
		ssize_t w = write(p[1], &h, sizeof(h));
		_exit(w == sizeof(h) && h > 0 ? 0 : 1);
	}
	close(p[1]);
	waitpid(mid, NULL, 0);
	if (read(p[0], &pid, sizeof(pid)) != sizeof(pid) || pid <= 0)
		pid = err_set("cannot start the tracking holder");
	close(p[0]);
	return pid;
}

static int collect(struct dump_tree *tree, struct memtrack *mt, int *uffds, int *pidfds)
{
	for (int i = 0; i < tree->nr_procs; i++) {
		struct dump_ctx *ctx = tree->procs[i];
		struct stat st;
		if (ctx->track_uffd < 0 || mt->nr == MAX_HELD)
			continue;
		ChainTracked *t = &mt->rec[mt->nr];
		chain_tracked__init(t);
		pidfds[mt->nr] = syscall(SYS_pidfd_open, ctx->pid, 0);
		if (pidfds[mt->nr] < 0 || fstat(ctx->track_uffd, &st))
			return err_errno("cannot hand the tracking of pid %d over", ctx->pid);
		t->pid = ctx->pid;
		t->start_time = memtrack_start_time(ctx->pid);
		t->fd = uffds[mt->nr] = ctx->track_uffd;
		t->uffd_ino = st.st_ino;
		mt->recp[mt->nr] = t;
		mt->nr++;
	}
	return 0;
}

static struct memtrack *memtrack_new(struct dump_tree *tree)
{
	struct memtrack *mt = calloc(1, sizeof(*mt));
	size_t n = tree->nr_procs;

	if (!mt || !(mt->rec = calloc(n, sizeof(*mt->rec))) ||
	    !(mt->recp = calloc(n, sizeof(*mt->recp)))) {
		if (mt)
			free(mt->rec);
		free(mt);
		return NULL;
	}
	tree->track = mt;
	return mt;
}

int memtrack_hand_over(struct dump_tree *tree, ChainEntry *ce)
{
	struct memtrack *mt = memtrack_new(tree);
	int *fds = mt ? calloc(4 * tree->nr_procs + 1, sizeof(int)) : NULL;
	int ret = -1;

	if (!fds) {
		free(fds);
		return err_set("out of memory");
	}
	for (int i = 0; i < 2 * tree->nr_procs; i++)
		fds[tree->nr_procs + i] = -1;
	if (collect(tree, mt, fds, fds + tree->nr_procs))
		goto out;
	ret = 0;
	if (!mt->nr)
		goto out;
	mt->holder = holder_spawn(fds, fds + tree->nr_procs, mt->nr, fds + 2 * tree->nr_procs);
	if (mt->holder < 0) {
		mt->holder = 0;
		ret = -1;
		goto out;
	}
	ce->has_holder_pid = ce->has_holder_start_time = true;
	ce->holder_pid = mt->holder;
	ce->holder_start_time = memtrack_start_time(mt->holder);
	ce->n_tracked = mt->nr;
	ce->tracked = mt->recp;
	pr_info("memory of %zu process%s tracked for the next checkpoint (holder pid %d)", mt->nr,
		mt->nr > 1 ? "es" : "", mt->holder);
out:
	for (size_t i = 0; i < mt->nr; i++)
		if (fds[tree->nr_procs + i] >= 0)
			close(fds[tree->nr_procs + i]);
	free(fds);
	return ret;
}

void memtrack_abort(struct dump_tree *tree)
{
	if (tree->track && tree->track->holder > 0)
		kill(tree->track->holder, SIGKILL);
	if (tree->track)
		tree->track->holder = 0;
}

void memtrack_free(struct dump_tree *tree)
{
	for (int i = 0; i < tree->nr_procs; i++)
		scan_free(tree->procs[i]);
	for (int i = 0; i < tree->nr_procs; i++)
		if (tree->procs[i]->track_uffd >= 0) {
			close(tree->procs[i]->track_uffd);
			tree->procs[i]->track_uffd = -1;
		}
	if (tree->track) {
		free(tree->track->rec);
		free(tree->track->recp);
	}
	free(tree->track);
	tree->track = NULL;
}
