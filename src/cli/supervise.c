/*
 * cryo run: the supervisor. It owns a job (a command and the tree it
 * forks), its generations of checkpoints, and its restores.
 *
 * The job is started as cryo's child, with cryo's stdio, cwd and
 * environment; cryo is a child subreaper, so every process of the job
 * that loses its parent comes back to it. Every `every` seconds, or at
 * once on SIGUSR1, the whole tree is checkpointed by cryo_dump() with
 * leave_running into DIR/.gen-NNNNNN.tmp, which is renamed to
 * DIR/gen-NNNNNN (and DIR synced) once the dump committed it: a
 * generation is complete or absent, and a kill -9 of cryo during a
 * checkpoint leaves only a .tmp directory, removed by the next run. The
 * newest `keep` generations are kept; older ones are removed only after a
 * newer one was committed, and never while a kept one's chain needs them.
 * Each checkpoint logs one line, from the generation's own stats-dump image.
 *
 * Checkpoints are incremental: each arms memory tracking (--track-mem) and
 * the next one holds only the pages written since, with the previous
 * generation as its parent (DIR/gen-N/parent -> ../gen-N-1); every
 * `full_every`-th one, and the first after a restore (the restored
 * processes are not tracked), is full, so a chain is at most full_every
 * long and the disk holds at most keep + full_every - 1 generations.
 *
 * When the job's root dies by a signal (a crash, SIGKILL, the OOM killer),
 * what is left of its tree is killed and the newest generation restored
 * by cryo_restore() with detach: the restored root is cryo's child again
 * (restore.c creates it by clone3 from cryo itself, with its original
 * pid), and is supervised as before, up to max_restores times. When the
 * root exits by itself, cryo_run() returns its exit status.
 *
 * SIGTERM, SIGINT and SIGHUP to cryo are passed on to the job's root,
 * and a job that dies of one is not restored.
 *
 * One supervisor per directory: DIR/supervisor stays locked while it runs
 * (runlock.c), which `cryo checkpoint -D DIR` uses to ask it for a
 * checkpoint now. `--resume` restores the newest generation, unless the
 * job still runs (only its supervisor died): then it is taken over — a
 * pidfd tells when its root ends, and PIDFD_GET_INFO how (its exit status
 * is readable by any holder of a pidfd, not only its parent) — and its
 * processes, no longer cryo's descendants, are found for a restore among
 * the pids of the newest generation that started before that checkpoint.
 *
 * Signals are read from a signalfd (SIGCHLD, SIGUSR1 and the three above
 * blocked), so cryo needs no signal handler and no global state: poll()
 * waits for a signal or for the next checkpoint's time.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cryo/cryo.h"
#include "images.h"
#include "infra/image.h"
#include "infra/log.h"
#include "infra/proc.h"
#include "infra/testhook.h"
#include "infra/uapi.h"
#include "stats.pb-c.h"
#include "cli/runlock.h"
#include "cli/supervise.h"

#define GEN_PREFIX "gen-"
#define GEN_FORMAT "gen-%06u"
#define TMP_FORMAT ".gen-%06u.tmp"

/* One supervised job. */
struct run_job {
	const struct cryo_opts *opts;
	unsigned every, keep, max_restores, full_every;
	unsigned since_full;	/* generations since the last full one; 0: next is full */
	int dirfd;		/* DIR */
	int sigfd;		/* SIGCHLD, SIGUSR1 */
	int lockfd;		/* DIR/supervisor, locked while cryo supervises */
	int pidfd;		/* the root of a job taken over (not cryo's child), or -1 */
	unsigned attempts;	/* checkpoints tried, for `cryo checkpoint` */
	bool taken;		/* the root is not cryo's child: taken over by --resume */
	sigset_t old_mask;	/* cryo's mask before, for the job */
	pid_t root;		/* the job's root, cryo's child */
	unsigned newest;	/* the newest committed generation, 0: none */
	unsigned restores;	/* restores done so far */
	unsigned long long due; /* now_us() of the next checkpoint */
	bool lost;		/* the root ended during a dump, which reaped it */
	int lost_status;	/* ... and its wait status (SIGKILL if unknown) */
	int stopping;		/* the SIGTERM, SIGINT or SIGHUP passed on to the job */
};

static unsigned or_default(unsigned v, unsigned def)
{
	return v ? v : def;
}

