/* procattrs_ids.c: identities that are not the same everywhere in a process,
 * and the process's audit and membarrier state:
 *   - main (root): loginuid 4242, written to /proc/self/loginuid; membarrier
 *     registrations PRIVATE_EXPEDITED, GLOBAL_EXPEDITED and (if the kernel
 *     has them) PRIVATE_EXPEDITED_SYNC_CORE and PRIVATE_EXPEDITED_RSEQ;
 *   - thread "user": with the raw syscalls (per thread, unlike glibc's,
 *     which change every thread), supplementary groups 7 and 8, gids
 *     1001/1002/1003, uids 2001/2002/2003, fsuid 2003 (its saved uid), fsgid
 *     1004 (set while it could): it has no
 *     capability left;
 *   - thread "euid": uids 0/3000/0: no effective capability, every
 *     permitted one kept (its saved uid is root);
 *   - thread "root": stays as main.
 * After `go` each thread checks its ids, groups and capability sets, and
 * "euid" becomes root again (setresuid(-1, 0, -1)), which only works if its
 * saved uid and permitted set came back; main checks loginuid, the
 * registrations (MEMBARRIER_CMD_GET_REGISTRATIONS) and that an expedited
 * private barrier is allowed. */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define LOGINUID 4242
#ifndef MEMBARRIER_CMD_GET_REGISTRATIONS
#define MEMBARRIER_CMD_GET_REGISTRATIONS (1 << 9)
#endif

struct ids {
	const char *name;
	unsigned uid[3], gid[3], fsuid, fsgid;
	int ngroups;
	unsigned groups[4];
	bool caps_eff, caps_prm; /* whether the sets are full (else empty) */
};

static struct ids th[] = {
    {"user", {2001, 2002, 2003}, {1001, 1002, 1003}, 2003, 1004, 2, {7, 8}, false, false},
    {"euid", {0, 3000, 0}, {0, 0, 0}, 3000, 0, -1, {0}, false, true},
    {"root", {0, 0, 0}, {0, 0, 0}, 0, 0, -1, {0}, true, true},
};
#define NT ((int)(sizeof(th) / sizeof(th[0])))

static pthread_barrier_t set_barrier, go_barrier;
static int main_ngroups;
static gid_t main_groups[64];
static uint64_t full_caps; /* main's effective set: what "full" means here */

static long membarrier(int cmd)
{
	return syscall(SYS_membarrier, cmd, 0, 0);
}

static uint64_t caps(bool effective)
{
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &h, d))
		wl_die("capget: %s", strerror(errno));
	return effective ? d[0].effective | (uint64_t)d[1].effective << 32
			 : d[0].permitted | (uint64_t)d[1].permitted << 32;
}

static void set_ids(struct ids *t)
{
	if (t->ngroups >= 0 && syscall(SYS_setgroups, t->ngroups, t->groups))
		wl_die("%s: setgroups: %s", t->name, strerror(errno));
	/* setfs*id report the old value, never an error: checked below */
	if (syscall(SYS_setresgid, t->gid[0], t->gid[1], t->gid[2]))
		wl_die("%s: setresgid: %s", t->name, strerror(errno));
	syscall(SYS_setfsgid, t->fsgid);
	if (syscall(SYS_setresuid, t->uid[0], t->uid[1], t->uid[2]))
		wl_die("%s: setresuid: %s", t->name, strerror(errno));
	syscall(SYS_setfsuid, t->fsuid);
}

static void check_ids(const struct ids *t, const char *when)
{
	unsigned r[3], g[3];
	gid_t groups[64];
	char name[96];
	int n;

	syscall(SYS_getresuid, &r[0], &r[1], &r[2]);
	syscall(SYS_getresgid, &g[0], &g[1], &g[2]);
	snprintf(name, sizeof(name), "%s_%s_uids", t->name, when);
	wl_check(name, !memcmp(r, t->uid, sizeof(r)), "uids %u/%u/%u, want %u/%u/%u", r[0], r[1],
		 r[2], t->uid[0], t->uid[1], t->uid[2]);
	snprintf(name, sizeof(name), "%s_%s_gids", t->name, when);
	wl_check(name, !memcmp(g, t->gid, sizeof(g)), "gids %u/%u/%u, want %u/%u/%u", g[0], g[1],
		 g[2], t->gid[0], t->gid[1], t->gid[2]);
	/* setfs*id(-1) changes nothing and tells the current value */
	unsigned fsu = syscall(SYS_setfsuid, -1), fsg = syscall(SYS_setfsgid, -1);
	snprintf(name, sizeof(name), "%s_%s_fsids", t->name, when);
	wl_check(name, fsu == t->fsuid && fsg == t->fsgid, "fsuid %u fsgid %u, want %u %u", fsu,
		 fsg, t->fsuid, t->fsgid);
	n = syscall(SYS_getgroups, 64, groups);
	snprintf(name, sizeof(name), "%s_%s_groups", t->name, when);
	if (t->ngroups < 0)
		wl_check(name, n == main_ngroups && !memcmp(groups, main_groups, n * sizeof(gid_t)),
			 "%d groups, want main's %d", n, main_ngroups);
	else
		wl_check(name,
			 n == t->ngroups && groups[0] == t->groups[0] &&
			     groups[n - 1] == t->groups[t->ngroups - 1],
			 "%d groups (first %u), want %d (%u...)", n, n > 0 ? groups[0] : 0,
			 t->ngroups, t->groups[0]);
	snprintf(name, sizeof(name), "%s_%s_caps", t->name, when);
	wl_check(name,
		 caps(true) == (t->caps_eff ? full_caps : 0) &&
		     caps(false) == (t->caps_prm ? full_caps : 0),
		 "effective 0x%llx permitted 0x%llx, want %s and %s",
		 (unsigned long long)caps(true), (unsigned long long)caps(false),
		 t->caps_eff ? "full" : "none", t->caps_prm ? "full" : "none");
}

