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

struct run {
	const char *guest;
	struct kvmkit_machine *m;
	struct kvmkit_stop_info info;
	uint64_t vals[MBP_COUNT + 8];
	size_t n;
	char out[1024];
};

/* @irqs false appends "noirq": the probe skips its interrupt part, which is
 * what KVM-PVM cannot run; everything else is checked on every host.
 * @guest: mb_probe (at 4 MiB) or mb_probe_low (at 0x8000). */
static void boot_probe(struct run *r, const char *guest, unsigned int vcpus, uint64_t mem,
		       bool initrd, bool irqs)
{
	struct kvmkit_machine_config cfg;
	void *image;
	size_t len;

	if (irqs)
		host_quirk(host_is_kvm_pvm(), PVM_NO_32BIT_IRET);
	memset(r, 0, sizeof(*r));
	r->guest = guest;
	if (kvmkit_read_file(guest_path(guest), &image, &len))
		fail_msg("reading %s: %s", guest_path(guest), kvmkit_strerror());
	kvmkit_machine_config_init(&cfg);
	cfg.vm.vcpus = vcpus;
	cfg.vm.mem_size = mem;
	cfg.irqchip_mode = chip_mode;
	cfg.kernel = image;
	cfg.kernel_len = len;
	cfg.kernel_path = guest_path(guest);
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
	assert_int_equal(kvmkit_irqchip_mode(chip), chip_mode);
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

/* FNV-1a, as the probe hashes its module. */
static uint32_t fnv1a(const void *p, size_t n)
{
	uint32_t h = 0x811c9dc5u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ ((const uint8_t *)p)[i]) * 0x01000193u;
	return h;
}

/* What the probe found of its layout: kvmkit's area (GDT first, then the
 * information structure) at @area, nothing over the image, the image as
 * linked, the module's bytes as given. */
static void check_layout(struct run *r, uint32_t load, uint32_t area, bool initrd)
{
	assert_int_equal(r->vals[MBP_IMAGE_START], load);
	assert_true(r->vals[MBP_IMAGE_END] > load);
	assert_int_equal(r->vals[MBP_EBX], area + KVMKIT_MULTIBOOT_INFO_OFFSET);
	assert_int_equal(r->vals[MBP_GDT_BASE], area);
	assert_int_equal(r->vals[MBP_OVERLAPS], 0);
	assert_int_equal(r->vals[MBP_IMAGE_INTACT], MB_PROBE_INTACT);
	assert_int_equal(r->vals[MBP_MOD_HASH],
			 initrd ? fnv1a(INITRD_TEXT, sizeof(INITRD_TEXT) - 1) : 0);
}

