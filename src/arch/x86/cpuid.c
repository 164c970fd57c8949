// SPDX-License-Identifier: MIT
/*
 * The guest CPU model. kvmkit starts from what KVM supports
 * (KVM_GET_SUPPORTED_CPUID) and applies a small, fixed model:
 *  - on: hypervisor, x2apic (KVM emulates it), tsc-deadline (where KVM has
 *    KVM_CAP_TSC_DEADLINE_TIMER);
 *  - off: monitor/mwait (kvmkit handles no MWAIT exits), vmx/svm (no nested
 *    virtualization unless asked for), and the PMU (leaf 0xA zeroed);
 *  - per vCPU: initial APIC id (leaf 1 EBX[31:24]) and x2APIC id (leaves
 *    0xB/0x1F EDX) = vCPU index.
 * Then the user's --cpu flags ("+name", "-name", comma-separated) switch
 * named features on or off, as QEMU's -cpu does.
 */
#include <stdio.h>
#include <string.h>

#define KVMK_LOG_MODULE "cpuid"
#include "core/internal.h"
#include "arch/x86/cpuid.h"
#include <kvmkit/vcpu.h>

#if defined(__x86_64__)

enum reg { EAX, EBX, ECX, EDX };

struct feature {
	const char *name;
	uint32_t leaf;
	uint32_t subleaf;
	enum reg reg;
	uint32_t bit;
};

static const struct feature features[] = {
	{ "monitor", 1, 0, ECX, 3 },	 { "vmx", 1, 0, ECX, 5 },
	{ "pcid", 1, 0, ECX, 17 },	 { "sse4.2", 1, 0, ECX, 20 },
	{ "x2apic", 1, 0, ECX, 21 },	 { "popcnt", 1, 0, ECX, 23 },
	{ "tsc-deadline", 1, 0, ECX, 24 }, { "aes", 1, 0, ECX, 25 },
	{ "xsave", 1, 0, ECX, 26 },	 { "avx", 1, 0, ECX, 28 },
	{ "rdrand", 1, 0, ECX, 30 },	 { "hypervisor", 1, 0, ECX, 31 },
	{ "fsgsbase", 7, 0, EBX, 0 },	 { "avx2", 7, 0, EBX, 5 },
	{ "smep", 7, 0, EBX, 7 },	 { "invpcid", 7, 0, EBX, 10 },
	{ "avx512f", 7, 0, EBX, 16 },	 { "smap", 7, 0, EBX, 20 },
	{ "svm", 0x80000001, 0, ECX, 2 }, { "pdpe1gb", 0x80000001, 0, EDX, 26 },
	{ "rdtscp", 0x80000001, 0, EDX, 27 }, { "invtsc", 0x80000007, 0, EDX, 8 },
};

const char *kvmkit_cpu_feature_name(unsigned int i)
{
	return i < KVMKIT_ARRAY_SIZE(features) ? features[i].name : NULL;
}

static int find(const char *name, size_t len)
{
	for (unsigned int i = 0; i < KVMKIT_ARRAY_SIZE(features); i++)
		if (strlen(features[i].name) == len && !strncmp(features[i].name, name, len))
			return (int)i;
	return -1;
}

int kvmk_cpu_flags_parse(const char *spec, struct kvmk_cpu_flags *out)
{
	const char *p = spec;

	memset(out, 0, sizeof(*out));
	while (p && *p) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		bool on;
		int f;

		if (len < 2 || (p[0] != '+' && p[0] != '-'))
			return kvmk_err_param("cpu flags", "flag", "expected +name or -name",
					      "%.*s", (int)len, p);
		on = p[0] == '+';
		f = find(p + 1, len - 1);
		if (f < 0)
			return kvmk_err_param("cpu flags", "flag", "unknown CPU feature (see kvmkit run --help)",
					      "%.*s", (int)len, p);
		/* The last mention of a feature wins. */
		out->set &= ~(1ull << f);
		out->clear &= ~(1ull << f);
		if (on)
			out->set |= 1ull << f;
		else
			out->clear |= 1ull << f;
		p = end ? end + 1 : NULL;
	}
	return 0;
}

static uint32_t *reg_of(struct kvm_cpuid_entry2 *e, enum reg r)
{
	switch (r) {
	case EAX: return &e->eax;
	case EBX: return &e->ebx;
	case ECX: return &e->ecx;
	default: return &e->edx;
	}
}

static void apply_feature(struct kvm_cpuid2 *c, unsigned int f, bool on)
{
	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		if (e->function != features[f].leaf || e->index != features[f].subleaf)
			continue;
		if (on)
			*reg_of(e, features[f].reg) |= 1u << features[f].bit;
		else
			*reg_of(e, features[f].reg) &= ~(1u << features[f].bit);
	}
}

void kvmk_cpuid_apply(struct kvm_cpuid2 *c, const struct kvmk_cpu_model *model, unsigned int apic_id)
{
	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		switch (e->function) {
		case 1:
			/* Initial APIC id; one logical CPU per package. */
			e->ebx = (e->ebx & 0x0000ffffu) | (1u << 16) | (apic_id << 24);
			break;
		case 0xa:
			e->eax = e->ebx = e->ecx = e->edx = 0; /* no PMU */
			break;
		case 0xb:
		case 0x1f:
			e->edx = apic_id;
			break;
		default:
			break;
		}
	}
	apply_feature(c, (unsigned int)find("hypervisor", 10), true);
	apply_feature(c, (unsigned int)find("monitor", 7), false);
	apply_feature(c, (unsigned int)find("vmx", 3), false);
	apply_feature(c, (unsigned int)find("svm", 3), false);
	if (model->lapic)
		apply_feature(c, (unsigned int)find("x2apic", 6), true);
	if (model->tsc_deadline)
		apply_feature(c, (unsigned int)find("tsc-deadline", 12), true);
	for (unsigned int f = 0; f < KVMKIT_ARRAY_SIZE(features); f++) {
		if (model->flags.set & (1ull << f))
			apply_feature(c, f, true);
		if (model->flags.clear & (1ull << f))
			apply_feature(c, f, false);
	}
}
#endif /* __x86_64__ */
