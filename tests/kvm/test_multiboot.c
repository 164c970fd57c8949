// SPDX-License-Identifier: MIT
/*
 * Multiboot boots on a standard machine: the 32-bit probe payload reports
 * what it found (magic, information structure, fw_cfg, PIC masks, test
 * device, interrupts from IRQ lines it raises, an AP started from page 0)
 * and exits through isa-debug-exit. The probes run in both irqchip modes.
 */
#include "kvm_test.h"
#include "mb_probe_abi.h"

#define INITRD_TEXT "MBPR-initrd-contents-0123456789"
#define INITRD_NAME "/boot/probe.initrd"
#define APPEND "alpha beta=2 -- gamma"

/* Set by the group setup functions: the irqchip the probes run with. */
static enum kvmkit_irqchip_mode mode;

struct run {
	struct kvmkit_machine *m;
	struct kvmkit_stop_info info;
	uint64_t vals[MBP_COUNT + 8];
	size_t n;
	char out[1024];
};

/* @irqs false appends "noirq": the probe skips its interrupt part, which is
 * what KVM-PVM cannot run; everything else is checked on every host. */
static void boot_probe(struct run *r, unsigned int vcpus, uint64_t mem, bool initrd, bool irqs)
{
	struct kvmkit_machine_config cfg;
	void *image;
	size_t len;

	if (irqs)
		host_quirk(host_is_kvm_pvm(), PVM_NO_32BIT_IRET);
	memset(r, 0, sizeof(*r));
	if (kvmkit_read_file(guest_path("mb_probe"), &image, &len))
		fail_msg("reading %s: %s", guest_path("mb_probe"), kvmkit_strerror());
	kvmkit_machine_config_init(&cfg);
	cfg.vm.vcpus = vcpus;
	cfg.vm.mem_size = mem;
	cfg.irqchip_mode = mode;
	cfg.kernel = image;
	cfg.kernel_len = len;
	cfg.kernel_path = guest_path("mb_probe");
	cfg.cmdline = irqs ? APPEND : APPEND " noirq";
	if (initrd) {
		cfg.initrd = INITRD_TEXT;
		cfg.initrd_len = sizeof(INITRD_TEXT) - 1;
		cfg.initrd_path = INITRD_NAME;
	}
	if (kvmkit_machine_create(&cfg, &r->m))
		fail_msg("machine: %s", kvmkit_strerror());
	free(image);
	run_to_stop(r->m, &r->info);
	r->n = kvmkit_report_values(kvmkit_machine_report(r->m), r->vals, MBP_COUNT + 8);
	kvmkit_uart_output(kvmkit_machine_uart(r->m), r->out, sizeof(r->out) - 1);
	if (r->info.reason != KVMKIT_STOP_GUEST_EXIT || r->info.status != MB_PROBE_STATUS_OK)
		fail_msg("probe stopped: %s status %d (%s), %zu values, uart: %s",
			 kvmkit_stop_reason_name(r->info.reason), r->info.status, r->info.detail,
			 r->n, r->out);
	assert_int_equal(r->n, MBP_COUNT);
}

static void check_irq_lines(struct kvmkit_machine *m)
{
	struct kvmkit_irqchip *chip = kvmkit_machine_irqchip(m);
	struct kvmkit_gsi_stats st;

	assert_non_null(chip);
	assert_int_equal(kvmkit_irqchip_mode(chip), mode);
	/* Host side: every raise was a new assertion delivered to one CPU. */
	assert_int_equal(kvmkit_irq_gsi_stats(chip, MB_PROBE_IRQ_A, &st), 0);
	assert_int_equal(st.asserts, MB_PROBE_IRQ_ROUNDS);
	assert_int_equal(st.deliveries, MB_PROBE_IRQ_ROUNDS);
	assert_int_equal(st.coalesced + st.masked, 0);
	assert_int_equal(kvmkit_irq_gsi_stats(chip, MB_PROBE_IRQ_B, &st), 0);
	assert_int_equal(st.asserts, MB_PROBE_IRQ_ROUNDS);
	assert_int_equal(st.deliveries, MB_PROBE_IRQ_ROUNDS);
	assert_int_equal(st.coalesced + st.masked, 0);
	assert_int_equal(kvmkit_irq_gsi_stats(chip, MB_PROBE_IRQ_A + 1, &st), 0);
	assert_int_equal(st.asserts, 0);
}

