/*
 * treeplan: how each process of a tree is made again so that it is in its
 * session, which a process can only inherit from the one that forks it (or
 * make with setsid()). Used by the dump, to refuse a tree before anything
 * is written, and by the restore, which follows the plan (tree.c).
 *
 * A process holds at most two sessions in its life: the one it was born in
 * and, after setsid(), its own. So a process P whose kid K is in a session
 * S that is not P's is one of:
 *   - early: P leads its own session now but was born in S, and forked K
 *     before its setsid() (K's kids may ask the same of K: born_in, found
 *     bottom-up, says which session a leader must be born in);
 *   - gone session: S's leader has exited; K came to P, a subreaper, as an
 *     orphan (or K leads a session now, born in S, and its kids need that).
 *     A helper with the leader's pid makes S again (tree.c);
 *   - adopted: S's leader lives, and so does some process of S below P.
 *     K was an orphan too. A process M of S below P makes a helper that
 *     forks K and exits, and K comes to P, which is a subreaper meanwhile;
 *     when M is a kid of P it makes K itself, with CLONE_PARENT.
 *     No process from M up to P may be one at that moment: the plan picks an
 *     M whose path to P has none that awaits kids of its own this way, and
 *     one that does not itself wait for K to be made. M may be a zombie,
 *     which makes its fosters before it exits.
 *   A gone session is made by one helper only (its pid is taken while the
 *   session lives): it makes one parent's kids of that session, with
 *   CLONE_PARENT. So the leaders between the processes needing it and an
 *   ancestor in it, or else the ancestor where those parents meet, count
 *   as born in it (what setsid() leaves is the same); the kids of parents
 *   still apart are adopted.
 * Groups: a process joins its group itself, once the group exists (tree.c
 * waits for it); the first member of a group whose leader has exited makes
 * it with a helper of the leader's pid, and a leader that has moved to
 * another group keeps its own with a helper until a member is in it (a
 * zombie waits for that before it exits).
 */
#include "treeplan.h"

#include <stdlib.h>

#include "infra/log.h"

static bool leads(const struct tp_node *x)
{
	return x->sid == x->pid;
}

static int index_of(const struct tp_node *n, size_t nr, pid_t pid)
{
	for (size_t i = 0; i < nr; i++)
		if (n[i].pid == pid)
			return (int)i;
	return -1;
}

/* The session node i holds before its setsid(): set when it leads its own
 * session and was made in another (the root's is not known: 0). */
static pid_t early_sid(const struct tp_node *n, int i)
{
	if (i <= 0 || !leads(&n[i]) || n[i].start_sid == n[i].sid)
		return 0;
	return n[i].start_sid;
}

static bool descends(const struct tp_node *n, int j, int ancestor)
{
	for (int k = n[j].parent; k >= 0; k = n[k].parent)
		if (k == ancestor)
			return true;
	return false;
}

static int link_parents(struct tp_node *n, size_t nr)
{
	n[0].parent = -1;
	for (size_t i = 1; i < nr; i++) {
		int p = index_of(n, nr, n[i].ppid);
		if (p < 0 || n[p].zombie || p == (int)i)
			return err_set("the parent %d of pid %d is not in the checkpoint",
				       n[i].ppid, n[i].pid);
		if (p > (int)i)
			return err_set("pid %d is listed before its parent %d", n[i].pid, n[p].pid);
		n[i].parent = p;
	}
	return 0;
}

/* The session node k needs from the process that makes it. */
static pid_t wants(const struct tp_node *k)
{
	return leads(k) ? k->born_in : k->sid;
}

/* Sets born_in = sid on the leaders from p up to (not including) top,
 * when all of them can take it; false if one cannot. */
static bool born_in_path(struct tp_node *n, int p, int top, pid_t sid, bool set)
{
	for (int x = p; x != top; x = n[x].parent)
		if (x <= 0 || !leads(&n[x]) || (n[x].born_in && n[x].born_in != sid))
			return false;
		else if (set)
			n[x].born_in = sid;
	return true;
}

