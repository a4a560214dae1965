/* inj_nosyscall.c: a process with no `syscall` instruction anywhere in its
 * memory, so cryo can neither borrow one from its vDSO nor from its code and
 * must write one (at the instruction pointer) and put the bytes back.
 *
 * The child copies a small blob of code into a page of its own, jumps into
 * it, and the blob unmaps everything else (program, libc, stack, vDSO), then
 * overwrites its own `syscall` with two nops and spins forever incrementing
 * a counter: from then on the child's only mapping is that page, and no
 * byte pair 0f 05 is in it (checked before `ready`, so the case cannot pass
 * without taking the path it is about).
 *
 * After the checkpoint the root checks, from outside through
 * process_vm_readv and /proc: the child still spins (its counter grows), its
 * page holds exactly the bytes it held before (no written `syscall` or other
 * byte of cryo's stayed; the counter word aside), and its maps read the same
 * (no scratch or code page of cryo's left, nothing remapped). */
#include "wl.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE	   4096
#define TABLE_OFF  2048 /* where the child puts the ranges to unmap */
#define MAX_RANGES 120
#define MAPS_MAX   (64 * 1024)

/* rdi: table of (start, len) pairs, rsi: how many. Uses no stack. */
asm(".pushsection .text\n"
    ".globl blob_start, blob_sc, blob_counter, blob_end\n"
    "blob_start:\n"
    "  mov %rdi, %r8\n"
    "  mov %rsi, %r9\n"
    "1: test %r9, %r9\n"
    "  jz 2f\n"
    "  mov (%r8), %rdi\n"
    "  mov 8(%r8), %rsi\n"
    "  mov $11, %eax\n" /* munmap */
    "blob_sc:\n"
    "  syscall\n"
    "  add $16, %r8\n"
    "  dec %r9\n"
    "  jmp 1b\n"
    "2: movw $0x9090, blob_sc(%rip)\n"
    "3: incq blob_counter(%rip)\n"
    "  jmp 3b\n"
    "  .balign 8\n"
    "blob_counter: .quad 0\n"
    "blob_end:\n"
    ".popsection\n");
extern const unsigned char blob_start[], blob_sc[], blob_counter[], blob_end[];

struct range {
	uint64_t start, len;
};

static size_t read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t n = 0;
	ssize_t r;

	if (fd < 0)
		wl_die("open %s: %s", path, strerror(errno));
	while (n < len - 1 && (r = read(fd, buf + n, len - 1 - n)) > 0)
		n += r;
	close(fd);
	buf[n] = '\0';
	return n;
}

/* Every mapping but the page and [vsyscall] (which is no mapping to unmap). */
static size_t ranges_to_unmap(uint64_t page, struct range *t)
{
	static char maps[MAPS_MAX];
	char *save, *line;
	size_t n = 0;

	read_file("/proc/self/maps", maps, sizeof(maps));
	for (line = strtok_r(maps, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned long s, e;
		if (sscanf(line, "%lx-%lx", &s, &e) != 2 || s == page || strstr(line, "[vsyscall]"))
			continue;
		if (n == MAX_RANGES)
			wl_die("more than %d mappings", MAX_RANGES);
		t[n++] = (struct range){s, e - s};
	}
	return n;
}

static void child(unsigned char *page)
{
	size_t len = blob_end - blob_start;
	struct range *t = (struct range *)(page + TABLE_OFF);
	size_t n;

	memcpy(page, blob_start, len);
	n = ranges_to_unmap((uint64_t)page, t);
	/* the kernel writes the rseq area on every preemption: it goes away
	 * (glibc registers at least 32 bytes, whatever __rseq_size says) */
	void *rseq_area = (char *)__builtin_thread_pointer() + __rseq_offset;
	unsigned int rseq_len = __rseq_size < 32 ? 32 : __rseq_size;
	if (__rseq_size && syscall(SYS_rseq, rseq_area, rseq_len, RSEQ_FLAG_UNREGISTER, RSEQ_SIG))
		wl_die("unregistering rseq: %s", strerror(errno));
	((void (*)(struct range *, size_t))page)(t, n);
	_exit(99); /* never reached: the blob spins */
}

static bool peek(pid_t pid, uint64_t addr, void *buf, size_t len)
{
	struct iovec l = {buf, len}, r = {(void *)addr, len};

	return process_vm_readv(pid, &l, 1, &r, 1, 0) == (ssize_t)len;
}

static uint64_t counter_of(pid_t pid, uint64_t page)
{
	uint64_t c = 0;

	if (!peek(pid, page + (blob_counter - blob_start), &c, sizeof(c)))
		return 0;
	return c;
}

static bool has_syscall(const unsigned char *p, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++)
		if (p[i] == 0x0f && p[i + 1] == 0x05)
			return true;
	return false;
}