static void check_common(struct run *r, unsigned int vcpus, bool irqs)
{
	char want[1024];

	assert_int_equal(r->vals[MBP_EAX], 0x2BADB002);
	assert_int_equal(r->vals[MBP_EBX], KVMKIT_MULTIBOOT_INFO);
	assert_int_equal(r->vals[MBP_FLAGS], KVMKIT_MBI_MEM | KVMKIT_MBI_CMDLINE | KVMKIT_MBI_MODS |
						     KVMKIT_MBI_MMAP | KVMKIT_MBI_LOADER_NAME);
	assert_int_equal(r->vals[MBP_MEM_LOWER], 640);
	assert_int_equal(r->vals[MBP_MMAP_RESERVED_KIB], (0x100000 - 0x9fc00) >> 10);
	/* argv[0] is the kernel path, then the appended arguments. */
	snprintf(want, sizeof(want), "cmdline: [%s %s]\n", guest_path("mb_probe"),
		 irqs ? APPEND : APPEND " noirq");
	assert_non_null(strstr(r->out, want));
	assert_int_equal(r->vals[MBP_CMDLINE_LEN], strlen(want) - strlen("cmdline: []\n"));
	/* fw_cfg. */
	assert_int_equal(r->vals[MBP_FW_SIGNATURE], 0x554d4551); /* "QEMU" */
	assert_int_equal(r->vals[MBP_FW_ID], 1);
	assert_int_equal(r->vals[MBP_FW_NB_CPUS], vcpus);
	assert_int_equal(r->vals[MBP_FW_MAX_CPUS], vcpus);
	assert_int_equal(r->vals[MBP_FW_PAST_END], 0);
	/* PIC masks written to 0x21/0xa1 read back: KVM's PIC in kernel mode,
	 * kvmkit's in split mode. */
	assert_int_equal(r->vals[MBP_PIC_MASTER], MB_PROBE_PIC_MASTER_MASK);
	assert_int_equal(r->vals[MBP_PIC_SLAVE], MB_PROBE_PIC_SLAVE_MASK);
	/* Test device. */
	assert_int_equal(r->vals[MBP_SCRATCH0], MB_PROBE_SCRATCH0);
	assert_int_equal(r->vals[MBP_SCRATCH1], MB_PROBE_SCRATCH1);
	assert_int_equal(r->vals[MBP_MMIO], MB_PROBE_MMIO_VALUE);
	assert_int_equal(r->vals[MBP_FLUSH], MB_PROBE_FLUSH_VALUE);
	/* kvmkit left page 0 alone. */
	assert_int_equal(r->vals[MBP_PAGE0_BEFORE], 0);
	if (!irqs) {
		for (unsigned int i = MBP_IRQ_A_COUNT; i <= MBP_IRQ_B_ENTRY; i++)
			assert_int_equal(r->vals[i], 0);
		return;
	}
	/* Interrupts: each raise delivered exactly once, on the programmed
	 * vector; the level entry's remote IRR was cleared by the EOIs. */
	assert_int_equal(r->vals[MBP_IRQ_A_COUNT], MB_PROBE_IRQ_ROUNDS);
	assert_int_equal(r->vals[MBP_IRQ_A_VECTOR], MB_PROBE_VEC_A);
	assert_int_equal(r->vals[MBP_IRQ_A_ENTRY], MB_PROBE_VEC_A);
	assert_int_equal(r->vals[MBP_IRQ_B_COUNT], MB_PROBE_IRQ_ROUNDS);
	assert_int_equal(r->vals[MBP_IRQ_B_VECTOR], MB_PROBE_VEC_B);
	assert_int_equal(r->vals[MBP_IRQ_B_ENTRY], MB_PROBE_VEC_B | 1u << 15);
	check_irq_lines(r->m);
}

/* Two vCPUs, 64 MiB, an initrd: the AP waits until the probe starts it. */
static void probe_smp_initrd(bool irqs)
{
	struct run r;

	boot_probe(&r, 2, 64 << 20, true, irqs);
	check_common(&r, 2, irqs);
	assert_int_equal(r.vals[MBP_MEM_UPPER], (64 << 10) - 1024);
	assert_int_equal(r.vals[MBP_MMAP_COUNT], 3);
	assert_int_equal(r.vals[MBP_MMAP_USABLE_LOW_KIB], (0x9fc00 >> 10) + (64 << 10) - 1024);
	assert_int_equal(r.vals[MBP_MMAP_USABLE_HIGH_MIB], 0);
	assert_int_equal(r.vals[MBP_MODS_COUNT], 1);
	assert_int_equal(r.vals[MBP_MOD_SIZE], sizeof(INITRD_TEXT) - 1);
	assert_int_equal(r.vals[MBP_MOD_FIRST_WORD], 0x5250424d); /* "MBPR" */
	assert_int_equal(r.vals[MBP_MOD_START_PAGE_OFFSET], 0);
	assert_non_null(strstr(r.out, "module: [" INITRD_NAME "]\n"));
	assert_int_equal(r.vals[MBP_FW_RAM_LO], 64 << 20);
	assert_int_equal(r.vals[MBP_FW_RAM_HI], 0);
	assert_int_equal(r.vals[MBP_AP_MARKER], MB_PROBE_AP_MARKER);
	kvmkit_machine_destroy(r.m);
}