/* Gone session sid, needed by a kid of leader p: p and the leaders above
 * it were born in it, up to one whose parent is in it or born in it. */
static bool anchor_gone(struct tp_node *n, int p, pid_t sid)
{
	for (int x = p; x > 0 && leads(&n[x]) && (!n[x].born_in || n[x].born_in == sid);
	     x = n[x].parent) {
		int q = n[x].parent;
		if (n[q].sid == sid || n[q].born_in == sid)
			return born_in_path(n, p, q, sid, true);
	}
	return false;
}

static int common_ancestor(const struct tp_node *n, int a, int b)
{
	for (int x = a; x >= 0; x = n[x].parent)
		if (x == b || descends(n, b, x))
			return x;
	return 0;
}

/* The processes still needing gone session sid from a parent that has it
 * not: when the leaders from each such parent up to their common ancestor
 * can all have been born in it, they were, and one helper there makes it
 * for all (else each parent's kids are made apart, one_session_helper). */
static void join_gone(struct tp_node *n, size_t nr, pid_t sid)
{
	int top = -1;

	for (int pass = 0; pass < 3; pass++)
		for (size_t i = 1; i < nr; i++) {
			int p = n[i].parent;
			if (wants(&n[i]) != sid || n[p].sid == sid || n[p].born_in == sid)
				continue;
			if (pass == 0)
				top = top < 0 ? p : common_ancestor(n, top, p);
			else if (!born_in_path(n, p, top, sid, pass == 2))
				return;
		}
}

static bool first_wanting(const struct tp_node *n, size_t i)
{
	for (size_t j = 1; j < i; j++)
		if (wants(&n[j]) == wants(&n[i]))
			return false;
	return true;
}

/* Bottom-up, until nothing changes: a leader whose kid needs a session
 * other than the leader's own may have been born in it, and made the kid
 * before its setsid() -- not a session led below the leader (the kid came
 * to it as an orphan); a gone leader's session where an ancestor has it
 * (anchor_gone), or else where the parents needing it meet (join_gone). */
static void find_born_in(struct tp_node *n, size_t nr)
{
	for (int round = 0; round < 2; round++) {
		for (bool changed = true; changed;) {
			changed = false;
			for (size_t i = nr; i-- > 1;) {
				pid_t want = wants(&n[i]);
				int p = n[i].parent, s = index_of(n, nr, want);
				if (p <= 0 || !leads(&n[p]) || !want || want == n[p].pid ||
				    n[p].born_in)
					continue;
				if (s < 0) {
					changed |= anchor_gone(n, p, want);
				} else if (!descends(n, s, p)) {
					n[p].born_in = want;
					changed = true;
				}
			}
		}
		for (size_t i = 1; round == 0 && i < nr; i++)
			if (wants(&n[i]) && index_of(n, nr, wants(&n[i])) < 0 &&
			    first_wanting(n, i))
				join_gone(n, nr, wants(&n[i]));
	}
}

static void choose_birth(struct tp_node *n, size_t nr, int i)
{
	struct tp_node *k = &n[i], *p = &n[k->parent];
	pid_t pe = early_sid(n, k->parent);

	k->maker = -1;
	/* a leader is made where its kids need it, or anywhere */
	k->start_sid = !leads(k) ? k->sid : k->born_in ? k->born_in : p->sid;
	if (k->start_sid == p->sid) {
		k->birth = TP_DIRECT;
	} else if (k->start_sid == pe) {
		k->birth = TP_EARLY;
	} else {
		k->birth = index_of(n, nr, k->start_sid) < 0 ? TP_GONE_SESSION : TP_ADOPTED;
	}
}

/* None of the processes from j up to (not including) p is a subreaper
 * while the restore makes the tree. */
static bool clear_path(const struct tp_node *n, int j, int p)
{
	for (int k = j; k != p; k = n[k].parent)
		if (n[k].adoptive)
			return false;
	return true;
}

