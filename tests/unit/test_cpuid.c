// SPDX-License-Identifier: MIT
/* The CPU model and --cpu flag parsing, on a synthetic CPUID table. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <kvmkit/kvmkit.h>
#include "arch/x86/cpuid.h"

static struct kvm_cpuid2 *table(void)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + 5 * sizeof(c->entries[0]));

	c->nent = 5;
	c->entries[0].function = 1;
	c->entries[0].ecx = (1u << 3) | (1u << 5) | (1u << 28); /* monitor, vmx, avx */
	c->entries[0].ebx = 0xff00abcd;
	c->entries[1].function = 7;
	c->entries[1].ebx = 1u << 5; /* avx2 */
	c->entries[2].function = 0xa;
	c->entries[2].eax = 0x07300402; /* a PMU */
	c->entries[3].function = 0xb;
	c->entries[4].function = 0x80000001;
	c->entries[4].ecx = 1u << 2; /* svm */
	return c;
}

static void test_parse(void **state)
{
	struct kvmk_cpu_flags f;

	assert_int_equal(kvmk_cpu_flags_parse(NULL, &f), 0);
	assert_int_equal(f.set | f.clear, 0);
	assert_int_equal(kvmk_cpu_flags_parse("", &f), 0);
	assert_int_equal(kvmk_cpu_flags_parse("+x2apic,-avx", &f), 0);
	assert_true(f.set && f.clear);
	/* The last mention wins. */
	assert_int_equal(kvmk_cpu_flags_parse("+avx,-avx", &f), 0);
	assert_int_equal(f.set, 0);
	assert_int_not_equal(f.clear, 0);
	assert_int_equal(kvmk_cpu_flags_parse("+bogus", &f), -EINVAL);
	assert_non_null(strstr(kvmkit_strerror(), "unknown CPU feature"));
	assert_int_equal(kvmk_cpu_flags_parse("x2apic", &f), -EINVAL);
	assert_int_equal(kvmk_cpu_flags_parse("+", &f), -EINVAL);
	assert_int_equal(kvmk_cpu_flags_parse("+avx,,", &f), -EINVAL);
	assert_int_equal(kvmk_cpu_flags_parse("+x2apicX", &f), -EINVAL);
	assert_string_equal(kvmkit_cpu_feature_name(0), "monitor");
	for (unsigned int i = 0; kvmkit_cpu_feature_name(i); i++)
		assert_true(i < 64); /* flags are a 64-bit mask */
}

static void test_model(void **state)
{
	struct kvm_cpuid2 *c = table();
	struct kvmk_cpu_model m = { .lapic = true, .tsc_deadline = true };

	kvmk_cpuid_apply(c, &m, 3);
	/* on: hypervisor, x2apic, tsc-deadline; off: monitor, vmx; avx kept */
	assert_int_equal(c->entries[0].ecx, (1u << 31) | (1u << 21) | (1u << 24) | (1u << 28));
	assert_int_equal(c->entries[0].ebx, 0x0301abcd); /* APIC id 3, 1 logical CPU */
	assert_int_equal(c->entries[2].eax, 0);		   /* no PMU */
	assert_int_equal(c->entries[3].edx, 3);		   /* x2APIC id */
	assert_int_equal(c->entries[4].ecx, 0);		   /* no svm */
	free(c);

	c = table();
	m = (struct kvmk_cpu_model){ .lapic = false };
	assert_int_equal(kvmk_cpu_flags_parse("-avx,-avx2,+monitor,-hypervisor", &m.flags), 0);
	kvmk_cpuid_apply(c, &m, 0);
	assert_int_equal(c->entries[0].ecx, 1u << 3); /* only monitor */
	assert_int_equal(c->entries[1].ebx, 0);
	free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_model),
	};

	return cmocka_run_group_tests_name("cpuid", tests, NULL, NULL);
}
