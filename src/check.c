/*
 * `cryo check`: can this kernel and CPU checkpoint and restore?
 *
 * Runs the kerndat probe and reports. A missing required feature is an
 * error naming it (exit 1); a missing optional one is a warning saying what
 * cryo does without it. With -v2 or more every feature is listed.
 */
#include <stdio.h>
#include <unistd.h>

#include "cryo/cryo.h"
#include "infra/kerndat.h"
#include "infra/log.h"

static void check_list(const struct cryo_kerndat *kd)
{
	int nr;
	const struct kerndat_feature *f = kerndat_features(&nr);

	printf("kernel %s, page size %u, task size %#lx, xsave %u bytes (xcr0 %#llx)\n",
	       kd->kernel_release, kd->page_size, kd->task_size, kd->xsave_size, kd->xcr0);
	for (int i = 0; i < nr; i++)
		printf("  %-24s %-3s %-8s %s\n", f[i].name, kerndat_has(kd, &f[i]) ? "yes" : "no",
		       f[i].required ? "required" : "optional", f[i].what);
}

static void check_warn_optional(const struct cryo_kerndat *kd)
{
	int nr;
	const struct kerndat_feature *f = kerndat_features(&nr);

	for (int i = 0; i < nr; i++)
		if (!f[i].required && !kerndat_has(kd, &f[i]))
			pr_warn("optional feature %s missing: %s", f[i].name, f[i].what);
}

int cryo_check(const struct cryo_opts *opts)
{
	struct cryo_kerndat kd;
	char missing[512];

	kerndat_probe(&kd);
	if (opts->verbosity >= LOG_INFO)
		check_list(&kd);
	if (geteuid() != 0)
		return err_set("cryo must run as root (euid is %u)", geteuid());
	if (kerndat_missing(&kd, missing, sizeof(missing)))
		return err_set("this kernel lacks what cryo needs: %s", missing);
	check_warn_optional(&kd);
	printf("Memory change tracking: %s.\n",
	       kd.uffd_wp_async && kd.pagemap_scan
		   ? "userfaultfd write-protect, asynchronous (read with PAGEMAP_SCAN)"
		   : "none (every checkpoint is a full one)");
	printf("Looks good.\n");
	return 0;
}
