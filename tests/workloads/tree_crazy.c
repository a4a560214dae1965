/* tree_crazy.c: a process tree grown at random from a fixed seed (argv[1]),
 * the shapes shells, daemons and supervisors leave behind. The root R is a
 * child subreaper and steers every other process through a socket pair of
 * its own: a process forks (one in three with CLONE_PARENT, so that the new
 * one is its sibling), calls setsid(), makes its own group or joins the
 * group of another process of its session, becomes a child subreaper or
 * stops being one, or exits, then reaped by its parent (told by R) or left
 * a zombie. An orphan goes to its nearest subreaper, as the kernel decides.
 *
 * Before `ready` every process records its pid, parent, session, group and
 * child subreaper flag; R records each zombie's parent and ids from /proc.
 * After `go` each live process checks its own (getppid, getsid, getpgrp,
 * PR_GET_CHILD_SUBREAPER) and R checks every process: the live ones through
 * getsid, getpgid and /proc/PID/stat, the zombies still zombies of the same
 * parent with the same ids, and its own subreaper flag. A process that cryo
 * left out, or restored in another session or group, under another parent
 * or without its flag, fails a check naming its slot and pid. R then kills every
 * process by pid and reaps them all.
 *
 * With argv[2] "sessions" the tree is a wide one of the shape job control
 * never makes but test suites do: up to 400 processes, no setpgid() (every
 * group is one a setsid() made), and every process holds the socket pairs
 * of all slots, both ends (800 fds shared by all, as an fd table inherited
 * from the root and never trimmed). With argv[2] "lrand48" the tree is the
 * one CRIU's zdtm test session03 grows, choice for choice from lrand48()'s
 * default seed: 409 slots, fork (half with CLONE_PARENT) from one of the
 * newest, exit reaped or left a zombie, subreaper on or off, setsid().
 * With argv[2] "session02" it is the fixed tree of zdtm's session02: setsid
 * and CLONE_PARENT kids of leaders that then exit and are reaped, a
 * subreaper set and cleared around a death, late setsid()s. */
#include "wl.h"

#include <errno.h>
#include <signal.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_PROCS 409

enum op {
	OP_FORK,
	OP_DIE,
	OP_SUBREAPER,
	OP_SETSID,
	OP_OWN_GROUP,
	OP_JOIN_GROUP,
	OP_RECORD,
	OP_CHECK,
	OP_REAP
};

static const int op_weight[OP_JOIN_GROUP + 1] = {10, 4, 4, 6, 3, 5};
static const int sessions_weight[OP_JOIN_GROUP + 1] = {10, 4, 10, 7, 0, 0};
static const int *weight = op_weight;
static int max_procs = 40, max_ops = 600;
static bool keep_all_fds; /* every process keeps every slot's pair */
static bool zdtm_choices; /* the choices of session03, from lrand48() */

/* A fixed tree: each step is done by slot `slot` (a fork makes the next
 * slot; an exit is reaped by the exiting one's parent). */
struct step {
	char op; /* 'f' fork ('p' with CLONE_PARENT), 's' setsid, 'r' subreaper arg, 'x' exit */
	int8_t slot, arg;
};
static const struct step session02_steps[] = {
    {'r', 0, 1}, {'s', 0, 0}, {'f', 0, 0}, {'f', 1, 0}, {'s', 2, 0}, {'p', 2, 0},
    {'x', 2, 0}, {'f', 3, 0}, {'f', 4, 0}, {'f', 5, 0}, {'f', 5, 0}, {'s', 7, 0},
    {'p', 7, 0}, {'p', 7, 0}, {'x', 7, 0}, {'f', 9, 0}, {'r', 1, 1}, {'x', 9, 0},
    {'r', 1, 0}, {'x', 4, 0}, {'s', 1, 0}, {'s', 5, 0},
};
static const struct step *steps; /* NULL: choices at random */
static size_t nr_steps;

struct cmd {
	int32_t op, arg, flag;
};

/* One process of the tree, as it recorded itself before the checkpoint. */
struct proc {
	int32_t pid, ppid, sid, pgid;
	int32_t dead; /* 1: exited and reaped; 2: a zombie */
	int32_t subreaper;
};

