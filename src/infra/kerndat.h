/*
 * Kernel feature probe ("kerndat"): what this kernel and CPU offer cryo.
 *
 * kerndat_probe() fills struct cryo_kerndat with cheap, side-effect-free
 * probes (a syscall with arguments that can only fail with ENOSYS or EINVAL,
 * an open of a /proc file, cpuid); it runs at the start of every dump and
 * restore and in `cryo check`. Required features are the ones without which
 * cryo cannot work at all; optional ones select a faster or fuller path.
 */
#ifndef CRYO_KERNDAT_H
#define CRYO_KERNDAT_H

#include <stdbool.h>
#include <stddef.h>

struct cryo_kerndat {
	/* required */
	bool ptrace_seize, pidfd_open, pidfd_getfd, clone3_set_tid, process_vm_readv, prctl_mm_map,
	    proc_pagemap, ptrace_getsigmask, ptrace_peeksiginfo, close_range, xsave;
	/* optional */
	bool pagemap_scan, userfaultfd, rseq_config, memfd_create, time_ns, mremap_dontunmap,
	    ptrace_get_syscall_info, vvar_vclock, map_fixed_noreplace, pr_set_vma_anon_name,
	    uffd_wp_async, soft_dirty;
	unsigned page_size;
	unsigned long mmap_min_addr, task_size;
	unsigned long pid_max;	 /* kernel.pid_max: pids run below it */
	unsigned xsave_size;	 /* bytes XSAVE needs for the features XCR0 enables */
	unsigned long long xcr0; /* the enabled XSAVE feature bits */
	char kernel_release[65];
};

/* One probed feature, for `cryo check` and error messages. */
struct kerndat_feature {
	const char *name;
	const char *what; /* what cryo uses it for, or loses without it */
	bool required;
	size_t offset; /* of the bool in struct cryo_kerndat */
};

int kerndat_probe(struct cryo_kerndat *kd);
/* Writes the names of missing required features to buf; returns their count. */
int kerndat_missing(const struct cryo_kerndat *kd, char *buf, size_t len);
const struct kerndat_feature *kerndat_features(int *nr);
bool kerndat_has(const struct cryo_kerndat *kd, const struct kerndat_feature *f);

#endif
