/* mem_unheld.c: files that are mapped but held by no fd. A deleted file
 * mapped shared twice (A1, A2) and a memfd sealed against shrink and grow
 * mapped shared twice (B1, B2), both inherited by a child; a deleted file
 * and a memfd mapped private with some pages changed; and a memfd mapped
 * private whose fd stays open at offset 4321. After `go`: every byte of
 * every mapping (changed and unchanged parts), the maps lines (range,
 * rw-s/rw-p, offset, "... (deleted)" names), A1/A2 and B1/B2 still one
 * object, shared with the child too; the private mappings still private yet
 * backed by the file in their untouched pages (checked through
 * /proc/self/map_files), seals, sizes, link counts and the open fd's offset. */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG	      4096
#define DEL_SIZE      (64 << 10)
#define DELP_SIZE     (32 << 10)
#define PRIV_SIZE     (48 << 10)
#define SEALED_SIZE   (40 << 10)
#define PRIVOPEN_SIZE (24 << 10)
#define PRIVOPEN_POS  4321

/* bytes written before the checkpoint (by the root or the child) and after
 * `go` by the child (KID_POST) and the root (ROOT_POST) */
#define A1_PRE	    100	  /* root, through A1 */
#define A_KID_PRE   40000 /* child, through its A2 */
#define A_KID_POST  50000 /* child, through its A1 */
#define A_ROOT_POST 60000 /* root, through A2 */
#define B_KID_PRE   20000 /* child, through its B2 */
#define B_KID_POST  30000 /* child, through its B1 */
#define B_ROOT_POST 36000 /* root, through B1 */
#define MARK_LEN    8

struct ctl {
	volatile uint32_t kid_ready; /* the child has made its pre-checkpoint writes */
	volatile uint32_t kid_token; /* the child has checked and written after go */
	volatile uint32_t answer;    /* the root has seen the child's writes */
};

/* One private mapping: the object holds pattern SEED; the mapping had the
 * NMOD ranges MOD_OFF/MOD_LEN changed privately to pattern MOD_SEED (same
 * index) before the checkpoint. U1 and U2 are pages never written. */
struct priv {
	const char *name;
	unsigned char *map;
	size_t size;
	int seed, mod_seed;
	int nmod;
	size_t mod_off[2], mod_len[2];
	size_t u1, u2;
};

/* ---- expected contents ---- */

static void mark(unsigned char *dst, const char *tag)
{
	memcpy(dst, tag, MARK_LEN);
}

/* Checks NAME: the N bytes at GOT equal those at WANT. */
static bool check_bytes(const char *name, const unsigned char *got, const unsigned char *want,
			size_t n)
{
	size_t i = 0;

	while (i < n && got[i] == want[i])
		i++;
	return wl_check(name, i == n, "byte %zu of %zu is %#x, expected %#x", i, n,
			i < n ? got[i] : 0, i < n ? want[i] : 0);
}

static unsigned char *xmalloc(size_t n)
{
	unsigned char *p = malloc(n);

	if (!p)
		wl_die("malloc %zu: %s", n, strerror(errno));
	return p;
}

/* The view a private mapping should show: the object's pattern with the
 * changed ranges in the changed pattern. */
static unsigned char *priv_view(const struct priv *p)
{
	unsigned char *v = xmalloc(p->size);

	wl_fill(v, p->size, p->seed);
	for (int r = 0; r < p->nmod; r++)
		for (size_t i = p->mod_off[r]; i < p->mod_off[r] + p->mod_len[r]; i++)
			v[i] = wl_pat(p->mod_seed, i);
	return v;
}

static void priv_modify(const struct priv *p)
{
	for (int r = 0; r < p->nmod; r++)
		for (size_t i = p->mod_off[r]; i < p->mod_off[r] + p->mod_len[r]; i++)
			p->map[i] = wl_pat(p->mod_seed, i);
}

/* ---- /proc/self/maps and map_files ---- */

struct vma {
	unsigned long start, end, off;
	char perms[8];
	char path[PATH_MAX + 32];
};

