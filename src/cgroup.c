/*
 * cgroup: the control groups the processes of the tree are in, v2 and v1,
 * and CRIU's --manage-cgroups.
 *
 * Dump: each process's /proc/PID/cgroup is compared with cryo's own; only
 * the hierarchies where they differ are recorded in cgroup.img (a process
 * that shares cryo's cgroup comes back in the restoring cryo's, which is
 * what a restore on another machine needs), with the properties of that
 * cgroup a restore may set again (limits, weights, cpusets). Every thread
 * must share its process's cgroups: a thread placed elsewhere (a v1 tasks
 * file, a threaded v2 cgroup) is refused by name.
 *
 * Restore, once every process exists and before any memory is filled (so
 * it is charged to the right cgroup) or any thread is made (threads
 * inherit it), by --manage-cgroups MODE, CRIU's modes:
 *   soft (the default)  missing cgroups are made, and only those get the
 *                       saved properties;
 *   full                missing cgroups are made; every one gets them;
 *   strict              as full, but a cgroup that exists already is
 *                       refused (its properties could not be the saved);
 *   props               cgroups are not made (a missing one is refused);
 *                       every one gets the saved properties;
 *   none, ignore        the processes stay in cryo's cgroups (ignore, at
 *                       dump: nothing is recorded).
 * What is checked (the hierarchies mounted here, the modes' conditions)
 * is checked before anything is created; the cgroups a failed restore
 * made are removed again.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cgroup.h"
#include "context.h"
#include "images.h"
#include "infra/log.h"
#include "infra/proc.h"

#include "cgroup.pb-c.h"

/* Written in this order: a v1 cpuset takes no process before its cpus and
 * mems are set, and a cfs quota is checked against the period. */
static const char *const saved_props[] = {
    "cpuset.cpus",
    "cpuset.mems",
    "cpu.shares",
    "cpu.cfs_period_us",
    "cpu.cfs_quota_us",
    "cpu.max",
    "cpu.weight",
    "memory.limit_in_bytes",
    "memory.soft_limit_in_bytes",
    "memory.swappiness",
    "memory.max",
    "memory.high",
    "memory.low",
    "memory.min",
    "memory.swap.max",
    "pids.max",
    "blkio.weight",
    "io.weight",
};

enum cg_mode { CG_SOFT, CG_FULL, CG_STRICT, CG_PROPS, CG_NONE, CG_IGNORE };

static enum cg_mode mode_of(const struct cryo_opts *o)
{
	static const char *const names[] = {"soft", "full", "strict", "props", "none", "ignore"};

	for (size_t i = 0; o->manage_cgroups && i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(o->manage_cgroups, names[i]))
			return (enum cg_mode)i;
	return CG_SOFT; /* the option's parser accepts nothing else */
}

/* ---- the hierarchies mounted here ---- */

struct cg_mount {
	char opts[256]; /* a v1 mount's super options ("rw,cpu,cpuacct"); "" for v2 */
	char dir[PATH_MAX];
};

struct cg_mounts {
	size_t nr;
	struct cg_mount *v;
};

/* Whether every controller of "cpu,cpuacct" is among a mount's super
 * options "rw,cpu,cpuacct". */
static bool has_controllers(const char *opts, const char *hierarchy)
{
	char want[256], have[512];

	snprintf(have, sizeof(have), ",%s,", opts);
	snprintf(want, sizeof(want), "%s", hierarchy);
	for (char *save, *c = strtok_r(want, ",", &save); c; c = strtok_r(NULL, ",", &save)) {
		char item[300];
		snprintf(item, sizeof(item), ",%s,", c);
		if (!strstr(have, item))
			return false;
	}
	return true;
}

/* A mountinfo line's mount point and, for a cgroup filesystem mounted
 * from its root, its super options ("" for v2). */
