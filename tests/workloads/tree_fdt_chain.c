/* tree_fdt_chain.c: one fd table shared down a chain of clone(CLONE_FILES)
 * kids, and a copy of it in a kid of a sharer (the shape of CRIU's zdtm
 * fdt_shared):
 *   - R, the root (a child subreaper), with the table T;
 *   - C: clone(CLONE_FILES) of R (T), and it has kids of its own:
 *       - D: clone(CLONE_FILES) of C (T again, two levels down);
 *       - E: a plain fork of C (a copy of T, then its own);
 *   - F: clone(CLONE_FILES) of R (T).
 * Before the checkpoint: R opens a.dat at fd 100 before any kid exists, E
 * opens e.dat at fd 101 in its own table, R opens b.dat at fd 102 once E
 * exists (so E has 100 but not 102).
 * After `go`, R checks: kcmp(KCMP_FILES) says R, C, D and F hold one table
 * and E another; the parents and fds 100-102 of each as /proc shows them;
 * then, over command pipes (in the table, so every sharer holds them), D
 * opens c.dat at fd 110 and R finds it on its own fd 110; F closes fd 100
 * and R's fd 100 is gone while E's is still there; E opens e2.dat at fd
 * 111 and R has no fd 111; C checks its own kcmp against D. R then kills
 * every kid by pid and reaps them all. */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/kcmp.h>

#define WAIT_MS 5000

enum { SLOT_C, SLOT_D, SLOT_E, SLOT_F, NR_SLOTS };
static const char *slot_name[NR_SLOTS] = {"C", "D", "E", "F"};

static int cmd[NR_SLOTS][2], res[NR_SLOTS][2];
static pid_t pid_of[NR_SLOTS];

static void send_byte(int fd, char c)
{
	if (write(fd, &c, 1) != 1)
		wl_die("sequencing write: %s", strerror(errno));
}

/* The byte that arrives on fd within WAIT_MS, or 0. */
static char recv_byte(int fd)
{
	struct pollfd pf = {.fd = fd, .events = POLLIN};
	char c = 0;

	if (poll(&pf, 1, WAIT_MS) != 1 || read(fd, &c, 1) != 1)
		return 0;
	return c;
}

static int open_at(const char *path, int fd)
{
	int tmp = open(path, O_RDWR | O_CREAT, 0644);

	if (tmp < 0 || dup2(tmp, fd) != fd)
		return -1;
	close(tmp);
	return 0;
}

static bool same_table(pid_t a, pid_t b)
{
	return syscall(SYS_kcmp, a, b, KCMP_FILES, 0, 0) == 0;
}

/* ---- in a kid ---- */

/* The one thing each kid does when told after the checkpoint. */
static char act(int slot)
{
	switch (slot) {
	case SLOT_C:
		return same_table(getpid(), pid_of[SLOT_D]) && !same_table(getpid(), pid_of[SLOT_E])
			   ? 'k'
			   : 'x';
	case SLOT_D:
		return open_at("c.dat", 110) ? 'x' : 'k';
	case SLOT_E:
		return open_at("e2.dat", 111) ? 'x' : 'k';
	case SLOT_F:
		return close(100) ? 'x' : 'k';
	}
	return 'x';
}

static void serve(int slot)
{
	char c;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	send_byte(res[slot][1], 'u');
	while ((c = recv_byte(cmd[slot][0])) != 'q')
		if (c == 'a')
			send_byte(res[slot][1], act(slot));
	_exit(0);
}

/* A kid on this process's table (CLONE_FILES) or on a copy of it. */
static pid_t spawn(int slot, bool share)
{
	long pid = syscall(SYS_clone, (share ? CLONE_FILES : 0) | SIGCHLD, 0, NULL, NULL, 0);

	if (pid < 0)
		wl_die("clone of %s: %s", slot_name[slot], strerror(errno));
	if (pid == 0) {
		if (slot == SLOT_C) {
			pid_of[SLOT_D] = spawn(SLOT_D, true);
			pid_of[SLOT_E] = spawn(SLOT_E, false);
			/* R learns D's and E's pids from them (res) */
		}
		if (slot == SLOT_E && open_at("e.dat", 101))
			_exit(3);
		pid_of[slot] = getpid();
		serve(slot);
	}
	return (pid_t)pid;
}

/* ---- in R ---- */

static pid_t ppid_of(pid_t pid)
{
	char path[64], buf[512], *e;
	int pp = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (f && fgets(buf, sizeof(buf), f) && (e = strrchr(buf, ')')))
		sscanf(e + 2, "%*c %d", &pp);
	if (f)
		fclose(f);
	return pp;
}

/* Whether pid has fd open, on a file named name (NULL: any). */
static bool has_fd(pid_t pid, int fd, const char *name)
{
	char path[64], link[4096];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/fd/%d", pid, fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return false;
	link[n] = 0;
	return !name ||
	       (strlen(link) >= strlen(name) && !strcmp(link + strlen(link) - strlen(name), name));
}

/* The kids' pids: C and F are R's; D and E are found among C's kids. */
static void find_grandkids(void)
{
	char path[64];
	FILE *f;
	int a = 0, b = 0;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", pid_of[SLOT_C], pid_of[SLOT_C]);
	f = fopen(path, "r");
	if (!f || fscanf(f, "%d %d", &a, &b) != 2)
		wl_die("cannot read the kids of C (pid %d)", pid_of[SLOT_C]);
	fclose(f);
	/* D was made first */
	pid_of[SLOT_D] = a < b ? a : b;
	pid_of[SLOT_E] = a < b ? b : a;
}

