// SPDX-License-Identifier: MIT
/*
 * The arm64 saved-state cases (lab.h): a vCPU's registers (same vCPU, a
 * fresh one, hostile blobs, a refused value rolled back), the vGIC's state
 * (GICv3 with its ITS, and GICv2) carried to a second VM with the guest's
 * RAM, and a whole machine snapshot.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lab.h"

#define CORE_REG(field) \
	(KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | KVM_REG_ARM_CORE_REG(field))

/* The value bytes of register @id in a vCPU state blob, or NULL. */
static uint8_t *blob_reg(uint8_t *b, size_t len, uint64_t id)
{
	uint32_t n;
	size_t off = 24;

	if (len < 24)
		return NULL;
	memcpy(&n, b + 16, 4);
	for (uint32_t i = 0; i < n && off + 8 <= len; i++) {
		uint64_t rid;
		size_t sz;

		memcpy(&rid, b + off, 8);
		sz = (size_t)1 << ((rid & KVM_REG_SIZE_MASK) >> KVM_REG_SIZE_SHIFT);
		if (rid == id)
			return off + 8 + sz <= len ? b + off + 8 : NULL;
		off += 8 + sz;
	}
	return NULL;
}

/* A vCPU's state: saved from a paused guest, restored into the same vCPU
 * (the guest goes on), and into a fresh VM's vCPU (the registers arrive);
 * hostile blobs refused with nothing changed, and a value KVM refuses
 * rolled back. */