static size_t maps_of(pid_t pid, char *buf, size_t len)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	return read_file(path, buf, len);
}

/* The page with its counter word zeroed, so that two reads compare. */
static bool page_of(pid_t pid, uint64_t page, unsigned char *buf)
{
	if (!peek(pid, page, buf, PAGE))
		return false;
	memset(buf + (blob_counter - blob_start), 0, sizeof(uint64_t));
	return true;
}

static void wait_spinning(pid_t pid, uint64_t page, unsigned char *code, char *maps)
{
	for (int i = 0; i < 2000 && counter_of(pid, page) == 0; i++)
		usleep(1000);
	if (!counter_of(pid, page))
		wl_die("the child never started spinning");
	if (!page_of(pid, page, code))
		wl_die("cannot read the child's page: %s", strerror(errno));
	if (has_syscall(code, PAGE))
		wl_die("the child's page still holds a syscall instruction");
	maps_of(pid, maps, MAPS_MAX);
	/* the page, and [vsyscall] which every x86-64 process shows */
	int lines = 0;
	for (char *p = maps; *p; p++)
		lines += *p == '\n';
	if (lines > 2)
		wl_die("the child kept %d mappings:\n%s", lines, maps);
}

int main(void)
{
	static char maps_before[MAPS_MAX], maps_after[MAPS_MAX];
	static unsigned char code_before[PAGE], code_after[PAGE];
	unsigned char *page = mmap(NULL, PAGE, PROT_READ | PROT_WRITE | PROT_EXEC,
				   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t c1, c2;
	int status;
	pid_t pid;

	if (page == MAP_FAILED)
		wl_die("mmap: %s", strerror(errno));
	if (blob_end - blob_start > TABLE_OFF)
		wl_die("the blob does not fit before the table");
	pid = fork();
	if (pid < 0)
		wl_die("fork: %s", strerror(errno));
	if (pid == 0)
		child(page);
	wait_spinning(pid, (uint64_t)page, code_before, maps_before);
	wl_ready();
	wl_wait_go();

	c1 = counter_of(pid, (uint64_t)page);
	usleep(50000);
	c2 = counter_of(pid, (uint64_t)page);
	wl_check("child_spins", c1 > 0 && c2 > c1, "counter %llu then %llu", (unsigned long long)c1,
		 (unsigned long long)c2);
	wl_check("page_read", page_of(pid, (uint64_t)page, code_after), "process_vm_readv: %s",
		 strerror(errno));
	size_t diff = 0;
	while (diff < PAGE && code_before[diff] == code_after[diff])
		diff++;
	wl_check("page_unchanged", diff == PAGE, "byte %zu is 0x%02x, was 0x%02x", diff,
		 diff < PAGE ? code_after[diff] : 0, diff < PAGE ? code_before[diff] : 0);
	wl_check("no_syscall_left", !has_syscall(code_after, PAGE), "a 0f 05 in the page");
	maps_of(pid, maps_after, sizeof(maps_after));
	wl_check("maps_unchanged", !strcmp(maps_before, maps_after), "before:\n%safter:\n%s",
		 maps_before, maps_after);

	kill(pid, SIGKILL);
	wl_check("child_reaped",
		 waitpid(pid, &status, 0) == pid && WIFSIGNALED(status) &&
		     WTERMSIG(status) == SIGKILL,
		 "status 0x%x", status);
	wl_done();
}