/* ---- generations ---- */

static int gen_number(const char *name)
{
	char *end;
	unsigned long n;

	if (strncmp(name, GEN_PREFIX, strlen(GEN_PREFIX)))
		return 0;
	n = strtoul(name + strlen(GEN_PREFIX), &end, 10);
	return *end || n == 0 || n > 999999 ? 0 : (int)n;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path) && errno != ENOENT ? -1 : 0;
}

/* Removes DIR/name and everything in it. */
static int remove_gen_dir(const struct run_job *job, const char *name)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", job->opts->images_dir, name);
	if (nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS) && errno != ENOENT)
		return err_errno("cannot remove %s", path);
	return 0;
}

/* The committed generations' numbers, newest first; the count, or -1. */
static int list_gens(const struct run_job *job, unsigned **out)
{
	int fd = dup(job->dirfd), n = 0, cap = 0;
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	struct dirent *e;
	unsigned *v = NULL;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return err_errno("cannot read %s", job->opts->images_dir);
	}
	rewinddir(d);
	while ((e = readdir(d))) {
		int g = gen_number(e->d_name);
		if (!g)
			continue;
		if (n == cap && !(v = realloc(v, (cap = cap ? 2 * cap : 16) * sizeof(*v)))) {
			closedir(d);
			return err_set("out of memory listing %s", job->opts->images_dir);
		}
		v[n++] = g;
	}
	closedir(d);
	for (int i = 1; i < n; i++) /* insertion sort, newest first: a few entries */
		for (int j = i; j > 0 && v[j] > v[j - 1]; j--) {
			unsigned t = v[j];
			v[j] = v[j - 1], v[j - 1] = t;
		}
	*out = v;
	return n;
}

/* Leftovers of checkpoints cut short (cryo killed during one). */
static void remove_partial_gens(struct run_job *job)
{
	int fd = dup(job->dirfd);
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	struct dirent *e;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((e = readdir(d)))
		if (!strncmp(e->d_name, "." GEN_PREFIX, strlen(GEN_PREFIX) + 1) &&
		    remove_gen_dir(job, e->d_name)) {
			pr_warn("%s", err_text());
			err_clear();
		}
	closedir(d);
}

/* Keeps the newest `keep`: called only once a newer one is committed. */
/* The generation gen's parent (its DIR/gen-N/parent link), or 0. */
static unsigned parent_of(const struct run_job *job, unsigned gen)
{
	char link[64], target[64];
	ssize_t n;
	int g;

	snprintf(link, sizeof(link), GEN_FORMAT "/parent", gen);
	n = readlinkat(job->dirfd, link, target, sizeof(target) - 1);
	if (n <= 0)
		return 0;
	target[n] = '\0';
	if (strncmp(target, "../", 3) || (g = gen_number(target + 3)) <= 0)
		return 0;
	return g;
}

/* How many generations gen's chain holds, gen included. */
static unsigned chain_length(const struct run_job *job, unsigned gen)
{
	unsigned n = 0;

	for (; gen && n < 1000000; gen = parent_of(job, gen))
		n++;
	return n;
}

/* Whether gen is one of the newest `keep` or in the chain of one of them. */
static bool needed(const struct run_job *job, const unsigned *v, int n, unsigned gen)
{
	for (int i = 0; i < n && i < (int)job->keep; i++)
		for (unsigned g = v[i]; g; g = parent_of(job, g))
			if (g == gen)
				return true;
	return false;
}

static void prune_gens(struct run_job *job)
{
	unsigned *v = NULL;
	int n = list_gens(job, &v);
	char name[32];

	for (int i = (int)job->keep; i < n; i++) {
		if (needed(job, v, n, v[i]))
			continue;
		snprintf(name, sizeof(name), GEN_FORMAT, v[i]);
		if (remove_gen_dir(job, name)) {
			pr_warn("%s", err_text());
			err_clear();
		}
	}
	if (n < 0)
		err_clear();
	free(v);
}

/* ---- checkpoints ---- */

/* The generation's statistics and the bytes its inventory lists. */
static int read_gen_stats(const char *path, DumpStats **stats, unsigned long long *bytes)
{
	struct img_dir d;
	int r = img_dir_open(&d, path);

	*bytes = 0;
	if (!r)
		r = image_load_one(&d, IMAGE_STATS_DUMP, 0, (ProtobufCMessage **)stats);
	for (size_t i = 0; !r && i < d.inventory->n_files; i++)
		*bytes += d.inventory->files[i]->size;
	img_dir_close(&d);
	return r;
}

