/*
 * creds: user and group ids, supplementary groups, capabilities and the
 * dumpable flag. Read from /proc/PID/status (and an injected
 * PR_GET_DUMPABLE); restored last of all by injection, in every thread,
 * because dropping privileges first would forbid the restorer's other work.
 * A thread whose credentials differ from the leader's (a program that
 * calls the raw set*id syscalls in one thread only) has its own in its
 * ThreadEntry. Also the audit loginuid, which only the task itself may
 * set: the new process writes it while it sets itself up, before cryo
 * makes its threads, which inherit it.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/capability.h>

#include "creds.h"
#include "infra/inject.h"
#include "infra/log.h"

static CredsEntry *creds_of(const struct proc_status *st)
{
	CredsEntry *c = malloc(sizeof(*c));

	if (!c)
		return NULL;
	creds_entry__init(c);
	c->n_uids = c->n_gids = 4;
	c->uids = malloc(4 * sizeof(uint32_t));
	c->gids = malloc(4 * sizeof(uint32_t));
	c->groups = malloc((st->nr_groups + 1) * sizeof(uint32_t));
	if (!c->uids || !c->gids || !c->groups) {
		creds_entry__free_unpacked(c, NULL);
		return NULL;
	}
	memcpy(c->uids, st->uids, 4 * sizeof(uint32_t));
	memcpy(c->gids, st->gids, 4 * sizeof(uint32_t));
	memcpy(c->groups, st->groups, st->nr_groups * sizeof(uint32_t));
	c->n_groups = st->nr_groups;
	c->cap_inh = st->cap_inh;
	c->cap_prm = st->cap_prm;
	c->cap_eff = st->cap_eff;
	c->cap_bnd = st->cap_bnd;
	c->cap_amb = st->cap_amb;
	return c;
}

static bool same_creds(const struct proc_status *a, const struct proc_status *b)
{
	return !memcmp(a->uids, b->uids, sizeof(a->uids)) &&
	       !memcmp(a->gids, b->gids, sizeof(a->gids)) && a->nr_groups == b->nr_groups &&
	       !memcmp(a->groups, b->groups, a->nr_groups * sizeof(a->groups[0])) &&
	       a->cap_inh == b->cap_inh && a->cap_prm == b->cap_prm && a->cap_eff == b->cap_eff &&
	       a->cap_bnd == b->cap_bnd && a->cap_amb == b->cap_amb;
}

/* A thread whose credentials are not the leader's gets its own. */
static int dump_thread_creds(struct dump_ctx *ctx)
{
	for (int i = 0; i < ctx->nr_threads; i++) {
		struct dump_thread *t = &ctx->threads[i];
		struct proc_status st;
		if (t->tid == ctx->pid)
			continue;
		if (proc_read_status(t->tid, &st))
			return err_wrap("thread %d of pid %d", t->tid, ctx->pid);
		if (same_creds(&st, &ctx->status))
			continue;
		t->e->creds = creds_of(&st);
		if (!t->e->creds)
			return err_set("out of memory");
		pr_debug("pid %d: thread %d has credentials of its own", ctx->pid, t->tid);
	}
	return 0;
}

static int dump_loginuid(struct dump_ctx *ctx)
{
	char *buf;
	size_t len;

	if (access("/proc/self/loginuid", F_OK))
		return 0; /* a kernel without audit */
	if (proc_read(ctx->pid, "loginuid", &buf, &len))
		return -1;
	ctx->core->has_loginuid = true;
	ctx->core->loginuid = strtoul(buf, NULL, 10);
	free(buf);
	return 0;
}

int creds_dump(struct dump_ctx *ctx)
{
	long dumpable;

	ctx->core->creds = creds_of(&ctx->status);
	if (!ctx->core->creds)
		return err_set("out of memory");
	if (inject_call(&ctx->inj, "reading the dumpable flag", SYS_prctl, PR_GET_DUMPABLE, 0, 0, 0,
			0, 0, &dumpable))
		return -1;
	ctx->core->dumpable = dumpable;
	return dump_thread_creds(ctx) || dump_loginuid(ctx);
}

static bool groups_differ(const CredsEntry *c)
{
	gid_t cur[256];
	int n = getgroups(256, cur);

	if (n < 0 || (size_t)n != c->n_groups)
		return true;
	for (int i = 0; i < n; i++)
		if (cur[i] != c->groups[i])
			return true;
	return false;
}

static int restore_caps(struct restore_ctx *ctx, struct inject *inj, const CredsEntry *c)
{
	struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct data[2] = {
	    {c->cap_eff, c->cap_prm, c->cap_inh},
	    {c->cap_eff >> 32, c->cap_prm >> 32, c->cap_inh >> 32},
	};
	uint64_t h, d;

	(void)ctx;
	if (inject_scratch_put(inj, 0, &hdr, sizeof(hdr), &h) ||
	    inject_scratch_put(inj, 64, data, sizeof(data), &d))
		return -1;
	return inject_call(inj, "restoring capabilities", SYS_capset, h, d, 0, 0, 0, 0, NULL);
}

