/*
 * sockets/unix_hidden: binds a unix socket to a path name without making
 * that path where the program would see it.
 *
 * A socket whose socket file was deleted, replaced by another file, or
 * whose directory was removed still has its name: getsockname() returns the
 * path it was bound to, and nothing is found there. To give a restored
 * socket the same name, bind() must be called with that path, and bind()
 * makes the file. So a helper process, forked with the socket (the same
 * open file description), enters a mount namespace of its own, mounts an
 * empty tmpfs on the nearest directory of the path that exists (making the
 * rest of the directories in it) and binds there; when the helper exits its
 * namespace goes and the tmpfs is left attached only to the socket. The
 * program's file system is not touched: the path stays deleted, or the
 * other file stays in its place. Connecting to such a socket is by its
 * inode (SIOCUNIXFILE, unix.c), never by its name, as for the original.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "infra/log.h"
#include "sockets/unix_hidden.h"

/* Makes every missing directory of dir, from its nearest existing one. */
static int make_dirs(char *dir)
{
	struct stat st;

	if (!dir[0] || stat(dir, &st) == 0)
		return 0;
	char *slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = 0;
		int r = make_dirs(dir);
		*slash = '/';
		if (r)
			return r;
	}
	return mkdir(dir, 0755) && errno != EEXIST ? -errno : 0;
}

/* The nearest existing directory of dir (dir itself if it exists). */
static void nearest_dir(const char *dir, char *out, size_t size)
{
	struct stat st;

	snprintf(out, size, "%s", dir);
	while (stat(out, &st) || !S_ISDIR(st.st_mode)) {
		char *slash = strrchr(out, '/');
		if (!slash || slash == out) {
			snprintf(out, size, "/");
			return;
		}
		*slash = 0;
	}
}

/* In the helper: returns 0 or an errno. */
static int bind_in_own_ns(int fd, const struct unix_hidden_name *h)
{
	char top[PATH_MAX], dir[PATH_MAX];
	char *slash;

	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		return errno;
	snprintf(dir, sizeof(dir), "%s", h->path);
	slash = strrchr(dir, '/');
	if (!slash)
		return EINVAL;
	slash[slash == dir] = 0; /* "/x.sock": its directory is "/" */
	nearest_dir(dir, top, sizeof(top));
	if (mount("cryo-unix-name", top, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755"))
		return errno;
	int r = make_dirs(dir);
	if (r)
		return -r;
	if (h->cwd && chdir(h->cwd))
		return errno;
	if (bind(fd, (const struct sockaddr *)h->sa, h->len))
		return errno;
	if (fchmodat(AT_FDCWD, h->path, h->mode & 07777, 0) || lchown(h->path, h->uid, h->gid))
		return errno;
	return 0;
}

int unix_bind_hidden(int fd, const struct unix_hidden_name *h)
{
	int status;
	pid_t kid = fork();

	if (kid < 0)
		return err_errno("cannot fork to bind %s", h->sa->sun_path);
	if (kid == 0)
		_exit(bind_in_own_ns(fd, h));
	if (waitpid(kid, &status, 0) != kid)
		return err_errno("cannot wait for the helper binding %s", h->sa->sun_path);
	if (!WIFEXITED(status))
		return err_set("the helper binding %s died", h->sa->sun_path);
	if (WEXITSTATUS(status)) {
		errno = WEXITSTATUS(status);
		return err_errno("cannot bind a socket to %s out of sight (in a mount namespace of "
				 "its own, on a tmpfs at %s)",
				 h->sa->sun_path, h->path);
	}
	return 0;
}
