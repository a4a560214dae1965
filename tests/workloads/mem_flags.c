/* mem_flags.c: the VMA flags /proc/PID/smaps shows (VmFlags) and the mm's
 * default flags. The root maps, each with data in it: MAP_LOCKED (lo),
 * mlock2(MLOCK_ONFAULT) (lo lf), a mapping locked in its middle only (three
 * VMAs), one per madvise flag (dc dd wf mg hg nh sr rr), MAP_DROPPABLE (dp,
 * Linux 6.11+), MAP_NORESERVE (nr), MAP_GROWSDOWN (gd) and mseal (sl); then
 * mlockall(MCL_FUTURE|MCL_ONFAULT). A child forked before that does
 * mlockall(MCL_CURRENT|MCL_FUTURE). After `go` each process checks that
 * every mapping has the same range and the same VmFlags line as before the
 * checkpoint (the snapshot is taken into static memory first thing, before
 * anything can map), that VmLck is the same, that every mapping holds its
 * data, that a new mapping gets the mm's default flags (lo lf in the root,
 * populated lo in the child: mm->def_flags), and that a process forked from
 * the restored root does not inherit the dc mapping and sees the wf one
 * zeroed. */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MAP_DROPPABLE
#define MAP_DROPPABLE 0x08
#endif
#ifndef MLOCK_ONFAULT
#define MLOCK_ONFAULT 0x01
#endif
#ifndef MCL_ONFAULT
#define MCL_ONFAULT 4
#endif

#define PG   4096
#define SIZE (8 * PG)

struct area {
	const char *name;
	int flags;  /* mmap flags beyond MAP_ANONYMOUS (MAP_PRIVATE if 0) */
	int advice; /* madvise, or -1 */
	int lock;   /* 0, 2: mlock2(MLOCK_ONFAULT), 3: mlock the middle, 4: mseal */
	unsigned char *map;
	bool covered;
};

static struct area areas[] = {
    {"map_locked", MAP_PRIVATE | MAP_LOCKED, -1, 0, NULL, false},
    {"mlock_onfault", MAP_PRIVATE, -1, 2, NULL, false},
    {"mlock_middle", MAP_PRIVATE, -1, 3, NULL, false},
    {"dontfork", MAP_PRIVATE, MADV_DONTFORK, 0, NULL, false},
    {"dontdump", MAP_PRIVATE, MADV_DONTDUMP, 0, NULL, false},
    {"wipeonfork", MAP_PRIVATE, MADV_WIPEONFORK, 0, NULL, false},
    {"mergeable", MAP_PRIVATE, MADV_MERGEABLE, 0, NULL, false},
    {"hugepage", MAP_PRIVATE, MADV_HUGEPAGE, 0, NULL, false},
    {"nohugepage", MAP_PRIVATE, MADV_NOHUGEPAGE, 0, NULL, false},
    {"sequential", MAP_PRIVATE, MADV_SEQUENTIAL, 0, NULL, false},
    {"random", MAP_PRIVATE, MADV_RANDOM, 0, NULL, false},
    {"droppable", MAP_DROPPABLE, -1, 0, NULL, false},
    {"noreserve", MAP_PRIVATE | MAP_NORESERVE, -1, 0, NULL, false},
    {"growsdown", MAP_PRIVATE | MAP_GROWSDOWN, -1, 0, NULL, false},
    {"sealed", MAP_PRIVATE, -1, 4, NULL, false},
};
#define NAREAS (sizeof(areas) / sizeof(areas[0]))

/* /proc/self/smaps, read with raw read() into static memory: taking the
 * snapshot maps nothing. */
static char smaps_before[1 << 20], smaps_after[1 << 20];

static void snapshot(char *buf, size_t len)
{
	int fd = open("/proc/self/smaps", O_RDONLY);
	ssize_t got, n = 0;

	while (fd >= 0 && (got = read(fd, buf + n, len - 1 - n)) > 0)
		n += got;
	buf[n] = 0;
	if (fd >= 0)
		close(fd);
}

/* VmLck of /proc/self/status, in kB (read without mapping anything). */
static long vmlck(void)
{
	static char buf[4096];
	int fd = open("/proc/self/status", O_RDONLY);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	char *p;

	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = 0;
	p = strstr(buf, "\nVmLck:");
	return p ? strtol(p + 8, NULL, 10) : -1;
}

