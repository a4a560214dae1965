/*
 * external: endpoints outside the checkpoint, and --inherit-fd.
 *
 * Owns what the tree shares with processes outside it: the kinds decide
 * what is outside (pipes.c: a pipe or FIFO whose other end is held outside;
 * sockets/unix.c: a stream socket whose peer is outside, named by
 * --external unix[INO]) and save nothing of it but its name; this file
 * keeps the list the dump prints, and the table of --inherit-fd.
 *
 * Dump: each endpoint outside is noted with its process, fd and resource
 * name; once the checkpoint is committed, one line per endpoint says on
 * standard output which --inherit-fd a restore needs for it (as its fd
 * number, the fd the process held it on).
 *
 * Restore: --inherit-fd fd[N]:RESOURCE, as CRIU: RESOURCE is what the
 * description's kind calls it (fd_kind.resource: pipe:[INODE],
 * socket:[INODE]) or its path (with or without the leading slash). Every
 * spec is parsed and its fd N checked open in cryo, and of the kind its
 * resource says, before anything else; then every description whose kind
 * says it is outside (fd_kind.outside) must be named by one, or the
 * restore stops before any process exists, with one line naming each fd
 * and the option. A named description is never made by its kind: files.c
 * has the root make it (external_open: a duplicate of cryo's fd N, taken
 * before the root moves any fd) and the processes that held it inherit it,
 * flags and all, as the restorer's fd has them.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "external.h"
#include "fdkind.h"
#include "infra/log.h"

#define RES_MAX 4200

/* Dump: one endpoint outside. */
struct external_note {
	pid_t pid;
	int fd;
	char resource[RES_MAX];
	char what[RES_MAX + 128];
};
struct external_dump {
	size_t nr;
	struct external_note *v;
};

/* Restore: one --inherit-fd. */
struct inherit_spec {
	int fd;		      /* cryo's */
	const char *resource; /* after "fd[N]:" */
	bool used;
};
struct external_restore {
	size_t nr;
	struct inherit_spec *v;
};

/* ---- dump ---- */

/* "unix[INO]" of --external, or 0. */
static uint64_t unix_external_ino(const char *spec)
{
	char *end;
	unsigned long long ino;

	if (strncmp(spec, "unix[", 5))
		return 0;
	errno = 0;
	ino = strtoull(spec + 5, &end, 10);
	if (errno || end == spec + 5 || strcmp(end, "]"))
		return 0;
	return ino;
}

bool external_unix_named(const struct cryo_opts *opts, uint64_t ino)
{
	for (size_t i = 0; i < opts->external.n; i++)
		if (unix_external_ino(opts->external.v[i]) == ino)
			return true;
	return false;
}

int external_check_opts(const struct cryo_opts *opts)
{
	for (size_t i = 0; i < opts->external.n; i++)
		if (!unix_external_ino(opts->external.v[i]))
			return err_set("--external %s: only unix[INODE] (a unix socket connected "
				       "outside the checkpoint) is supported yet",
				       opts->external.v[i]);
	return 0;
}

int external_dump_note(struct dump_tree *tree, pid_t pid, int fd, const char *resource,
		       const char *what)
{
	struct external_dump *d = tree->external;
	struct external_note *grown;

	if (!d && !(d = tree->external = calloc(1, sizeof(*d))))
		return err_set("out of memory");
	grown = realloc(d->v, (d->nr + 1) * sizeof(*grown));
	if (!grown)
		return err_set("out of memory");
	d->v = grown;
	grown += d->nr++;
	grown->pid = pid;
	grown->fd = fd;
	snprintf(grown->resource, sizeof(grown->resource), "%s", resource);
	snprintf(grown->what, sizeof(grown->what), "%s", what);
	pr_info("fd %d of pid %d is %s: saved as an endpoint outside the checkpoint", fd, pid,
		what);
	return 0;
}