static bool parse_mount(char *line, struct cg_mount *out)
{
	char *f[10], *save, *dash = strstr(line, " - ");
	int n = 0;

	if (!dash)
		return false;
	*dash = '\0';
	for (char *t = strtok_r(line, " ", &save); t && n < 10; t = strtok_r(NULL, " ", &save))
		f[n++] = t;
	if (n < 5 || strcmp(f[3], "/"))
		return false;
	snprintf(out->dir, sizeof(out->dir), "%s", f[4]);
	n = 0;
	for (char *t = strtok_r(dash + 3, " ", &save); t && n < 3; t = strtok_r(NULL, " ", &save))
		f[n++] = t;
	if (n < 3)
		return false;
	snprintf(out->opts, sizeof(out->opts), "%s", strcmp(f[0], "cgroup2") ? f[2] : "");
	return !strcmp(f[0], "cgroup") || !strcmp(f[0], "cgroup2");
}

static int read_mounts(struct cg_mounts *m)
{
	char *buf, *save;
	size_t len;

	memset(m, 0, sizeof(*m));
	if (proc_read(getpid(), "mountinfo", &buf, &len))
		return -1;
	for (char *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		struct cg_mount one, *grown;
		if (!parse_mount(l, &one))
			continue;
		grown = realloc(m->v, (m->nr + 1) * sizeof(*grown));
		if (!grown) {
			free(buf);
			return err_set("out of memory");
		}
		m->v = grown;
		m->v[m->nr++] = one;
	}
	free(buf);
	return 0;
}

/* Where hierarchy is mounted here, or NULL. */
static const char *find_dir(const struct cg_mounts *m, const char *hierarchy)
{
	for (size_t i = 0; i < m->nr; i++) {
		const char *o = m->v[i].opts;
		if (!*hierarchy ? !*o : *o && has_controllers(o, hierarchy))
			return m->v[i].dir;
	}
	return NULL;
}

/* ---- membership ---- */

/* One line of /proc/PID/cgroup, "ID:HIERARCHY:PATH", split in place. */
static bool parse_member(char *line, char **hierarchy, char **path)
{
	char *a = strchr(line, ':'), *b = a ? strchr(a + 1, ':') : NULL;

	if (!b || b[1] != '/')
		return false;
	*a = *b = '\0';
	*hierarchy = a + 1;
	*path = b + 1;
	return true;
}

/* The path of pid (or thread "PID/task/TID") in hierarchy, from text, the
 * contents of its cgroup file; NULL if it is not listed. */
static const char *path_in(const char *text, const char *hierarchy, char *buf, size_t len)
{
	char *copy = strdup(text), *save, *h, *p;
	const char *found = NULL;

	for (char *l = copy ? strtok_r(copy, "\n", &save) : NULL; l && !found;
	     l = strtok_r(NULL, "\n", &save))
		if (parse_member(l, &h, &p) && !strcmp(h, hierarchy)) {
			snprintf(buf, len, "%s", p);
			found = buf;
		}
	free(copy);
	return found;
}

static int read_cgroups(pid_t pid, pid_t tid, char **text)
{
	char name[64];
	size_t len;

	if (tid && tid != pid)
		snprintf(name, sizeof(name), "task/%d/cgroup", tid);
	else
		snprintf(name, sizeof(name), "cgroup");
	return proc_read(pid, name, text, &len);
}

/* ---- dump ---- */

struct cg_dump {
	struct cg_mounts mounts;
	char *own; /* cryo's /proc/self/cgroup */
	size_t nr;
	CgroupEntry **v;
};

static int read_props(const char *dir, CgroupEntry *e)
{
	for (size_t i = 0; i < sizeof(saved_props) / sizeof(saved_props[0]); i++) {
		char path[PATH_MAX + 64], value[4096];
		int fd;
		ssize_t n;
		snprintf(path, sizeof(path), "%s%s/%s", dir, e->path, saved_props[i]);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue; /* not a file of this hierarchy */
		n = read(fd, value, sizeof(value) - 1);
		close(fd);
		if (n < 0)
			return err_errno("cannot read %s", path);
		while (n > 0 && value[n - 1] == '\n')
			n--;
		value[n] = '\0';
		CgroupProp *p = malloc(sizeof(*p));
		CgroupProp **grown = realloc(e->props, (e->n_props + 1) * sizeof(*grown));
		if (!p || !grown) {
			free(p);
			if (grown)
				e->props = grown;
			return err_set("out of memory");
		}
		e->props = grown;
		cgroup_prop__init(p);
		p->name = strdup(saved_props[i]);
		p->value = strdup(value);
		e->props[e->n_props++] = p;
		if (!p->name || !p->value)
			return err_set("out of memory");
	}
	return 0;
}

