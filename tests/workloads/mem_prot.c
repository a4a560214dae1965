/* mem_prot.c: memory the process itself cannot read, with data in it.
 * Anonymous private regions written and then mprotect()ed to PROT_NONE,
 * PROT_EXEC only and PROT_WRITE only (x86 grants read with both, so
 * these are what the maps line says, not what a load does), a read-only
 * one, a private file mapping written and made PROT_NONE, and a PROT_NONE
 * anonymous shared region; where the CPU has protection keys (pku), a region
 * under a key that denies access, with the thread's PKRU. After `go`: every
 * region's maps line (range and permissions) and VmFlags are as before,
 * then each is made readable again and must hold its data; the pkey region
 * keeps its ProtectionKey and PKRU its value. */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PG   4096
#define SIZE (16 * PG)

struct region {
	const char *name;
	int prot, flags;
	bool file;
	unsigned char *map;
	char maps_line[256], vmflags[256];
};

static struct region regions[] = {
    {"none", PROT_NONE, MAP_PRIVATE, false, NULL, "", ""},
    {"exec_only", PROT_EXEC, MAP_PRIVATE, false, NULL, "", ""},
    {"write_only", PROT_WRITE, MAP_PRIVATE, false, NULL, "", ""},
    {"read_only", PROT_READ, MAP_PRIVATE, false, NULL, "", ""},
    {"file_none", PROT_NONE, MAP_PRIVATE, true, NULL, "", ""},
    {"shared_none", PROT_NONE, MAP_SHARED, false, NULL, "", ""},
};
#define NREGIONS (sizeof(regions) / sizeof(regions[0]))

static char smaps[1 << 20];

/* The maps line of the mapping that starts at ADDR (without the inode
 * column's padding) and its VmFlags, from /proc/self/smaps. */
static void describe(const void *addr, char *line, size_t llen, char *flags, size_t flen)
{
	int fd = open("/proc/self/smaps", O_RDONLY);
	ssize_t n = 0, got;
	char head[32], *p, *q;

	while (fd >= 0 && (got = read(fd, smaps + n, sizeof(smaps) - 1 - n)) > 0)
		n += got;
	smaps[n] = 0;
	if (fd >= 0)
		close(fd);
	line[0] = flags[0] = 0;
	snprintf(head, sizeof(head), "\n%lx-", (unsigned long)addr);
	p = strstr(smaps, head);
	if (!p)
		return;
	/* range and permissions: a shared region's inode is a new one after restore */
	q = strchr(strchr(p + 1, ' ') + 1, ' ');
	snprintf(line, llen, "%.*s", (int)(q - p - 1), p + 1);
	q = strstr(p, "\nVmFlags:");
	if (q)
		snprintf(flags, flen, "%.*s", (int)(strchrnul(q + 1, '\n') - q - 1), q + 1);
}

static unsigned char *map_region(struct region *r, int i)
{
	char path[4096];
	int fd = -1;
	unsigned char *m;

	if (r->file) {
		static unsigned char buf[SIZE];
		wl_fill(buf, SIZE, 50 + i);
		wl_mkfile(wl_path("mem_prot.data", path, sizeof(path)), buf, SIZE, 0600);
		fd = open(path, O_RDONLY);
		if (fd < 0)
			wl_die("open %s: %s", path, strerror(errno));
	}
	m = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, r->flags | (r->file ? 0 : MAP_ANONYMOUS), fd,
		 0);
	if (m == MAP_FAILED)
		wl_die("mmap %s: %s", r->name, strerror(errno));
	if (fd >= 0)
		close(fd);
	return m;
}

static void set_up(void)
{
	for (size_t i = 0; i < NREGIONS; i++) {
		struct region *r = &regions[i];
		r->map = map_region(r, (int)i);
		/* the file region: its first half written privately, the rest the file's */
		wl_fill(r->map, r->file ? SIZE / 2 : SIZE, (int)i + 1);
		if (mprotect(r->map, SIZE, r->prot))
			wl_die("mprotect %s: %s", r->name, strerror(errno));
		describe(r->map, r->maps_line, sizeof(r->maps_line), r->vmflags,
			 sizeof(r->vmflags));
	}
}

static void check_layout(const struct region *r)
{
	char name[64], line[256], flags[256];

	describe(r->map, line, sizeof(line), flags, sizeof(flags));
	snprintf(name, sizeof(name), "%s_maps_line", r->name);
	wl_check(name, !strcmp(line, r->maps_line), "\"%s\", expected \"%s\"", line, r->maps_line);
	snprintf(name, sizeof(name), "%s_vmflags", r->name);
	wl_check(name, !strcmp(flags, r->vmflags), "\"%s\", expected \"%s\"", flags, r->vmflags);
}