static void check_common(struct run *r, unsigned int vcpus, bool irqs)
{
	char want[1024];

	assert_int_equal(r->vals[MBP_EAX], 0x2BADB002);
	assert_int_equal(r->vals[MBP_FLAGS], KVMKIT_MBI_MEM | KVMKIT_MBI_CMDLINE | KVMKIT_MBI_MODS |
						     KVMKIT_MBI_MMAP | KVMKIT_MBI_LOADER_NAME);
	assert_int_equal(r->vals[MBP_MEM_LOWER], 640);
	assert_int_equal(r->vals[MBP_MMAP_RESERVED_KIB], (0x100000 - 0x9fc00) >> 10);
	/* argv[0] is the kernel path, then the appended arguments. */
	snprintf(want, sizeof(want), "cmdline: [%s %s]\n", guest_path(r->guest),
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

	boot_probe(&r, "mb_probe", 2, 64 << 20, true, irqs);
	check_common(&r, 2, irqs);
	/* Linked at 4 MiB: kvmkit's area where it always was. */
	check_layout(&r, MB_PROBE_LOAD_ADDR, KVMKIT_MULTIBOOT_AREA_DEFAULT, true);
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

	boot_probe(&r, "mb_probe", 1, 4ull << 30, false, irqs);
	check_common(&r, 1, irqs);
	check_layout(&r, MB_PROBE_LOAD_ADDR, KVMKIT_MULTIBOOT_AREA_DEFAULT, false);
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

/* The probe linked at 0x8000, over where kvmkit's area used to be fixed
 * (0x9000-0x10000; such an image was refused): two vCPUs, an initrd, the
 * probe finds its information structure, command line and module intact,
 * none of it over its image, kvmkit's area in the first page after it. */
static void test_boot_low(void **state)
{
	struct run r;

	boot_probe(&r, "mb_probe_low", 2, 64 << 20, true, false);
	check_common(&r, 2, false);
	assert_true(r.vals[MBP_IMAGE_END] > 0x9000); /* it does cover the old area */
	check_layout(&r, MB_PROBE_LOW_LOAD_ADDR, (r.vals[MBP_IMAGE_END] + 0xfff) & ~0xfffu, true);
	assert_int_equal(r.vals[MBP_MODS_COUNT], 1);
	assert_int_equal(r.vals[MBP_MOD_SIZE], sizeof(INITRD_TEXT) - 1);
	assert_int_equal(r.vals[MBP_MOD_START_PAGE_OFFSET], 0);
	assert_non_null(strstr(r.out, "module: [" INITRD_NAME "]\n"));
	assert_int_equal(r.vals[MBP_AP_MARKER], MB_PROBE_AP_MARKER);
	kvmkit_machine_destroy(r.m);
}

/* A bare VM for the loader calls. */
static struct kvmkit_vm *bare_vm(uint64_t mem)
{
	struct kvmkit_vm_config cfg;
	struct kvmkit_vm *vm = NULL;

	kvmkit_vm_config_init(&cfg);
	cfg.mem_size = mem;
	if (kvmkit_vm_create(&cfg, &vm))
		fail_msg("vm: %s", kvmkit_strerror());
	return vm;
}

/* kvmkit_elf_load re-validates a hand-made description against the image
 * and the VM before writing: filesz > memsz once wrote 16 MiB past guest
 * RAM, an offset whose end wraps read far outside the image. */
static void test_elf_load_hostile(void **state)
{
	static uint8_t file[0x3000];
	const uint64_t mem = 2 << 20;
	struct kvmkit_vm *vm = bare_vm(mem);
	struct kvmkit_elf_image img, good;
	uint8_t *ram = kvmkit_vm_gpa_to_hva(vm, 0, mem);

	assert_non_null(ram);
	memset(file, 0xab, sizeof(file));
	memset(&good, 0, sizeof(good));
	good.elf_class = 64;
	good.nsegs = 2;
	good.segs[0] = (struct kvmkit_elf_segment){ 0x100000, 0, 0x1000, 0x1000, 5 };
	good.segs[1] = (struct kvmkit_elf_segment){ mem - 0x1000, 0x1000, 0x800, 0x1000, 6 };
	memset(ram, 0x5a, mem);

	img = good; /* filesz > memsz in the last page of RAM */
	img.segs[1].filesz = 0x2000;
	assert_int_equal(kvmkit_elf_load(vm, file, sizeof(file), &img, 0, 0), -ENOEXEC);
	assert_non_null(strstr(kvmkit_strerror(), "filesz 0x2000 > memsz 0x1000"));
	img = good; /* the file range's end wraps */
	img.segs[1].offset = UINT64_MAX - 0xf;
	img.segs[1].filesz = 0x20;
	assert_int_equal(kvmkit_elf_load(vm, file, sizeof(file), &img, 0, 0), -ENOEXEC);
	img = good; /* past the end of RAM */
	img.segs[1].paddr = mem - 0x800;
	assert_int_equal(kvmkit_elf_load(vm, file, sizeof(file), &img, 0, 0), -EINVAL);
	assert_non_null(strstr(kvmkit_strerror(), "outside guest RAM"));
	img = good; /* more segments than the array holds */
	img.nsegs = KVMKIT_ELF_MAX_SEGMENTS + 1;
	assert_int_equal(kvmkit_elf_load(vm, file, sizeof(file), &img, 0, 0), -ENOEXEC);
	/* Refused before any write: guest RAM as it was. */
	for (uint64_t a = 0; a < mem; a++)
		if (ram[a] != 0x5a)
			fail_msg("guest byte 0x%llx written", (unsigned long long)a);
	/* The good description loads. */
	assert_int_equal(kvmkit_elf_load(vm, file, sizeof(file), &good, 0, 0), 0);
	assert_int_equal(ram[mem - 0x1000], 0xab);
	assert_int_equal(ram[mem - 0x800], 0);
	kvmkit_vm_destroy(vm);
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

int main(int argc, char **argv)
{
	/* The probes in both irqchip modes; the refusals do not depend on it. */
	const struct CMUnitTest probes[] = {
		cmocka_unit_test(test_probe_smp_initrd),
		cmocka_unit_test(test_boot_smp_initrd),
		cmocka_unit_test(test_boot_low),
	};
	const struct CMUnitTest other[] = {
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_elf_load_hostile),
	};
	const struct CMUnitTest high[] = {
		cmocka_unit_test(test_probe_high_ram),
		cmocka_unit_test(test_boot_high_ram),
	};
	int fails = 0;

	test_args(argc, argv);
	require_kvm();
	fails += run_chip_groups("multiboot", probes);
	fails += cmocka_run_group_tests_name("multiboot", other, NULL, NULL);
	fails += run_chip_groups("multiboot-high", high);
	return fails;
}