static void log_checkpoint(const char *path, unsigned gen, unsigned parent,
			   unsigned long long took_us)
{
	DumpStats *s = NULL;
	unsigned long long bytes;
	char on[48] = "";

	if (read_gen_stats(path, &s, &bytes)) {
		pr_warn("run: gen-%06u committed, its statistics unreadable: %s", gen, err_text());
		err_clear();
		return;
	}
	if (parent)
		snprintf(on, sizeof(on), ", incremental on gen-%06u", parent);
	pr_note("run: checkpoint gen-%06u: %llu pages written, %llu bytes, frozen %.1f ms, took "
		"%.1f ms%s",
		gen, (unsigned long long)s->pages_written, bytes, s->frozen_time_us / 1000.0,
		took_us / 1000.0, on);
	dump_stats__free_unpacked(s, NULL);
}

/* A job started on cryo's terminal is a shell job: dumped and restored
 * with --shell-job, so that it comes back on the terminal cryo has then. */
static bool on_terminal(void)
{
	return isatty(0) || isatty(1) || isatty(2);
}

/* Whether the next checkpoint holds only what changed since the newest. */
static bool incremental(const struct run_job *job)
{
	return job->newest && job->since_full && job->since_full < job->full_every;
}

/* Dumps into the temporary name, then commits by rename. */
static int checkpoint_into(struct run_job *job, unsigned gen, const char *tmp, const char *final)
{
	char path[4096], parent[32];
	struct cryo_opts o = *job->opts;

	snprintf(path, sizeof(path), "%s/%s", job->opts->images_dir, tmp);
	snprintf(parent, sizeof(parent), "../" GEN_FORMAT, job->newest);
	o.images_dir = path;
	o.pid = job->root;
	/* no tracking armed for a next one that will be full: a holder nobody
	 * takes would keep the memory registered */
	o.track_mem = (incremental(job) ? job->since_full + 1 : 1) < job->full_every;
	o.prev_images_dir = incremental(job) ? parent : NULL;
	o.leave_running = true;
	o.leave_stopped = false;
	o.display_stats = false;
	o.quiet_stdout = true;
	o.shell_job |= on_terminal();
	if (cryo_dump(&o))
		return err_wrap("checkpoint gen-%06u of pid %d", gen, job->root);
	if (renameat(job->dirfd, tmp, job->dirfd, final))
		return err_errno("cannot commit %s/%s", job->opts->images_dir, final);
	test_kill_point("run-renamed");
	if (!job->opts->no_sync && fsync(job->dirfd))
		return err_errno("cannot sync %s", job->opts->images_dir);
	return 0;
}

/* After a failed dump: whether the root ended meanwhile, and how. The dump
 * waits for the root by pid, so its status may have gone to the dump
 * (reap() would wait for ever): then the pidfd opened before it says. */
static void check_lost(struct run_job *job, int exit_fd)
{
	struct pidfd_info info = {.mask = PIDFD_INFO_EXIT};
	int st;
	pid_t r;

	if (job->pidfd >= 0)
		return; /* a taken-over root: its pidfd tells */
	r = waitpid(job->root, &st, __WALL | WNOHANG);
	if (r == job->root) {
		job->lost = true;
		job->lost_status = st;
	} else if (r < 0 && errno == ECHILD) {
		job->lost = true;
		job->lost_status = exit_fd >= 0 && !ioctl(exit_fd, PIDFD_GET_INFO, &info) &&
					   (info.mask & PIDFD_INFO_EXIT)
				       ? info.exit_code
				       : SIGKILL;
	}
}

