// SPDX-License-Identifier: MIT
/*
 * Machine snapshot and restore (include/kvmkit/snapshot.h): gathers the
 * state the other modules save (irqchip, vCPUs, devices) with the VM clock
 * and the RAM layout into DIR/state, the RAM itself into DIR/memory, and
 * rebuilds a machine from them, RAM mapped privately from the file.
 */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/kvm.h>

#define KVMK_LOG_MODULE "snapshot"
#include "core/internal.h"
#include "kvm/arch.h"
#include "migration/machine_state.h"
#include "migration/snap_format.h"
#include "vmm/machine_internal.h"
#include <kvmkit/kvmkit.h>

#define SNAP_OP "kvmkit_machine_snapshot"
#define REST_OP "kvmkit_machine_restore"

/* ---- writing ---------------------------------------------------------- */

/* Creates @dir or checks that it is empty; *created says which. */
static int prepare_dir(const char *dir, bool *created)
{
	struct dirent *e;
	DIR *d;

	*created = false;
	if (!mkdir(dir, 0700)) {
		*created = true;
		return 0;
	}
	if (errno != EEXIST)
		return kvmk_err_sys(SNAP_OP, errno, "mkdir %s", dir);
	d = opendir(dir);
	if (!d)
		return kvmk_err_sys(SNAP_OP, errno, "%s", dir);
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			/* The entry lives in the DIR: report before closing it. */
			int r = kvmk_err_sys(SNAP_OP, ENOTEMPTY, "%s: not empty (holds '%s')", dir,
					     e->d_name);

			closedir(d);
			return r;
		}
	closedir(d);
	return 0;
}

/*
 * The most one pwrite() writes. Measured on the development host (Linux
 * 6.18, ext4): 1 GiB of guest RAM went to the page cache in about 0.25 s in
 * 64-256 KiB writes, 0.6 s in 1 MiB, 1.3-3 s in 4 MiB or 1 GiB ones
 * (bench-snapshot, docs/BENCHMARKS.md section 6); the cause was not
 * analysed.
 */
#define SNAP_WRITE_CHUNK (256u << 10)