void t_vcpu_state(void)
{
	struct kvmkit_vm_config cfg;
	struct kvmkit_vm *vm2 = NULL;
	struct kvmkit_vcpu *v, *v2;
	uint64_t pc = 0, pc2 = 0, vbar = 0, vbar2 = 0, x;
	uint8_t *blob = NULL, *bad = NULL, *p;
	size_t len = 0;
	struct lab l;
	int r;

	CHECK(lab_start(&l, 1, NULL, NULL, NULL) == 0, "lab");
	v = kvmkit_vm_vcpu(l.vm, 0);
	CHECK(kvmkit_vm_pause(l.vm) == 0, "%s", kvmkit_strerror());
	CHECK(kvmkit_vcpu_save(v, (void **)&blob, &len) == 0, "%s", kvmkit_strerror());
	CHECK(kvmkit_vcpu_get_one_reg(v, CORE_REG(regs.pc), &pc) == 0, "%s", kvmkit_strerror());
	CHECK(kvmkit_vcpu_get_one_reg(v, ARM64_SYS_REG(3, 0, 12, 0, 0), &vbar) == 0, "%s",
	      kvmkit_strerror());
	CHECK(vbar == A64_RAM_BASE + 0x800, "VBAR_EL1 0x%llx", (unsigned long long)vbar);
	printf("  %zu bytes of state, PC 0x%llx\n", len, (unsigned long long)pc);
	/* Into the same vCPU; the guest goes on serving its mailbox. */
	CHECK(kvmkit_vcpu_restore(v, blob, len) == 0, "%s", kvmkit_strerror());
	CHECK(kvmkit_vm_resume(l.vm) == 0, "%s", kvmkit_strerror());
	CHECK(lab_cmd(&l, 0, A64_CMD_MPIDR, 0, 0, 0, &x) == 0, "guest gone after the restore");

	/* Into a fresh VM's vCPU 0, which has not run. */
	kvmkit_vm_config_init(&cfg);
	cfg.mem_size = 64 << 20;
	CHECK(kvmkit_vm_create(&cfg, &vm2) == 0, "%s", kvmkit_strerror());
	CHECK(kvmkit_irqchip_create(vm2, NULL, NULL) == 0, "%s", kvmkit_strerror());
	CHECK(kvmkit_vm_create_vcpu(vm2, 0, &v2) == 0, "%s", kvmkit_strerror());
	CHECK(kvmkit_vcpu_restore(v2, blob, len) == 0, "%s", kvmkit_strerror());
	CHECK(kvmkit_vcpu_get_one_reg(v2, CORE_REG(regs.pc), &pc2) == 0 && pc2 == pc,
	      "PC 0x%llx, saved 0x%llx", (unsigned long long)pc2, (unsigned long long)pc);
	CHECK(kvmkit_vcpu_get_one_reg(v2, ARM64_SYS_REG(3, 0, 12, 0, 0), &vbar2) == 0 &&
		      vbar2 == vbar,
	      "VBAR 0x%llx", (unsigned long long)vbar2);

	/* Hostile blobs: every truncation, a wrong vCPU, an unknown register,
	 * bytes past the end; the vCPU keeps its PC. */
	bad = malloc(len + 8);
	CHECK(bad, "alloc");
	for (size_t cut = 0; cut < len; cut += (cut < 64 ? 1 : 97)) {
		r = kvmkit_vcpu_restore(v2, blob, cut);
		CHECK(r < 0 && kvmkit_last_error()->kind == KVMKIT_ERR_FORMAT, "cut at %zu: %d",
		      cut, r);
	}
	memcpy(bad, blob, len);
	bad[8] = 1; /* vCPU 1's */
	CHECK(kvmkit_vcpu_restore(v2, bad, len) < 0 && strstr(kvmkit_strerror(), "vCPU 1"), "%s",
	      kvmkit_strerror());
	memcpy(bad, blob, len);
	bad[24 + 5] ^= 0x40; /* the first register id: one KVM does not list */
	CHECK(kvmkit_vcpu_restore(v2, bad, len) < 0 &&
		      kvmkit_last_error()->kind == KVMKIT_ERR_FORMAT,
	      "unknown register: %s", kvmkit_strerror());
	memcpy(bad, blob, len);
	memset(bad + len, 0, 8);
	CHECK(kvmkit_vcpu_restore(v2, bad, len + 1) < 0 && strstr(kvmkit_strerror(), "past"), "%s",
	      kvmkit_strerror());
	/* KVM refuses PSTATE with EL2h (no nested virtualisation): the PC,
	 * written before it, is put back. */
	memcpy(bad, blob, len);
	p = blob_reg(bad, len, CORE_REG(regs.pc));
	CHECK(p, "no PC in the blob");
	x = 0x1234;
	memcpy(p, &x, 8);
	p = blob_reg(bad, len, CORE_REG(regs.pstate));
	CHECK(p, "no PSTATE in the blob");
	x = 0x3c9; /* DAIF, EL2h */
	memcpy(p, &x, 8);
	r = kvmkit_vcpu_restore(v2, bad, len);
	CHECK(r < 0 && kvmkit_last_error()->kind == KVMKIT_ERR_IOCTL, "EL2h accepted: %d %s", r,
	      kvmkit_strerror());
	CHECK(kvmkit_vcpu_get_one_reg(v2, CORE_REG(regs.pc), &pc2) == 0 && pc2 == pc,
	      "PC 0x%llx after a refused restore", (unsigned long long)pc2);
	CHECK(lab_power_off(&l) == 0, "power off");
out:
	free(blob);
	free(bad);
	kvmkit_vm_destroy(vm2);
	lab_free(&l);
}

#define STATE_LPI (A64_LPI_BASE + 40)

/* The vGIC's state (GICv3 or GICv2) carried to a second VM (with the
 * guest's RAM and vCPU state, as a snapshot would): the guest goes on
 * without touching its GIC; an enabled SPI is delivered there, one left
 * pending while disabled is delivered once the guest enables it; with an
 * ITS, an MSI the guest's ITS mapped still reaches its LPI and an
 * unmapped one does not. A blob for another vGIC layout is refused. */