/* The maps line of the mapping holding P; false if none. */
static bool find_vma(const void *p, struct vma *v)
{
	char line[PATH_MAX + 128];
	FILE *f = fopen("/proc/self/maps", "r");
	bool found = false;

	while (f && !found && fgets(line, sizeof(line), f)) {
		int n = 0;
		line[strcspn(line, "\n")] = '\0';
		if (sscanf(line, "%lx-%lx %7s %lx %*s %*s %n", &v->start, &v->end, v->perms,
			   &v->off, &n) < 4 ||
		    n == 0)
			continue;
		if ((unsigned long)p >= v->start && (unsigned long)p < v->end) {
			snprintf(v->path, sizeof(v->path), "%s", line + n);
			found = true;
		}
	}
	if (f)
		fclose(f);
	return found;
}

/* Checks NAME: the mapping at P is exactly [P, P+SIZE), offset 0, with
 * permissions PERMS and path PATH. */
static void check_maps(const char *name, const void *p, size_t size, const char *perms,
		       const char *path)
{
	struct vma v;
	bool ok = find_vma(p, &v);

	if (!ok) {
		wl_check(name, false, "no maps line holds %p", p);
		return;
	}
	wl_check(name,
		 v.start == (unsigned long)p && v.end == (unsigned long)p + size && v.off == 0 &&
		     !strcmp(v.perms, perms) && !strcmp(v.path, path),
		 "maps '%lx-%lx %s %lx %s', expected '%lx-%lx %s 0 %s'", v.start, v.end, v.perms,
		 v.off, v.path, (unsigned long)p, (unsigned long)p + size, perms, path);
}

/* /proc/self/map_files/<range> of the mapping holding P, into BUF. */
static char *map_files_path(const void *p, char *buf, size_t len)
{
	struct vma v;

	if (!find_vma(p, &v))
		v.start = v.end = 0;
	snprintf(buf, len, "/proc/self/map_files/%lx-%lx", v.start, v.end);
	return buf;
}

/* Opens the object mapped at P through map_files (read-write): an fd, or -1. */
static int open_mapped(const void *p)
{
	char path[128];

	return open(map_files_path(p, path, sizeof(path)), O_RDWR | O_CLOEXEC);
}

/* Checks NAME: the objects mapped at P and Q are the same inode. */
static void check_same_inode(const char *name, const void *p, const void *q)
{
	char pp[128], qp[128];
	struct stat a = {0}, b = {0};
	int ra = stat(map_files_path(p, pp, sizeof(pp)), &a);
	int rb = stat(map_files_path(q, qp, sizeof(qp)), &b);

	wl_check(name, !ra && !rb && a.st_dev == b.st_dev && a.st_ino == b.st_ino,
		 "%s: %d %lx:%lu, %s: %d %lx:%lu", pp, ra, (unsigned long)a.st_dev,
		 (unsigned long)a.st_ino, qp, rb, (unsigned long)b.st_dev, (unsigned long)b.st_ino);
}

/* Checks "NAME_file_len" and "NAME_file": FD holds the SIZE bytes at WANT,
 * and "NAME_stat": it is SIZE bytes long with no link (deleted, or a memfd). */
static void check_file(const char *name, int fd, const unsigned char *want, size_t size)
{
	unsigned char *buf = xmalloc(size + 1);
	char n[64];
	struct stat st;
	ssize_t r = pread(fd, buf, size + 1, 0);

	int sr;

	snprintf(n, sizeof(n), "%s_file_len", name);
	if (wl_check(n, r == (ssize_t)size, "pread %zd of %zu bytes (%s)", r, size,
		     r < 0 ? strerror(errno) : "size")) {
		snprintf(n, sizeof(n), "%s_file", name);
		check_bytes(n, buf, want, size);
	}
	snprintf(n, sizeof(n), "%s_stat", name);
	memset(&st, 0, sizeof(st));
	sr = fstat(fd, &st);
	wl_check(n, !sr && st.st_size == (off_t)size && st.st_nlink == 0,
		 "fstat %d: size %ld nlink %lu, expected %zu and 0", sr, (long)st.st_size,
		 (unsigned long)st.st_nlink, size);
	free(buf);
}

/* ---- shared mappings (A1/A2, B1/B2) ---- */

/* Checks two shared views M1, M2 of one SIZE-byte object that should hold
 * WANT and be named PATH in maps; opens the object through map_files and
 * checks it holds WANT and has no link; then writes through M1 (seen in M2
 * and the file) and through the file (seen in M1 and M2), updating WANT.
 * Returns the fd it opened (or -1). */
