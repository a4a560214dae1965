/* procattrs.c: workload that changes per-process attributes (cwd, umask,
 * rlimits, name, personality, capabilities bounding set, groups and all
 * uids/gids incl. fsuid) and checks after checkpoint/restore that they, and
 * /proc/self/{cmdline,environ,auxv,exe}, read the same. */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define NRL RLIM_NLIMITS

static char *slurp(const char *path, size_t *len)
{
	static char bufs[8][65536];
	static int next;
	char *b = bufs[next++ % 8];
	int fd = open(path, O_RDONLY);
	ssize_t n;
	size_t got = 0;

	*len = 0;
	if (fd < 0)
		return b;
	while (got < sizeof(bufs[0]) - 1 && (n = read(fd, b + got, sizeof(bufs[0]) - 1 - got)) > 0)
		got += n;
	close(fd);
	b[got] = 0;
	*len = got;
	return b;
}

/* lines of /proc/self/status about credentials and umask */
static void cred_status(char *out, size_t len)
{
	static const char *keys[] = {"Umask:",	"Uid:",	   "Gid:",    "Groups:", "CapInh:",
				     "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:", "NoNewPrivs:"};
	size_t n, pos = 0, k;
	char *s = slurp("/proc/self/status", &n), *line;

	out[0] = 0;
	for (line = strtok(s, "\n"); line; line = strtok(NULL, "\n"))
		for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
			if (!strncmp(line, keys[k], strlen(keys[k])) && pos < len)
				pos += snprintf(out + pos, len - pos, "%s\n", line);
}

static void lower(int res, rlim_t soft, rlim_t hard)
{
	struct rlimit rl;

	getrlimit(res, &rl);
	if (hard < rl.rlim_max)
		rl.rlim_max = hard;
	if (soft < rl.rlim_cur)
		rl.rlim_cur = soft;
	if (rl.rlim_cur > rl.rlim_max)
		rl.rlim_cur = rl.rlim_max;
	if (setrlimit(res, &rl))
		wl_die("setrlimit %d: %s", res, strerror(errno));
}