void t_gic_state(void)
{
	struct kvmkit_vm_config cfg;
	struct lab a = { 0 }, b = { 0 };
	void *irq = NULL, *cpu = NULL;
	size_t irq_len = 0, cpu_len = 0, ram = 64 << 20;
	uint32_t on, off;
	uint64_t x = 1;
	bool its = false;
	int ga, gb, r;

	CHECK(lab_start(&a, 1, NULL, NULL, NULL) == 0, "lab");
	ga = kvmkit_gsi_alloc_line(a.chip);
	gb = kvmkit_gsi_alloc_line(a.chip);
	on = (uint32_t)ga + KVMKIT_ARM64_SPI_BASE;
	off = (uint32_t)gb + KVMKIT_ARM64_SPI_BASE;
	CHECK(lab_cmd(&a, 0, A64_CMD_SPI_ENABLE, on, 1, spi_target(&a, 0), NULL) == 0, "spi");
	CHECK(lab_cmd(&a, 0, A64_CMD_SPI_ENABLE, off, 1, spi_target(&a, 0), NULL) == 0, "spi");
	CHECK(lab_cmd(&a, 0, A64_CMD_SPI_DISABLE, off, 0, 0, NULL) == 0, "spi off");
	CHECK(kvmkit_irq_pulse(a.chip, (uint32_t)gb, NULL) == 0, "%s", kvmkit_strerror());
	CHECK(kvmkit_irq_pulse(a.chip, (uint32_t)ga, NULL) == 0, "%s", kvmkit_strerror());
	CHECK(wait_count(&a, 0, on, 1) == 0, "not taken on the first VM");
	its = kvmkit_irqchip_has_its(a.chip);
	if (its) {
		/* An LPI the ITS translates: its tables are in guest RAM. */
		CHECK(lab_cmd(&a, 0, A64_CMD_LPI_INIT, 0, 0, 0, NULL) == 0, "lpi");
		CHECK(lab_cmd(&a, 0, A64_CMD_ITS_INIT, 0, 0, 0, NULL) == 0, "its");
		CHECK(lab_cmd(&a, 0, A64_CMD_ITS_MAP, 5, 3, STATE_LPI, &x) == 0 && x == 0,
		      "its map");
		CHECK(kvmkit_signal_msi(a.chip, KVMKIT_ARM64_GITS_TRANSLATER, 3, 5, NULL) == 0,
		      "%s", kvmkit_strerror());
		CHECK(wait_count(&a, 0, STATE_LPI, 1) == 0, "LPI not taken on the first VM");
	}
	CHECK(kvmkit_vm_pause(a.vm) == 0, "%s", kvmkit_strerror());
	r = kvmkit_irqchip_save(a.chip, &irq, &irq_len);
	CHECK(r == 0, "%s", kvmkit_strerror());
	CHECK(kvmkit_vcpu_save(kvmkit_vm_vcpu(a.vm, 0), &cpu, &cpu_len) == 0, "%s",
	      kvmkit_strerror());
	printf("  vGIC state %zu bytes, vCPU state %zu bytes\n", irq_len, cpu_len);

	kvmkit_vm_config_init(&cfg);
	cfg.mem_size = ram;
	CHECK(kvmkit_vm_create(&cfg, &b.vm) == 0, "%s", kvmkit_strerror());
	CHECK(kvmkit_irqchip_create(b.vm, NULL, &b.chip) == 0, "%s", kvmkit_strerror());
	b.gic = kvmkit_irqchip_gic_version(b.chip);
	CHECK(kvmkit_vm_create_vcpu(b.vm, 0, NULL) == 0, "%s", kvmkit_strerror());
	CHECK(kvmkit_uart_create_mmio(b.vm, KVMKIT_ARM64_UART, -1, &b.uart) == 0, "%s",
	      kvmkit_strerror());
	memcpy(kvmkit_vm_gpa_to_hva(b.vm, KVMKIT_ARM64_RAM_BASE, ram),
	       kvmkit_vm_gpa_to_hva(a.vm, KVMKIT_ARM64_RAM_BASE, ram), ram);
	lab_free(&a);
	/* A blob whose first register is another one: refused whole. */
	{
		uint8_t *bad = malloc(irq_len);

		CHECK(bad, "alloc");
		memcpy(bad, irq, irq_len);
		/* the back end's part starts after the routes and bitmap; its
		 * first attr is GICD_IIDR (8): make it GICD_CTLR (0) */
		for (size_t i = irq_len - 8; i > 16; i--)
			if (!memcmp(bad + i, "\x08\x00\x00\x00\x00\x00\x00\x00", 8) &&
			    !memcmp(bad + i - 4, "\x01\x00\x00\x00", 4)) {
				bad[i] = 0;
				break;
			}
		r = kvmkit_irqchip_restore(b.chip, bad, irq_len);
		free(bad);
		CHECK(r < 0 && kvmkit_last_error()->kind == KVMKIT_ERR_FORMAT,
		      "a changed register list: %d %s", r, kvmkit_strerror());
	}
	CHECK(kvmkit_irqchip_restore(b.chip, irq, irq_len) == 0, "%s", kvmkit_strerror());
	CHECK(kvmkit_vcpu_restore(kvmkit_vm_vcpu(b.vm, 0), cpu, cpu_len) == 0, "%s",
	      kvmkit_strerror());
	CHECK(kvmkit_vm_start(b.vm) == 0, "%s", kvmkit_strerror());
	CHECK(lab_cmd(&b, 0, A64_CMD_NOP, 0, 0, 0, NULL) == 0, "the guest did not go on");
	CHECK(count_of(&b, 0, on) == 1 && count_of(&b, 0, off) == 0, "counts %u/%u",
	      count_of(&b, 0, on), count_of(&b, 0, off));
	CHECK(kvmkit_irq_pulse(b.chip, (uint32_t)ga, NULL) == 0, "%s", kvmkit_strerror());
	CHECK(wait_count(&b, 0, on, 2) == 0, "the enabled SPI was not delivered after the restore");
	CHECK(lab_cmd(&b, 0, A64_CMD_SPI_ENABLE, off, 1, spi_target(&b, 0), NULL) == 0, "spi");
	CHECK(wait_count(&b, 0, off, 1) == 0, "the pending SPI was lost");
	CHECK(lab_cmd(&b, 0, A64_CMD_NOP, 0, 0, 0, NULL) == 0, "nop");
	CHECK(count_of(&b, 0, on) == 2 && count_of(&b, 0, off) == 1, "counts %u/%u",
	      count_of(&b, 0, on), count_of(&b, 0, off));
	if (its) {
		struct kvmkit_irq_status st;

		/* The ITS's translation and the LPI came along. */
		r = kvmkit_signal_msi(b.chip, KVMKIT_ARM64_GITS_TRANSLATER, 3, 5, &st);
		CHECK(r == 0 && st.result == KVMKIT_IRQ_DELIVERED, "MSI after the restore: %d %s",
		      r, r ? kvmkit_strerror() : kvmkit_irq_result_name(st.result));
		CHECK(wait_count(&b, 0, STATE_LPI, 2) == 0, "the LPI was not delivered");
		CHECK(kvmkit_signal_msi(b.chip, KVMKIT_ARM64_GITS_TRANSLATER, 4, 5, &st) == 0 &&
			      st.result == KVMKIT_IRQ_MASKED,
		      "an unmapped event delivered after the restore");
	}
	CHECK(lab_power_off(&b) == 0, "power off");
out:
	free(irq);
	free(cpu);
	lab_free(&a);
	lab_free(&b);
}

