/* tree_fdshare.c: open file descriptions SHARED between the processes of a
 * tree (opened before fork, so the same description sits in two fd tables)
 * of kinds that are hard to share: a deleted file, a sealed memfd (also
 * MAP_SHARED in a child), an epoll instance (with its watched eventfd and
 * pipe), and a regular file opened O_APPEND.
 *   - deleted file "del.dat" (offset 12345): root and child 1;
 *   - memfd "share" (sealed SHRINK|GROW, offset 777): root and child 2,
 *     which also maps it MAP_SHARED after the fork;
 *   - epoll (eventfd EPOLLIN data 0x1111, pipe read end EPOLLIN|EPOLLET data
 *     0x2222): root and child 1, with the watched fds;
 *   - "app.dat" O_WRONLY|O_APPEND: root and both children.
 * After `go` the processes prove the sharing to one another, step by step
 * over sequencing pipes (one each way per child): an offset moved by a read
 * in one process is seen in the other, a write by one (pwrite or through the
 * mapping) is read by the other, an eventfd event is reported by the child's
 * epoll_wait on the shared instance and a pipe event by the root's, F_SETFL
 * by a child is seen by the root, appends move the root's offset. Every wait
 * has a timeout, so a wrong restore fails instead of hanging. The children
 * print their own checks and report through their exit status. */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DEL_SIZE 100000
#define DEL_OFF	 12345
#define DEL_SEED 1
#define DEL_READ 1000
#define DEL_TAG	 "PARENT"

#define MFD_SIZE    50000
#define MFD_OFF	    777
#define MFD_SEED    2
#define MFD_READ    1000
#define MFD_SEALS   (F_SEAL_SHRINK | F_SEAL_GROW)
#define MAP_TAG_OFF 40000
#define MAP_TAG	    "via-map"
#define PWR_TAG_OFF 45000
#define PWR_TAG	    "via-pwrite"

#define D_EFD  0x1111ULL
#define D_PIPE 0x2222ULL

#define APP_INIT "0123456789"

#define WAIT_MS 5000

/* The fdinfo lines of an epoll fd's targets: target fd, events, data. */
#define TFD_FMT "tfd: %llu events: %llx data: %llx"

static char del_path[PATH_MAX];
static int del, mfd, ep, efd, epr, epw, app;
/* sequencing pipes: root -> child N (to[N]) and child N -> root (from[N]) */
static int to1[2], from1[2], to2[2], from2[2];
static char ep_table[1024];
static int ep_n;

/* ---- helpers ---- */

static void send_byte(int fd, char c)
{
	if (write(fd, &c, 1) != 1)
		wl_die("sequencing write: %s", strerror(errno));
}

/* Checks NAME: byte WANT arrives on FD within WAIT_MS. */
static bool recv_byte(const char *name, int fd, char want)
{
	struct pollfd pf = {.fd = fd, .events = POLLIN};
	int r = poll(&pf, 1, WAIT_MS);
	char c = 0;
	ssize_t n = r == 1 ? read(fd, &c, 1) : -1;

	return wl_check(name, n == 1 && c == want,
			"waiting for '%c' on fd %d: poll %d, read %zd, got 0x%x", want, fd, r, n,
			(unsigned char)c);
}

/* Checks NAME: the N bytes at BUF are bytes START.. of pattern SEED. */
static bool check_pat_at(const char *name, const unsigned char *buf, size_t n, int seed,
			 size_t start)
{
	size_t i = 0;

	while (i < n && buf[i] == wl_pat(seed, start + i))
		i++;
	return wl_check(name, i == n, "byte %zu (of %zu, at offset %zu) is %#x, expected %#x", i, n,
			start + i, i < n ? buf[i] : 0, i < n ? wl_pat(seed, start + i) : 0);
}

/* N bytes at BUF, printable, with the others as \xHH, into OUT (4 N + 1 bytes). */
static const char *vis(const void *buf, size_t n, char *out)
{
	const unsigned char *b = buf;
	char *o = out;

	for (size_t i = 0; i < n; i++)
		o += sprintf(o, b[i] >= 0x20 && b[i] < 0x7f && b[i] != '\\' ? "%c" : "\\x%02x",
			     b[i]);
	*o = 0;
	return out;
}

