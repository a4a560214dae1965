/* fd_link_remap.c: files removed from the path they were opened by while
 * another name of them remains (dumped with --link-remap): "orig" opened
 * read-write at offset 123 (and dup'd) and read-only at offset 7 (a second
 * description), then removed, "other" still naming it. After go: both fds
 * read "DIR/orig (deleted)", are the inode "other" names, at their offsets
 * with their access modes; a write through one is read through "other";
 * "orig" is still gone; the inode has its one link (two with the name the
 * dump linked it back under, which only a dump left running keeps). */
#include "wl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LEN 4096

/* Names in the work dir other than "other" that link to inode ino. */
static int remap_names(ino_t ino)
{
	char dir[PATH_MAX];
	struct dirent *d;
	int n = 0;
	DIR *dp = opendir(wl_path(".", dir, sizeof(dir)));

	while (dp && (d = readdir(dp)))
		n += d->d_ino == ino && strncmp(d->d_name, ".cryo-link-remap.", 17) == 0;
	if (dp)
		closedir(dp);
	return n;
}

static void check_desc(const char *name, int fd, off_t pos, int acc, const char *want_link)
{
	char tag[64], link[PATH_MAX];

	snprintf(tag, sizeof(tag), "%s_link", name);
	wl_fd_link(fd, link, sizeof(link));
	wl_check(tag, !strcmp(link, want_link), "link %s, expected %s", link, want_link);
	snprintf(tag, sizeof(tag), "%s_pos", name);
	wl_check(tag, lseek(fd, 0, SEEK_CUR) == pos, "offset %lld, expected %lld",
		 (long long)lseek(fd, 0, SEEK_CUR), (long long)pos);
	snprintf(tag, sizeof(tag), "%s", name);
	wl_check_fd_flags(tag, fd, acc, 0);
}

int main(void)
{
	char orig[PATH_MAX], other[PATH_MAX], want[PATH_MAX + 16];
	unsigned char data[LEN], got[16];
	struct stat a, b, o;
	int rw, rw2, ro;

	wl_init();
	wl_fill(data, LEN, 5);
	wl_mkfile(wl_path("orig", orig, sizeof(orig)), data, LEN, 0640);
	wl_path("other", other, sizeof(other));
	if (link(orig, other))
		wl_die("link: %s", strerror(errno));
	rw = open(orig, O_RDWR);
	ro = open(orig, O_RDONLY);
	rw2 = dup(rw);
	if (rw < 0 || ro < 0 || rw2 < 0 || lseek(rw, 123, SEEK_SET) != 123 ||
	    lseek(ro, 7, SEEK_SET) != 7 || unlink(orig))
		wl_die("setup: %s", strerror(errno));
	snprintf(want, sizeof(want), "%s (deleted)", orig);

	wl_ready();
	wl_wait_go();

	check_desc("rw", rw, 123, O_RDWR, want);
	check_desc("rw_dup", rw2, 123, O_RDWR, want);
	check_desc("ro", ro, 7, O_RDONLY, want);
	wl_check("same_inode",
		 !fstat(rw, &a) && !fstat(ro, &b) && !stat(other, &o) && a.st_ino == o.st_ino &&
		     b.st_ino == o.st_ino && a.st_dev == o.st_dev,
		 "the fds and \"other\" are different inodes");
	wl_check("nlink", a.st_nlink == 1 || (a.st_nlink == 2 && remap_names(a.st_ino) == 1),
		 "%lu links, %d of them cryo's", (unsigned long)a.st_nlink, remap_names(a.st_ino));
	wl_check("orig_gone", access(orig, F_OK) && errno == ENOENT, "%s exists again", orig);
	memset(data, 0, LEN);
	wl_check("contents_read", pread(ro, data, LEN, 0) == LEN, "pread: %s", strerror(errno));
	wl_check_pattern("contents", data, LEN, 5);
	wl_check("write_shared", pwrite(rw, "after-restore!!", 16, 2000) == 16, "pwrite: %s",
		 strerror(errno));
	int fo = open(other, O_RDONLY);
	wl_check("write_seen",
		 fo >= 0 && pread(fo, got, 16, 2000) == 16 && !memcmp(got, "after-restore!!", 16),
		 "\"other\" does not hold what was written through the fd");
	wl_done();
}