static struct proc *procs; /* shared: MAP_SHARED | MAP_ANONYMOUS */
static int nr_procs;
static int sk[MAX_PROCS][2]; /* [0] the process's end, [1] R's */
static uint64_t rng;

static uint32_t rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng % n);
}

/* ---- in a process of the tree ---- */

static void serve(int slot);

static int32_t do_fork(const struct cmd *c)
{
	/* a raw clone is a fork; with CLONE_PARENT the new one is a sibling */
	long pid = syscall(SYS_clone, (c->flag ? CLONE_PARENT : 0) | SIGCHLD, 0, NULL, NULL, 0);

	if (pid == 0)
		serve(c->arg);
	return pid < 0 ? -errno : (int32_t)pid;
}

static int32_t subreaper(void)
{
	int on = -1;

	prctl(PR_GET_CHILD_SUBREAPER, &on);
	return on;
}

/* Bit per id that differs from the record (1 pid, 2 ppid, 4 sid, 8 pgid,
 * 16 the child subreaper flag). */
static int32_t check_self(const struct proc *p)
{
	return (getpid() != p->pid) | (getppid() != p->ppid) << 1 | (getsid(0) != p->sid) << 2 |
	       (getpgrp() != p->pgid) << 3 | (subreaper() != p->subreaper) << 4;
}

static int32_t do_op(int slot, const struct cmd *c)
{
	struct proc *p = &procs[slot];

	switch (c->op) {
	case OP_FORK:
		return do_fork(c);
	case OP_DIE:
		_exit(c->arg);
	case OP_SUBREAPER:
		return prctl(PR_SET_CHILD_SUBREAPER, c->arg) ? -errno : 0;
	case OP_SETSID:
		return setsid() < 0 ? -errno : 0;
	case OP_OWN_GROUP:
		return setpgid(0, 0) ? -errno : 0;
	case OP_JOIN_GROUP:
		return setpgid(0, c->arg) ? -errno : 0;
	case OP_RECORD:
		p->pid = getpid();
		p->ppid = getppid();
		p->sid = getsid(0);
		p->pgid = getpgrp();
		p->subreaper = subreaper();
		return 0;
	case OP_CHECK:
		return check_self(p);
	case OP_REAP:
		return waitpid(c->arg, NULL, 0) == c->arg ? 0 : -errno;
	}
	return -EINVAL;
}

static void serve(int slot)
{
	struct cmd c;

	for (;;) {
		ssize_t n = read(sk[slot][0], &c, sizeof(c));
		if (n < 0 && errno == EINTR)
			continue;
		if (n != sizeof(c))
			_exit(3); /* R is gone */
		int32_t r = do_op(slot, &c);
		if (write(sk[slot][0], &r, sizeof(r)) != sizeof(r))
			_exit(3);
	}
}

/* ---- in R ---- */

static int32_t send_cmd(int slot, int op, int arg, int flag)
{
	struct cmd c = {op, arg, flag};
	int32_t r;

	if (write(sk[slot][1], &c, sizeof(c)) != sizeof(c))
		wl_die("slot %d: cannot send op %d: %s", slot, op, strerror(errno));
	for (;;) {
		ssize_t n = read(sk[slot][1], &r, sizeof(r));
		if (n == sizeof(r))
			return r;
		if (n < 0 && errno == EINTR)
			continue;
		wl_die("slot %d (pid %d): no answer to op %d", slot, procs[slot].pid, op);
	}
}

/* The state letter and parent of PID from /proc (0 if it is gone). */
static char proc_state(pid_t pid, pid_t *ppid, pid_t *pgid, pid_t *sid)
{
	char path[64], buf[512], st = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fgets(buf, sizeof(buf), f)) {
		char *e = strrchr(buf, ')');
		int pp = 0, pg = 0, s = 0;
		if (e && sscanf(e + 2, "%c %d %d %d", &st, &pp, &pg, &s) == 4) {
			*ppid = pp;
			*pgid = pg;
			*sid = s;
		} else {
			st = 0;
		}
	}
	fclose(f);
	return st;
}