static CgroupEntry *entry_for(struct cg_dump *d, const char *hierarchy, const char *path)
{
	CgroupEntry *e, **grown;

	for (size_t i = 0; i < d->nr; i++)
		if (!strcmp(d->v[i]->hierarchy, hierarchy) && !strcmp(d->v[i]->path, path))
			return d->v[i];
	grown = realloc(d->v, (d->nr + 1) * sizeof(*grown));
	if (!grown)
		return NULL;
	d->v = grown;
	e = malloc(sizeof(*e));
	if (!e)
		return NULL;
	cgroup_entry__init(e);
	e->hierarchy = strdup(hierarchy);
	e->path = strdup(path);
	d->v[d->nr++] = e;
	return e->hierarchy && e->path ? e : NULL;
}

/* Every thread in its process's cgroups: the kernel lets v1 tasks files
 * and threaded v2 cgroups put them apart, which is not restored. */
static int check_threads(const struct dump_ctx *ctx, const char *text)
{
	for (int i = 0; i < ctx->nr_threads; i++) {
		pid_t tid = ctx->threads[i].tid;
		char *t;
		if (tid == ctx->pid)
			continue;
		if (read_cgroups(ctx->pid, tid, &t))
			return -1;
		bool same = !strcmp(t, text);
		free(t);
		if (!same)
			return err_set(
			    "pid %d: thread %d is in other cgroups than its process "
			    "(/proc/%d/task/%d/cgroup): threads in cgroups of their own "
			    "are not supported (--manage-cgroups=ignore leaves cgroups out)",
			    ctx->pid, tid, ctx->pid, tid);
	}
	return 0;
}

/* One line of a process's cgroup file: recorded where it differs from
 * cryo's and the hierarchy is mounted here (else nothing could be read or
 * restored: said at info level). */
static int add_member(struct cg_dump *d, const struct dump_ctx *ctx, char *line)
{
	char *h, *p, mine[PATH_MAX];
	const char *dir, *own;
	CgroupEntry *e;

	if (!parse_member(line, &h, &p))
		return 0;
	own = path_in(d->own, h, mine, sizeof(mine));
	if (own && !strcmp(own, p))
		return 0;
	dir = find_dir(&d->mounts, h);
	if (!dir) {
		pr_info("pid %d: cgroup %s:%s left out: that hierarchy is not mounted here",
			ctx->pid, h, p);
		return 0;
	}
	e = entry_for(d, h, p);
	if (!e)
		return err_set("out of memory");
	if (!e->n_pids && read_props(dir, e))
		return err_wrap("cgroup %s:%s", h, p);
	int32_t *grown = realloc(e->pids, (e->n_pids + 1) * sizeof(*grown));
	if (!grown)
		return err_set("out of memory");
	e->pids = grown;
	e->pids[e->n_pids++] = ctx->pid;
	return 0;
}

static int dump_proc(struct cg_dump *d, const struct dump_ctx *ctx)
{
	char *text, *copy, *save;
	int ret = 0;

	if (read_cgroups(ctx->pid, 0, &text))
		return -1;
	copy = strdup(text);
	if (!copy)
		ret = err_set("out of memory");
	if (!ret)
		ret = check_threads(ctx, text);
	for (char *l = ret ? NULL : strtok_r(copy, "\n", &save); l && !ret;
	     l = strtok_r(NULL, "\n", &save))
		ret = add_member(d, ctx, l);
	free(copy);
	free(text);
	return ret;
}

static int write_entries(struct dump_tree *tree, const struct cg_dump *d)
{
	struct img_out out;
	int ret = image_out_open(&tree->dir, &out, IMAGE_CGROUP, 0);

	for (size_t i = 0; !ret && i < d->nr; i++)
		ret = img_out_msg(&out, &d->v[i]->base);
	if (!ret)
		ret = img_out_close(&out);
	if (ret)
		img_out_discard(&out);
	return ret;
}