static void *thread_main(void *arg)
{
	struct ids *t = arg;

	set_ids(t);
	check_ids(t, "set");
	pthread_barrier_wait(&set_barrier);
	pthread_barrier_wait(&go_barrier);
	check_ids(t, "restored");
	if (!strcmp(t->name, "euid"))
		wl_check("euid_back_to_root",
			 !syscall(SYS_setresuid, -1, 0, -1) && geteuid() == 0 &&
			     caps(true) == full_caps,
			 "setresuid(-1, 0, -1): %s, euid %u, effective 0x%llx", strerror(errno),
			 geteuid(), (unsigned long long)caps(true));
	return NULL;
}

static long read_loginuid(void)
{
	char buf[32] = "";
	int fd = open("/proc/self/loginuid", O_RDONLY);
	long n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);

	if (fd >= 0)
		close(fd);
	return n > 0 ? strtol(buf, NULL, 10) : -2;
}

static long register_barriers(void)
{
	static const int optional[] = {MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE,
				       MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ};
	long supported = membarrier(MEMBARRIER_CMD_QUERY);

	if (supported < 0 || membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) ||
	    membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED))
		wl_die("membarrier: %s", strerror(errno));
	for (size_t i = 0; i < sizeof(optional) / sizeof(optional[0]); i++)
		if (supported & optional[i])
			membarrier(optional[i]); /* RSEQ needs an rseq area: glibc has one */
	return membarrier(MEMBARRIER_CMD_GET_REGISTRATIONS);
}

static void check_main(const char *when, long registered)
{
	char name[64];
	long now = membarrier(MEMBARRIER_CMD_GET_REGISTRATIONS), v = read_loginuid();

	snprintf(name, sizeof(name), "main_%s_loginuid", when);
	wl_check(name, v == LOGINUID, "loginuid %ld, want %d", v, LOGINUID);
	snprintf(name, sizeof(name), "main_%s_membarrier_registrations", when);
	wl_check(name, now == registered, "registrations 0x%lx, want 0x%lx", now, registered);
	snprintf(name, sizeof(name), "main_%s_private_expedited_barrier", when);
	wl_check(name, membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0,
		 "MEMBARRIER_CMD_PRIVATE_EXPEDITED: %s", strerror(errno));
}

int main(void)
{
	pthread_t pt[NT];
	long registered;
	int fd;

	wl_init();
	fd = open("/proc/self/loginuid", O_WRONLY);
	if (fd < 0 || dprintf(fd, "%d", LOGINUID) < 0 || close(fd))
		wl_die("/proc/self/loginuid: %s", strerror(errno));
	registered = register_barriers();
	if (registered < 0)
		wl_die("MEMBARRIER_CMD_GET_REGISTRATIONS: %s", strerror(errno));
	main_ngroups = getgroups(64, main_groups);
	full_caps = caps(true);
	pthread_barrier_init(&set_barrier, NULL, NT + 1);
	pthread_barrier_init(&go_barrier, NULL, NT + 1);
	for (int i = 0; i < NT; i++)
		if (pthread_create(&pt[i], NULL, thread_main, &th[i]))
			wl_die("pthread_create failed");
	pthread_barrier_wait(&set_barrier);
	check_main("set", registered);

	wl_ready();
	wl_wait_go();

	check_main("restored", registered);
	pthread_barrier_wait(&go_barrier);
	for (int i = 0; i < NT; i++)
		pthread_join(pt[i], NULL);
	wl_done();
}
