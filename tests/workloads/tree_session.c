/* tree_session.c: a session whose leader has exited. The root R is a child
 * subreaper; child B calls setsid() (leading session B and group B), forks C
 * (left in group B) and E (its own group), C forks D (its own group), then B
 * exits and R reaps it, so C and E become R's children and D stays C's.
 * After `go` every process reports its own ids through shared memory and R
 * checks them all: C, D and E still in session B, whose leader's pid is free
 * (no process, not R's child), in groups B, D and E; parents R, C and R; none
 * a session leader; setsid() fails with EPERM in D and E (group leaders);
 * R's own session and group unchanged. A SIGUSR1 sent by R to group B must
 * reach C and neither D, E nor R. Each child also exits 0 only if its own
 * view was right (C also waits for D), and every wait has a time limit. */
#include "wl.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* What one of C, D, E reports. Flags are written last, with a barrier. */
struct rep {
	int32_t pid;
	uint32_t setup;				   /* 1: set up (handler, group); 2: failed */
	uint32_t reparented;			   /* C, E: 1 once getppid() is R; 2: timed out */
	int32_t sid, pgid, ppid;		   /* after go, before the signal */
	int32_t setsid_ret, setsid_err, sid_after; /* D, E: setsid() after go */
	int32_t sigs;				   /* SIGUSR1 handler runs after the send */
	int32_t kid_status;			   /* C: D's wait status, -1 if it hung */
	uint32_t reported;			   /* ids written */
	uint32_t done;				   /* everything written */
};

struct shared {
	uint32_t sent; /* R: 1 once kill(-B, SIGUSR1) has returned */
	struct rep c, d, e;
};

static struct shared *sh;
static pid_t root, b_pid;
static volatile sig_atomic_t usr1_count;

static void on_usr1(int sig)
{
	(void)sig;
	usr1_count++;
}

static void put(uint32_t *flag, uint32_t v)
{
	__atomic_store_n(flag, v, __ATOMIC_SEQ_CST);
}

static uint32_t get(uint32_t *flag)
{
	return __atomic_load_n(flag, __ATOMIC_SEQ_CST);
}

static void tick(void)
{
	struct timespec ts = {0, 1000 * 1000};

	nanosleep(&ts, NULL);
}

/* Waits until *FLAG is non-zero or the monotonic time DEADLINE: its value. */
static uint32_t wait_flag(uint32_t *flag, double deadline)
{
	uint32_t v;

	while (!(v = get(flag)) && wl_now() < deadline)
		tick();
	return v;
}

/* Waits for PID until DEADLINE; past it kills PID and reaps it. Its wait
 * status, or -1 if it had to be killed (or could not be waited for). */
static int reap(pid_t pid, double deadline)
{
	int st = 0;
	pid_t r;

	while ((r = waitpid(pid, &st, WNOHANG)) == 0 && wl_now() < deadline)
		tick();
	if (r == pid)
		return st;
	if (r == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
	}
	return -1;
}

/* Like wl_wait_go, but stops waiting if the parent is no longer PARENT (so a
 * wrong restore cannot leave it polling for ever once R is gone). */
static void child_wait_go(pid_t parent)
{
	char p[4200];
	struct timespec ts = {0, 5 * 1000 * 1000};

	struct stat st;

	wl_path("go", p, sizeof(p));
	while (stat(p, &st) != 0 && getppid() == parent)
		nanosleep(&ts, NULL);
}

/* After go: the child's ids, as it sees them. */
static void report_ids(struct rep *r)
{
	r->sid = getsid(0);
	r->pgid = getpgrp();
	r->ppid = getppid();
	put(&r->reported, 1);
}

/* C, D, E after the ids: waits for R's signal, then records how many times
 * the handler ran; WANT is 1 for C, 0 for the others. */
static void report_sigs(struct rep *r, int want, double deadline)
{
	sigset_t pend;

	if (!wait_flag(&sh->sent, deadline)) {
		r->sigs = -1;
		return;
	}
	if (want) {
		while (usr1_count < want && wl_now() < deadline)
			tick();
	} else {
		/* the signal, had it been sent here, is pending since kill()
		 * returned: these syscalls return through its handler */
		sigpending(&pend);
		for (int i = 0; i < 20; i++)
			tick();
	}
	r->sigs = usr1_count;
}