void external_dump_report(const struct dump_tree *tree)
{
	const struct external_dump *d = tree->external;

	for (size_t i = 0; d && i < d->nr; i++) {
#define ENDPOINT_LINE "fd %d of pid %d is %s: restore with --inherit-fd 'fd[%d]:%s'"
		if (tree->opts->quiet_stdout)
			pr_info(ENDPOINT_LINE, d->v[i].fd, d->v[i].pid, d->v[i].what, d->v[i].fd,
				d->v[i].resource);
		else
			printf(ENDPOINT_LINE "\n", d->v[i].fd, d->v[i].pid, d->v[i].what,
			       d->v[i].fd, d->v[i].resource);
#undef ENDPOINT_LINE
	}
	fflush(stdout);
}

void external_dump_free(struct dump_tree *tree)
{
	if (tree->external)
		free(tree->external->v);
	free(tree->external);
	tree->external = NULL;
}

/* ---- restore: the table of --inherit-fd ---- */

/* "pipe:[INODE]" / "socket:[INODE]": prefix and a well-formed number. */
static bool bracketed(const char *res, const char *prefix)
{
	size_t n = strlen(prefix);
	char *end;

	if (strncmp(res, prefix, n) || res[n] < '0' || res[n] > '9')
		return false;
	strtoull(res + n, &end, 10);
	return !strcmp(end, "]");
}

/* Cryo's fd n must be open, and what its resource says it is. */
static int check_given_fd(const char *spec, int n, const char *res)
{
	struct stat st;

	if (fstat(n, &st))
		return err_errno("--inherit-fd '%s': cryo has no fd %d", spec, n);
	if (!strncmp(res, "pipe:", 5) && !S_ISFIFO(st.st_mode))
		return err_set("--inherit-fd '%s': cryo's fd %d is not a pipe", spec, n);
	if (!strncmp(res, "socket:", 7) && !S_ISSOCK(st.st_mode))
		return err_set("--inherit-fd '%s': cryo's fd %d is not a socket", spec, n);
	return 0;
}

/* fd[N]:RESOURCE */
static int parse_spec(const char *spec, struct inherit_spec *s)
{
	char *end;
	long n;

	errno = 0;
	n = strncmp(spec, "fd[", 3) ? -1 : strtol(spec + 3, &end, 10);
	if (n < 0 || errno || n > INT32_MAX || end == spec + 3 || strncmp(end, "]:", 2) || !end[2])
		return err_set("--inherit-fd '%s': expected fd[N]:RESOURCE, RESOURCE being "
			       "pipe:[INODE], socket:[INODE] or a path",
			       spec);
	s->fd = n;
	s->resource = end + 2;
	s->used = false;
	if ((!strncmp(s->resource, "pipe:", 5) && !bracketed(s->resource, "pipe:[")) ||
	    (!strncmp(s->resource, "socket:", 7) && !bracketed(s->resource, "socket:[")))
		return err_set("--inherit-fd '%s': expected pipe:[INODE] or socket:[INODE]", spec);
	return check_given_fd(spec, s->fd, s->resource);
}

static int parse_specs(struct restore_tree *tree)
{
	external_restore_free(tree);
	const struct cryo_strv *l = &tree->opts->inherit_fd;
	struct external_restore *r = calloc(1, sizeof(*r));

	if (!r || !(r->v = calloc(l->n + 1, sizeof(*r->v)))) {
		free(r);
		return err_set("out of memory");
	}
	tree->external = r;
	for (; r->nr < l->n; r->nr++) {
		if (parse_spec(l->v[r->nr], &r->v[r->nr]))
			return -1;
		for (size_t j = 0; j < r->nr; j++)
			if (!strcmp(r->v[j].resource, r->v[r->nr].resource))
				return err_set("--inherit-fd: %s is given twice",
					       r->v[r->nr].resource);
	}
	return 0;
}