int cgroup_dump(struct dump_tree *tree)
{
	struct cg_dump d = {0};
	size_t len;
	int ret;

	if (mode_of(tree->opts) == CG_IGNORE)
		return 0;
	ret = read_mounts(&d.mounts) || proc_read(getpid(), "cgroup", &d.own, &len);
	for (int i = 0; !ret && i < tree->nr_procs; i++)
		if (!tree->procs[i]->zombie)
			ret = dump_proc(&d, tree->procs[i]);
	if (!ret && d.nr)
		ret = write_entries(tree, &d);
	if (!ret)
		pr_info("%zu cgroup%s of the tree recorded", d.nr, d.nr == 1 ? "" : "s");
	for (size_t i = 0; i < d.nr; i++)
		cgroup_entry__free_unpacked(d.v[i], NULL);
	free(d.v);
	free(d.own);
	free(d.mounts.v);
	return ret ? -1 : 0;
}

/* ---- restore ---- */

struct cgroup_restore {
	enum cg_mode mode;
	size_t nr;
	CgroupEntry **v;
	char **dirs;  /* each entry's directory here */
	bool *exists; /* whether it existed before this restore */
	size_t nr_made;
	char **made; /* the directories this restore made, parents first */
};

/* Paths come from an image: "/" or "/a/b", nothing that climbs out of
 * the hierarchy. */
