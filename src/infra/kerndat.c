/*
 * Kernel feature probe: see kerndat.h.
 *
 * Each probe asks the kernel directly where that is cheap and harmless (a
 * syscall whose arguments can only fail with ENOSYS on an old kernel, or a
 * real call on an object of our own such as a pidfd of ourselves); where no
 * harmless question exists (ptrace requests need a tracee) it falls back on
 * the kernel release that introduced the feature.
 */
#include <cpuid.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/prctl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "infra/kerndat.h"
#include "infra/uapi.h"

#include <linux/userfaultfd.h>
#include <sys/ioctl.h>

#ifndef PR_SET_VMA
#define PR_SET_VMA	     0x53564d41
#define PR_SET_VMA_ANON_NAME 0
#endif

#define FEATURE(field, req, text)                                                                  \
	{                                                                                          \
#field, text, req, offsetof(struct cryo_kerndat, field)                            \
	}

static const struct kerndat_feature features[] = {
    FEATURE(ptrace_seize, true, "freezing a process without signalling it"),
    FEATURE(pidfd_open, true, "holding the process being dumped or restored"),
    FEATURE(pidfd_getfd, true, "taking the process's file descriptors"),
    FEATURE(clone3_set_tid, true, "recreating a process with its original pid"),
    FEATURE(process_vm_readv, true, "reading the process's memory"),
    FEATURE(prctl_mm_map, true, "restoring the mm fields (cmdline, environ, exe)"),
    FEATURE(proc_pagemap, true, "finding the pages a process uses"),
    FEATURE(ptrace_getsigmask, true, "saving the blocked signal mask"),
    FEATURE(ptrace_peeksiginfo, true, "saving queued signals"),
    FEATURE(close_range, true, "closing inherited descriptors at restore"),
    FEATURE(xsave, true, "saving FPU/SSE/AVX registers"),
    FEATURE(pagemap_scan, false, "fast page scan (falls back to reading pagemap)"),
    FEATURE(userfaultfd, false, "fast page fill at restore (falls back to preadv)"),
    FEATURE(rseq_config, false, "saving the rseq registration"),
    FEATURE(memfd_create, false, "memfd files"),
    FEATURE(time_ns, false, "time namespaces"),
    FEATURE(mremap_dontunmap, false, "moving mappings without unmapping"),
    FEATURE(ptrace_get_syscall_info, false, "reading the interrupted syscall"),
    FEATURE(vvar_vclock, false, "the [vvar_vclock] mapping of kernels 6.13+"),
    FEATURE(map_fixed_noreplace, false, "placing mappings without clobbering"),
    FEATURE(pr_set_vma_anon_name, false, "restoring names of anonymous mappings"),
    FEATURE(uffd_wp_async, false,
	    "tracking memory changes for incremental checkpoints (userfaultfd write-protect, "
	    "asynchronous; without it every checkpoint is a full one)"),
    FEATURE(soft_dirty, false, "the soft-dirty bit (not used: cryo tracks with userfaultfd)"),
};

const struct kerndat_feature *kerndat_features(int *nr)
{
	*nr = sizeof(features) / sizeof(features[0]);
	return features;
}

bool kerndat_has(const struct cryo_kerndat *kd, const struct kerndat_feature *f)
{
	return *(const bool *)((const char *)kd + f->offset);
}

/* The kernel release as major*1000+minor, e.g. 6018 for 6.18. */
static int release_code(const char *release)
{
	int major = 0, minor = 0;

	sscanf(release, "%d.%d", &major, &minor);
	return major * 1000 + minor;
}

static bool at_least(const struct cryo_kerndat *kd, int major, int minor)
{
	return release_code(kd->kernel_release) >= major * 1000 + minor;
}

static void probe_pidfd(struct cryo_kerndat *kd)
{
	int pidfd = syscall(SYS_pidfd_open, getpid(), 0);

	if (pidfd < 0)
		return;
	kd->pidfd_open = true;
	int copy = syscall(SYS_pidfd_getfd, pidfd, pidfd, 0);
	if (copy >= 0) {
		kd->pidfd_getfd = true;
		close(copy);
	}
	close(pidfd);
}