/* A machine snapshot (kvmkit_machine_snapshot, then _restore in place of
 * the first machine): the lab guest on 2 vCPUs, vCPU 1 started by PSCI,
 * an enabled SPI; after the restore both vCPUs serve their mailboxes, the
 * counts go on, the SPI is delivered. */
void t_machine_snapshot(void)
{
	struct kvmkit_machine_config cfg;
	struct kvmkit_machine *m = NULL;
	char dir[] = "/tmp/kvmkit-a64-snap-XXXXXX";
	struct lab l = { 0 };
	uint64_t x = 0;
	void *img = NULL;
	size_t len;
	uint32_t intid;
	int gsi;

	CHECK(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
	CHECK(read_guest("lab", &img, &len) == 0, "%s", kvmkit_strerror());
	kvmkit_machine_config_init(&cfg);
	cfg.vm.vcpus = 2;
	cfg.vm.mem_size = 64 << 20;
	cfg.kernel = img;
	cfg.kernel_len = len;
	CHECK(kvmkit_machine_create(&cfg, &m) == 0, "%s", kvmkit_strerror());
	l.vm = kvmkit_machine_vm(m);
	l.chip = kvmkit_machine_irqchip(m);
	l.gic = kvmkit_irqchip_gic_version(l.chip);
	l.ncpus = 2;
	CHECK(kvmkit_vm_start(l.vm) == 0, "%s", kvmkit_strerror());
	CHECK(wait_u64(mbox(&l, 0, A64_MBOX_ONLINE), A64_ONLINE_MAGIC) == 0, "no guest");
	CHECK(lab_cmd(&l, 0, A64_CMD_GIC_INIT, (uint64_t)l.gic, 0, 0, NULL) == 0, "gic");
	CHECK(lab_bring_up(&l, 1) == 0, "bring-up");
	gsi = kvmkit_gsi_alloc_line(l.chip);
	intid = (uint32_t)gsi + KVMKIT_ARM64_SPI_BASE;
	CHECK(lab_cmd(&l, 0, A64_CMD_SPI_ENABLE, intid, 1, spi_target(&l, 1), NULL) == 0, "spi");
	CHECK(kvmkit_irq_pulse(l.chip, (uint32_t)gsi, NULL) == 0, "%s", kvmkit_strerror());
	CHECK(wait_count(&l, 1, intid, 1) == 0, "not taken before the snapshot");
	CHECK(kvmkit_vm_pause(l.vm) == 0, "%s", kvmkit_strerror());
	CHECK(kvmkit_machine_snapshot(m, dir) == 0, "%s", kvmkit_strerror());
	kvmkit_machine_destroy(m);
	m = NULL;
	memset(&l, 0, sizeof(l));

	CHECK(kvmkit_machine_restore(&cfg, dir, &m) == 0, "%s", kvmkit_strerror());
	l.vm = kvmkit_machine_vm(m);
	l.chip = kvmkit_machine_irqchip(m);
	l.gic = kvmkit_irqchip_gic_version(l.chip);
	l.ncpus = 2;
	CHECK(kvmkit_vm_start(l.vm) == 0, "%s", kvmkit_strerror());
	CHECK(lab_cmd(&l, 1, A64_CMD_MPIDR, 0, 0, 0, &x) == 0 &&
		      x == kvmkit_vcpu_mpidr(kvmkit_vm_vcpu(l.vm, 1)),
	      "vCPU 1 after the restore: 0x%llx", (unsigned long long)x);
	CHECK(lab_cmd(&l, 0, A64_CMD_NOP, 0, 0, 0, NULL) == 0, "vCPU 0 after the restore");
	CHECK(count_of(&l, 1, intid) == 1, "count %u", count_of(&l, 1, intid));
	CHECK(kvmkit_irq_pulse(l.chip, (uint32_t)gsi, NULL) == 0, "%s", kvmkit_strerror());
	CHECK(wait_count(&l, 1, intid, 2) == 0, "the SPI was not delivered after the restore");
	CHECK(lab_power_off(&l) == 0, "power off");
out:
	kvmkit_machine_destroy(m);
	free(img);
	{
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd))
			printf("  (could not remove %s)\n", dir);
	}
}