static void check_shape(void)
{
	pid_t me = getpid();
	static const bool shares[NR_SLOTS] = {true, true, false, true};
	static const int parent_slot[NR_SLOTS] = {-1, SLOT_C, SLOT_C, -1};

	for (int s = 0; s < NR_SLOTS; s++) {
		char name[64];
		pid_t want = parent_slot[s] < 0 ? me : pid_of[parent_slot[s]];
		snprintf(name, sizeof(name), "%s_table", slot_name[s]);
		wl_check(name, same_table(me, pid_of[s]) == shares[s],
			 "kcmp(KCMP_FILES) of R and %s (pid %d): %s, expected %s", slot_name[s],
			 pid_of[s], shares[s] ? "other tables" : "one table",
			 shares[s] ? "one table" : "other tables");
		snprintf(name, sizeof(name), "%s_parent", slot_name[s]);
		wl_check(name, ppid_of(pid_of[s]) == want, "pid %d has parent %d, expected %d",
			 pid_of[s], ppid_of(pid_of[s]), want);
	}
	wl_check("R_fds",
		 has_fd(me, 100, "/a.dat") && has_fd(me, 102, "/b.dat") && !has_fd(me, 101, NULL),
		 "R: fd 100 a.dat %d, fd 102 b.dat %d, fd 101 %d (expected 1 1 0)",
		 has_fd(me, 100, "/a.dat"), has_fd(me, 102, "/b.dat"), has_fd(me, 101, NULL));
	wl_check("E_fds",
		 has_fd(pid_of[SLOT_E], 100, "/a.dat") && has_fd(pid_of[SLOT_E], 101, "/e.dat") &&
		     !has_fd(pid_of[SLOT_E], 102, NULL),
		 "E: fd 100 a.dat %d, fd 101 e.dat %d, fd 102 %d (expected 1 1 0)",
		 has_fd(pid_of[SLOT_E], 100, "/a.dat"), has_fd(pid_of[SLOT_E], 101, "/e.dat"),
		 has_fd(pid_of[SLOT_E], 102, NULL));
}

static bool ask(int slot)
{
	char name[64], got;

	send_byte(cmd[slot][1], 'a');
	got = recv_byte(res[slot][0]);
	snprintf(name, sizeof(name), "%s_acts", slot_name[slot]);
	return wl_check(name, got == 'k', "%s (pid %d) answered 0x%x", slot_name[slot],
			pid_of[slot], (unsigned char)got);
}

static bool same_file(int fd, const char *path)
{
	struct stat a, b;

	return !fstat(fd, &a) && !stat(path, &b) && a.st_ino == b.st_ino && a.st_dev == b.st_dev;
}

static void check_sharing(void)
{
	pid_t me = getpid();

	if (ask(SLOT_D))
		wl_check("D_open_seen_by_R", same_file(110, "c.dat"),
			 "fd 110 that D opened is not c.dat in R");
	if (ask(SLOT_F))
		wl_check("F_close_seen_by_R",
			 fcntl(100, F_GETFD) < 0 && errno == EBADF &&
			     has_fd(pid_of[SLOT_E], 100, "/a.dat"),
			 "after F closed fd 100: R's fd 100 %s, E's %s",
			 fcntl(100, F_GETFD) < 0 ? "gone" : "still open",
			 has_fd(pid_of[SLOT_E], 100, NULL) ? "open" : "gone");
	if (ask(SLOT_E))
		wl_check("E_open_not_in_R",
			 !has_fd(me, 111, NULL) && has_fd(pid_of[SLOT_E], 111, "/e2.dat"),
			 "fd 111 E opened: in R %d, in E %d (expected 0 1)", has_fd(me, 111, NULL),
			 has_fd(pid_of[SLOT_E], 111, "/e2.dat"));
	ask(SLOT_C);
}

static void end_all(void)
{
	for (int s = 0; s < NR_SLOTS; s++)
		if (pid_of[s] > 0)
			kill(pid_of[s], SIGKILL);
	alarm(20);
	while (wait(NULL) > 0 || errno == EINTR)
		;
}

int main(void)
{
	wl_init();
	if (prctl(PR_SET_CHILD_SUBREAPER, 1))
		wl_die("PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
	for (int s = 0; s < NR_SLOTS; s++)
		if (pipe2(cmd[s], O_CLOEXEC) || pipe2(res[s], O_CLOEXEC))
			wl_die("pipe2: %s", strerror(errno));
	if (open_at("a.dat", 100))
		wl_die("a.dat: %s", strerror(errno));
	pid_of[SLOT_C] = spawn(SLOT_C, true);
	pid_of[SLOT_F] = spawn(SLOT_F, true);
	for (int s = 0; s < NR_SLOTS; s++)
		if (recv_byte(res[s][0]) != 'u')
			wl_die("%s did not start", slot_name[s]);
	find_grandkids();
	if (open_at("b.dat", 102))
		wl_die("b.dat: %s", strerror(errno));
	wl_ready();
	wl_wait_go();
	check_shape();
	check_sharing();
	end_all();
	wl_done();
}