static int slot_of(pid_t pid)
{
	for (int i = 0; i < nr_procs; i++)
		if (procs[i].pid == pid && !procs[i].dead)
			return i;
	return -1;
}

/* Waits until SLOT is a zombie; with REAP its parent (R or a slot) reaps it. */
static void wait_dead(int slot, bool reap)
{
	pid_t pid = procs[slot].pid, pp = 0, pg, s;
	double end = wl_now() + 10;

	while (proc_state(pid, &pp, &pg, &s) != 'Z') {
		if (wl_now() > end)
			wl_die("slot %d (pid %d) did not exit", slot, pid);
		usleep(1000);
	}
	procs[slot].dead = 2;
	if (!reap)
		return;
	int parent = slot_of(pp);
	if (pp == getpid() ? waitpid(pid, NULL, 0) != pid
			   : parent < 0 || send_cmd(parent, OP_REAP, pid, 0))
		wl_die("slot %d (pid %d): its parent %d cannot reap it", slot, pid, pp);
	procs[slot].dead = 1;
}

static int live_slot(void)
{
	int live[MAX_PROCS], n = 0;

	for (int i = 0; i < nr_procs; i++)
		if (!procs[i].dead)
			live[n++] = i;
	return n ? live[rnd(n)] : -1;
}

/* A slot to fork from: mostly one of the newest, for a deep tree. */
static int fork_slot(void)
{
	int i = nr_procs * 9 / 10 + (int)rnd(nr_procs / 10 + 1);

	if (i >= nr_procs)
		i = nr_procs - 1;
	while (i > 0 && procs[i].dead)
		i--;
	return procs[i].dead ? live_slot() : i;
}

static void grow_fork(void)
{
	int from = fork_slot(), slot = nr_procs;
	int32_t pid;

	if (from < 0)
		return;
	nr_procs++;
	pid = send_cmd(from, OP_FORK, slot, rnd(3) == 0);
	if (pid < 0)
		wl_die("slot %d: fork failed: %s", from, strerror(-pid));
	procs[slot].pid = pid;
	if (getenv("TREE_CRAZY_TRACE"))
		fprintf(stderr, "slot %d (pid %d) forks slot %d: pid %d\n", from, procs[from].pid,
			slot, pid);
}

static void grow_die(int slot)
{
	bool reap = rnd(2);
	struct cmd c = {OP_DIE, reap ? 2 : 0, 0};

	if (write(sk[slot][1], &c, sizeof(c)) != sizeof(c))
		wl_die("slot %d: cannot send exit: %s", slot, strerror(errno));
	wait_dead(slot, reap);
}

/* A group of the session of SLOT other than its own, if there is one. */
static pid_t other_group(int slot)
{
	pid_t sid = getsid(procs[slot].pid), mine = getpgid(procs[slot].pid);
	pid_t cand[MAX_PROCS];
	int n = 0;

	for (int i = 0; i < nr_procs; i++) {
		pid_t g = procs[i].dead ? -1 : getpgid(procs[i].pid);
		if (g > 0 && g != mine && getsid(procs[i].pid) == sid)
			cand[n++] = g;
	}
	return n ? cand[rnd(n)] : 0;
}

/* A call may fail as the kernel's rules say (a session leader cannot change
 * its group, a group leader cannot make a session): EPERM, and nothing else. */
static void expect(int slot, const char *what, int32_t r)
{
	if (r && r != -EPERM)
		wl_die("slot %d (pid %d): %s failed: %s", slot, procs[slot].pid, what,
		       strerror(-r));
}