static void checkpoint(struct run_job *job)
{
	unsigned gen = job->newest + 1, parent = incremental(job) ? job->newest : 0;
	unsigned long long t = now_us(), took;
	char tmp[32], final[32], path[4096], what[1100];
	int exit_fd = job->pidfd < 0 ? (int)syscall(SYS_pidfd_open, job->root, 0) : -1;

	snprintf(tmp, sizeof(tmp), TMP_FORMAT, gen);
	snprintf(final, sizeof(final), GEN_FORMAT, gen);
	if (checkpoint_into(job, gen, tmp, final)) {
		snprintf(what, sizeof(what), "failed: %s", err_text());
		pr_warn("run: %s", err_text());
		err_clear();
		if (remove_gen_dir(job, tmp))
			err_clear();
		check_lost(job, exit_fd);
	} else {
		job->since_full = incremental(job) ? job->since_full + 1 : 1;
		job->newest = gen;
		snprintf(what, sizeof(what), "committed %s", final);
		snprintf(path, sizeof(path), "%s/%s", job->opts->images_dir, final);
		took = now_us() - t;
		/* pruned before its line is logged: a reader of the log sees the
		 * directory as the line says */
		prune_gens(job);
		log_checkpoint(path, gen, parent, took);
	}
	if (exit_fd >= 0)
		close(exit_fd);
	runlock_report(job->dirfd, ++job->attempts, what);
	job->due = now_us() + job->every * 1000000ULL;
}

/* ---- the job's processes ---- */

/* /proc/PID/stat (infra/proc.c) or false: a process that is gone is no
 * error here. */
static bool stat_of(pid_t pid, struct proc_stat *st)
{
	if (!proc_read_stat(pid, st))
		return true;
	err_clear();
	return false;
}

/* Seconds since the epoch when pid started, or 0. */
static double start_time_of(pid_t pid)
{
	unsigned long long btime = 0;
	struct proc_stat st;
	char buf[256];
	FILE *f;

	if (!stat_of(pid, &st) || !(f = fopen("/proc/stat", "re")))
		return 0;
	while (fgets(buf, sizeof(buf), f))
		if (sscanf(buf, "btime %llu", &btime) == 1)
			break;
	fclose(f);
	return btime + (double)st.start_time / sysconf(_SC_CLK_TCK);
}

/* Whether the root of a job taken over ended, and its wait status: from
 * PIDFD_GET_INFO once whoever is its parent now reaped it, from
 * /proc/PID/stat while it is a zombie (its pid is not reused before). */
static bool taken_root_ended(struct run_job *job, int *status)
{
	struct pollfd pfd = {job->pidfd, POLLIN, 0};
	struct timespec pause = {0, 10 * 1000 * 1000};
	struct proc_stat st;

	if (poll(&pfd, 1, 0) != 1)
		return false;
	for (int i = 0; i < 1000; i++, nanosleep(&pause, NULL)) {
		struct pidfd_info info = {.mask = PIDFD_INFO_EXIT};
		if (!ioctl(job->pidfd, PIDFD_GET_INFO, &info) && (info.mask & PIDFD_INFO_EXIT)) {
			*status = info.exit_code;
			break;
		}
		if (stat_of(job->root, &st) && st.state == 'Z') {
			*status = st.exit_code;
			break;
		}
		*status = SIGKILL; /* unknown after 10 s: taken as killed */
	}
	close(job->pidfd);
	job->pidfd = -1;
	return true;
}

/* Starts argv as cryo's child; an exec failure comes back through a pipe. */
static int start_command(struct run_job *job, char **argv)
{
	int p[2], e = 0;
	pid_t pid;

	if (pipe2(p, O_CLOEXEC))
		return err_errno("cannot create a pipe");
	pid = fork();
	if (pid < 0) {
		close(p[0]), close(p[1]);
		return err_errno("cannot fork");
	}
	if (pid == 0) {
		sigprocmask(SIG_SETMASK, &job->old_mask, NULL);
		/* only the standard streams: what else cryo inherited would make
		 * every checkpoint fail (a pipe to outside) */
		for (int fd = 3; fd < p[1]; fd++)
			close(fd);
		syscall(SYS_close_range, p[1] + 1, ~0U, 0);
		execvp(argv[0], argv);
		e = errno;
		if (write(p[1], &e, sizeof(e)) < 0)
			_exit(127);
		_exit(127);
	}
	close(p[1]);
	if (read(p[0], &e, sizeof(e)) == sizeof(e)) {
		close(p[0]);
		waitpid(pid, NULL, 0);
		errno = e;
		return err_errno("cannot run %s", argv[0]);
	}
	close(p[0]);
	job->root = pid;
	pr_note("run: started pid %d: %s", pid, argv[0]);
	return 0;
}

