/* fd_fifo_removed.c: named pipes removed while open: "fifo-ends" with a read
 * end and a write end (O_NONBLOCK) holding 1000 bytes, and "fifo-rdwr", one
 * O_RDWR description holding 300 bytes, both unlinked. After go: each fd
 * reads "PATH (deleted)", is a FIFO with no link, the two ends are one
 * FIFO, the data is there, a write through the write end comes out of the
 * read end, the flags are kept and the names do not exist again. */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void check_removed(const char *tag, int fd, const char *path)
{
	char t[64], link[PATH_MAX], want[PATH_MAX + 16];
	struct stat st;

	wl_fd_link(fd, link, sizeof(link));
	snprintf(want, sizeof(want), "%s (deleted)", path);
	snprintf(t, sizeof(t), "%s_link", tag);
	wl_check(t, !strcmp(link, want), "link %s, expected %s", link, want);
	snprintf(t, sizeof(t), "%s_stat", tag);
	wl_check(t,
		 !fstat(fd, &st) && S_ISFIFO(st.st_mode) && st.st_nlink == 0 &&
		     (st.st_mode & 0777) == 0640,
		 "mode %o, %lu links", st.st_mode, (unsigned long)st.st_nlink);
	snprintf(t, sizeof(t), "%s_gone", tag);
	wl_check(t, access(path, F_OK) && errno == ENOENT, "%s exists again", path);
}

int main(void)
{
	char ends[PATH_MAX], rdwr[PATH_MAX], buf[8];
	struct stat a, b;
	int r, w, rw;

	wl_init();
	wl_path("fifo-ends", ends, sizeof(ends));
	wl_path("fifo-rdwr", rdwr, sizeof(rdwr));
	if (mkfifo(ends, 0640) || mkfifo(rdwr, 0640) || chmod(ends, 0640) || chmod(rdwr, 0640))
		wl_die("mkfifo: %s", strerror(errno));
	r = open(ends, O_RDONLY | O_NONBLOCK);
	w = open(ends, O_WRONLY | O_NONBLOCK);
	rw = open(rdwr, O_RDWR);
	if (r < 0 || w < 0 || rw < 0 || !wl_write_pattern(w, 1000, 1) ||
	    !wl_write_pattern(rw, 300, 2) || unlink(ends) || unlink(rdwr))
		wl_die("setup: %s", strerror(errno));

	wl_ready();
	wl_wait_go();

	check_removed("read_end", r, ends);
	check_removed("write_end", w, ends);
	check_removed("rdwr", rw, rdwr);
	wl_check("one_fifo", !fstat(r, &a) && !fstat(w, &b) && a.st_ino == b.st_ino,
		 "the two ends are different FIFOs");
	wl_check_fd_flags("read_end", r, O_RDONLY | O_NONBLOCK, 0);
	wl_check_fd_flags("write_end", w, O_WRONLY | O_NONBLOCK, 0);
	wl_check_fd_flags("rdwr", rw, O_RDWR, 0);
	wl_check_queued("ends_data", r, 1000, 1);
	wl_check_queued("rdwr_data", rw, 300, 2);
	wl_check("ends_flow",
		 write(w, "ping", 4) == 4 && read(r, buf, 8) == 4 && !memcmp(buf, "ping", 4),
		 "a write to the write end does not come out of the read end");
	wl_done();
}