static void grow_one(void)
{
	int op = 0, sum = 0, m;
	int slot = live_slot();

	for (int i = 0; i <= OP_JOIN_GROUP; i++)
		sum += weight[i];
	m = (int)rnd(sum);
	while (m >= weight[op])
		m -= weight[op++];
	if (op == OP_FORK || slot < 0) {
		if (nr_procs < max_procs)
			grow_fork();
		return;
	}
	switch (op) {
	case OP_DIE:
		if (slot != 0) /* slot 0 stays: the tree keeps a trunk */
			grow_die(slot);
		return;
	case OP_SUBREAPER:
		procs[slot].subreaper = rnd(2);
		send_cmd(slot, OP_SUBREAPER, procs[slot].subreaper, 0);
		return;
	case OP_SETSID: /* EPERM while a group has its pid: the kernel's rule */
		expect(slot, "setsid", send_cmd(slot, OP_SETSID, 0, 0));
		return;
	case OP_OWN_GROUP:
		expect(slot, "setpgid(0, 0)", send_cmd(slot, OP_OWN_GROUP, 0, 0));
		return;
	case OP_JOIN_GROUP: {
		pid_t g = other_group(slot);
		if (g)
			expect(slot, "setpgid(0, G)", send_cmd(slot, OP_JOIN_GROUP, g, 0));
		return;
	}
	}
}

/* One choice the way session03 makes it: a coin (CLONE_PARENT, or the
 * subreaper flag), an operation by weight (fork 10, exit reaped 3, exit
 * left a zombie 1, subreaper 10, setsid 7, counted as it counts them), and
 * a slot (never slot 0 to exit or change its flag; to fork, one of the
 * newest tenth, or the next older live one). */
static void grow_lrand(void)
{
	static const int w[] = {10, 3, 1, 10, 7};
	int flag = (int)(lrand48() % 2), op = 0, m = (int)(lrand48() % 31), id;

	while (op < 4 && m > w[op])
		m -= w[op++];
	if (op == 0) {
		id = nr_procs * 9 / 10 + (int)(lrand48() % nr_procs) / 10;
		while (id > 0 && procs[id].dead)
			id--;
	} else if (op == 4) {
		id = (int)(lrand48() % nr_procs);
	} else if (nr_procs == 1) {
		return;
	} else {
		id = (int)(lrand48() % (nr_procs - 1)) + 1;
	}
	if (procs[id].dead)
		return;
	if (op == 0) {
		int32_t pid = send_cmd(id, OP_FORK, nr_procs, flag);
		if (pid < 0)
			wl_die("slot %d: fork failed: %s", id, strerror(-pid));
		procs[nr_procs++].pid = pid;
	} else if (op == 1 || op == 2) {
		struct cmd c = {OP_DIE, op == 1 ? 2 : 0, 0};
		if (write(sk[id][1], &c, sizeof(c)) != sizeof(c))
			wl_die("slot %d: cannot send exit: %s", id, strerror(errno));
		wait_dead(id, op == 1);
	} else if (op == 3) {
		procs[id].subreaper = flag;
		send_cmd(id, OP_SUBREAPER, flag, 0);
	} else if (getsid(procs[id].pid) != procs[id].pid) {
		expect(id, "setsid", send_cmd(id, OP_SETSID, 0, 0));
	}
}

static void grow_step(const struct step *st)
{
	int32_t r;

	switch (st->op) {
	case 'f':
	case 'p':
		r = send_cmd(st->slot, OP_FORK, nr_procs, st->op == 'p');
		if (r < 0)
			wl_die("slot %d: fork failed: %s", st->slot, strerror(-r));
		procs[nr_procs++].pid = r;
		return;
	case 's':
		expect(st->slot, "setsid", send_cmd(st->slot, OP_SETSID, 0, 0));
		return;
	case 'r':
		procs[st->slot].subreaper = st->arg;
		send_cmd(st->slot, OP_SUBREAPER, st->arg, 0);
		return;
	case 'x': {
		struct cmd c = {OP_DIE, 2, 0};
		if (write(sk[st->slot][1], &c, sizeof(c)) != sizeof(c))
			wl_die("slot %d: cannot send exit: %s", st->slot, strerror(errno));
		wait_dead(st->slot, true);
	}
	}
}

static void record_all(void)
{
	for (int i = 0; i < nr_procs; i++) {
		struct proc *p = &procs[i];
		pid_t pp, pg, s;
		if (!p->dead) {
			send_cmd(i, OP_RECORD, 0, 0);
		} else if (p->dead == 2) {
			if (proc_state(p->pid, &pp, &pg, &s) != 'Z')
				wl_die("zombie slot %d (pid %d) is gone", i, p->pid);
			p->ppid = pp;
			p->pgid = pg;
			p->sid = s;
		}
	}
}

