/* fd_deleted_sparse.c: sparse files deleted while open: a file of 8 GiB
 * with three runs of data (at 0, in the middle at 3 GiB + 5000, and the
 * last 100 bytes), its fd at offset 3 GiB; a memfd of 4 GiB with one page
 * of data at 1 GiB and a hole at its end. After go: sizes, the data, the
 * offset, and the holes are still holes: SEEK_DATA and SEEK_HOLE find the
 * same runs (block-aligned) and the files use only a few blocks (a dump
 * that copied them whole would write GiBs and fill them in). */
#define _FILE_OFFSET_BITS 64
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define GIB	   (1ULL << 30)
#define BIG_SIZE   (8 * GIB)
#define MFD_SIZE   (4 * GIB)
#define RUN_LEN	   20000
#define MAX_BLOCKS 1024 /* 512-byte blocks: 512 KiB, whatever the fs rounds to */

struct run {
	off_t off;
	size_t len;
	int seed;
};

static const struct run big_runs[] = {
    {0, RUN_LEN, 1}, {3 * GIB + 5000, RUN_LEN, 2}, {BIG_SIZE - 100, 100, 3}};
static const struct run mfd_runs[] = {{GIB, 4096, 4}};

static void write_runs(int fd, const struct run *r, int n)
{
	static unsigned char buf[RUN_LEN];

	for (int i = 0; i < n; i++) {
		wl_fill(buf, r[i].len, r[i].seed);
		if (pwrite(fd, buf, r[i].len, r[i].off) != (ssize_t)r[i].len)
			wl_die("pwrite: %s", strerror(errno));
	}
}

/* The runs of data SEEK_DATA/SEEK_HOLE give, as "off+len ..." text (the
 * offset of fd is put back). */
static void map_of(int fd, off_t size, char *out, size_t len)
{
	off_t off = 0, end, pos = lseek(fd, 0, SEEK_CUR);
	size_t at = 0;

	out[0] = 0;
	while (off < size && (off = lseek(fd, off, SEEK_DATA)) >= 0) {
		end = lseek(fd, off, SEEK_HOLE);
		at += snprintf(out + at, len - at, "%lld+%lld ", (long long)off,
			       (long long)(end - off));
		off = end;
	}
	lseek(fd, pos, SEEK_SET);
}

static void check_file(const char *name, int fd, off_t size, const struct run *r, int n,
		       const char *map_before)
{
	static unsigned char buf[RUN_LEN];
	char tag[64], map[512];
	struct stat st;

	snprintf(tag, sizeof(tag), "%s_size", name);
	wl_check(tag, !fstat(fd, &st) && st.st_size == size, "size %lld, expected %lld",
		 (long long)st.st_size, (long long)size);
	snprintf(tag, sizeof(tag), "%s_blocks", name);
	wl_check(tag, st.st_blocks <= MAX_BLOCKS, "%lld blocks of 512 bytes: holes were filled",
		 (long long)st.st_blocks);
	snprintf(tag, sizeof(tag), "%s_nlink", name);
	wl_check(tag, st.st_nlink == 0, "%lu links", (unsigned long)st.st_nlink);
	for (int i = 0; i < n; i++) {
		snprintf(tag, sizeof(tag), "%s_run%d", name, i);
		if (pread(fd, buf, r[i].len, r[i].off) != (ssize_t)r[i].len)
			wl_check(tag, false, "pread: %s", strerror(errno));
		else
			wl_check_pattern(tag, buf, r[i].len, r[i].seed);
	}
	snprintf(tag, sizeof(tag), "%s_holes", name);
	map_of(fd, size, map, sizeof(map));
	wl_check(tag, !strcmp(map, map_before), "runs of data now \"%s\", were \"%s\"", map,
		 map_before);
}

int main(void)
{
	char p[PATH_MAX], big_map[512], mfd_map[512];
	int big, mfd;

	wl_init();
	big = open(wl_path("sparse-big", p, sizeof(p)), O_RDWR | O_CREAT | O_TRUNC, 0640);
	if (big < 0 || ftruncate(big, BIG_SIZE))
		wl_die("create %s: %s", p, strerror(errno));
	write_runs(big, big_runs, 3);
	if (unlink(p) || lseek(big, 3 * GIB, SEEK_SET) != (off_t)(3 * GIB))
		wl_die("unlink: %s", strerror(errno));
	mfd = memfd_create("sparse-memfd", 0);
	if (mfd < 0 || ftruncate(mfd, MFD_SIZE))
		wl_die("memfd: %s", strerror(errno));
	write_runs(mfd, mfd_runs, 1);
	map_of(big, BIG_SIZE, big_map, sizeof(big_map));
	map_of(mfd, MFD_SIZE, mfd_map, sizeof(mfd_map));
	/* the runs SEEK_DATA finds must be few: else this fs does not keep holes */
	if (!strchr(big_map, ' ') || strlen(big_map) > 200)
		wl_die("the file system of the work dir keeps no holes: %s", big_map);

	wl_ready();
	wl_wait_go();

	wl_check("big_offset", lseek(big, 0, SEEK_CUR) == (off_t)(3 * GIB), "offset %lld",
		 (long long)lseek(big, 0, SEEK_CUR));
	check_file("big", big, BIG_SIZE, big_runs, 3, big_map);
	check_file("memfd", mfd, MFD_SIZE, mfd_runs, 1, mfd_map);
	wl_fd_link(big, p, sizeof(p));
	wl_check("big_link", strstr(p, "sparse-big (deleted)") != NULL, "link %s", p);
	wl_done();
}