/* What --inherit-fd calls fe ("" if nothing). */
static const char *resource_of(const FileEntry *fe, char *buf, size_t len)
{
	const struct fd_kind *k = fd_kind_of(fe->kind);

	buf[0] = '\0';
	if (k && k->resource)
		k->resource(fe, buf, len);
	else if (fe->path)
		snprintf(buf, len, "%s", fe->path);
	return buf;
}

/* Paths match with or without their leading slash (CRIU names files
 * relative to the root). */
static bool same_resource(const char *a, const char *b)
{
	if (!strcmp(a, b))
		return true;
	if (a[0] != '/' && b[0] != '/')
		return false;
	return !strcmp(a + (a[0] == '/'), b + (b[0] == '/'));
}

static struct inherit_spec *spec_of(const struct restore_tree *tree, const FileEntry *fe)
{
	char res[RES_MAX];

	if (!tree->external || !tree->external->nr || !*resource_of(fe, res, sizeof(res)))
		return NULL;
	for (size_t i = 0; i < tree->external->nr; i++)
		if (same_resource(tree->external->v[i].resource, res))
			return &tree->external->v[i];
	return NULL;
}

int external_given(const struct restore_tree *tree, const FileEntry *fe)
{
	const struct inherit_spec *s = spec_of(tree, fe);

	return s ? s->fd : -1;
}

/* Appends "fd N of pid P (RES): --inherit-fd 'fd[N]:RES'" for one
 * description outside that was not given. */
static void add_missing(char *line, size_t size, const struct fd_use *use, const char *res)
{
	size_t n = strlen(line);

	snprintf(line + n, size - n, "%sfd %d of pid %d (%.300s): --inherit-fd 'fd[%d]:%.300s'",
		 n ? "; " : "", use->fd, use->pid, res, use->fd, res);
}

/* Notes one description for the report: given (1), outside and not
 * given (1, listed in m), or neither (0). */
int external_check(struct restore_tree *tree, const FileEntry *fe, const struct fd_use *use,
		   struct external_missing *m)
{
	const struct fd_kind *k = fd_kind_of(fe->kind);
	struct inherit_spec *s = spec_of(tree, fe);
	char res[RES_MAX];

	if (s) {
		s->used = true;
		return 1;
	}
	if (!k->outside || !k->outside(tree, fe))
		return 0;
	m->missing++;
	resource_of(fe, res, sizeof(res));
	if (strlen(m->line) + 120 + strlen(res) < sizeof(m->line)) {
		add_missing(m->line, sizeof(m->line), use, res);
		m->listed++;
	}
	return 1;
}

/* Every description outside must be given, or none is made. */
static int report_missing(const struct external_missing *m)
{
	size_t more = m->missing - m->listed;

	if (!m->missing)
		return 0;
	return err_set("%zu endpoint%s outside the checkpoint must be given: %s%s%.0zu%s",
		       m->missing, m->missing > 1 ? "s" : "", m->line, more ? "; and " : "", more,
		       more ? " more" : "");
}

int external_parse(struct restore_tree *tree)
{
	return parse_specs(tree);
}

int external_check_end(struct restore_tree *tree, const struct external_missing *m)
{
	if (report_missing(m))
		return -1;
	for (size_t i = 0; tree->external && i < tree->external->nr; i++)
		if (!tree->external->v[i].used)
			pr_warn("--inherit-fd fd[%d]:%s names nothing of the checkpoint",
				tree->external->v[i].fd, tree->external->v[i].resource);
	return 0;
}

int external_open(const struct restore_tree *tree, const FileEntry *fe, int *fd)
{
	int given = external_given(tree, fe);

	*fd = given < 0 ? -1 : fcntl(given, F_DUPFD_CLOEXEC, 0);
	if (*fd < 0)
		return err_errno("cannot take fd %d given by --inherit-fd", given);
	return 0;
}

void external_restore_free(struct restore_tree *tree)
{
	if (tree->external)
		free(tree->external->v);
	free(tree->external);
	tree->external = NULL;
}
