/*
 * Unit test of the plan of a tree's sessions (src/treeplan.c), on small
 * trees whose history is known: a kid born before its parent's setsid()
 * (two levels deep too), an orphan of a gone session, an orphan of a live
 * session made by a sibling with CLONE_PARENT or through a helper below
 * its parent, a leader born in a session it must be made in, a gone
 * session under two parents (one helper), a kid made past another
 * subreaper of the restore, the groups whose leader exited
 * or moved away, and the refusals (no process of the session below the
 * parent; the root as a leader that moved away). Prints
 * `unit: check NAME ok` or `unit: FAIL NAME: detail` per check and exits
 * non-zero if any failed. Built by `make unit` into build/unit/.
 */
#include <stdio.h>
#include <string.h>

#include "infra/log.h"
#include "treeplan.h"

static int failures;

static void check(const char *name, int ok, const char *detail)
{
	if (ok) {
		printf("unit: check %s ok\n", name);
		return;
	}
	printf("unit: FAIL %s: %s\n", name, detail);
	failures++;
}

#define NODE(p, pp, s, g)                                                                          \
	{                                                                                          \
		.pid = (p), .ppid = (pp), .sid = (s), .pgid = (g), .exit_signal = 17               \
	}

static int plan(struct tp_node *n, size_t nr)
{
	err_clear();
	return tp_plan(n, nr);
}

/* 10 leads its session; 11 (its kid, forked before 10's setsid) is in the
 * root's; 12 leads a session and 13, its kid, is in the root's too. */
static void born_before_setsid(void)
{
	struct tp_node n[] = {NODE(2, 1, 2, 2), NODE(10, 2, 10, 10), NODE(11, 10, 2, 2),
			      NODE(12, 10, 12, 12), NODE(13, 12, 2, 2)};

	check("early_plans", plan(n, 5) == 0, err_text());
	check("early_kid", n[2].birth == TP_EARLY, "11 is not made before 10's setsid()");
	check("early_leader", n[3].birth == TP_EARLY && n[3].start_sid == 2,
	      "12 is not made in session 2 before 10's setsid()");
	check("early_grandkid", n[4].birth == TP_EARLY, "13 is not made before 12's setsid()");
	check("early_no_subreaper", !n[0].adoptive && !n[1].adoptive,
	      "a parent of early kids is made a subreaper");
}

/* 20 (gone) led session 20: its kid 21 came to the root, a subreaper. */
static void gone_session(void)
{
	struct tp_node n[] = {NODE(2, 1, 2, 2), NODE(21, 2, 20, 20)};

	check("gone_plans", plan(n, 2) == 0, err_text());
	check("gone_helper", n[1].birth == TP_GONE_SESSION && !n[0].adoptive,
	      "21 is not made by session 20's helper");
}

/* 30 leads session 30 below the root; 31, of session 30, is the root's
 * (made by 30's kid with CLONE_PARENT, or orphaned): 30's kid 32 is no kid
 * of the root, so 31 is made by 30 itself through a helper. */
static void adopted(void)
{
	struct tp_node n[] = {NODE(2, 1, 2, 2), NODE(30, 2, 30, 30), NODE(31, 2, 30, 30),
			      NODE(32, 30, 30, 30)};

	check("adopted_plans", plan(n, 4) == 0, err_text());
	check("adopted_sibling", n[2].birth == TP_ADOPTED && n[2].maker == 1 && n[2].maker_sibling,
	      "31 is not made by its sibling 30 with CLONE_PARENT");
	check("adopted_no_subreaper", !n[0].adoptive, "the root is a subreaper needlessly");
	n[2].exit_signal = 0; /* CLONE_PARENT gives the sibling's: not this one */
	check("adopted_helper_plans", plan(n, 4) == 0, err_text());
	check("adopted_helper", n[2].maker_sibling == 0 && n[0].adoptive,
	      "31 with another exit signal is made by CLONE_PARENT");
}