static void check_all(void)
{
	int live = 0, zombies = 0;

	for (int i = 0; i < nr_procs; i++) {
		struct proc *p = &procs[i];
		char name[64];
		pid_t pp = -1, pg = -1, s = -1;
		char st;
		if (p->dead == 1)
			continue;
		st = proc_state(p->pid, &pp, &pg, &s);
		snprintf(name, sizeof(name), "slot%d_%s", i, p->dead ? "zombie" : "ids");
		if (p->dead == 2) {
			zombies++;
			wl_check(name, st == 'Z' && pp == p->ppid && pg == p->pgid && s == p->sid,
				 "pid %d: state %c ppid %d pgid %d sid %d, expected Z %d %d %d",
				 p->pid, st ? st : '-', pp, pg, s, p->ppid, p->pgid, p->sid);
			continue;
		}
		live++;
		if (!wl_check(name,
			      st && st != 'Z' && pp == p->ppid && pg == p->pgid && s == p->sid,
			      "pid %d: state %c ppid %d pgid %d sid %d, expected %d %d %d", p->pid,
			      st ? st : '-', pp, pg, s, p->ppid, p->pgid, p->sid))
			continue;
		snprintf(name, sizeof(name), "slot%d_own_view", i);
		int32_t bad = send_cmd(i, OP_CHECK, 0, 0);
		wl_check(name, bad == 0, "pid %d sees ids differing from its record (mask %d)",
			 p->pid, bad);
	}
	wl_check("root_subreaper", subreaper() == 1, "the root's child subreaper flag is %d",
		 subreaper());
	wl_check("tree_size", live >= 5, "only %d live processes (and %d zombies)", live, zombies);
	printf("wl: %d live processes, %d zombies\n", live, zombies);
}

static void kill_all(void)
{
	for (int i = 0; i < nr_procs; i++)
		if (!procs[i].dead && procs[i].pid > 0)
			kill(procs[i].pid, SIGKILL);
	alarm(20);
	while (wait(NULL) > 0 || errno == EINTR)
		;
}

int main(int argc, char **argv)
{
	wl_init();
	rng = 0x9e3779b97f4a7c15ULL * (uint64_t)(argc > 1 ? atoi(argv[1]) + 1 : 1);
	if (argc > 2 && !strcmp(argv[2], "sessions")) {
		weight = sessions_weight;
		max_procs = MAX_PROCS;
		max_ops = 6000;
		keep_all_fds = true;
	} else if (argc > 2 && !strcmp(argv[2], "session02")) {
		steps = session02_steps;
		nr_steps = sizeof(session02_steps) / sizeof(*steps);
	} else if (argc > 2 && !strcmp(argv[2], "lrand48")) {
		max_procs = MAX_PROCS;
		max_ops = 1 << 30;
		keep_all_fds = zdtm_choices = true;
	}
	procs = mmap(NULL, sizeof(*procs) * MAX_PROCS, PROT_READ | PROT_WRITE,
		     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (procs == MAP_FAILED)
		wl_die("mmap: %s", strerror(errno));
	if (prctl(PR_SET_CHILD_SUBREAPER, 1))
		wl_die("PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
	for (int i = 0; i < max_procs; i++)
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sk[i]))
			wl_die("socketpair: %s", strerror(errno));
	nr_procs = 1;
	pid_t first = fork();
	if (first == 0) {
		for (int i = 0; i < max_procs && !keep_all_fds; i++)
			close(sk[i][1]);
		serve(0);
	}
	procs[0].pid = first;
	for (int i = 0; i < max_procs && !keep_all_fds; i++)
		close(sk[i][0]);
	for (size_t n = 0; n < nr_steps; n++)
		grow_step(&steps[n]);
	for (int n = 0; !steps && n < max_ops && nr_procs < max_procs; n++)
		if (zdtm_choices)
			grow_lrand();
		else
			grow_one();
	record_all();
	wl_ready();
	wl_wait_go();
	check_all();
	kill_all();
	wl_done();
}