/* Each of cryo's children (the job's leftovers come back to cryo). */
static int kill_children(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	while (d && (e = readdir(d))) {
		char path[300];
		FILE *f;
		int pid;

		snprintf(path, sizeof(path), "/proc/self/task/%s/children", e->d_name);
		if (e->d_name[0] == '.' || !(f = fopen(path, "re")))
			continue;
		while (fscanf(f, "%d", &pid) == 1)
			n += !kill(pid, SIGKILL);
		fclose(f);
	}
	if (d)
		closedir(d);
	return n;
}

/* The processes of a job taken over are not cryo's descendants: those of
 * the newest generation still alive since before it are killed, and
 * waited for until whoever is their parent now has reaped them. */
static void kill_generation(struct run_job *job)
{
	struct timespec pause = {0, 10 * 1000 * 1000};
	char path[4096];
	struct img_dir d;
	double dumped;
	size_t left = 1;

	snprintf(path, sizeof(path), "%s/" GEN_FORMAT, job->opts->images_dir, job->newest);
	if (img_dir_open(&d, path)) {
		pr_warn("run: %s", err_text());
		err_clear();
		return;
	}
	dumped = d.inventory->dump_time_unix_ns / 1e9;
	for (int i = 0; i < 3000 && left; i++, nanosleep(&pause, NULL)) {
		left = 0;
		for (size_t k = 0; k < d.inventory->n_pids; k++) {
			double started = start_time_of(d.inventory->pids[k]);
			if (started > 0 && started <= dumped) {
				kill(d.inventory->pids[k], SIGKILL);
				left++;
			}
		}
	}
	if (left)
		pr_warn("run: %zu processes of the job taken over are still there", left);
	img_dir_close(&d);
}

/* Before a restore: nothing of the dead job may keep a pid it needs. */
static void kill_leftovers(struct run_job *job)
{
	struct timespec pause = {0, 5 * 1000 * 1000};

	if (job->taken)
		kill_generation(job);
	for (int i = 0; i < 1000; i++) {
		int killed = kill_children(), w;
		while ((w = waitpid(-1, NULL, __WALL | WNOHANG)) > 0)
			;
		if (!killed && w < 0 && errno == ECHILD)
			return;
		nanosleep(&pause, NULL);
	}
	pr_warn("run: some processes of the job could not be removed");
}

/* The job was started with cryo's standard streams: where one is a pipe or
 * a socket from outside (`cryo run ... | tee log`), the restore is given
 * cryo's own fd in its place, as --inherit-fd 'fd[N]:pipe:[INO]' would. */
static size_t stdio_specs(char specs[3][80], const char *v[3])
{
	size_t n = 0;

	for (int fd = 0; fd < 3; fd++) {
		char link[64], path[32];
		ssize_t len;
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		len = readlink(path, link, sizeof(link) - 1);
		if (len <= 0)
			continue;
		link[len] = '\0';
		if (strncmp(link, "pipe:[", 6) && strncmp(link, "socket:[", 8))
			continue;
		snprintf(specs[n], sizeof(specs[n]), "fd[%d]:%s", fd, link);
		v[n] = specs[n];
		n++;
	}
	return n;
}

/* Restores generation gen; the restored root is cryo's child. */
static int restore_gen(struct run_job *job, unsigned gen)
{
	char path[4096], specs[3][80];
	const char *given[3];
	struct cryo_opts o = *job->opts;
	struct img_dir d;
	pid_t root;
	int r;

	snprintf(path, sizeof(path), "%s/" GEN_FORMAT, job->opts->images_dir, gen);
	if (img_dir_open(&d, path))
		return -1;
	root = d.inventory->root_pid;
	img_dir_close(&d);
	o.images_dir = path;
	o.detach = true;
	o.inherit_fd = (struct cryo_strv){given, stdio_specs(specs, given)};
	o.shell_job |= on_terminal();
	o.pidfile = NULL;
	o.display_stats = false;
	o.leave_stopped = false;
	r = cryo_restore(&o);
	if (r)
		return err_wrap("restoring %s", path);
	job->root = root;
	return 0;
}

/* The newest generation that restores, trying older ones if it fails. */
static int restore_newest(struct run_job *job, unsigned *from)
{
	unsigned *v = NULL;
	int n = list_gens(job, &v);

	if (n < 0)
		return -1;
	for (int i = 0; i < n; i++) {
		if (!restore_gen(job, v[i])) {
			*from = v[i];
			free(v);
			return 0;
		}
		pr_warn("run: %s", err_text());
		err_clear();
	}
	free(v);
	return err_set("no generation of %s could be restored", job->opts->images_dir);
}