/* Made readable (which may merge it with its neighbours: layouts first). */
static void check_data(struct region *r, int i)
{
	char name[64];

	if (mprotect(r->map, SIZE, PROT_READ))
		wl_die("mprotect %s: %s", r->name, strerror(errno));
	snprintf(name, sizeof(name), "%s_data", r->name);
	if (!r->file) {
		wl_check_pattern(name, r->map, SIZE, i + 1);
		return;
	}
	wl_check_pattern(name, r->map, SIZE / 2, i + 1);
	snprintf(name, sizeof(name), "%s_file_data", r->name);
	{
		static unsigned char want[SIZE];
		wl_fill(want, SIZE, 50 + i);
		wl_check(name, !memcmp(r->map + SIZE / 2, want + SIZE / 2, SIZE / 2),
			 "the unwritten half is not the file's");
	}
}

/* ---- protection keys ---- */

static bool cpu_has_pku(void)
{
	char *buf = NULL;
	size_t cap = 0;
	bool yes = false;
	FILE *f = fopen("/proc/cpuinfo", "r");

	while (f && getline(&buf, &cap, f) > 0 && !yes)
		yes = !strncmp(buf, "flags", 5) && strstr(buf, " pku") && strstr(buf, " ospke");
	if (f)
		fclose(f);
	free(buf);
	return yes;
}

static unsigned rdpkru(void)
{
	unsigned eax, edx, ecx = 0;

	__asm__ volatile(".byte 0x0f,0x01,0xee" : "=a"(eax), "=d"(edx) : "c"(ecx));
	return eax;
}

struct pkey_region {
	unsigned char *map;
	int key;
	unsigned pkru;
	char pk_line[64];
};

static void pkey_line(const void *addr, char *out, size_t len)
{
	char line[256], flags[256], *p, *q;

	describe(addr, line, sizeof(line), flags, sizeof(flags));
	snprintf(line, sizeof(line), "\n%lx-", (unsigned long)addr);
	out[0] = 0;
	p = strstr(smaps, line);
	q = p ? strstr(p, "\nProtectionKey:") : NULL;
	if (q)
		snprintf(out, len, "%.*s", (int)(strchrnul(q + 1, '\n') - q - 1), q + 1);
}

static bool set_up_pkey(struct pkey_region *pk)
{
	if (!cpu_has_pku())
		return false;
	pk->key = syscall(SYS_pkey_alloc, 0, 0);
	if (pk->key < 0)
		return false;
	pk->map = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (pk->map == MAP_FAILED)
		wl_die("mmap: %s", strerror(errno));
	wl_fill(pk->map, SIZE, 77);
	if (syscall(SYS_pkey_mprotect, pk->map, SIZE, PROT_READ | PROT_WRITE, pk->key))
		wl_die("pkey_mprotect: %s", strerror(errno));
	/* deny access through the key: bit 2k is access-disable */
	pk->pkru = rdpkru() | (1u << (2 * pk->key));
	__asm__ volatile(".byte 0x0f,0x01,0xef" ::"a"(pk->pkru), "c"(0), "d"(0));
	pkey_line(pk->map, pk->pk_line, sizeof(pk->pk_line));
	return true;
}

static void check_pkey(struct pkey_region *pk)
{
	char line[64];
	unsigned pkru = rdpkru();

	pkey_line(pk->map, line, sizeof(line));
	wl_check("pkey_vma", !strcmp(line, pk->pk_line), "\"%s\", expected \"%s\"", line,
		 pk->pk_line);
	wl_check("pkey_pkru", pkru == pk->pkru, "PKRU %#x, expected %#x", pkru, pk->pkru);
	__asm__ volatile(".byte 0x0f,0x01,0xef" ::"a"(0u), "c"(0), "d"(0));
	wl_check_pattern("pkey_data", pk->map, SIZE, 77);
}

int main(void)
{
	struct pkey_region pk;
	bool pkeys;

	wl_init();
	set_up();
	pkeys = set_up_pkey(&pk);
	wl_ready();
	wl_wait_go();
	for (size_t i = 0; i < NREGIONS; i++)
		check_layout(&regions[i]);
	for (size_t i = 0; i < NREGIONS; i++)
		check_data(&regions[i], (int)i);
	if (pkeys)
		check_pkey(&pk);
	else
		wl_not_covered("pkeys", "this CPU has no protection keys (no pku/ospke in "
					"/proc/cpuinfo)");
	wl_done();
}