static void check_offset(const char *name, int fd, off_t want)
{
	off_t off = lseek(fd, 0, SEEK_CUR);

	wl_check(name, off == want, "fd %d offset %lld, expected %lld", fd, (long long)off,
		 (long long)want);
}

static void check_link(const char *name, int fd, const char *path)
{
	char want[PATH_MAX + 16], got[PATH_MAX + 16];

	snprintf(want, sizeof(want), "%s (deleted)", path);
	wl_fd_link(fd, got, sizeof(got));
	wl_check(name, !strcmp(got, want), "fd %d -> '%s', expected '%s'", fd, got, want);
}

static void check_seals(const char *name, int fd)
{
	int s = fcntl(fd, F_GET_SEALS);

	wl_check(name, s == MFD_SEALS, "fd %d seals %#x, expected %#x", fd, s, MFD_SEALS);
}

static void check_nlink0(const char *name, int fd, off_t size)
{
	struct stat st;
	int r = fstat(fd, &st);

	wl_check(name, !r && st.st_nlink == 0 && st.st_size == size,
		 "fstat %d: st_nlink %lu, size %lld (expected 0 and %lld)", r,
		 (unsigned long)st.st_nlink, (long long)st.st_size, (long long)size);
}

/* Checks PREFIX_targets: /proc/self/fdinfo of the epoll fd lists exactly the
 * eventfd (EPOLLIN, 0x1111) and the pipe's read end (EPOLLIN|EPOLLET, 0x2222)
 * by their fd numbers, and PREFIX_table: its table is the one taken before
 * the checkpoint. */
static void check_ep_fdinfo(const char *prefix)
{
	char info[4096], *cur = info, *line, tag[64], seen[512] = "";
	unsigned long long tfd, events, data;
	const unsigned mask = EPOLLIN | EPOLLOUT | EPOLLET | EPOLLONESHOT;
	int n = 0, got_efd = 0, got_pipe = 0;

	if (wl_fdinfo(ep, info, sizeof(info)) < 0)
		info[0] = 0;
	while ((line = strsep(&cur, "\n"))) {
		if (sscanf(line, TFD_FMT, &tfd, &events, &data) != 3)
			continue;
		n++;
		snprintf(seen + strlen(seen), sizeof(seen) - strlen(seen), " [%llu %#llx %#llx]",
			 tfd, events, data);
		if (tfd == (unsigned)efd && (events & mask) == EPOLLIN && data == D_EFD)
			got_efd++;
		if (tfd == (unsigned)epr && (events & mask) == (EPOLLIN | EPOLLET) &&
		    data == D_PIPE)
			got_pipe++;
	}
	snprintf(tag, sizeof(tag), "%s_ep_targets", prefix);
	wl_check(tag, n == 2 && got_efd == 1 && got_pipe == 1,
		 "epoll fd %d lists %d targets:%s; expected [%d EPOLLIN %#llx] and "
		 "[%d EPOLLIN|EPOLLET %#llx]",
		 ep, n, seen, efd, D_EFD, epr, D_PIPE);
	snprintf(tag, sizeof(tag), "%s_ep_table", prefix);
	wl_check_fdinfo_table(tag, ep, TFD_FMT, 3, ep_table, ep_n);
}

/* Checks NAME: epoll_wait on the shared instance, waiting up to MS, reports
 * exactly the WANT events (data WANT_DATA, events EPOLLIN), or none if 0. */
static void check_ep_wait(const char *name, int ms, int want, unsigned long long want_data)
{
	struct epoll_event ev[4];
	int n = epoll_wait(ep, ev, 4, ms), e = errno;
	bool ok = n == want;

	for (int i = 0; ok && i < n; i++)
		ok = ev[i].data.u64 == want_data && ev[i].events == EPOLLIN;
	wl_check(name, ok,
		 "epoll_wait(%d ms): %d (%s), first data %#llx events %#x; want %d of %#llx", ms, n,
		 n < 0 ? strerror(e) : "ok", n > 0 ? (unsigned long long)ev[0].data.u64 : 0,
		 n > 0 ? ev[0].events : 0, want, want_data);
}