/* The job's root died by signal sig: restored, or the status to exit with. */
static int job_killed(struct run_job *job, int sig)
{
	unsigned long long t = now_us();
	unsigned from;

	if (job->stopping) {
		pr_note(
		    "run: job pid %d ended by signal %d (%s), passed on from cryo: not restored",
		    job->root, sig, strsignal(sig));
		return 128 + sig;
	}
	if (!job->newest) {
		pr_note("run: job pid %d killed by signal %d (%s), no checkpoint yet: exiting",
			job->root, sig, strsignal(sig));
		return 128 + sig;
	}
	if (job->restores >= job->max_restores) {
		pr_note("run: job pid %d killed by signal %d (%s), restored %u times already "
			"(--max-restores %u): giving up",
			job->root, sig, strsignal(sig), job->restores, job->max_restores);
		return 128 + sig;
	}
	kill_leftovers(job);
	if (restore_newest(job, &from))
		return err_wrap("job pid %d killed by signal %d", job->root, sig), 1;
	job->taken = false;
	job->restores++;
	job->since_full = 0; /* the restored processes are not tracked */
	pr_note("run: job killed by signal %d (%s): restored pid %d from gen-%06u in %.1f ms "
		"(restore %u of %u)",
		sig, strsignal(sig), job->root, from, (now_us() - t) / 1000.0, job->restores,
		job->max_restores);
	return -1;
}

/* The root ended with wait status st: restored (-1: supervise on), or the
 * status to exit with. */
static int root_ended(struct run_job *job, int st)
{
	if (WIFEXITED(st)) {
		pr_info("run: job pid %d exited with status %d", job->root, WEXITSTATUS(st));
		return WEXITSTATUS(st);
	}
	if (WIFSIGNALED(st)) {
		int r = job_killed(job, WTERMSIG(st));
		if (r >= 0)
			return r;
	}
	return -1;
}

/* Reaps what ended; -1 while the job runs on, else the status to exit with. */
static int reap(struct run_job *job)
{
	int status;
	pid_t pid;

	if (job->lost) {
		job->lost = false;
		pr_note("run: job pid %d ended during a checkpoint", job->root);
		return root_ended(job, job->lost_status);
	}
	if (job->pidfd >= 0)
		return taken_root_ended(job, &status) ? root_ended(job, status) : -1;
	while ((pid = waitpid(-1, &status, __WALL | WNOHANG)) > 0)
		if (pid == job->root) /* else an orphan of the job, come back to cryo */
			return root_ended(job, status);
	return -1;
}

/* ---- the loop ---- */

/* SIGTERM, SIGINT, SIGHUP to cryo: passed on to the job's root, which is
 * not restored if it dies of it (it was asked to stop). */
static void pass_on(struct run_job *job, int sig)
{
	pr_note("run: signal %d (%s) passed on to pid %d", sig, strsignal(sig), job->root);
	job->stopping = sig;
	kill(job->root, sig);
}

/* Waits for a signal or the next checkpoint; true if SIGUSR1 came. */
static bool wait_event(struct run_job *job)
{
	unsigned long long now = now_us();
	int ms = job->due > now ? (int)((job->due - now + 999) / 1000) : 0;
	struct pollfd pfd[2] = {{job->sigfd, POLLIN, 0}, {job->pidfd, POLLIN, 0}};
	struct signalfd_siginfo si;
	bool usr1 = false;

	if (poll(pfd, 2, ms) <= 0 || !pfd[0].revents)
		return false;
	while (read(job->sigfd, &si, sizeof(si)) == sizeof(si)) {
		usr1 |= si.ssi_signo == SIGUSR1;
		if (si.ssi_signo != SIGUSR1 && si.ssi_signo != SIGCHLD)
			pass_on(job, si.ssi_signo);
	}
	return usr1;
}

static int supervise(struct run_job *job)
{
	int r;

	job->due = now_us() + job->every * 1000000ULL;
	for (;;) {
		bool now = wait_event(job);
		if ((r = reap(job)) >= 0)
			return r;
		if (now || now_us() >= job->due)
			checkpoint(job);
	}
}

/* ---- --resume ---- */