/* A group leader in session B: setsid() must fail with EPERM. */
static void try_setsid(struct rep *r)
{
	errno = 0;
	r->setsid_ret = setsid();
	r->setsid_err = errno;
	r->sid_after = getsid(0);
}

static bool setsid_ok(const struct rep *r)
{
	return r->setsid_ret == -1 && r->setsid_err == EPERM && r->sid_after == b_pid;
}

/* Waits (5 s at most) until B's exit has handed this process to the root. */
static void wait_reparented(struct rep *r)
{
	double deadline = wl_now() + 5;

	while (getppid() != root && wl_now() < deadline)
		tick();
	put(&r->reparented, getppid() == root ? 1 : 2);
}

static void child_d(pid_t c)
{
	struct rep *r = &sh->d;
	double deadline;
	int ok;

	wl_on_signal(SIGUSR1, on_usr1);
	r->pid = getpid();
	put(&r->setup, setpgid(0, 0) ? 2 : 1);
	child_wait_go(c);
	deadline = wl_now() + 7;
	report_ids(r);
	try_setsid(r);
	report_sigs(r, 0, deadline);
	ok = r->sid == b_pid && r->pgid == r->pid && r->ppid == c && setsid_ok(r) && r->sigs == 0;
	put(&r->done, 1);
	_exit(ok ? 0 : 1);
}

static void child_c(void)
{
	struct rep *r = &sh->c;
	double deadline;
	pid_t self = getpid(), d;
	int ok;

	wl_on_signal(SIGUSR1, on_usr1);
	d = fork();
	if (d < 0)
		_exit(3);
	if (d == 0)
		child_d(self);
	r->pid = self;
	put(&r->setup, 1);
	wait_reparented(r);
	child_wait_go(root);
	deadline = wl_now() + 7;
	report_ids(r);
	report_sigs(r, 1, deadline);
	r->kid_status = reap(d, deadline);
	ok = r->sid == b_pid && r->pgid == b_pid && r->ppid == root && r->sigs == 1 &&
	     r->kid_status == 0;
	put(&r->done, 1);
	_exit(ok ? 0 : 1);
}

static void child_e(void)
{
	struct rep *r = &sh->e;
	double deadline;
	int ok;

	wl_on_signal(SIGUSR1, on_usr1);
	r->pid = getpid();
	put(&r->setup, setpgid(0, 0) ? 2 : 1);
	wait_reparented(r);
	child_wait_go(root);
	deadline = wl_now() + 7;
	report_ids(r);
	try_setsid(r);
	report_sigs(r, 0, deadline);
	ok =
	    r->sid == b_pid && r->pgid == r->pid && r->ppid == root && setsid_ok(r) && r->sigs == 0;
	put(&r->done, 1);
	_exit(ok ? 0 : 1);
}

/* B: leads a new session, forks C (and through it D) and E, waits until they
 * are set up, and exits: 0 if all of that went as planned. */
static void child_b(void)
{
	double deadline;
	pid_t self = getpid();

	if (setsid() != self || getsid(0) != self || getpgrp() != self)
		_exit(10);
	pid_t c = fork();
	if (c == 0)
		child_c();
	pid_t e = c < 0 ? -1 : fork();
	if (e == 0)
		child_e();
	if (c < 0 || e < 0)
		_exit(11);
	deadline = wl_now() + 5;
	if (wait_flag(&sh->c.setup, deadline) != 1 || wait_flag(&sh->d.setup, deadline) != 1 ||
	    wait_flag(&sh->e.setup, deadline) != 1)
		_exit(12);
	if (getpgid(sh->d.pid) != sh->d.pid || getpgid(sh->e.pid) != sh->e.pid ||
	    getpgid(c) != self)
		_exit(13);
	_exit(0);
}