static void check_app_fl(const char *name)
{
	wl_check_fl(name, app, O_ACCMODE | O_APPEND, O_WRONLY | O_APPEND);
}

/* Reaps child PID within 5 s (then kills it) and checks NAME: it exited 0. */
static void check_child(const char *name, pid_t pid)
{
	struct timespec tick = {0, 10 * 1000 * 1000};
	int st = 0;
	pid_t r = 0;

	for (int i = 0; i < 500 && r == 0; i++) {
		r = waitpid(pid, &st, WNOHANG);
		if (r == 0)
			nanosleep(&tick, NULL);
	}
	if (r == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		wl_check(name, false, "child %d did not end within 5 s (killed)", pid);
		return;
	}
	wl_check(name, r == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
		 "waitpid %d: %d, status 0x%x", pid, r, st);
}

static void child_exit(void)
{
	exit(wl_failures() ? 1 : 0);
}

/* ---- child 1: deleted file, epoll, app ---- */

static void child1(void)
{
	unsigned char buf[DEL_READ];
	char tag[16], shown[64];
	ssize_t n;
	int64_t v;

	close(mfd);
	close(to1[1]);
	close(from1[0]);
	close(to2[0]);
	close(to2[1]);
	close(from2[0]);
	close(from2[1]);
	send_byte(from1[1], 'r');
	wl_wait_go();

	/* deleted file: a read here moves the offset the root sees */
	check_link("c1_del_link", del, del_path);
	check_nlink0("c1_del_nlink", del, DEL_SIZE);
	check_offset("c1_del_offset", del, DEL_OFF);
	memset(buf, 0, sizeof(buf));
	n = wl_read_full(del, buf, DEL_READ);
	wl_check("c1_del_read", n == DEL_READ, "read %zd of %d", n, DEL_READ);
	check_pat_at("c1_del_data", buf, DEL_READ, DEL_SEED, DEL_OFF);
	/* epoll: the watch list, seen from here */
	check_ep_fdinfo("c1");
	wl_check_fd_flags("c1_ep", ep, O_RDWR, 0);
	/* app: flags shared, append */
	check_app_fl("c1_app_flags");
	wl_check("c1_app_write", write(app, "C1", 2) == 2, "write: %s", strerror(errno));
	send_byte(from1[1], 'a');

	/* the root has written past the end of the deleted file */
	if (!recv_byte("c1_seq_b", to1[0], 'b'))
		child_exit();
	memset(tag, 0, sizeof(tag));
	n = pread(del, tag, sizeof(DEL_TAG) - 1, DEL_SIZE);
	wl_check("c1_del_sees_root_write", n == sizeof(DEL_TAG) - 1 && !strcmp(tag, DEL_TAG),
		 "pread %zd at %d: '%s'", n, DEL_SIZE, vis(tag, sizeof(DEL_TAG) - 1, shown));
	check_nlink0("c1_del_grown", del, DEL_SIZE + sizeof(DEL_TAG) - 1);
	check_offset("c1_del_offset_kept", del, DEL_OFF + DEL_READ);

	/* the root has written to the eventfd: our epoll_wait reports it */
	if (!recv_byte("c1_seq_e", to1[0], 'e'))
		child_exit();
	check_ep_wait("c1_ep_reports_eventfd", WAIT_MS, 1, D_EFD);
	v = wl_read_u64(efd);
	wl_check("c1_eventfd_value", v == 1, "eventfd read %lld", (long long)v);
	send_byte(from1[1], 'f');
	child_exit();
}

/* ---- child 2: memfd (and its mapping), app ---- */