/* Drops what the bounding set lacked; needs CAP_SETPCAP, so before the ids. */
static int restore_bounding_set(struct inject *inj, const CredsEntry *c)
{
	for (int cap = 0; cap <= CAP_LAST_CAP; cap++)
		if (!(c->cap_bnd & (1ULL << cap)) &&
		    inject_call(inj, "dropping a capability from the bounding set", SYS_prctl,
				PR_CAPBSET_DROP, cap, 0, 0, 0, 0, NULL))
			return -1;
	return 0;
}

/* Ambient capabilities must be permitted and inheritable: after capset. */
static int restore_ambient(struct inject *inj, const CredsEntry *c)
{
	for (int cap = 0; cap <= CAP_LAST_CAP; cap++)
		if ((c->cap_amb & (1ULL << cap)) &&
		    inject_call(inj, "raising an ambient capability", SYS_prctl, PR_CAP_AMBIENT,
				PR_CAP_AMBIENT_RAISE, cap, 0, 0, 0, NULL))
			return -1;
	return 0;
}

static bool creds_ok(const CredsEntry *c)
{
	return c->n_uids == 4 && c->n_gids == 4 && c->n_groups <= 256;
}

int creds_validate(struct restore_ctx *ctx)
{
	if (!creds_ok(ctx->core->creds))
		return err_set("core-%d.img: bad credentials", ctx->pid);
	for (size_t i = 0; i < ctx->core->n_threads; i++)
		if (ctx->core->threads[i]->creds && !creds_ok(ctx->core->threads[i]->creds))
			return err_set("core-%d.img: bad credentials of thread %d", ctx->pid,
				       ctx->core->threads[i]->tid);
	return 0;
}

/* In the new process itself: only a task may set its own loginuid. The
 * session id that goes with it is the kernel's to give: a new one. */
int creds_restore_loginuid(struct restore_ctx *ctx)
{
	char buf[16] = "";
	int fd;

	if (!ctx->core->has_loginuid)
		return 0;
	fd = open("/proc/self/loginuid", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return err_errno("pid %d: cannot open /proc/self/loginuid", ctx->pid);
	if (read(fd, buf, sizeof(buf) - 1) > 0 && strtoul(buf, NULL, 10) == ctx->core->loginuid) {
		close(fd);
		return 0;
	}
	snprintf(buf, sizeof(buf), "%u", ctx->core->loginuid);
	if (pwrite(fd, buf, strlen(buf), 0) < 0) {
		err_errno("pid %d: cannot set its loginuid %u (needs CAP_AUDIT_CONTROL, and a "
			  "loginuid not made immutable)",
			  ctx->pid, ctx->core->loginuid);
		close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

/* Credentials belong to each thread: every thread drops to them itself. */
int creds_restore_thread(struct restore_ctx *ctx, struct restore_thread *t)
{
	const CredsEntry *c = t->e->creds ? t->e->creds : ctx->core->creds;
	struct inject *inj = t->inj;

	if (restore_bounding_set(inj, c))
		return -1;
	if (groups_differ(c)) {
		uint32_t groups[256];
		memcpy(groups, c->groups, c->n_groups * sizeof(uint32_t));
		uint64_t addr;
		if (inject_scratch_put(inj, 0, groups, c->n_groups * sizeof(uint32_t), &addr) ||
		    inject_call(inj, "restoring supplementary groups", SYS_setgroups, c->n_groups,
				addr, 0, 0, 0, 0, NULL))
			return -1;
	}
	if (inject_call(inj, "restoring group ids", SYS_setresgid, c->gids[0], c->gids[1],
			c->gids[2], 0, 0, 0, NULL) ||
	    inject_call(inj, "restoring the fs group id", SYS_setfsgid, c->gids[3], 0, 0, 0, 0, 0,
			NULL) ||
	    inject_call(inj, "restoring user ids", SYS_setresuid, c->uids[0], c->uids[1],
			c->uids[2], 0, 0, 0, NULL) ||
	    inject_call(inj, "restoring the fs user id", SYS_setfsuid, c->uids[3], 0, 0, 0, 0, 0,
			NULL))
		return -1;
	if (restore_caps(ctx, inj, c) || restore_ambient(inj, c))
		return -1;
	return inject_call(inj, "restoring the dumpable flag", SYS_prctl, PR_SET_DUMPABLE,
			   ctx->core->dumpable, 0, 0, 0, 0, NULL);
}
