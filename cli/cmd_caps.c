// SPDX-License-Identifier: MIT
/* `kvmkit caps`: the host's KVM capabilities, as a table or JSON. */
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>
#include <kvmkit/kvmkit.h>

#include "cli.h"

/* arm64: which vGIC versions the host creates, and the one kvmkit picks
 * (v3, else v2): into @root with --json, else printed. */
static void vgic_caps(struct kvmkit_vm *vm, json_object *root)
{
#if defined(__aarch64__)
	bool v2 = false, v3 = false, its = false;
	int pick;

	if (!vm)
		return;
	kvmkit_arm64_gic_probe(vm, &v2, &v3, &its);
	pick = v3 ? 3 : v2 ? 2 : 0;
	if (root) {
		json_object *o = json_object_new_object();

		json_object_object_add(o, "v3", json_object_new_boolean(v3));
		json_object_object_add(o, "v2", json_object_new_boolean(v2));
		json_object_object_add(o, "its", json_object_new_boolean(its));
		json_object_object_add(o, "created", json_object_new_int(pick));
		json_object_object_add(root, "vgic", o);
	} else {
		printf("\nvGIC: GICv3 %s, GICv2 %s, ITS %s; kvmkit creates %s%d\n",
		       v3 ? "yes" : "no", v2 ? "yes" : "no", its ? "yes" : "no",
		       pick ? "GICv" : "none, ", pick);
	}
#else
	(void)vm;
	(void)root;
#endif
}

int cmd_caps(int argc, char **argv)
{
	struct kvmkit_vm_config vcfg;
	struct kvmkit_system *sys;
	struct kvmkit_vm *vm = NULL;
	const struct kvmkit_cap_info *caps;
	bool json = false;
	size_t n;
	int c;

	optind = 0; /* a fresh scan: main() has used getopt on its own argv */
	while ((c = cli_getopt(argc, argv, cli_caps_shortopts, cli_caps_options, "caps")) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'h':
			printf("usage: kvmkit caps [--json]\n"
			       "KVM capabilities of this host, as a table or (--json) as JSON\n");
			return 0;
		default:
			return CLI_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr,
			"kvmkit: caps: unexpected argument '%s' (see 'kvmkit caps --help')\n",
			argv[optind]);
		return CLI_EXIT_USAGE;
	}
	if (kvmkit_system_open(NULL, &sys)) {
		cli_fail("caps");
		return CLI_EXIT_HOST;
	}
	/* Some answers are per VM (e.g. KVM_CAP_MSI_DEVID): ask a small VM too. */
	kvmkit_vm_config_init(&vcfg);
	vcfg.mem_size = 2 << 20;
	if (kvmkit_vm_create(&vcfg, &vm))
		vm = NULL;
	caps = kvmkit_caps_table(&n);

	if (json) {
		json_object *root = json_object_new_object();
		json_object *arr = json_object_new_array();

		json_object_object_add(root, "api_version",
				       json_object_new_int(kvmkit_system_api_version(sys)));
		for (size_t i = 0; i < n; i++) {
			json_object *o = json_object_new_object();

			json_object_object_add(o, "name", json_object_new_string(caps[i].name));
			json_object_object_add(o, "id", json_object_new_int64(caps[i].id));
			json_object_object_add(o, "area", json_object_new_string(caps[i].area));
			json_object_object_add(
				o, "system",
				json_object_new_int(kvmkit_system_check_cap(sys, caps[i].id)));
			if (vm)
				json_object_object_add(
					o, "vm",
					json_object_new_int(kvmkit_vm_check_cap(vm, caps[i].id)));
			json_object_object_add(o, "summary",
					       json_object_new_string(caps[i].summary));
			json_object_array_add(arr, o);
		}
		json_object_object_add(root, "capabilities", arr);
		vgic_caps(vm, root);
		printf("%s\n", json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY));
		json_object_put(root);
	} else {
		printf("KVM API version %d\n\n", kvmkit_system_api_version(sys));
		printf("%-32s %-9s %8s %8s  %s\n", "capability", "area", "system", "vm", "meaning");
		for (size_t i = 0; i < n; i++) {
			char vmv[16] = "-";

			if (vm)
				snprintf(vmv, sizeof(vmv), "%d",
					 kvmkit_vm_check_cap(vm, caps[i].id));
			printf("%-32s %-9s %8d %8s  %s\n", caps[i].name, caps[i].area,
			       kvmkit_system_check_cap(sys, caps[i].id), vmv, caps[i].summary);
		}
		vgic_caps(vm, NULL);
	}
	kvmkit_vm_destroy(vm);
	kvmkit_system_close(sys);
	return 0;
}
