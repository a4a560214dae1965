/*
 * fdkind: the table of the kinds of open file description (fdkind.h).
 * Adding a kind is its own source file and one line here.
 */
#include "fdkind.h"

const struct fd_kind *const fd_kinds[] = {
    /* one row a line: the order is the order kinds are tried in */
    // clang-format off
    &procfile_kind,
    &ghostnode_kind,
    &reg_kind,
    &dir_kind,
    &chr_kind,
    &tty_kind,
    &opath_kind,
    &linkremap_kind,
    &ghost_kind,
    &memfd_kind,
    &eventfd_kind,
    &signalfd_kind,
    &timerfd_kind,
    &epoll_kind,
    &inotify_kind,
    &fanotify_kind,
    &pidfd_kind,
    &seccomp_notify_kind,
    &unix_kind,
    &tcp_kind,
    &udp_kind,
    &icmp_kind,
    &raw_kind,
    &netlink_kind,
    &packet_kind,
    &pty_kind,
    &devtty_kind,
    &pipe_kind,
    &fifo_kind,
    // clang-format on
};
const size_t fd_nr_kinds = sizeof(fd_kinds) / sizeof(fd_kinds[0]);

const struct fd_kind *fd_kind_of(FileKind kind)
{
	for (size_t i = 0; i < fd_nr_kinds; i++)
		if (fd_kinds[i]->kind == kind)
			return fd_kinds[i];
	return NULL;
}

const struct fd_kind *fd_kind_recognise(const struct fd_probe *p)
{
	for (size_t i = 0; i < fd_nr_kinds; i++)
		if (fd_kinds[i]->recognise && fd_kinds[i]->recognise(p))
			return fd_kinds[i];
	return NULL;
}