/* The maps lines' ranges with their VmFlags, one "START-END FLAGS" a line,
 * into OUT. Neighbours with the same flags are one line: where the kernel
 * draws the line between them (two VMAs whose anonymous memory came from
 * different forks never merge) is not the process's state. */
static void vmflags_of(const char *smaps, char *out, size_t len)
{
	unsigned long start = 0, end = 0, s, e, prev_end = 0;
	char flags[256] = "", prev[256] = "";
	size_t n = 0;

	out[0] = 0;
	for (const char *p = smaps; *p;) {
		const char *eol = strchrnul(p, '\n');
		if (sscanf(p, "%lx-%lx ", &s, &e) == 2 &&
		    memchr(p, '-', eol - p) < memchr(p, ' ', eol - p)) {
			start = s;
			end = e;
		} else if (!strncmp(p, "VmFlags:", 8)) {
			snprintf(flags, sizeof(flags), "%.*s", (int)(eol - p - 9), p + 9);
			if (prev_end == start && !strcmp(prev, flags) && n) {
				/* extend the line before: rewrite its end */
				char *line = out + n - 1;
				while (line > out && line[-1] != '\n')
					line--;
				n = line - out;
				sscanf(line, "%lx-", &s);
				start = s;
			}
			n += snprintf(out + n, len - n, "%lx-%lx %s\n", start, end, flags);
			if (n >= len)
				wl_die("smaps too long");
			prev_end = end;
			strcpy(prev, flags);
		}
		p = *eol ? eol + 1 : eol;
	}
}

static char flags_before[1 << 18], flags_after[1 << 18];
static long lck_before, lck_after;

/* Checks PREFIX_vmflags: every line of a snapshot taken now (after the
 * restore) equals the one taken before (names the first that differs). */
static void check_vmflags(const char *prefix)
{
	char name[64];
	const char *a = flags_before, *b = flags_after;
	size_t i = 0;

	/* first thing after `go`: nothing has mapped anything yet */
	snapshot(smaps_after, sizeof(smaps_after));
	lck_after = vmlck();
	vmflags_of(smaps_before, flags_before, sizeof(flags_before));
	vmflags_of(smaps_after, flags_after, sizeof(flags_after));

	while (a[i] && a[i] == b[i])
		i++;
	while (i && a[i - 1] != '\n')
		i--;
	snprintf(name, sizeof(name), "%s_vmflags", prefix);
	wl_check(name, !a[i] && !b[i], "before: \"%.*s\", after: \"%.*s\"",
		 (int)(strchrnul(a + i, '\n') - (a + i)), a + i,
		 (int)(strchrnul(b + i, '\n') - (b + i)), b + i);
	snprintf(name, sizeof(name), "%s_vmlck", prefix);
	wl_check(name, lck_before == lck_after, "VmLck %ld kB, expected %ld", lck_after,
		 lck_before);
}

/* The VmFlags of the mapping that starts at ADDR, from a new snapshot. */
static void flags_at(const void *addr, char *out, size_t len)
{
	char head[32], *p;
	snapshot(smaps_after, sizeof(smaps_after));
	vmflags_of(smaps_after, flags_after, sizeof(flags_after));
	snprintf(head, sizeof(head), "%lx-", (unsigned long)addr);
	p = strstr(flags_after, head);
	out[0] = 0;
	if (p && (p = strchr(p, ' ')))
		snprintf(out, len, "%.*s", (int)(strchrnul(p + 1, '\n') - p - 1), p + 1);
}

static bool has_flag(const char *flags, const char *f)
{
	char pad[256];

	snprintf(pad, sizeof(pad), " %s ", flags);
	return strstr(pad, f) != NULL;
}

static void set_up_areas(void)
{
	for (size_t i = 0; i < NAREAS; i++) {
		struct area *a = &areas[i];
		a->map = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, a->flags | MAP_ANONYMOUS, -1, 0);
		if (a->map == MAP_FAILED) {
			if (a->flags & MAP_DROPPABLE)
				continue; /* before Linux 6.11 */
			wl_die("mmap %s: %s", a->name, strerror(errno));
		}
		if (a->advice >= 0 && madvise(a->map, SIZE, a->advice)) {
			if (errno != EINVAL) /* EINVAL: no KSM or THP in this kernel */
				wl_die("madvise %s: %s", a->name, strerror(errno));
			munmap(a->map, SIZE);
			continue;
		}
		wl_fill(a->map, SIZE / 2, (int)i + 10); /* the upper half stays untouched */
		if (a->lock == 4 && syscall(462 /* mseal */, a->map, SIZE, 0)) {
			if (errno != ENOSYS &&
			    errno != EPERM) /* EPERM: 32-bit, or no CONFIG_MSEAL */
				wl_die("mseal: %s", strerror(errno));
			continue;
		}
		a->covered = true;
		if ((a->lock == 2 && mlock2(a->map, SIZE, MLOCK_ONFAULT)) ||
		    (a->lock == 3 && mlock(a->map + 2 * PG, 2 * PG)))
			wl_die("mlock %s: %s", a->name, strerror(errno));
	}
}

