// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: the command line's value parsers, each held against a
 * reference written from their documented grammar (cli/cli.h, src/kvm/cpuid.h).
 * The first byte picks the parser, the rest is the argument string. Traps if:
 *  - cli_parse_size() accepts what the reference refuses or the other way
 *    round, or its value is not what the digits and suffix say (digits
 *    first: no blank, no sign, so never "negative"; overflow refused);
 *  - cli_parse_uint() does the same for [min, max] (bounds from the input);
 *  - kvmk_cpu_flags_parse() disagrees with the reference ("+name"/"-name"
 *    items separated by commas, the last mention of a feature wins), sets
 *    a feature both on and off, sets a bit past the feature table, or does
 *    not parse its own result, printed back, to the same flags.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kvmkit/kvmkit.h>

#include "cli.h"
#include "fuzz.h"
#include "arch/x86/cpuid.h"

typedef unsigned __int128 u128;

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Decimal digits at *p as a 128-bit value, saturated above 2^64; moves *p. */
static u128 digits(const char **p)
{
	u128 v = 0;

	for (; is_digit(**p); (*p)++) {
		v = v * 10 + (u128)(**p - '0');
		if (v > (u128)UINT64_MAX)
			v = (u128)UINT64_MAX + 1;
	}
	return v;
}

/* The size grammar: DIGITS [K|M|G|T [i]] [B], case-insensitive letters. */
static bool ref_size(const char *s, uint64_t *out)
{
	const char *p = s;
	unsigned int shift = 0;
	u128 v;

	if (!is_digit(*p))
		return false;
	v = digits(&p);
	switch (*p) {
	case 'k':
	case 'K':
		shift = 10;
		break;
	case 'm':
	case 'M':
		shift = 20;
		break;
	case 'g':
	case 'G':
		shift = 30;
		break;
	case 't':
	case 'T':
		shift = 40;
		break;
	}
	if (shift) {
		p++;
		if (*p == 'i')
			p++;
	}
	if (*p == 'b' || *p == 'B')
		p++;
	if (*p || (v << shift) > (u128)UINT64_MAX)
		return false;
	*out = (uint64_t)(v << shift);
	return true;
}

static bool ref_uint(const char *s, unsigned int min, unsigned int max, unsigned int *out)
{
	const char *p = s;
	u128 v;

	if (!is_digit(*p))
		return false;
	v = digits(&p);
	if (*p || v < min || v > max)
		return false;
	*out = (unsigned int)v;
	return true;
}

static unsigned int nr_features(void)
{
	unsigned int n = 0;

	while (kvmkit_cpu_feature_name(n))
		n++;
	return n;
}

static int feature_index(const char *name, size_t len)
{
	for (unsigned int i = 0; kvmkit_cpu_feature_name(i); i++)
		if (strlen(kvmkit_cpu_feature_name(i)) == len &&
		    !memcmp(kvmkit_cpu_feature_name(i), name, len))
			return (int)i;
	return -1;
}

/* Items separated by commas; an empty spec, and the end after a final
 * comma, are no change. */
static bool ref_flags(const char *s, struct kvmk_cpu_flags *out)
{
	memset(out, 0, sizeof(*out));
	while (*s) {
		size_t len = strcspn(s, ",");
		int f;

		if (len < 2 || (s[0] != '+' && s[0] != '-'))
			return false;
		f = feature_index(s + 1, len - 1);
		if (f < 0)
			return false;
		out->set &= ~(1ull << f);
		out->clear &= ~(1ull << f);
		if (s[0] == '+')
			out->set |= 1ull << f;
		else
			out->clear |= 1ull << f;
		s += len;
		if (*s == ',')
			s++;
	}
	return true;
}

static void check_flags(const char *s)
{
	struct kvmk_cpu_flags got, want, again;
	unsigned int n = nr_features();
	bool ok = kvmk_cpu_flags_parse(s, &got) == 0;
	char spec[1024] = "";
	size_t len = 0;

	CHECK(ok == ref_flags(s, &want));
	if (!ok)
		return;
	CHECK(got.set == want.set && got.clear == want.clear);
	CHECK(!(got.set & got.clear));
	CHECK(n == 64 || !((got.set | got.clear) >> n));
	/* Printed back ("+a,-b,..."), the flags parse to themselves. */
	for (unsigned int i = 0; i < n; i++) {
		if (!((got.set | got.clear) & (1ull << i)))
			continue;
		len += (size_t)snprintf(spec + len, sizeof(spec) - len, "%s%c%s", len ? "," : "",
					got.set & (1ull << i) ? '+' : '-',
					kvmkit_cpu_feature_name(i));
		CHECK(len < sizeof(spec));
	}
	CHECK(kvmk_cpu_flags_parse(spec, &again) == 0);
	CHECK(again.set == got.set && again.clear == got.clear);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The argument, as its own allocation so that ASan sees an overread. */
	char *s;
	uint64_t v = 0, rv = 0;
	unsigned int u = 0, ru = 0, min = 0, max = UINT32_MAX;
	uint8_t which;

	if (size < 1)
		return 0;
	which = data[0] % 3;
	data++;
	size--;
	if (which == 1 && size >= 8) {
		memcpy(&min, data, 4);
		memcpy(&max, data + 4, 4);
		data += 8;
		size -= 8;
	}
	s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';

	switch (which) {
	case 0: {
		bool ok = cli_parse_size(s, &v) == 0;

		CHECK(ok == ref_size(s, &rv));
		CHECK(!ok || v == rv);
		CHECK(ok || v == 0); /* untouched on failure */
		CHECK(!ok || (is_digit(s[0]) && !strchr(s, '-') && !strchr(s, '+')));
		break;
	}
	case 1: {
		bool ok = cli_parse_uint(s, min, max, &u) == 0;

		CHECK(ok == ref_uint(s, min, max, &ru));
		CHECK(!ok || (u == ru && u >= min && u <= max));
		CHECK(ok || u == 0);
		break;
	}
	default:
		check_flags(s);
		break;
	}
	free(s);
	return 0;
}