int main(void)
{
	struct rlimit rl0[NRL], rl;
	char cwd0[PATH_MAX], cwd[PATH_MAX], exe0[PATH_MAX], exe[PATH_MAX], comm0[32], comm[32];
	char st0[4096], st[4096], *cmd0, *env0, *aux0, *p;
	size_t cmdlen0, envlen0, auxlen0, n;
	gid_t groups[] = {27, 1001, 4242}, g[64];
	uid_t ru, eu, su, ru0, eu0, su0;
	gid_t rg, eg, sg, rg0, eg0, sg0;
	int i, ngroups, fsuid0, fsgid0, pers0, dump0;
	mode_t um;
	ssize_t k;

	wl_init();
	if (getuid() != 0)
		wl_die("must run as root");
	/* cwd: a subdirectory (wl_ready/wl_wait_go use the initial dir) */
	if (mkdir("sub", 0755) || mkdir("sub/deeper", 0755) || chdir("sub/deeper"))
		wl_die("mkdir/chdir: %s", strerror(errno));
	if (!getcwd(cwd0, sizeof(cwd0)))
		wl_die("getcwd");
	umask(027);
	lower(RLIMIT_NOFILE, 200, RLIM_INFINITY);
	lower(RLIMIT_STACK, 4 << 20, RLIM_INFINITY);
	lower(RLIMIT_CORE, 12345 * 4096, (rlim_t)1 << 30);
	lower(RLIMIT_MSGQUEUE, 4096, 200000);
	lower(RLIMIT_NPROC, 5000, RLIM_INFINITY);
	for (i = 0; i < NRL; i++)
		getrlimit(i, &rl0[i]);
	prctl(PR_SET_NAME, "cryo-attrs-xyz");
	prctl(PR_GET_NAME, comm0);
	personality(ADDR_NO_RANDOMIZE);
	pers0 = personality(0xffffffff);
	cmd0 = slurp("/proc/self/cmdline", &cmdlen0);
	env0 = slurp("/proc/self/environ", &envlen0);
	aux0 = slurp("/proc/self/auxv", &auxlen0);
	k = readlink("/proc/self/exe", exe0, sizeof(exe0) - 1);
	exe0[k < 0 ? 0 : k] = 0;
	if (prctl(PR_CAPBSET_DROP, CAP_SYS_BOOT) || prctl(PR_CAPBSET_DROP, CAP_MKNOD))
		wl_die("PR_CAPBSET_DROP: %s", strerror(errno));
	/* credentials last: groups, gids, then uids keeping saved uid 0 so that
	 * fsuid 0 (file access to the harness's work dir) stays allowed */
	if (setgroups(3, groups))
		wl_die("setgroups: %s", strerror(errno));
	if (setresgid(1001, 1002, 1003))
		wl_die("setresgid: %s", strerror(errno));
	if (setresuid(1000, 1005, 0))
		wl_die("setresuid: %s", strerror(errno));
	setfsuid(0);
	fsuid0 = setfsuid(-1);
	fsgid0 = setfsgid(-1);
	getresuid(&ru0, &eu0, &su0);
	getresgid(&rg0, &eg0, &sg0);
	dump0 = prctl(PR_GET_DUMPABLE);
	cred_status(st0, sizeof(st0));

	wl_ready();
	wl_wait_go();

	p = getcwd(cwd, sizeof(cwd));
	wl_check("cwd", p && strcmp(cwd, cwd0) == 0, "cwd '%s', expected '%s'", p ? cwd : "?",
		 cwd0);
	k = readlink("/proc/self/cwd", cwd, sizeof(cwd) - 1);
	cwd[k < 0 ? 0 : k] = 0;
	wl_check("proc_cwd", strcmp(cwd, cwd0) == 0, "/proc/self/cwd '%s'", cwd);
	{
		int fd = open("../../sub/deeper/.", O_RDONLY | O_DIRECTORY);
		wl_check("cwd_relative", fd >= 0, "relative open failed: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
	}
	um = umask(027);
	wl_check("umask", um == 027, "umask %#o, expected 027", um);
	for (i = 0; i < NRL; i++) {
		char name[32];
		getrlimit(i, &rl);
		snprintf(name, sizeof(name), "rlimit_%d", i);
		wl_check(name, rl.rlim_cur == rl0[i].rlim_cur && rl.rlim_max == rl0[i].rlim_max,
			 "%llu/%llu, expected %llu/%llu", (unsigned long long)rl.rlim_cur,
			 (unsigned long long)rl.rlim_max, (unsigned long long)rl0[i].rlim_cur,
			 (unsigned long long)rl0[i].rlim_max);
	}
	memset(comm, 0, sizeof(comm));
	prctl(PR_GET_NAME, comm);
	wl_check("name", strcmp(comm, comm0) == 0, "name '%s', expected '%s'", comm, comm0);
	p = slurp("/proc/self/comm", &n);
	wl_check("proc_comm", n > 0 && strncmp(p, comm0, n - 1) == 0 && p[n - 1] == '\n',
		 "comm '%s'", p);
	i = personality(0xffffffff);
	wl_check("personality", i == pers0, "personality %#x, expected %#x", i, pers0);

	p = slurp("/proc/self/cmdline", &n);
	wl_check("cmdline", n == cmdlen0 && memcmp(p, cmd0, n) == 0, "%zu bytes (was %zu) '%s'", n,
		 cmdlen0, p);
	p = slurp("/proc/self/environ", &n);
	wl_check("environ", n == envlen0 && memcmp(p, env0, n) == 0, "%zu bytes (was %zu)", n,
		 envlen0);
	p = slurp("/proc/self/auxv", &n);
	wl_check("auxv", n == auxlen0 && memcmp(p, aux0, n) == 0, "%zu bytes (was %zu)", n,
		 auxlen0);
	k = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	exe[k < 0 ? 0 : k] = 0;
	wl_check("exe", strcmp(exe, exe0) == 0, "exe '%s', expected '%s'", exe, exe0);

	getresuid(&ru, &eu, &su);
	getresgid(&rg, &eg, &sg);
	wl_check("uids", ru == ru0 && eu == eu0 && su == su0 && ru == 1000 && eu == 1005 && su == 0,
		 "uids %d %d %d, expected %d %d %d", ru, eu, su, ru0, eu0, su0);
	wl_check("gids", rg == rg0 && eg == eg0 && sg == sg0, "gids %d %d %d, expected %d %d %d",
		 rg, eg, sg, rg0, eg0, sg0);
	i = setfsuid(-1);
	wl_check("fsuid", i == fsuid0 && i == 0, "fsuid %d, expected %d", i, fsuid0);
	i = setfsgid(-1);
	wl_check("fsgid", i == fsgid0, "fsgid %d, expected %d", i, fsgid0);
	ngroups = getgroups(64, g);
	wl_check("groups", ngroups == 3 && g[0] == 27 && g[1] == 1001 && g[2] == 4242,
		 "%d groups: %d %d %d", ngroups, ngroups > 0 ? (int)g[0] : -1,
		 ngroups > 1 ? (int)g[1] : -1, ngroups > 2 ? (int)g[2] : -1);
	i = prctl(PR_GET_DUMPABLE);
	wl_check("dumpable", i == dump0, "dumpable %d, expected %d", i, dump0);
	cred_status(st, sizeof(st));
	wl_check("status_creds", strcmp(st, st0) == 0, "now:\n%s--- before:\n%s", st, st0);
	wl_check("capbset_dropped",
		 prctl(PR_CAPBSET_READ, CAP_SYS_BOOT) == 0 &&
		     prctl(PR_CAPBSET_READ, CAP_MKNOD) == 0 &&
		     prctl(PR_CAPBSET_READ, CAP_KILL) == 1,
		 "bounding set changed");
	wl_done();
}