static void check_areas(bool in_child)
{
	char name[64];

	for (size_t i = 0; i < NAREAS; i++) {
		const struct area *a = &areas[i];
		if (!a->covered) {
			if (!in_child)
				wl_not_covered(a->name,
					       "this kernel refused the mapping or advice");
			continue;
		}
		if (in_child && a->advice == MADV_DONTFORK)
			continue; /* not inherited: checked by the VmFlags lines */
		snprintf(name, sizeof(name), "%s%s_data", in_child ? "child_" : "", a->name);
		/* MAP_DROPPABLE implies wipe-on-fork */
		if (in_child && (a->advice == MADV_WIPEONFORK || a->flags == MAP_DROPPABLE)) {
			size_t z = 0;
			while (z < SIZE && !a->map[z])
				z++;
			wl_check(name, z == SIZE, "byte %zu is not zero", z);
			continue;
		}
		wl_check_pattern(name, a->map, SIZE / 2, (int)i + 10);
	}
}

/* A new mapping gets the default flags mlockall(MCL_FUTURE) set. */
static void check_def_flags(const char *name, bool onfault)
{
	char flags[128];
	unsigned char *p = mmap(NULL, 2 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
				-1, 0),
		      vec[2] = {0, 0};

	if (p == MAP_FAILED)
		wl_die("mmap: %s", strerror(errno));
	flags_at(p, flags, sizeof(flags));
	mincore(p, 2 * PG, vec);
	wl_check(name,
		 has_flag(flags, " lo ") && has_flag(flags, " lf ") == onfault &&
		     (vec[0] & 1) == !onfault,
		 "new mapping: VmFlags \"%s\", first page %sresident", flags,
		 vec[0] & 1 ? "" : "not ");
	munmap(p, 2 * PG);
}

/* A child of the restored root: no dc mapping, the wf one zeroed. */
static void check_fork_after(void)
{
	pid_t kid = fork();

	if (kid == 0) {
		char flags[128];
		flags_at(areas[3].map, flags, sizeof(flags));
		if (flags[0])
			_exit(1); /* the dontfork mapping came along */
		for (size_t z = 0; z < SIZE; z++)
			if (areas[5].map[z])
				_exit(2); /* wipeonfork not wiped */
		_exit(0);
	}
	wl_check_child("fork_after_dontfork_wipeonfork", kid);
}

static void child_main(int ready_fd)
{
	if (mlockall(MCL_CURRENT | MCL_FUTURE))
		_exit(3);
	snapshot(smaps_before, sizeof(smaps_before));
	lck_before = vmlck();
	if (write(ready_fd, "k", 1) != 1)
		_exit(3);
	close(ready_fd);
	wl_wait_go();
	check_vmflags("child");
	check_areas(true);
	check_def_flags("child_mlockall_future", false);
	_exit(wl_failures() ? 1 : 0);
}

int main(void)
{
	int ready_pipe[2];
	pid_t kid;
	char c;

	wl_init();
	set_up_areas();
	if (pipe(ready_pipe))
		wl_die("pipe: %s", strerror(errno));
	kid = fork();
	if (kid == 0) {
		close(ready_pipe[0]);
		child_main(ready_pipe[1]);
	}
	close(ready_pipe[1]);
	if (read(ready_pipe[0], &c, 1) != 1)
		wl_die("the child died before it was ready");
	close(ready_pipe[0]);
	if (mlockall(MCL_FUTURE | MCL_ONFAULT))
		wl_die("mlockall: %s", strerror(errno));
	snapshot(smaps_before, sizeof(smaps_before));
	lck_before = vmlck();
	wl_ready();
	wl_wait_go();
	check_vmflags("root");
	check_areas(false);
	check_def_flags("root_mlockall_future_onfault", true);
	check_fork_after();
	wl_check_child("child_flags_data_mlockall", kid);
	wl_done();
}