static bool path_ok(const char *p)
{
	if (p[0] != '/')
		return false;
	if (!p[1])
		return true;
	for (const char *c = p + 1;; c = strchr(c, '/') + 1) {
		size_t n = strcspn(c, "/");
		if (!n || (n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return false;
		if (!c[n])
			return true;
	}
}

static int locate(struct cgroup_restore *r, const struct cg_mounts *m, size_t i)
{
	const CgroupEntry *e = r->v[i];
	const char *dir = find_dir(m, e->hierarchy);
	struct stat st;

	if (!path_ok(e->path))
		return err_set("cgroup.img: bad cgroup path '%s'", e->path);
	if (!dir)
		return err_set("cgroup %s:%s: that hierarchy is not mounted here "
			       "(--manage-cgroups=none restores into cryo's cgroups)",
			       *e->hierarchy ? e->hierarchy : "(v2)", e->path);
	if (asprintf(&r->dirs[i], "%s%s", dir, e->path) < 0)
		return err_set("out of memory");
	r->exists[i] = !stat(r->dirs[i], &st) && S_ISDIR(st.st_mode);
	if (r->exists[i] && r->mode == CG_STRICT)
		return err_set("cgroup %s exists already (--manage-cgroups=strict)", r->dirs[i]);
	if (!r->exists[i] && r->mode == CG_PROPS)
		return err_set("cgroup %s does not exist (--manage-cgroups=props makes none)",
			       r->dirs[i]);
	return 0;
}

int cgroup_validate(struct restore_tree *tree)
{
	struct cgroup_restore *r = calloc(1, sizeof(*r));
	struct cg_mounts m;
	int ret = 0;

	if (!r)
		return err_set("out of memory");
	tree->cgroup = r;
	r->mode = mode_of(tree->opts);
	if (r->mode == CG_NONE || r->mode == CG_IGNORE ||
	    !image_present(&tree->dir, IMAGE_CGROUP, 0))
		return 0;
	if (image_load_list(&tree->dir, IMAGE_CGROUP, 0, NULL, (void ***)&r->v, &r->nr))
		return -1;
	r->dirs = calloc(r->nr, sizeof(*r->dirs));
	r->exists = calloc(r->nr, sizeof(*r->exists));
	if (!r->dirs || !r->exists)
		return err_set("out of memory");
	if (read_mounts(&m))
		return -1;
	for (size_t i = 0; !ret && i < r->nr; i++)
		ret = locate(r, &m, i);
	free(m.v);
	return ret;
}

static int made(struct cgroup_restore *r, const char *dir)
{
	char **grown = realloc(r->made, (r->nr_made + 1) * sizeof(*grown));

	if (!grown)
		return err_set("out of memory");
	r->made = grown;
	r->made[r->nr_made] = strdup(dir);
	if (!r->made[r->nr_made])
		return err_set("out of memory");
	r->nr_made++;
	return 0;
}

/* mkdir -p, from the first component that is missing. */
static int make_dirs(struct cgroup_restore *r, const char *dir)
{
	char *p = strdup(dir);
	int ret = 0;

	if (!p)
		return err_set("out of memory");
	for (char *s = strchr(p + 1, '/');; s = strchr(s + 1, '/')) {
		if (s)
			*s = '\0';
		if (!mkdir(p, 0755))
			ret = made(r, p);
		else if (errno != EEXIST)
			ret = err_errno("cannot make cgroup %s", p);
		if (!s || ret)
			break;
		*s = '/';
	}
	free(p);
	return ret;
}

static int write_file(const char *dir, const char *name, const char *value)
{
	char path[PATH_MAX + 64];
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return err_errno("cannot open %s", path);
	n = write(fd, value, strlen(value));
	if (n < 0)
		err_errno("cannot write '%s' to %s", value, path);
	close(fd);
	return n < 0 ? -1 : 0;
}

static int set_props(const char *dir, const CgroupEntry *e)
{
	for (size_t i = 0; i < e->n_props; i++)
		if (strchr(e->props[i]->name, '/') ||
		    write_file(dir, e->props[i]->name, e->props[i]->value))
			return err_wrap("cgroup %s", dir);
	return 0;
}

static bool sets_props(const struct cgroup_restore *r, size_t i)
{
	return r->mode != CG_SOFT || !r->exists[i];
}

static int move_pids(const struct restore_tree *tree, const char *dir, const CgroupEntry *e)
{
	for (size_t i = 0; i < e->n_pids; i++) {
		const struct restore_ctx *ctx = NULL;
		char pid[16];
		for (size_t k = 0; k < tree->nr_procs && !ctx; k++)
			if (tree->procs[k]->pid == e->pids[i] && !tree->procs[k]->zombie)
				ctx = tree->procs[k];
		if (!ctx)
			return err_set(
			    "cgroup.img: cgroup %s lists pid %d, not a live process of the "
			    "checkpoint",
			    dir, e->pids[i]);
		snprintf(pid, sizeof(pid), "%d", ctx->child);
		if (write_file(dir, "cgroup.procs", pid))
			return err_wrap("pid %d", ctx->pid);
	}
	return 0;
}

int cgroup_restore(struct restore_tree *tree)
{
	struct cgroup_restore *r = tree->cgroup;

	for (size_t i = 0; i < r->nr; i++) {
		if ((!r->exists[i] && make_dirs(r, r->dirs[i])) ||
		    (sets_props(r, i) && set_props(r->dirs[i], r->v[i])) ||
		    move_pids(tree, r->dirs[i], r->v[i]))
			return -1;
		pr_info("restored %zu process%s into cgroup %s%s", r->v[i]->n_pids,
			r->v[i]->n_pids == 1 ? "" : "es", r->dirs[i],
			r->exists[i] ? "" : " (made)");
	}
	return 0;
}

/* After a failed restore, once its processes are gone: children first. */
void cgroup_restore_undo(struct restore_tree *tree)
{
	struct cgroup_restore *r = tree->cgroup;

	for (size_t i = r ? r->nr_made : 0; i-- > 0;)
		if (rmdir(r->made[i]))
			pr_warn("cannot remove cgroup %s made by the failed restore: %s",
				r->made[i], strerror(errno));
}

void cgroup_restore_free(struct restore_tree *tree)
{
	struct cgroup_restore *r = tree->cgroup;

	if (!r)
		return;
	for (size_t i = 0; i < r->nr; i++) {
		cgroup_entry__free_unpacked(r->v[i], NULL);
		free(r->dirs ? r->dirs[i] : NULL);
	}
	for (size_t i = 0; i < r->nr_made; i++)
		free(r->made[i]);
	free(r->v);
	free(r->dirs);
	free(r->exists);
	free(r->made);
	free(r);
	tree->cgroup = NULL;
}