/* Gone session 70 has kids under the root (72) and under its kid 3 (71):
 * one helper, under 3 (the deeper), and 72 made by 71 through a helper. */
static void gone_session_two_parents(void)
{
	struct tp_node n[] = {NODE(2, 1, 2, 2), NODE(3, 2, 2, 2), NODE(72, 2, 70, 70),
			      NODE(71, 3, 70, 70)};

	check("gone2_plans", plan(n, 4) == 0, err_text());
	check("gone2_helper", n[3].birth == TP_GONE_SESSION, "71 is not made by the helper");
	check("gone2_adopted", n[2].birth == TP_ADOPTED && n[2].maker == 3 && n[0].adoptive,
	      "72 is not made by 71 and adopted by the root");
}

/* 3 is a subreaper meanwhile: its kid 42 in session 40 (another exit
 * signal than its sibling 40's) comes through a helper. The root's kid 43
 * in session 40 has its makers only below 3: made by 40, which waits until
 * 3 has 42 (the plan allows it: 42 does not need 43). */
static void adopted_through_subreaper(void)
{
	struct tp_node n[] = {NODE(2, 1, 2, 2),	   NODE(3, 2, 3, 3),	NODE(40, 3, 40, 40),
			      NODE(42, 3, 40, 40), NODE(43, 2, 40, 40), NODE(41, 40, 40, 40)};

	n[3].exit_signal = 0;
	check("through_plans", plan(n, 6) == 0, err_text());
	check("through_helper", n[3].birth == TP_ADOPTED && !n[3].maker_sibling && n[1].adoptive,
	      "42 is not made through a helper, 3 a subreaper");
	check("through_waits", n[4].birth == TP_ADOPTED && n[4].maker == 2 && n[0].adoptive,
	      "43 is not made by 40 past the subreaper 3");
}

/* Group 50's leader exited, members under two parents: the first listed
 * opens it. Leader 60 moved to the root's group: it keeps its own. */
static void groups(void)
{
	struct tp_node b[] = {NODE(2, 1, 2, 2), NODE(51, 2, 2, 50), NODE(52, 2, 2, 2),
			      NODE(53, 52, 2, 50)};
	struct tp_node c[] = {NODE(2, 1, 2, 2), NODE(60, 2, 2, 2), NODE(61, 2, 2, 60)};

	check("gone_group_plans", plan(b, 4) == 0, err_text());
	check("gone_group_opener", b[1].opens_group && !b[3].opens_group,
	      "51 does not open group 50, or 53 opens it too");
	check("moved_leader_plans", plan(c, 3) == 0, err_text());
	check("moved_leader_keeps", c[1].keeps_group && !c[2].keeps_group,
	      "60 does not keep its group");
	c[1].zombie = true;
	check("moved_zombie_keeps", plan(c, 3) == 0 && c[1].keeps_group, err_text());
}

/* The refusals: no process of session 40 below 41's parent (the root's
 * kid 42); a group whose leader, the root, moved to another group. */
static void refusals(void)
{
	struct tp_node a[] = {NODE(2, 1, 2, 2), NODE(40, 2, 40, 40), NODE(42, 2, 2, 2),
			      NODE(41, 42, 40, 40)};
	struct tp_node c[] = {NODE(2, 1, 2, 62), NODE(62, 2, 2, 62), NODE(61, 2, 2, 2)};

	check("refuse_no_maker", plan(a, 4) && strstr(err_text(), "pid 41 is in session 40"),
	      err_text());
	check("refuse_root_moved_leader",
	      plan(c, 3) && strstr(err_text(), "(the root) has moved to group 62"), err_text());
}

int main(void)
{
	born_before_setsid();
	gone_session();
	adopted();
	gone_session_two_parents();
	adopted_through_subreaper();
	groups();
	refusals();
	return failures ? 1 : 0;
}