/*
 * clone3 with set_tid_size but no set_tid array is refused before anything
 * is created: EINVAL where set_tid exists, E2BIG where clone_args is still
 * the short 5.3 layout, ENOSYS without clone3.
 */
static void probe_clone3_set_tid(struct cryo_kerndat *kd)
{
	uint64_t args[11] = {0};

	args[9] = 1; /* set_tid_size, with set_tid (args[8]) NULL */
	errno = 0;
	if (syscall(SYS_clone3, args, sizeof(args)) < 0 && errno == EINVAL)
		kd->clone3_set_tid = true;
}

static void probe_process_vm_readv(struct cryo_kerndat *kd)
{
	long src = 42, dst = 0;
	struct iovec local = {&dst, sizeof(dst)}, remote = {&src, sizeof(src)};

	kd->process_vm_readv =
	    process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == (ssize_t)sizeof(dst) &&
	    dst == 42;
}

static void probe_pagemap(struct cryo_kerndat *kd)
{
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	struct pm_scan_arg arg = {.size = sizeof(arg)};

	if (fd < 0)
		return;
	kd->proc_pagemap = true;
	/* An empty range: answered with 0 by kernels that know the ioctl. */
	arg.start = arg.end = (uintptr_t)&arg & ~4095UL;
	kd->pagemap_scan = ioctl(fd, PAGEMAP_SCAN, &arg) >= 0;
	close(fd);
}

/* Asynchronous write-protection with unpopulated pages tracked: the API
 * handshake of a userfaultfd of our own says whether the kernel has both. */
static void probe_uffd_wp_async(struct cryo_kerndat *kd)
{
	struct uffdio_api api = {.api = UFFD_API,
				 .features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED};
	int fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		return;
	kd->uffd_wp_async = ioctl(fd, UFFDIO_API, &api) == 0;
	close(fd);
}

/* A page just written is soft-dirty (pagemap bit 55) where the kernel has
 * the bit at all. */
static void probe_soft_dirty(struct cryo_kerndat *kd)
{
	volatile char *p =
	    mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uint64_t ent = 0;
	int fd;

	if (p == MAP_FAILED)
		return;
	p[0] = 1;
	fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd >= 0 && pread(fd, &ent, 8, (uintptr_t)p / 4096 * 8) == 8)
		kd->soft_dirty = ent & (1ULL << 55);
	if (fd >= 0)
		close(fd);
	munmap((void *)p, 4096);
}

static void probe_fds(struct cryo_kerndat *kd)
{
	int fd = syscall(SYS_userfaultfd, O_CLOEXEC);

	if (fd >= 0) {
		kd->userfaultfd = true;
		close(fd);
	}
	probe_uffd_wp_async(kd);
	fd = syscall(SYS_memfd_create, "cryo-probe", MFD_CLOEXEC);
	if (fd >= 0) {
		kd->memfd_create = true;
		close(fd);
	}
	/* first > last is invalid; an old kernel says ENOSYS instead */
	errno = 0;
	kd->close_range = syscall(SYS_close_range, 2U, 1U, 0) < 0 && errno == EINVAL;
	kd->time_ns = access("/proc/self/ns/time", F_OK) == 0;
}