static void child2(void)
{
	static unsigned char buf[MFD_READ];
	unsigned char *map;
	char maps[64 << 10], want[64], shown[64];
	ssize_t n;
	int fd;

	close(del);
	close(ep);
	close(efd);
	close(epr);
	close(epw);
	close(to1[0]);
	close(to1[1]);
	close(from1[0]);
	close(from1[1]);
	close(to2[1]);
	close(from2[0]);
	map = mmap(NULL, MFD_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (map == MAP_FAILED)
		wl_die("mmap memfd: %s", strerror(errno));
	send_byte(from2[1], 'r');
	wl_wait_go();

	/* the mapping and the fd */
	check_pat_at("c2_map_data", map, MFD_SIZE, MFD_SEED, 0);
	fd = open("/proc/self/maps", O_RDONLY);
	n = fd < 0 ? -1 : wl_read_full(fd, maps, sizeof(maps) - 1);
	maps[n < 0 ? 0 : n] = 0;
	if (fd >= 0)
		close(fd);
	snprintf(want, sizeof(want), "%lx-", (unsigned long)map);
	{
		char *l = strstr(maps, want), *e = l ? strchr(l, '\n') : NULL;
		if (e)
			*e = 0;
		wl_check("c2_map_listed",
			 l && strstr(l, "rw-s") && strstr(l, "/memfd:share (deleted)"),
			 "maps line of %p: '%s'", (void *)map, l ? l : "(none)");
	}
	check_link("c2_mfd_link", mfd, "/memfd:share");
	check_seals("c2_mfd_seals", mfd);
	check_nlink0("c2_mfd_nlink", mfd, MFD_SIZE);
	check_offset("c2_mfd_offset", mfd, MFD_OFF);
	errno = 0;
	wl_check("c2_mfd_grow_sealed", ftruncate(mfd, MFD_SIZE + 4096) < 0 && errno == EPERM,
		 "ftruncate beyond the size: errno %d", errno);
	/* a read here moves the offset the root sees */
	memset(buf, 0, sizeof(buf));
	n = wl_read_full(mfd, buf, MFD_READ);
	wl_check("c2_mfd_read", n == MFD_READ, "read %zd of %d", n, MFD_READ);
	check_pat_at("c2_mfd_data", buf, MFD_READ, MFD_SEED, MFD_OFF);
	/* a write through the mapping, for the root to pread */
	memcpy(map + MAP_TAG_OFF, MAP_TAG, sizeof(MAP_TAG) - 1);
	/* app: flags shared, append */
	check_app_fl("c2_app_flags");
	wl_check("c2_app_write", write(app, "C2", 2) == 2, "write: %s", strerror(errno));
	send_byte(from2[1], 'a');

	/* the root has pwritten to the memfd: the mapping shows it */
	if (!recv_byte("c2_seq_b", to2[0], 'b'))
		child_exit();
	wl_check("c2_map_sees_root_write", !memcmp(map + PWR_TAG_OFF, PWR_TAG, sizeof(PWR_TAG) - 1),
		 "mapping at %d: '%s'", PWR_TAG_OFF,
		 vis(map + PWR_TAG_OFF, sizeof(PWR_TAG) - 1, shown));
	check_offset("c2_mfd_offset_kept", mfd, MFD_OFF + MFD_READ);
	/* F_SETFL here changes the description the root has too */
	wl_check("c2_app_setfl", !fcntl(app, F_SETFL, O_APPEND | O_NONBLOCK), "F_SETFL: %s",
		 strerror(errno));
	send_byte(from2[1], 'c');
	child_exit();
}

/* ---- root ---- */

static pid_t spawn(void (*fn)(void))
{
	pid_t pid = fork();

	if (pid < 0)
		wl_die("fork: %s", strerror(errno));
	if (pid == 0)
		fn();
	return pid;
}

static void add_watch(int fd, unsigned events, unsigned long long data)
{
	struct epoll_event ev = {.events = events, .data.u64 = data};

	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev))
		wl_die("epoll_ctl add fd %d: %s", fd, strerror(errno));
}