static void test_probe_smp_initrd(void **state)
{
	probe_smp_initrd(true);
}

/* The same boot without the interrupt part: runs on KVM-PVM too. */
static void test_boot_smp_initrd(void **state)
{
	probe_smp_initrd(false);
}

/* One vCPU, RAM past the 3 GiB hole, no module. */
static void probe_high_ram(bool irqs)
{
	struct run r;

	boot_probe(&r, 1, 4ull << 30, false, irqs);
	check_common(&r, 1, irqs);
	assert_int_equal(r.vals[MBP_MEM_UPPER], (3u << 20) - 1024);
	assert_int_equal(r.vals[MBP_MMAP_COUNT], 4);
	assert_int_equal(r.vals[MBP_MMAP_USABLE_HIGH_MIB], 1024);
	assert_int_equal(r.vals[MBP_MODS_COUNT], 0);
	assert_int_equal(r.vals[MBP_FW_RAM_LO], 0);
	assert_int_equal(r.vals[MBP_FW_RAM_HI], 1);
	assert_int_equal(r.vals[MBP_AP_MARKER], 0);
	kvmkit_machine_destroy(r.m);
}

static void test_probe_high_ram(void **state)
{
	probe_high_ram(true);
}

static void test_boot_high_ram(void **state)
{
	probe_high_ram(false);
}

/* Bad input is refused before the VM runs. */
static void test_refused(void **state)
{
	struct kvmkit_machine_config cfg;
	struct kvmkit_machine *m = NULL;
	void *image;
	size_t len;

	assert_int_equal(kvmkit_read_file(guest_path("mb_probe"), &image, &len), 0);
	kvmkit_machine_config_init(&cfg);
	cfg.kernel = image;
	cfg.kernel_len = len;
	cfg.vm.mem_size = 4 << 20; /* the image is at 4 MiB */
	assert_int_equal(kvmkit_machine_create(&cfg, &m), -EINVAL);
	assert_non_null(strstr(kvmkit_strerror(), "outside guest RAM"));
	cfg.vm.mem_size = 64 << 20;
	cfg.vm.vcpus = 2;
	cfg.irqchip = false;
	assert_int_equal(kvmkit_machine_create(&cfg, &m), -EINVAL);
	assert_non_null(strstr(kvmkit_strerror(), "irqchip"));
	free(image);
	/* An ELF64 guest takes no command line. */
	kvmkit_machine_config_init(&cfg);
	cfg.kernel = kvmkit_demo_guest(&cfg.kernel_len);
	cfg.cmdline = "x";
	assert_int_equal(kvmkit_machine_create(&cfg, &m), -EINVAL);
	assert_non_null(strstr(kvmkit_strerror(), "multiboot"));
}

static int use_kernel(void **state)
{
	mode = KVMKIT_IRQCHIP_KERNEL;
	return 0;
}

static int use_split(void **state)
{
	mode = KVMKIT_IRQCHIP_SPLIT;
	return 0;
}

int main(int argc, char **argv)
{
	/* The probes in both irqchip modes; the refusals do not depend on it. */
	const struct CMUnitTest probes[] = {
		cmocka_unit_test(test_probe_smp_initrd),
		cmocka_unit_test(test_boot_smp_initrd),
	};
	const struct CMUnitTest other[] = {
		cmocka_unit_test(test_refused),
	};
	const struct CMUnitTest high[] = {
		cmocka_unit_test(test_probe_high_ram),
		cmocka_unit_test(test_boot_high_ram),
	};
	int fails = 0;

	test_args(argc, argv);
	require_kvm();
	fails += cmocka_run_group_tests_name("multiboot-kernel", probes, use_kernel, NULL);
	fails += cmocka_run_group_tests_name("multiboot-split", probes, use_split, NULL);
	fails += cmocka_run_group_tests_name("multiboot", other, NULL, NULL);
	fails += cmocka_run_group_tests_name("multiboot-high-kernel", high, use_kernel, NULL);
	fails += cmocka_run_group_tests_name("multiboot-high-split", high, use_split, NULL);
	return fails;
}
