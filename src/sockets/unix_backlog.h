/* sockets/unix_backlog: connections taken from unix listeners' backlogs at
 * dump, put back when the tree goes on (see unix_backlog.c). */
#ifndef CRYO_UNIX_BACKLOG_H
#define CRYO_UNIX_BACKLOG_H

#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "context.h"
#include "fdkind.h"

/* Records one connection taken (in backlog order): the listener's address
 * to connect to again (listener_file: the O_PATH fd it names, or -1), the
 * accepted server end, cryo's duplicate of the client and its description.
 * The fds are the record's from now on, even on failure. */
int unix_backlog_record(struct dump_tree *tree, const struct sockaddr_un *listener, socklen_t len,
			int listener_file, int accepted, int client, uint32_t client_id);
/* A failed or --leave-running dump puts every connection back; then frees. */
void unix_backlog_end(struct dump_tree *tree, enum dump_end how);
void unix_backlog_free(struct dump_tree *tree);

#endif
