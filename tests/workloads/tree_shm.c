/* tree_shm.c: MAP_SHARED|MAP_ANONYMOUS memory shared across fork by the
 * root and two children, with data written by each before the checkpoint.
 * After `go` each child checks every byte it should see (the root's pattern
 * and the other child's), then writes a token the root must see, and waits
 * for the root's answer through the same memory: a write in one process is
 * seen in the others after restore, in both directions. The region must
 * still read as anonymous shared memory in maps ("/dev/zero (deleted)"). */
#include "wl.h"

#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SIZE (8 << 20)
#define AREA (1 << 20) /* each writer's own area */

struct shared {
	volatile uint32_t token[3];  /* written by process i after go */
	volatile uint32_t answer[3]; /* written by the root in reply */
	volatile uint32_t ready;
};

static unsigned char *mem;

static unsigned char byte_of(int who, size_t i)
{
	return (unsigned char)(i * 7 + who * 31 + 1);
}

static void fill(int who)
{
	unsigned char *area = mem + 4096 + who * AREA;

	for (size_t i = 0; i < AREA; i++)
		area[i] = byte_of(who, i);
}

/* The first wrong byte of writer who's area, or -1. */
static long area_bad(int who)
{
	const unsigned char *area = mem + 4096 + who * AREA;

	for (size_t i = 0; i < AREA; i++)
		if (area[i] != byte_of(who, i))
			return i;
	return -1;
}

static void child(int who)
{
	struct shared *sh = (struct shared *)mem;

	fill(who);
	__atomic_add_fetch(&sh->ready, 1, __ATOMIC_SEQ_CST);
	wl_wait_go();
	for (int w = 0; w < 3; w++)
		if (area_bad(w) >= 0)
			_exit(10 + w);
	sh->token[who] = 0x1000 + who;
	_exit(wl_wait_u32(&sh->answer[who], 0x2000 + who) ? 0 : 20);
}

/* Whether the maps line of the region at mem names path. */
static bool maps_names(const void *at, const char *path)
{
	char line[512], head[32];
	bool found = false;
	FILE *f = fopen("/proc/self/maps", "r");

	if (!f)
		return false;
	snprintf(head, sizeof(head), "%lx-", (unsigned long)at);
	while (!found && fgets(line, sizeof(line), f))
		found = !strncmp(line, head, strlen(head)) && strstr(line, path);
	fclose(f);
	return found;
}

int main(void)
{
	struct shared *sh;
	pid_t kids[2];
	char name[32];

	wl_init();
	mem = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		wl_die("mmap: %s", strerror(errno));
	sh = (struct shared *)mem;
	fill(0);
	for (int k = 0; k < 2; k++) {
		kids[k] = fork();
		if (kids[k] == 0)
			child(k + 1);
	}
	if (!wl_wait_u32(&sh->ready, 2))
		wl_die("the children did not fill their areas");
	wl_ready();
	wl_wait_go();
	wl_check("maps_anon_shared", maps_names(mem, " /dev/zero (deleted)"),
		 "the region is not \"/dev/zero (deleted)\" in /proc/self/maps");
	for (int w = 0; w < 3; w++) {
		long bad = area_bad(w);
		snprintf(name, sizeof(name), "root_sees_area%d", w);
		wl_check(name, bad < 0, "byte %ld of writer %d's area differs", bad, w);
	}
	for (int k = 1; k <= 2; k++) {
		snprintf(name, sizeof(name), "token_from_child%d", k);
		if (wl_check(name, wl_wait_u32(&sh->token[k], 0x1000 + k), "token 0x%x",
			     sh->token[k]))
			sh->answer[k] = 0x2000 + k;
	}
	for (int k = 0; k < 2; k++) {
		snprintf(name, sizeof(name), "child%d", k + 1);
		wl_check_child(name, kids[k]);
	}
	wl_done();
}