static int check_shared(const char *name, unsigned char *m1, unsigned char *m2, size_t size,
			unsigned char *want, const char *path)
{
	char n[64];
	unsigned char b[MARK_LEN];
	size_t at1 = 1000, at2 = size - 500;
	int fd;

	snprintf(n, sizeof(n), "%s_view1", name);
	check_bytes(n, m1, want, size);
	snprintf(n, sizeof(n), "%s_view2", name);
	check_bytes(n, m2, want, size);
	snprintf(n, sizeof(n), "%s_maps1", name);
	check_maps(n, m1, size, "rw-s", path);
	snprintf(n, sizeof(n), "%s_maps2", name);
	check_maps(n, m2, size, "rw-s", path);
	snprintf(n, sizeof(n), "%s_same_inode", name);
	check_same_inode(n, m1, m2);
	fd = open_mapped(m1);
	snprintf(n, sizeof(n), "%s_map_files_open", name);
	if (!wl_check(n, fd >= 0, "open map_files: %s", strerror(errno)))
		return -1;
	check_file(name, fd, want, size);

	mark(m1 + at1, "view1->2");
	mark(want + at1, "view1->2");
	snprintf(n, sizeof(n), "%s_view1_to_view2", name);
	wl_check(n, !memcmp(m2 + at1, "view1->2", MARK_LEN), "view 2 shows %.8s", m2 + at1);
	snprintf(n, sizeof(n), "%s_view_to_file", name);
	wl_check(n, pread(fd, b, MARK_LEN, at1) == MARK_LEN && !memcmp(b, "view1->2", MARK_LEN),
		 "the file reads %.8s", b);
	mark(want + at2, "file->vw");
	snprintf(n, sizeof(n), "%s_file_to_views", name);
	wl_check(n,
		 pwrite(fd, "file->vw", MARK_LEN, at2) == MARK_LEN &&
		     !memcmp(m1 + at2, "file->vw", MARK_LEN) &&
		     !memcmp(m2 + at2, "file->vw", MARK_LEN),
		 "views show %.8s and %.8s", m1 + at2, m2 + at2);
	return fd;
}

/* ---- private mappings ---- */

/* Checks private mapping P named PATH in maps. FD is an fd on the object,
 * or -1 to open it through map_files. The object must still hold its
 * pattern, a write to it shows in untouched page U1 but not in a changed
 * page, a write to the mapping (page U2) does not reach the object. */
static void check_private(const struct priv *p, int fd, const char *path)
{
	unsigned char *view = priv_view(p), *orig = xmalloc(p->size), b[MARK_LEN];
	int own = fd < 0;
	size_t at;
	char n[64];

	wl_fill(orig, p->size, p->seed);
	snprintf(n, sizeof(n), "%s_contents", p->name);
	check_bytes(n, p->map, view, p->size);
	snprintf(n, sizeof(n), "%s_maps", p->name);
	check_maps(n, p->map, p->size, "rw-p", path);
	if (own)
		fd = open_mapped(p->map);
	snprintf(n, sizeof(n), "%s_map_files_open", p->name);
	if (!wl_check(n, fd >= 0, "open map_files: %s", strerror(errno)))
		goto out;
	/* the object kept its pattern where the mapping was changed */
	check_file(p->name, fd, orig, p->size);

	/* a write to the object shows in an untouched page */
	at = p->u1 * PG + 16;
	mark(view + at, "file->u1");
	snprintf(n, sizeof(n), "%s_file_to_untouched", p->name);
	wl_check(n,
		 pwrite(fd, "file->u1", MARK_LEN, at) == MARK_LEN &&
		     !memcmp(p->map + at, "file->u1", MARK_LEN),
		 "the mapping shows %02x%02x%02x%02x at %zu, not the write to the object",
		 p->map[at], p->map[at + 1], p->map[at + 2], p->map[at + 3], at);

	/* but not in a changed page, even outside the changed bytes */
	for (int r = 0; r < p->nmod; r++) {
		at = p->mod_off[r] / PG * PG + 16;
		snprintf(n, sizeof(n), "%s_changed_page%zu_private", p->name, at / PG);
		wl_check(n,
			 pwrite(fd, "file->ch", MARK_LEN, at) == MARK_LEN &&
			     !memcmp(p->map + at, view + at, MARK_LEN),
			 "the mapping shows the object's write at %zu: %.8s", at, p->map + at);
		snprintf(n, sizeof(n), "%s_changed_page%zu_file", p->name, at / PG);
		wl_check(n,
			 pread(fd, b, MARK_LEN, at) == MARK_LEN && !memcmp(b, "file->ch", MARK_LEN),
			 "the object reads %02x%02x%02x%02x at %zu after writing it", b[0], b[1],
			 b[2], b[3], at);
	}

	/* a write to the mapping stays in it */
	at = p->u2 * PG + 40;
	mark(p->map + at, "map->own");
	mark(view + at, "map->own");
	snprintf(n, sizeof(n), "%s_write_stays_private", p->name);
	wl_check(n, pread(fd, b, MARK_LEN, at) == MARK_LEN && !memcmp(b, orig + at, MARK_LEN),
		 "the object reads %02x%02x%02x%02x at %zu, expected its pattern", b[0], b[1], b[2],
		 b[3], at);
	snprintf(n, sizeof(n), "%s_after_writes", p->name);
	check_bytes(n, p->map, view, p->size);
	if (own)
		close(fd);
out:
	free(view);
	free(orig);
}