static void probe_mm(struct cryo_kerndat *kd)
{
	unsigned int size = 0;
	void *page;

	kd->prctl_mm_map = prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE, &size, 0, 0) == 0 && size > 0;
	page = mmap(NULL, kd->page_size, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (page == MAP_FAILED)
		return;
	kd->pr_set_vma_anon_name = prctl(PR_SET_VMA, PR_SET_VMA_ANON_NAME, (unsigned long)page,
					 kd->page_size, "cryo-probe") == 0;
	/* the page is taken: NOREPLACE must refuse it with EEXIST */
	errno = 0;
	void *again = mmap(page, kd->page_size, PROT_READ,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	kd->map_fixed_noreplace = again == MAP_FAILED && errno == EEXIST;
	if (again != MAP_FAILED && again != page)
		munmap(again, kd->page_size);
	munmap(page, kd->page_size);
}

/* 5-level paging moves the top of user space from 2^47 to 2^56. */
static void probe_task_size(struct cryo_kerndat *kd)
{
	void *high = (void *)(1UL << 50);
	void *p = mmap(high, kd->page_size, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);

	kd->task_size = (1UL << 47) - kd->page_size;
	if (p == high)
		kd->task_size = (1UL << 56) - kd->page_size;
	if (p != MAP_FAILED)
		munmap(p, kd->page_size);
}

/* A number from a sysctl file, or dflt if it cannot be read. */
static unsigned long read_sysctl(const char *path, unsigned long dflt)
{
	unsigned long v = dflt;
	FILE *f = fopen(path, "re");

	if (f) {
		if (fscanf(f, "%lu", &v) != 1)
			v = dflt;
		fclose(f);
	}
	return v;
}

static void probe_maps(struct cryo_kerndat *kd)
{
	char line[512];
	FILE *f = fopen("/proc/self/maps", "re");

	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "[vvar_vclock]"))
			kd->vvar_vclock = true;
	fclose(f);
	kd->mmap_min_addr = read_sysctl("/proc/sys/vm/mmap_min_addr", 65536);
	kd->pid_max = read_sysctl("/proc/sys/kernel/pid_max", 32768);
}

static void probe_cpu(struct cryo_kerndat *kd)
{
	unsigned a, b, c, d, lo, hi;

	if (!__get_cpuid(1, &a, &b, &c, &d))
		return;
	/* XSAVE (bit 26) and the OS enabling it (OSXSAVE, bit 27) */
	if (!(c & (1u << 26)) || !(c & (1u << 27)))
		return;
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	kd->xcr0 = ((unsigned long long)hi << 32) | lo;
	__cpuid_count(0xd, 0, a, b, c, d);
	kd->xsave_size = b;
	kd->xsave = kd->xsave_size > 0;
}

int kerndat_probe(struct cryo_kerndat *kd)
{
	struct utsname u;

	memset(kd, 0, sizeof(*kd));
	kd->page_size = sysconf(_SC_PAGESIZE);
	if (uname(&u) == 0)
		snprintf(kd->kernel_release, sizeof(kd->kernel_release), "%s", u.release);
	/* ptrace requests need a tracee to ask: judged by release */
	kd->ptrace_seize = at_least(kd, 3, 8);
	kd->ptrace_peeksiginfo = at_least(kd, 3, 10);
	kd->ptrace_getsigmask = at_least(kd, 3, 11);
	kd->ptrace_get_syscall_info = at_least(kd, 5, 3);
	kd->mremap_dontunmap = at_least(kd, 5, 7);
	kd->rseq_config = at_least(kd, 5, 13);
	probe_pidfd(kd);
	probe_clone3_set_tid(kd);
	probe_process_vm_readv(kd);
	probe_pagemap(kd);
	probe_soft_dirty(kd);
	probe_fds(kd);
	probe_mm(kd);
	probe_task_size(kd);
	probe_maps(kd);
	probe_cpu(kd);
	return 0;
}

int kerndat_missing(const struct cryo_kerndat *kd, char *buf, size_t len)
{
	int nr, missing = 0;
	const struct kerndat_feature *f = kerndat_features(&nr);
	size_t used = 0;

	if (len)
		buf[0] = '\0';
	for (int i = 0; i < nr; i++) {
		if (!f[i].required || kerndat_has(kd, &f[i]))
			continue;
		if (used < len)
			used += snprintf(buf + used, len - used, "%s%s", missing ? ", " : "",
					 f[i].name);
		missing++;
	}
	return missing;
}
