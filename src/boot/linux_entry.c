// SPDX-License-Identifier: MIT
/*
 * Linux boot on a VM: picks the bzImage or the PVH path, loads it through
 * the VM's guest-RAM view, and sets vCPU 0 up for the kernel's entry (the
 * 64-bit boot protocol, or the 32-bit PVH entry). The other vCPUs keep
 * KVM's reset state: the kernel starts them with INIT/SIPI.
 */
#include <string.h>
#include <sys/ioctl.h>

#define KVMK_LOG_MODULE "linux"
#include "core/internal.h"
#include "boot/boot_internal.h"
#include <kvmkit/linux_boot.h>
#include <kvmkit/irq.h>
#include <kvmkit/vcpu.h>

bool kvmkit_linux_detect(const void *buf, size_t len)
{
	return kvmkit_bzimage_detect(buf, len) || kvmkit_pvh_entry(buf, len) != 0;
}

int kvmkit_boot_check_linux(const void *kernel, size_t len, uint64_t mem_size, const char *cmdline,
			    size_t initrd_len)
{
	struct kvmkit_linux_layout lay;
	size_t clen = cmdline ? strlen(cmdline) : 0;

	if (kvmkit_bzimage_detect(kernel, len)) {
		struct kvmkit_bzimage img;
		int r = kvmkit_bzimage_parse(kernel, len, &img);

		return r ? r : kvmkit_linux_place(&img, mem_size, clen, initrd_len, &lay);
	}
	return kvmk_pvh_place(kernel, len, mem_size, clen, initrd_len, &lay);
}

#if defined(__x86_64__)
int kvmkit_boot_linux(struct kvmkit_vm *vm, const struct kvmkit_linux_boot *boot)
{
	const char *op = "kvmkit_boot_linux";
	struct kvmkit_linux_layout lay;
	struct kvmk_guest_ram ram;
	bool bz;
	int r;

	if (!vm || !boot || !boot->kernel)
		return kvmk_err_param(op, "boot", "no VM or no kernel", "NULL");
	if (kvmkit_vm_vcpu_count(vm) != kvmkit_vm_config(vm)->vcpus)
		return kvmk_err_state("vm", "missing vCPUs", "all vCPUs created", "boot_linux");
	if (!kvmkit_vm_irqchip(vm))
		return kvmk_err_param(op, "irqchip",
				      "a Linux guest needs an irqchip (LAPICs, IOAPIC)", "none");
	kvmk_guest_ram_of_vm(&ram, vm);
	bz = kvmkit_bzimage_detect(boot->kernel, boot->kernel_len);
	r = bz ? kvmk_linux_load_bzimage(&ram, boot, &lay) : kvmk_linux_load_pvh(&ram, boot, &lay);
	if (r)
		return r;
	if (bz) {
		/* The 64-bit boot protocol: __BOOT_CS 0x10, __BOOT_DS 0x18,
		 * RSI = boot_params, interrupts off. */
		struct kvm_regs regs = { .rip = lay.entry, .rflags = 0x2, .rsi = lay.info };

		r = kvmk_x86_vcpu_long_mode(kvmkit_vm_vcpu(vm, 0), 0x10, 0x18, 4, &regs);
	} else {
		/* PVH: flat 32-bit protected mode, paging off, the 32-bit
		 * TSS the ABI asks for, EBX = hvm_start_info. */
		struct kvm_regs regs = { .rip = lay.entry, .rflags = 0x2, .rbx = lay.info };

		r = kvmk_x86_vcpu_prot32(kvmkit_vm_vcpu(vm, 0), KVMKIT_X86_BOOT_GDT, true, &regs);
	}
	if (r)
		return r;
	kvmk_debug("%s: kernel 0x%llx-0x%llx entry 0x%llx, initrd 0x%llx+%llu",
		   bz ? "bzImage" : "PVH", (unsigned long long)lay.kernel,
		   (unsigned long long)lay.kernel_end, (unsigned long long)lay.entry,
		   (unsigned long long)lay.initrd, (unsigned long long)lay.initrd_size);
	return 0;
}
#else
int kvmkit_boot_linux(struct kvmkit_vm *vm, const struct kvmkit_linux_boot *boot)
{
	(void)vm;
	(void)boot;
	return kvmk_err_unsupported("kvmkit_boot_linux", ENOTSUP, "x86_64 only");
}
#endif