/* The pids whose parent is R, from /proc (into KIDS, at most MAX): how many. */
static int root_children(pid_t *kids, int max)
{
	DIR *dir = opendir("/proc");
	struct dirent *de;
	int n = 0;

	if (!dir)
		return -1;
	while ((de = readdir(dir))) {
		char path[300], buf[512], *p;
		pid_t pid = atoi(de->d_name), ppid = 0;
		FILE *f;

		if (pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		f = fopen(path, "r");
		if (!f)
			continue;
		p = fgets(buf, sizeof(buf), f) ? strrchr(buf, ')') : NULL;
		fclose(f);
		if (p && sscanf(p + 1, " %*c %d", &ppid) == 1 && ppid == root && n < max)
			kids[n++] = pid;
	}
	closedir(dir);
	return n;
}

/* Kills and reaps whatever is still below R: its children, then what they
 * leave to R (R is a subreaper), until there is nothing left. */
static void cleanup(void)
{
	pid_t kids[16];
	int n;

	for (int round = 0; round < 10 && (n = root_children(kids, 16)) > 0; round++)
		for (int i = 0; i < n; i++) {
			kill(kids[i], SIGKILL);
			waitpid(kids[i], NULL, 0);
		}
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

static void setup_die(const char *what, int st)
{
	cleanup();
	wl_die("%s (status 0x%x)", what, st);
}

static void check_ids(const char *who, struct rep *r, pid_t want_pgid, pid_t want_ppid)
{
	char n[64];

	snprintf(n, sizeof(n), "%s_reported", who);
	if (!wl_check(n, get(&r->reported) == 1, "%s (pid %d) reported nothing", who, r->pid))
		return;
	snprintf(n, sizeof(n), "%s_sid", who);
	wl_check(n, r->sid == b_pid, "%s (pid %d): getsid(0) %d, want B's %d", who, r->pid, r->sid,
		 b_pid);
	snprintf(n, sizeof(n), "%s_not_session_leader", who);
	wl_check(n, r->sid != r->pid, "%s (pid %d) leads its session", who, r->pid);
	snprintf(n, sizeof(n), "%s_pgid", who);
	wl_check(n, r->pgid == want_pgid, "%s (pid %d): getpgrp() %d, want %d", who, r->pid,
		 r->pgid, want_pgid);
	snprintf(n, sizeof(n), "%s_ppid", who);
	wl_check(n, r->ppid == want_ppid, "%s (pid %d): getppid() %d, want %d", who, r->pid,
		 r->ppid, want_ppid);
}

static void check_setsid(const char *who, const struct rep *r)
{
	char n[64];

	snprintf(n, sizeof(n), "%s_setsid_eperm", who);
	wl_check(n, setsid_ok(r), "%s (pid %d): setsid() returned %d (%s), session now %d", who,
		 r->pid, r->setsid_ret, strerror(r->setsid_err), r->sid_after);
}

static void check_status(const char *name, pid_t pid, int st)
{
	wl_check(name, st == 0, "pid %d: %s 0x%x", pid,
		 st < 0 ? "still running after the time limit, killed; status" : "wait status", st);
}

int main(void)
{
	pid_t b, c, e, d, sid0, pgid0, kids[16];
	double deadline;
	int st = 0, n, sigs, e_st, c_st;
	bool b_kid = false;
	sigset_t chld, pending;

	wl_init();
	root = getpid();
	sid0 = getsid(0);
	pgid0 = getpgrp();
	if (prctl(PR_SET_CHILD_SUBREAPER, 1))
		wl_die("PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
	wl_on_signal(SIGUSR1, on_usr1);
	sh = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		wl_die("mmap: %s", strerror(errno));
	/* what a child that never reports leaves: all wrong */
	sh->c.sigs = sh->d.sigs = sh->e.sigs = -1;
	sh->c.kid_status = -1;

	b = fork();
	if (b < 0)
		wl_die("fork: %s", strerror(errno));
	b_pid = b; /* (B itself sets it from its own pid below; children inherit it) */
	if (b == 0) {
		b_pid = getpid();
		child_b();
	}
	st = reap(b, wl_now() + 10);
	if (st != 0)
		setup_die("B did not exit 0", st);
	c = sh->c.pid;
	d = sh->d.pid;
	e = sh->e.pid;
	/* C and E are R's children once B is gone: wait until they see it */
	deadline = wl_now() + 6;
	if (wait_flag(&sh->c.reparented, deadline) != 1 ||
	    wait_flag(&sh->e.reparented, deadline) != 1)
		setup_die("C or E was not reparented to R", 0);
	if (getsid(c) != b || getsid(d) != b || getsid(e) != b || getpgid(c) != b ||
	    getpgid(d) != d || getpgid(e) != e || getsid(0) != sid0 || getpgrp() != pgid0)
		setup_die("unexpected ids before the checkpoint", 0);
	printf("wl: R %d (session %d, group %d), B %d (gone), C %d, D %d, E %d\n", root, sid0,
	       pgid0, b, c, d, e);
	/* SIGCHLD blocked from here: no child exits until after `go`, so none
	 * may be pending then (a restore must not leave its helpers' behind) */
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	while (sigtimedwait(&chld, NULL, &(struct timespec){0, 0}) > 0)
		;
	wl_ready();
	wl_wait_go();
	deadline = wl_now() + 8;
	sigpending(&pending);
	wl_check("no_sigchld_pending", !sigismember(&pending, SIGCHLD),
		 "SIGCHLD is pending before any child has exited");
	sigprocmask(SIG_UNBLOCK, &chld, NULL);

	/* the ids, as each process sees them (a child that hangs must not
	 * keep the others from the signal test: they give up at go + 7 s) */
	wait_flag(&sh->c.reported, deadline - 5);
	wait_flag(&sh->d.reported, deadline - 5);
	wait_flag(&sh->e.reported, deadline - 5);
	check_ids("c", &sh->c, b, root);
	check_ids("d", &sh->d, d, c);
	check_ids("e", &sh->e, e, root);
	wl_check("root_sid", getsid(0) == sid0, "getsid(0) %d, was %d", getsid(0), sid0);
	wl_check("root_pgid", getpgrp() == pgid0, "getpgrp() %d, was %d", getpgrp(), pgid0);

	/* B's pid: free, no child of R, yet group B exists (C is in it) */
	errno = 0;
	n = kill(b, 0);
	wl_check("b_pid_free", n < 0 && errno == ESRCH, "kill(%d, 0): %d (%s)", b, n,
		 strerror(errno));
	errno = 0;
	n = waitpid(b, &st, WNOHANG);
	wl_check("b_not_waitable", n < 0 && errno == ECHILD, "waitpid(%d): %d (%s)", b, n,
		 strerror(errno));
	n = root_children(kids, 16);
	for (int i = 0; i < n; i++)
		b_kid |= kids[i] == b;
	wl_check("b_not_child", n >= 0 && !b_kid, "pid %d is among R's %d children", b, n);
	wl_check("root_children",
		 n == 2 && ((kids[0] == c && kids[1] == e) || (kids[0] == e && kids[1] == c)),
		 "R has %d children (%d, %d...), want C %d and E %d", n, n > 0 ? kids[0] : 0,
		 n > 1 ? kids[1] : 0, c, e);
	errno = 0;
	n = kill(-b, 0);
	wl_check("group_b_exists", n == 0, "kill(-%d, 0): %s", b, strerror(errno));

	/* a signal to group B reaches C only */
	errno = 0;
	n = kill(-b, SIGUSR1);
	wl_check("kill_group_b", n == 0, "kill(-%d, SIGUSR1): %s", b, strerror(errno));
	put(&sh->sent, 1);
	wait_flag(&sh->c.done, deadline);
	wait_flag(&sh->d.done, deadline);
	wait_flag(&sh->e.done, deadline);
	wl_check("c_got_signal", sh->c.sigs == 1, "C's handler ran %d times, want 1", sh->c.sigs);
	wl_check("d_no_signal", sh->d.sigs == 0, "D's handler ran %d times, want 0", sh->d.sigs);
	wl_check("e_no_signal", sh->e.sigs == 0, "E's handler ran %d times, want 0", sh->e.sigs);
	sigs = usr1_count;
	wl_check("root_no_signal", sigs == 0, "R's handler ran %d times, want 0", sigs);

	check_setsid("d", &sh->d);
	check_setsid("e", &sh->e);

	/* every process's own verdict */
	e_st = reap(e, deadline);
	c_st = reap(c, deadline);
	check_status("e_exit", e, e_st);
	check_status("c_exit", c, c_st);
	if (wl_check("c_reported_d", get(&sh->c.done) == 1, "C never reported D's status"))
		check_status("d_exit_seen_by_c", d, sh->c.kid_status);
	wl_check("no_more_children", waitpid(-1, &st, WNOHANG) < 0 && errno == ECHILD,
		 "an unexpected child");
	cleanup();
	wl_done();
}