static int pwrite_all(int fd, const uint8_t *p, size_t len, uint64_t off, const char *path)
{
	while (len) {
		ssize_t n =
			pwrite(fd, p, len > SNAP_WRITE_CHUNK ? SNAP_WRITE_CHUNK : len, (off_t)off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return kvmk_err_sys(SNAP_OP, n < 0 ? errno : EIO, "writing %s", path);
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

static bool page_is_zero(const uint8_t *p)
{
	const uint64_t *w = (const uint64_t *)p;

	for (size_t i = 0; i < KVMK_SNAP_PAGE / 8; i++)
		if (w[i])
			return false;
	return true;
}

/* Each region's bytes at its file offset, runs of non-zero pages written
 * straight from the guest mapping; zero pages stay holes (they read back
 * as zeros, and a mostly empty guest makes a small, fast snapshot). */
static int write_memory(struct kvmkit_vm *vm, const struct kvmk_snap *s, const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	int r = 0;

	if (fd < 0)
		return kvmk_err_sys(SNAP_OP, errno, "creating %s", path);
	for (uint32_t i = 0; !r && i < s->nr_regions; i++) {
		const struct kvmk_snap_region *e = &s->regions[i];
		const uint8_t *p = kvmkit_vm_gpa_to_hva(vm, e->gpa, e->size);
		uint64_t run = 0;

		if (!p) {
			r = -EFAULT;
			break;
		}
		for (uint64_t off = 0; !r && off <= e->size; off += KVMK_SNAP_PAGE) {
			bool data = off < e->size && !page_is_zero(p + off);

			if (data)
				continue;
			if (off > run)
				r = pwrite_all(fd, p + run, off - run, e->file_off + run, path);
			run = off + KVMK_SNAP_PAGE;
		}
	}
	if (!r && ftruncate(fd, (off_t)kvmk_snap_memory_len(s)) < 0)
		r = kvmk_err_sys(SNAP_OP, errno, "sizing %s", path);
	if (close(fd) < 0 && !r)
		r = kvmk_err_sys(SNAP_OP, errno, "closing %s", path);
	return r;
}

static int write_file(const char *path, const void *p, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	int r;

	if (fd < 0)
		return kvmk_err_sys(SNAP_OP, errno, "creating %s", path);
	r = pwrite_all(fd, p, len, 0, path);
	if (close(fd) < 0 && !r)
		r = kvmk_err_sys(SNAP_OP, errno, "closing %s", path);
	return r;
}

/* The description and every state blob of @m into @s (blobs malloc'ed). */
int kvmk_snap_gather(struct kvmkit_machine *m, struct kvmk_snap *s)
{
	struct kvmkit_vm *vm = kvmkit_machine_vm(m);
	struct kvmkit_irqchip *chip = kvmkit_machine_irqchip(m);
	struct kvmkit_mem_region reg[KVMK_SNAP_MAX_REGIONS];
	struct kvm_clock_data clock = { 0 };
	uint64_t off = 0;
	void *buf;
	size_t len;
	int r;

	s->version = KVMK_SNAP_VERSION;
	s->arch = kvmk_arch_host();
	s->vcpus = kvmkit_vm_vcpu_count(vm);
	s->irqchip = chip ? 1 + (uint32_t)kvmkit_irqchip_mode(chip) : 0;
	s->machine_flags = kvmk_machine_has_testdev(m) ? KVMK_SNAP_F_TESTDEV : 0;
	s->mem_size = kvmkit_vm_ram_size(vm);
	s->nr_regions = kvmkit_vm_memory_regions(vm, reg, KVMK_SNAP_MAX_REGIONS);
	if (s->nr_regions > KVMK_SNAP_MAX_REGIONS)
		return kvmk_err_unsupported(SNAP_OP, ENOTSUP, "%u memory regions (at most %u)",
					    s->nr_regions, KVMK_SNAP_MAX_REGIONS);
	if (s->vcpus != kvmkit_vm_config(vm)->vcpus)
		return kvmk_err_state("machine", "vCPUs missing", "every vCPU created", SNAP_OP);
	for (uint32_t i = 0; i < s->nr_regions; i++) {
		s->regions[i] = (struct kvmk_snap_region){ reg[i].gpa, reg[i].size, off,
							   reg[i].flags, (uint32_t)reg[i].slot };
		off += reg[i].size;
	}
#if defined(__x86_64__)
	if (ioctl(kvmkit_vm_fd(vm), KVM_GET_CLOCK, &clock) < 0)
		return kvmk_err_ioctl("KVM_GET_CLOCK", errno, NULL);
#endif
	/* arm64 has no VM clock: its timers' counters are vCPU registers. */
	s->clock = clock.clock;
	s->clock_flags = 0; /* restored as a plain value: see snapshot.h */
	s->vcpu = calloc(s->vcpus, sizeof(*s->vcpu));
	if (!s->vcpu)
		return kvmk_err_resource(SNAP_OP, ENOMEM, "vCPU table");
	if (chip) {
		r = kvmkit_irqchip_save(chip, &buf, &len);
		if (r)
			return r;
		s->irqchip_blob = (struct kvmk_snap_ref){ buf, len };
	}
	for (uint32_t i = 0; i < s->vcpus; i++) {
		r = kvmkit_vcpu_save(kvmkit_vm_vcpu(vm, i), &buf, &len);
		if (r)
			return r;
		s->vcpu[i] = (struct kvmk_snap_ref){ buf, len };
	}
	r = kvmkit_machine_save_devices(m, &buf, &len);
	if (r)
		return r;
	s->devices_blob = (struct kvmk_snap_ref){ buf, len };
	return 0;
}

void kvmk_snap_gathered_free(struct kvmk_snap *s)
{
	free((void *)s->irqchip_blob.p);
	free((void *)s->devices_blob.p);
	for (uint32_t i = 0; s->vcpu && i < s->vcpus; i++)
		free((void *)s->vcpu[i].p);
	free(s->vcpu);
}

int kvmkit_machine_snapshot(struct kvmkit_machine *m, const char *dir)
{
	struct kvmk_snap s = { 0 };
	struct kvmk_blob b = { 0 };
	char state[PATH_MAX], mem[PATH_MAX];
	enum kvmkit_vm_state st;
	bool created = false, wrote_mem = false, wrote_state = false;
	int r;

	if (!m || !dir || !*dir)
		return kvmk_err_param(SNAP_OP, m ? "dir" : "m", "is missing", "%s", "");
	st = kvmkit_vm_state(kvmkit_machine_vm(m));
	if (st != KVMKIT_VM_PAUSED && st != KVMKIT_VM_STOPPED)
		return kvmk_err_state("vm", kvmkit_vm_state_name(st), "paused or stopped", SNAP_OP);
	if ((size_t)snprintf(state, sizeof(state), "%s/state", dir) >= sizeof(state) ||
	    (size_t)snprintf(mem, sizeof(mem), "%s/memory", dir) >= sizeof(mem))
		return kvmk_err_param(SNAP_OP, "dir", "path too long", "%s", dir);
	/* The directory first: a refusal there costs nothing. */
	r = prepare_dir(dir, &created);
	if (!r)
		r = kvmk_snap_gather(m, &s);
	if (!r)
		r = kvmk_snap_build(&s, &b);
	if (!r) {
		r = write_memory(kvmkit_machine_vm(m), &s, mem);
		wrote_mem = r != -EEXIST;
	}
	/* The state file last: its presence means the memory is complete. */
	if (!r) {
		r = write_file(state, b.data, b.len);
		wrote_state = r != -EEXIST;
	}
	if (r) {
		struct kvmkit_error saved;

		kvmk_err_save(&saved);
		if (wrote_state)
			unlink(state);
		if (wrote_mem)
			unlink(mem);
		if (created)
			rmdir(dir);
		kvmk_err_restore(&saved);
	} else {
		kvmk_debug("snapshot %s: %u vCPU(s), %llu MiB, state %zu bytes", dir, s.vcpus,
			   (unsigned long long)(s.mem_size >> 20), b.len);
	}
	kvmk_blob_free(&b);
	kvmk_snap_gathered_free(&s);
	return r;
}

/* ---- reading ---------------------------------------------------------- */

/* DIR/state read and checked whole into @s; *@buf holds it (free after). */
static int load_state(const char *dir, void **buf, struct kvmk_snap *s)
{
	char path[PATH_MAX];
	size_t len;
	int r;

	*buf = NULL;
	if (!dir || !*dir)
		return kvmk_err_param(REST_OP, "dir", "is missing", "%s", "");
	if ((size_t)snprintf(path, sizeof(path), "%s/state", dir) >= sizeof(path))
		return kvmk_err_param(REST_OP, "dir", "path too long", "%s", dir);
	r = kvmkit_read_file(path, buf, &len);
	if (r)
		return r;
	r = kvmk_snap_parse(*buf, len, s);
	if (r) {
		free(*buf);
		*buf = NULL;
	}
	return r;
}

int kvmkit_snapshot_info(const char *dir, struct kvmkit_snapshot_info *info)
{
	struct kvmk_snap s;
	void *buf;
	int r = load_state(dir, &buf, &s);

	if (r)
		return r;
	info->vcpus = s.vcpus;
	info->mem_size = s.mem_size;
	info->irqchip = s.irqchip != 0;
	info->irqchip_mode =
		s.irqchip ? (enum kvmkit_irqchip_mode)(s.irqchip - 1) : KVMKIT_IRQCHIP_KERNEL;
	kvmk_snap_release(&s);
	free(buf);
	return 0;
}

/* The state file's machine, for the checks a migration target makes too. */
static void describe(const struct kvmk_snap *s, struct kvmk_saved_machine *d)
{
	*d = (struct kvmk_saved_machine){
		.op = REST_OP,
		.whose = "snapshot",
		.place = "in the snapshot",
		.kind = "snapshot",
		.arch = s->arch,
		.vcpus = s->vcpus,
		.irqchip = s->irqchip,
		.mem_size = s->mem_size,
		.nr_regions = s->nr_regions,
	};
	for (uint32_t i = 0; i < s->nr_regions; i++) {
		d->gpa[i] = s->regions[i].gpa;
		d->size[i] = s->regions[i].size;
	}
}

/* Opens DIR/memory and checks it holds exactly the regions' bytes. */
static int open_memory(const char *dir, const struct kvmk_snap *s, int *fd)
{
	char path[PATH_MAX];
	struct stat st;

	if ((size_t)snprintf(path, sizeof(path), "%s/memory", dir) >= sizeof(path))
		return kvmk_err_param(REST_OP, "dir", "path too long", "%s", dir);
	*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		return kvmk_err_sys(REST_OP, errno, "%s", path);
	if (fstat(*fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size != kvmk_snap_memory_len(s)) {
		int r = kvmk_err_format(REST_OP, "%s: %lld bytes, the state file says %llu", path,
					(long long)st.st_size,
					(unsigned long long)kvmk_snap_memory_len(s));

		close(*fd);
		*fd = -1;
		return r;
	}
	return 0;
}

/* The irqchip, every vCPU, the devices, then the VM clock. */
int kvmk_snap_apply(struct kvmkit_machine *m, const struct kvmk_snap *s)
{
	struct kvmkit_vm *vm = kvmkit_machine_vm(m);
	struct kvm_clock_data clock = { .clock = s->clock };
	int r = 0;

	if (s->irqchip)
		r = kvmkit_irqchip_restore(kvmkit_machine_irqchip(m), s->irqchip_blob.p,
					   s->irqchip_blob.len);
	for (uint32_t i = 0; !r && i < s->vcpus; i++)
		r = kvmkit_vcpu_restore(kvmkit_vm_vcpu(vm, i), s->vcpu[i].p, s->vcpu[i].len);
	if (!r)
		r = kvmkit_machine_restore_devices(m, s->devices_blob.p, s->devices_blob.len);
#if defined(__x86_64__)
	if (!r && ioctl(kvmkit_vm_fd(vm), KVM_SET_CLOCK, &clock) < 0)
		r = kvmk_err_ioctl("KVM_SET_CLOCK", errno, "%llu", (unsigned long long)s->clock);
#else
	(void)clock;
#endif
	return r;
}

int kvmkit_machine_restore(const struct kvmkit_machine_config *cfg, const char *dir,
			   struct kvmkit_machine **out)
{
	struct kvmkit_machine_config c;
	struct kvmkit_machine *m = NULL;
	struct kvmk_saved_machine d;
	struct kvmk_snap s;
	void *buf;
	int fd = -1, r;

	if (!cfg || !out)
		return kvmk_err_param(REST_OP, cfg ? "out" : "cfg", "is NULL", "%s", "NULL");
	r = load_state(dir, &buf, &s);
	if (r)
		return r;
	describe(&s, &d);
	r = kvmk_saved_check_config(&d, cfg);
	if (!r)
		r = open_memory(dir, &s, &fd);
	if (!r) {
		c = *cfg;
		c.kernel = NULL;
		c.kernel_len = 0;
		c.testdev = (s.machine_flags & KVMK_SNAP_F_TESTDEV) ? KVMKIT_TESTDEV_ON :
								      KVMKIT_TESTDEV_OFF;
		c.vm.ram_from_fd = true;
		c.vm.ram_fd = fd;
		r = kvmk_machine_create_bare(&c, &m);
	}
	if (fd >= 0)
		close(fd); /* the RAM mappings keep the file */
	if (!r)
		r = kvmk_saved_check_layout(&d, kvmkit_machine_vm(m));
	if (!r)
		r = kvmk_snap_apply(m, &s);
	if (r) {
		kvmkit_machine_destroy(m); /* keeps the thread's error */
	} else {
		*out = m;
		kvmk_debug("restored %s: %u vCPU(s), %llu MiB", dir, s.vcpus,
			   (unsigned long long)(s.mem_size >> 20));
	}
	kvmk_snap_release(&s);
	free(buf);
	return r;
}