/* ---- setup helpers ---- */

static unsigned char *map_fd(int fd, size_t size, int flags)
{
	unsigned char *m = mmap(NULL, size, PROT_READ | PROT_WRITE, flags, fd, 0);

	if (m == MAP_FAILED)
		wl_die("mmap %zu: %s", size, strerror(errno));
	return m;
}

/* A memfd NAME holding SIZE bytes of pattern SEED (offset left at SIZE). */
static int memfd_pattern(const char *name, unsigned flags, size_t size, int seed)
{
	int fd = memfd_create(name, flags);

	if (fd < 0 || !wl_write_pattern(fd, size, seed))
		wl_die("memfd %s: %s", name, strerror(errno));
	return fd;
}

/* A file PATH holding SIZE bytes of pattern SEED, open read-write. */
static int file_pattern(const char *path, size_t size, int seed)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0 || !wl_write_pattern(fd, size, seed))
		wl_die("create %s: %s", path, strerror(errno));
	return fd;
}

/* ---- the child ---- */

static void kid_main(struct ctl *ctl, unsigned char *a1, unsigned char *a2, unsigned char *b1,
		     unsigned char *b2, unsigned char *want_a, unsigned char *want_b,
		     const char *a_path)
{
	mark(a2 + A_KID_PRE, "kid-preA");
	mark(b2 + B_KID_PRE, "kid-preB");
	ctl->kid_ready = 1;
	wl_wait_go();
	check_bytes("kid_a1", a1, want_a, DEL_SIZE);
	check_bytes("kid_a2", a2, want_a, DEL_SIZE);
	check_bytes("kid_b1", b1, want_b, SEALED_SIZE);
	check_bytes("kid_b2", b2, want_b, SEALED_SIZE);
	check_maps("kid_a1_maps", a1, DEL_SIZE, "rw-s", a_path);
	check_maps("kid_b1_maps", b1, SEALED_SIZE, "rw-s", "/memfd:sealed (deleted)");
	mark(a1 + A_KID_POST, "kid-post");
	mark(b1 + B_KID_POST, "kid-post");
	ctl->kid_token = 1;
	if (wl_check("kid_answer", wl_wait_u32(&ctl->answer, 1), "the root did not answer")) {
		wl_check("kid_sees_root_a", !memcmp(a1 + A_ROOT_POST, "rootpost", MARK_LEN),
			 "A1 shows %.8s", a1 + A_ROOT_POST);
		wl_check("kid_sees_root_b", !memcmp(b2 + B_ROOT_POST, "rootpost", MARK_LEN),
			 "B2 shows %.8s", b2 + B_ROOT_POST);
	}
	_exit(wl_failures() ? 1 : 0);
}