static bool adoptees_need(const struct tp_node *n, size_t nr, int y, int i, bool *seen);

/* Whether making node j needs node i made first: j's parent, or its maker
 * if it is adopted, and theirs (a maker not chosen yet counts as none);
 * and for one made through a helper, every adopted kid of each subreaper
 * on the way up from its maker (tree.c waits until those are in). */
static bool needs_from(const struct tp_node *n, size_t nr, int j, int i, bool *seen)
{
	for (int x = j; x >= 0; x = n[x].birth == TP_ADOPTED ? n[x].maker : n[x].parent) {
		if (x == i)
			return true;
		if (seen[x])
			return false;
		seen[x] = true;
		if (n[x].birth != TP_ADOPTED || n[x].maker < 0 || n[x].maker_sibling)
			continue;
		for (int y = n[n[x].maker].parent; y >= 0 && y != n[x].parent; y = n[y].parent)
			if (n[y].adoptive && adoptees_need(n, nr, y, i, seen))
				return true;
	}
	return false;
}

static bool adoptees_need(const struct tp_node *n, size_t nr, int y, int i, bool *seen)
{
	for (size_t a = 1; a < nr; a++)
		if (n[a].parent == y && n[a].birth == TP_ADOPTED &&
		    needs_from(n, nr, (int)a, i, seen))
			return true;
	return false;
}

static bool needs(const struct tp_node *n, size_t nr, int j, int i)
{
	bool *seen = calloc(nr, sizeof(*seen));
	bool r = !seen || needs_from(n, nr, j, i, seen);

	free(seen);
	return r;
}

/* Whether maker j's helper can give node i to its parent: j is no
 * subreaper itself; one made before j's setsid() has none on its way up;
 * a later one waits until each subreaper on its way has its own adopted
 * kids (and stops being one), unless one of those needs i first. */
static bool way_up(const struct tp_node *n, size_t nr, int j, int i, bool early)
{
	int p = n[i].parent;

	if (early || n[j].adoptive)
		return clear_path(n, j, p);
	for (int y = n[j].parent; y >= 0 && y != p; y = n[y].parent) {
		bool *seen = calloc(nr, sizeof(*seen));
		bool cycle = !seen || (n[y].adoptive && adoptees_need(n, nr, y, i, seen));
		free(seen);
		if (cycle)
			return false;
	}
	return true;
}

/* Pass 0: a sibling (CLONE_PARENT); 1: a process below the parent, not
 * adopted itself; 2: any process below the parent. */
static bool can_make(const struct tp_node *n, size_t nr, int j, int i, int pass)
{
	const struct tp_node *k = &n[i];
	bool early = n[j].sid != k->start_sid;

	if (j == i || (pass < 2 && n[j].birth == TP_ADOPTED))
		return false;
	if (pass == 0 && (n[j].parent != k->parent || n[j].exit_signal != k->exit_signal))
		return false;
	/* a zombie makes its fosters before it exits, after its setsid() */
	if (early && (n[j].zombie || early_sid(n, j) != k->start_sid))
		return false;
	return descends(n, j, k->parent) && !needs(n, nr, j, i) &&
	       (pass == 0 || way_up(n, nr, j, i, early));
}

static bool choose_maker(struct tp_node *n, size_t nr, int i, int pass)
{
	struct tp_node *k = &n[i];

	for (size_t j = 0; j < nr; j++) {
		if (!can_make(n, nr, (int)j, i, pass))
			continue;
		k->maker = (int)j;
		k->maker_early = n[j].sid != k->start_sid;
		k->maker_sibling = pass == 0;
		return true;
	}
	return false;
}

/* The maker of adopted node i: a process of its session below its parent,
 * a sibling if there is one (then the parent need not be a subreaper). */
