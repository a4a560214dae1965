/*
 * `cryo unlock -D DIR`: undoes what a cryo killed during a dump left behind.
 *
 * A dump writes netlock.img before it takes the network lock (sockets/tcp.c),
 * so even an incomplete checkpoint (no inventory yet) names the nftables
 * table and every socket the dump may have put into repair mode. unlock
 * reads that image (checked as any image, but without the inventory: a
 * dump killed before its commit has none, and the image still has the
 * name it is written under), deletes the table if it is there (only a
 * name netlock_is_ours accepts), and for each recorded pid and fd that is
 * still the same socket (same inode) and still in repair mode, takes it
 * out of repair mode through a pidfd_getfd duplicate. This is for a cryo
 * that died: run against a dump in progress, it would unfreeze its
 * connections under it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#include "cryo/cryo.h"
#include "images.h"
#include "infra/image.h"
#include "infra/log.h"
#include "netlock.h"

#include "netlock.pb-c.h"

/* The socket at pid's fd, if it is still the recorded one, out of repair
 * mode: 1 if it was in repair mode, 0 if not (or gone), -1 on error. */
static int unrepair(const NetlockSock *s)
{
	int pidfd = syscall(SYS_pidfd_open, (pid_t)s->pid, 0);
	int fd, on = 0, r = 0;
	socklen_t len = sizeof(on);
	struct stat st;

	if (pidfd < 0)
		return errno == ESRCH ? 0 : err_errno("pid %u: pidfd_open", s->pid);
	fd = syscall(SYS_pidfd_getfd, pidfd, (int)s->fd, 0);
	close(pidfd);
	if (fd < 0)
		return errno == EBADF || errno == ESRCH
			   ? 0
			   : err_errno("fd %u of pid %u: pidfd_getfd", s->fd, s->pid);
	if (fstat(fd, &st) || st.st_ino != s->ino ||
	    getsockopt(fd, IPPROTO_TCP, TCP_REPAIR, &on, &len) || !on)
		goto out;
	if (setsockopt(fd, IPPROTO_TCP, TCP_REPAIR, &(int){TCP_REPAIR_OFF}, sizeof(int)))
		r = err_errno("fd %u of pid %u: socket:[%lu]: cannot leave repair mode", s->fd,
			      s->pid, (unsigned long)s->ino);
	else
		r = 1;
out:
	close(fd);
	return r;
}

static int load_record(struct img_dir *d, NetlockEntry **e)
{
	struct img_in in;
	enum img_kind kind = image_type(IMAGE_NETLOCK)->kind;
	char name[sizeof(struct img_name) + 8];
	int r;

	/* committed, or still under the name of an image being written (the
	 * dump died before its commit renamed it) */
	snprintf(name, sizeof(name), ".%s.part", image_name(IMAGE_NETLOCK, 0).s);
	r = img_in_load_unlisted(d, &in, image_name(IMAGE_NETLOCK, 0).s, kind);
	if (r == 1)
		r = img_in_load_unlisted(d, &in, name, kind);
	if (r == 1)
		return err_set("%s has no netlock.img: no network lock to remove", d->path);
	if (r)
		return -1;
	r = img_in_msg(&in, &netlock_entry__descriptor, (ProtobufCMessage **)e);
	img_in_free(&in);
	if (r == 0)
		return err_set("%s/netlock.img is empty", d->path);
	return r == 1 ? 0 : -1;
}

static int unlock_record(const NetlockEntry *e)
{
	int r = 0, n = 0;

	if (e->table[0] && !netlock_is_ours(e->table))
		return err_set("netlock.img names table %s, which is not one of cryo's", e->table);
	for (size_t i = 0; i < e->n_socks && r >= 0; i++) {
		r = unrepair(e->socks[i]);
		n += r > 0;
	}
	if (r < 0)
		return -1;
	if (e->table[0] && (r = netlock_drop(e->table, e->has_netns ? e->netns : 0, 0)) < 0)
		return -1;
	printf("%s; %d socket%s taken out of repair mode\n",
	       !e->table[0] ? "no lock was taken"
	       : r == 1	    ? "no lock left"
			    : "network lock removed",
	       n, n == 1 ? "" : "s");
	return 0;
}

int cryo_unlock(const struct cryo_opts *opts)
{
	struct img_dir d = {.path = opts->images_dir};
	NetlockEntry *e = NULL;
	int r;

	d.dirfd = open(opts->images_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d.dirfd < 0)
		return err_errno("cannot open images directory %s", opts->images_dir);
	r = load_record(&d, &e);
	if (!r)
		r = unlock_record(e);
	if (e)
		protobuf_c_message_free_unpacked(&e->base, NULL);
	close(d.dirfd);
	return r;
}