/* Whether the root of generation gen still runs: a process with its pid
 * that started before that checkpoint is it. */
static int still_running(struct run_job *job, unsigned gen, bool *running)
{
	char path[4096];
	struct img_dir d;
	double started;

	snprintf(path, sizeof(path), "%s/" GEN_FORMAT, job->opts->images_dir, gen);
	if (img_dir_open(&d, path))
		return -1;
	job->root = d.inventory->root_pid;
	started = start_time_of(job->root);
	*running = started > 0 && started <= d.inventory->dump_time_unix_ns / 1e9;
	img_dir_close(&d);
	return 0;
}

/* Only the supervisor died: the job is watched through a pidfd, never
 * restored a second time beside itself. */
static int take_over(struct run_job *job, unsigned gen)
{
	bool running;

	job->pidfd = syscall(SYS_pidfd_open, job->root, 0);
	if (job->pidfd < 0)
		return err_errno("cannot take over job pid %d", job->root);
	/* the pid might have been reused between the two looks */
	if (still_running(job, gen, &running) || !running)
		return err_set("job pid %d of gen-%06u ended while being taken over", job->root,
			       gen);
	job->taken = true;
	job->since_full = chain_length(job, gen); /* its tracking goes on */
	pr_note("run: job pid %d still runs (only its supervisor ended): taken over", job->root);
	return 0;
}

static int resume(struct run_job *job)
{
	unsigned from;
	bool running;

	if (!job->newest)
		return err_set("%s holds no generation to resume from", job->opts->images_dir);
	if (still_running(job, job->newest, &running))
		return -1;
	if (running)
		return take_over(job, job->newest);
	if (restore_newest(job, &from))
		return -1;
	pr_note("run: resumed pid %d from gen-%06u", job->root, from);
	return 0;
}

/* ---- setup ---- */

static int open_dir(struct run_job *job)
{
	const char *dir = job->opts->images_dir;
	unsigned *v = NULL;
	int n;

	if (mkdir(dir, 0755) && errno != EEXIST)
		return err_errno("cannot create %s", dir);
	job->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (job->dirfd < 0)
		return err_errno("cannot open %s", dir);
	/* before anything is removed: a .tmp may be another supervisor's */
	if ((job->lockfd = runlock_claim(job->dirfd, dir)) < 0)
		return -1;
	remove_partial_gens(job);
	n = list_gens(job, &v);
	if (n < 0)
		return -1;
	job->newest = n ? v[0] : 0;
	free(v);
	if (n && !job->opts->resume)
		return err_set("%s holds generations already: resume them with --resume, or "
			       "give another directory",
			       dir);
	return 0;
}

static int open_signals(struct run_job *job)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, &job->old_mask))
		return err_errno("cannot block signals");
	job->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (job->sigfd < 0)
		return err_errno("cannot create a signalfd");
	return 0;
}

int cryo_run(const struct cryo_opts *opts)
{
	struct run_job job = {.opts = opts, .dirfd = -1, .sigfd = -1, .lockfd = -1, .pidfd = -1};
	int r = -1;

	job.every = or_default(opts->every, RUN_DEFAULT_EVERY);
	job.keep = or_default(opts->keep, RUN_DEFAULT_KEEP);
	job.max_restores = or_default(opts->max_restores, RUN_DEFAULT_MAX_RESTORES);
	job.full_every = or_default(opts->full_every, RUN_DEFAULT_FULL_EVERY);
	if (!opts->images_dir)
		return err_set("run: -D DIR is required"), 1;
	if (!opts->resume && !opts->command.n)
		return err_set("run: no command given"), 1;
	if (prctl(PR_SET_CHILD_SUBREAPER, 1))
		return err_errno("cannot become a child subreaper"), 1;
	if (!open_dir(&job) && !open_signals(&job) &&
	    !(opts->resume ? resume(&job) : start_command(&job, (char **)opts->command.v)))
		r = supervise(&job);
	if (job.sigfd >= 0) {
		close(job.sigfd);
		sigprocmask(SIG_SETMASK, &job.old_mask, NULL);
	}
	if (job.pidfd >= 0)
		close(job.pidfd);
	if (job.lockfd >= 0)
		close(job.lockfd);
	if (job.dirfd >= 0)
		close(job.dirfd);
	prctl(PR_SET_CHILD_SUBREAPER, 0);
	return r < 0 ? 1 : r;
}