int main(void)
{
	char del_path[PATH_MAX], delp_path[PATH_MAX], a_name[PATH_MAX + 16], ap_name[PATH_MAX + 16],
	    link[128];
	unsigned char *a1, *a2, *b1, *b2, *want_a, *want_b;
	struct priv delp = {"delp",   NULL, DELP_SIZE, 12, 22, 2, {1 * PG, 6 * PG + 100},
			    {PG, 10}, 3,    7};
	struct priv priv = {"priv",   NULL, PRIV_SIZE, 13, 23, 2, {2 * PG, 9 * PG + 3000},
			    {PG, 50}, 0,    11};
	struct priv privopen = {"privopen", NULL,	 PRIVOPEN_SIZE, 15, 25,
				1,	    {2 * PG, 0}, {PG, 0},	4,  0};
	struct ctl *ctl;
	struct stat st;
	int fd, fd_po, st_kid = 0, seals;
	pid_t kid;

	wl_init();
	if (sysconf(_SC_PAGESIZE) != PG)
		wl_die("page size %ld, expected %d", sysconf(_SC_PAGESIZE), PG);
	wl_path("del.dat", del_path, sizeof(del_path));
	wl_path("delp.dat", delp_path, sizeof(delp_path));
	snprintf(a_name, sizeof(a_name), "%s (deleted)", del_path);
	snprintf(ap_name, sizeof(ap_name), "%s (deleted)", delp_path);
	ctl = (struct ctl *)map_fd(-1, PG, MAP_SHARED | MAP_ANONYMOUS);

	/* 1: deleted file, shared twice, no fd; the root and the child write to it */
	fd = file_pattern(del_path, DEL_SIZE, 11);
	a1 = map_fd(fd, DEL_SIZE, MAP_SHARED);
	a2 = map_fd(fd, DEL_SIZE, MAP_SHARED);
	close(fd);
	if (unlink(del_path))
		wl_die("unlink %s: %s", del_path, strerror(errno));
	mark(a1 + A1_PRE, "A1-pre!!");
	want_a = xmalloc(DEL_SIZE);
	wl_fill(want_a, DEL_SIZE, 11);
	mark(want_a + A1_PRE, "A1-pre!!");
	mark(want_a + A_KID_PRE, "kid-preA");

	/* 4: sealed memfd, shared twice, no fd */
	fd = memfd_pattern("sealed", MFD_CLOEXEC | MFD_ALLOW_SEALING, SEALED_SIZE, 14);
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW))
		wl_die("F_ADD_SEALS: %s", strerror(errno));
	b1 = map_fd(fd, SEALED_SIZE, MAP_SHARED);
	b2 = map_fd(fd, SEALED_SIZE, MAP_SHARED);
	close(fd);
	want_b = xmalloc(SEALED_SIZE);
	wl_fill(want_b, SEALED_SIZE, 14);
	mark(want_b + B_KID_PRE, "kid-preB");

	kid = fork();
	if (kid < 0)
		wl_die("fork: %s", strerror(errno));
	if (kid == 0)
		kid_main(ctl, a1, a2, b1, b2, want_a, want_b, a_name);
	if (!wl_wait_u32(&ctl->kid_ready, 1))
		wl_die("the child did not write");

	/* 2: deleted file, private, no fd, some pages changed */
	fd = file_pattern(delp_path, DELP_SIZE, 12);
	delp.map = map_fd(fd, DELP_SIZE, MAP_PRIVATE);
	close(fd);
	if (unlink(delp_path))
		wl_die("unlink %s: %s", delp_path, strerror(errno));
	priv_modify(&delp);

	/* 3: memfd, private, no fd, some pages changed */
	fd = memfd_pattern("priv", MFD_CLOEXEC, PRIV_SIZE, 13);
	priv.map = map_fd(fd, PRIV_SIZE, MAP_PRIVATE);
	close(fd);
	priv_modify(&priv);

	/* 5: memfd, private, fd kept open at offset 4321, one page changed */
	fd_po = memfd_pattern("privopen", MFD_CLOEXEC | MFD_ALLOW_SEALING, PRIVOPEN_SIZE, 15);
	privopen.map = map_fd(fd_po, PRIVOPEN_SIZE, MAP_PRIVATE);
	priv_modify(&privopen);
	if (lseek(fd_po, PRIVOPEN_POS, SEEK_SET) != PRIVOPEN_POS)
		wl_die("lseek: %s", strerror(errno));

	/* sanity (and every page of every mapping touched before the checkpoint) */
	{
		struct priv *ps[] = {&delp, &priv, &privopen};
		for (int i = 0; i < 3; i++) {
			unsigned char *v = priv_view(ps[i]);
			if (memcmp(v, ps[i]->map, ps[i]->size))
				wl_die("%s: the mapping differs before the checkpoint",
				       ps[i]->name);
			free(v);
		}
		if (memcmp(a1, want_a, DEL_SIZE) || memcmp(a2, want_a, DEL_SIZE) ||
		    memcmp(b1, want_b, SEALED_SIZE) || memcmp(b2, want_b, SEALED_SIZE))
			wl_die("a shared mapping differs before the checkpoint");
	}

	wl_ready();
	wl_wait_go();

	/* the child checks first, then writes; its writes are part of what we expect */
	if (wl_check("kid_token", wl_wait_u32(&ctl->kid_token, 1), "the child did not write")) {
		mark(want_a + A_KID_POST, "kid-post");
		mark(want_b + B_KID_POST, "kid-post");
	}

	/* 1 */
	fd = check_shared("del", a1, a2, DEL_SIZE, want_a, a_name);
	if (fd >= 0)
		close(fd);
	wl_check("del_path_gone", stat(del_path, &st) < 0 && errno == ENOENT, "%s exists again",
		 del_path);

	/* 4 */
	fd = check_shared("sealed", b1, b2, SEALED_SIZE, want_b, "/memfd:sealed (deleted)");
	if (fd >= 0) {
		seals = fcntl(fd, F_GET_SEALS);
		wl_check("sealed_seals", seals == (F_SEAL_SHRINK | F_SEAL_GROW), "seals %#x",
			 seals);
		errno = 0;
		wl_check("sealed_no_shrink", ftruncate(fd, SEALED_SIZE - PG) < 0 && errno == EPERM,
			 "ftruncate to %d: %s", SEALED_SIZE - PG, strerror(errno));
		errno = 0;
		wl_check("sealed_no_grow", ftruncate(fd, SEALED_SIZE + PG) < 0 && errno == EPERM,
			 "ftruncate to %d: %s", SEALED_SIZE + PG, strerror(errno));
		memset(&st, 0, sizeof(st));
		fstat(fd, &st);
		wl_check("sealed_size", st.st_size == SEALED_SIZE, "size %ld", (long)st.st_size);
		close(fd);
	}

	/* the child's side of the sharing */
	mark(a2 + A_ROOT_POST, "rootpost");
	mark(b1 + B_ROOT_POST, "rootpost");
	ctl->answer = 1;
	wl_check("kid_exit",
		 waitpid(kid, &st_kid, 0) == kid && WIFEXITED(st_kid) && !WEXITSTATUS(st_kid),
		 "child %d: status %#x", kid, st_kid);

	/* 2 */
	check_private(&delp, -1, ap_name);
	wl_check("delp_path_gone", stat(delp_path, &st) < 0 && errno == ENOENT, "%s exists again",
		 delp_path);

	/* 3 */
	check_private(&priv, -1, "/memfd:priv (deleted)");
	fd = open_mapped(priv.map);
	seals = fd < 0 ? -2 : fcntl(fd, F_GET_SEALS);
	wl_check("priv_seals", seals == F_SEAL_SEAL, "seals %#x (memfd made without sealing)",
		 seals);
	if (fd >= 0)
		close(fd);

	/* 5: the offset first, before anything could move it */
	{
		off_t pos = lseek(fd_po, 0, SEEK_CUR);
		wl_check("privopen_offset", pos == PRIVOPEN_POS, "offset %ld, expected %d",
			 (long)pos, PRIVOPEN_POS);
	}
	wl_fd_link(fd_po, link, sizeof(link));
	wl_check("privopen_link", !strcmp(link, "/memfd:privopen (deleted)"), "link '%s'", link);
	wl_check_fd_flags("privopen", fd_po, O_RDWR, FD_CLOEXEC);
	seals = fcntl(fd_po, F_GET_SEALS);
	wl_check("privopen_seals", seals == 0, "seals %#x, expected none", seals);
	{
		char mp[128];
		struct stat a = {0};
		int r = stat(map_files_path(privopen.map, mp, sizeof(mp)), &a);

		r = r ? r : fstat(fd_po, &st);
		wl_check("privopen_fd_is_mapped",
			 !r && a.st_dev == st.st_dev && a.st_ino == st.st_ino,
			 "%s: %d, inode %lu, fd inode %lu", mp, r, (unsigned long)a.st_ino,
			 (unsigned long)st.st_ino);
	}
	check_private(&privopen, fd_po, "/memfd:privopen (deleted)");
	wl_check("privopen_offset_kept", lseek(fd_po, 0, SEEK_CUR) == PRIVOPEN_POS, "offset moved");
	wl_done();
}