static void setup(void)
{
	char app_path[PATH_MAX];

	wl_path("del.dat", del_path, sizeof(del_path));
	del = open(del_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (del < 0 || !wl_write_pattern(del, DEL_SIZE, DEL_SEED) || unlink(del_path) ||
	    lseek(del, DEL_OFF, SEEK_SET) != DEL_OFF)
		wl_die("deleted file %s: %s", del_path, strerror(errno));

	mfd = memfd_create("share", MFD_ALLOW_SEALING);
	if (mfd < 0 || !wl_write_pattern(mfd, MFD_SIZE, MFD_SEED) ||
	    fcntl(mfd, F_ADD_SEALS, MFD_SEALS) || lseek(mfd, MFD_OFF, SEEK_SET) != MFD_OFF)
		wl_die("memfd: %s", strerror(errno));

	ep = epoll_create1(0);
	efd = eventfd(0, EFD_NONBLOCK);
	{
		int p[2];
		if (ep < 0 || efd < 0 || pipe2(p, O_NONBLOCK))
			wl_die("epoll setup: %s", strerror(errno));
		epr = p[0];
		epw = p[1];
	}
	add_watch(efd, EPOLLIN, D_EFD);
	add_watch(epr, EPOLLIN | EPOLLET, D_PIPE);
	ep_n = wl_fdinfo_table(ep, TFD_FMT, 3, ep_table, sizeof(ep_table));
	if (ep_n != 2)
		wl_die("epoll fdinfo: %d targets", ep_n);

	wl_path("app.dat", app_path, sizeof(app_path));
	wl_mkfile(app_path, APP_INIT, strlen(APP_INIT), 0600);
	app = open(app_path, O_WRONLY | O_APPEND);
	if (app < 0 || lseek(app, 0, SEEK_END) != (off_t)strlen(APP_INIT))
		wl_die("open %s: %s", app_path, strerror(errno));

	if (pipe(to1) || pipe(from1) || pipe(to2) || pipe(from2))
		wl_die("pipe: %s", strerror(errno));
}

/* The root's side of child 1's steps: deleted file, then epoll. */
static void root_with_child1(void)
{
	static unsigned char buf[DEL_SIZE + 100];
	uint64_t one = 1;
	ssize_t n;
	char c[8];

	if (!recv_byte("c1_seq_a", from1[0], 'a'))
		return;
	/* the child's read moved our offset */
	check_offset("del_offset_shared", del, DEL_OFF + DEL_READ);
	check_nlink0("del_nlink", del, DEL_SIZE);
	check_link("del_link", del, del_path);
	wl_check("del_gone", access(del_path, F_OK) != 0, "%s exists again", del_path);
	wl_check_fl("del_flags", del, O_ACCMODE | O_APPEND, O_RDWR);
	memset(buf, 0, sizeof(buf));
	n = pread(del, buf, sizeof(buf), 0);
	wl_check("del_len", n == DEL_SIZE, "pread %zd of %d", n, DEL_SIZE);
	check_pat_at("del_data", buf, DEL_SIZE, DEL_SEED, 0);
	n = pwrite(del, DEL_TAG, sizeof(DEL_TAG) - 1, DEL_SIZE);
	wl_check("del_pwrite", n == sizeof(DEL_TAG) - 1, "pwrite %zd: %s", n, strerror(errno));
	send_byte(to1[1], 'b');

	/* eventfd event: child 1's epoll_wait reports it, and it drains the counter */
	if (write(efd, &one, sizeof(one)) != sizeof(one))
		wl_die("write eventfd: %s", strerror(errno));
	send_byte(to1[1], 'e');
	if (!recv_byte("c1_seq_f", from1[0], 'f'))
		return;
	wl_check("eventfd_drained_by_child", wl_read_u64(efd) == -EAGAIN,
		 "the eventfd still holds a count after child 1 read it");
	check_ep_wait("ep_empty_after_child", 0, 0, 0);
	/* pipe event: our epoll_wait reports it, once (edge-triggered) */
	if (write(epw, "x", 1) != 1)
		wl_die("write pipe: %s", strerror(errno));
	check_ep_wait("ep_reports_pipe", WAIT_MS, 1, D_PIPE);
	check_ep_wait("ep_pipe_edge_once", 0, 0, 0);
	n = read(epr, c, sizeof(c));
	wl_check("ep_pipe_data", n == 1 && c[0] == 'x', "read %zd", n);
}

/* The root's side of child 2's steps: memfd, then app's flags. */
static void root_with_child2(void)
{
	static unsigned char buf[MFD_SIZE + 100];
	char tag[16], shown[64];
	ssize_t n;

	if (!recv_byte("c2_seq_a", from2[0], 'a'))
		return;
	/* the child's read moved our offset, its write through the mapping is in the file */
	check_offset("mfd_offset_shared", mfd, MFD_OFF + MFD_READ);
	check_seals("mfd_seals", mfd);
	check_link("mfd_link", mfd, "/memfd:share");
	check_nlink0("mfd_nlink", mfd, MFD_SIZE);
	wl_check_fl("mfd_flags", mfd, O_ACCMODE | O_APPEND, O_RDWR);
	memset(buf, 0, sizeof(buf));
	n = pread(mfd, buf, sizeof(buf), 0);
	wl_check("mfd_len", n == MFD_SIZE, "pread %zd of %d", n, MFD_SIZE);
	check_pat_at("mfd_data_head", buf, MAP_TAG_OFF, MFD_SEED, 0);
	memset(tag, 0, sizeof(tag));
	memcpy(tag, buf + MAP_TAG_OFF, sizeof(MAP_TAG) - 1);
	wl_check("mfd_sees_child_map_write", !strcmp(tag, MAP_TAG), "'%s' at %d",
		 vis(tag, sizeof(MAP_TAG) - 1, shown), MAP_TAG_OFF);
	check_pat_at("mfd_data_tail", buf + MAP_TAG_OFF + sizeof(MAP_TAG) - 1,
		     MFD_SIZE - MAP_TAG_OFF - (sizeof(MAP_TAG) - 1), MFD_SEED,
		     MAP_TAG_OFF + sizeof(MAP_TAG) - 1);
	n = pwrite(mfd, PWR_TAG, sizeof(PWR_TAG) - 1, PWR_TAG_OFF);
	wl_check("mfd_pwrite", n == sizeof(PWR_TAG) - 1, "pwrite %zd: %s", n, strerror(errno));
	send_byte(to2[1], 'b');

	if (!recv_byte("c2_seq_c", from2[0], 'c'))
		return;
	wl_check_fl("app_setfl_shared", app, O_ACCMODE | O_APPEND | O_NONBLOCK,
		    O_WRONLY | O_APPEND | O_NONBLOCK);
}

static void check_app(void)
{
	char path[PATH_MAX], buf[64], shown[256];
	const size_t want = strlen(APP_INIT) + 4;
	ssize_t n = -1;
	int fd;

	/* both children appended 2 bytes through the shared description */
	check_offset("app_offset_shared", app, want);
	wl_path("app.dat", path, sizeof(path));
	fd = open(path, O_RDONLY);
	memset(buf, 0, sizeof(buf));
	if (fd >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
	}
	wl_check("app_data",
		 n == (ssize_t)want && !memcmp(buf, APP_INIT, strlen(APP_INIT)) &&
		     (!strcmp(buf + strlen(APP_INIT), "C1C2") ||
		      !strcmp(buf + strlen(APP_INIT), "C2C1")),
		 "app.dat: %zd bytes '%s'", n, vis(buf, n > 0 ? n : 0, shown));
}

int main(void)
{
	pid_t c1, c2;
	int st;

	wl_init();
	setup();
	c1 = spawn(child1);
	c2 = spawn(child2);
	close(to1[0]);
	close(from1[1]);
	close(to2[0]);
	close(from2[1]);
	/* both children have closed what they do not share and child 2 has mapped the memfd */
	{
		struct pollfd pf[2] = {{.fd = from1[0], .events = POLLIN},
				       {.fd = from2[0], .events = POLLIN}};
		char r1 = 0, r2 = 0;
		if (poll(pf, 1, WAIT_MS) != 1 || read(from1[0], &r1, 1) != 1 || r1 != 'r' ||
		    poll(pf + 1, 1, WAIT_MS) != 1 || read(from2[0], &r2, 1) != 1 || r2 != 'r')
			wl_die("the children did not get ready (%#x %#x)", r1, r2);
	}
	wl_ready();
	wl_wait_go();

	check_app_fl("app_flags");
	check_ep_fdinfo("root");
	wl_check_fd_flags("ep", ep, O_RDWR, 0);
	check_ep_wait("ep_empty", 0, 0, 0);
	root_with_child1();
	root_with_child2();
	check_child("child1", c1);
	check_child("child2", c2);
	check_app();
	wl_check("no_more_children", waitpid(-1, &st, WNOHANG) < 0 && errno == ECHILD,
		 "an unexpected child");
	wl_done();
}