static int find_maker(struct tp_node *n, size_t nr, int i)
{
	struct tp_node *k = &n[i];

	if (k->maker >= 0 || choose_maker(n, nr, i, 1) || choose_maker(n, nr, i, 2))
		return 0;
	return err_set("pid %d %s session %d, but neither its parent %d nor a process of that "
		       "session below its parent can make it: cannot be made again there",
		       k->pid, leads(k) ? "was born in" : "is in", k->start_sid, k->ppid);
}

/* A gone leader's pid can be a session again only once, while the session
 * is empty: one helper makes it, for the kids of one parent (the last one
 * listed, the deepest: the others' kids may then be made by processes of
 * the session below them). Its kids take its exit signal. */
static int one_session_helper(struct tp_node *n, size_t nr)
{
	for (size_t i = 1; i < nr; i++) {
		size_t last = i;
		if (n[i].birth != TP_GONE_SESSION)
			continue;
		for (size_t j = i + 1; j < nr; j++)
			if (n[j].birth == TP_GONE_SESSION && n[j].start_sid == n[i].start_sid)
				last = j;
		if (n[last].parent != n[i].parent)
			n[i].birth = TP_ADOPTED;
		else if (n[last].exit_signal != n[i].exit_signal)
			return err_set("pids %d and %d, made again in session %d whose leader has "
				       "exited, have different exit signals: not supported yet",
				       n[i].pid, n[last].pid, n[i].start_sid);
	}
	return 0;
}

/* Groups whose leader is not in it: the first member of one whose leader
 * has exited makes it again with a helper of the leader's pid (a gone
 * session's own group is its helper's); a live leader that moved to
 * another group makes its own first, and keeps it until a member is in. */
static int plan_groups(struct tp_node *n, size_t nr)
{
	for (size_t i = 1; i < nr; i++) {
		struct tp_node *k = &n[i];
		int leader = index_of(n, nr, k->pgid);
		if (k->pgid == k->pid || k->pgid == n[0].pgid)
			continue;
		if (leader < 0) {
			bool opened = false;
			for (size_t j = 1; j < i; j++)
				opened |= n[j].pgid == k->pgid;
			k->opens_group = !opened && k->pgid != k->sid;
			continue;
		}
		if (n[leader].pgid == k->pgid)
			continue;
		if (leader == 0)
			return err_set("pid %d is in process group %d, whose leader (the root) has "
				       "moved to group %d since: not supported yet",
				       k->pid, k->pgid, n[leader].pgid);
		n[leader].keeps_group = true;
	}
	return 0;
}

int tp_plan(struct tp_node *n, size_t nr)
{
	if (!nr || link_parents(n, nr))
		return -1;
	for (size_t i = 0; i < nr; i++) {
		n[i].adoptive = false;
		n[i].born_in = 0;
		n[i].maker = -1;
		n[i].maker_sibling = false;
		n[i].opens_group = false;
		n[i].keeps_group = false;
	}
	find_born_in(n, nr);
	n[0].birth = TP_DIRECT;
	n[0].start_sid = n[0].sid;
	n[0].maker = -1;
	for (size_t i = 1; i < nr; i++)
		choose_birth(n, nr, (int)i);
	if (one_session_helper(n, nr) || plan_groups(n, nr))
		return -1;
	/* siblings first: a parent all of whose adopted kids a sibling makes is
	 * no subreaper, and in nobody's way */
	for (size_t i = 1; i < nr; i++)
		if (n[i].birth == TP_ADOPTED && !choose_maker(n, nr, (int)i, 0))
			n[n[i].parent].adoptive = true;
	for (size_t i = 1; i < nr; i++) {
		if (n[i].birth == TP_ADOPTED && find_maker(n, nr, (int)i))
			return -1;
		if (n[i].shares && n[i].birth != TP_DIRECT)
			return err_set("pid %d shares its fd table or fs with its parent %d but is "
				       "in session %d, which its parent is not in now: not "
				       "supported yet",
				       n[i].pid, n[i].ppid, n[i].sid);
	}
	return 0;
}
