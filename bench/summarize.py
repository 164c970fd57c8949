#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Summarises the raw INFO/RESULT lines of bench/inner.sh.

usage: summarize.py --where NAME --log RAW.log [--json OUT.json] [--csv OUT.csv]

Every figure is reported as median, min and max over the repetitions.
Ratios are computed per repetition from runs made next to each other (the
i-th kvmkit run with the i-th bare run, the i-th kvmkit start-up with the
i-th QEMU start-up) and then summarised, so drift over the run cancels.
Prints a table and writes the JSON/CSV files.
"""

import argparse
import csv
import json
import statistics
import sys

TARGET_EXIT_RATIO = 1.05      # kvmkit round trip <= 105 % of the bare loop
TARGET_USER_NS = 200.0        # kvmkit userspace share per exit
TARGET_STARTUP_RATIO = 0.25   # kvmkit start-up <= 1/4 of QEMU's
TARGET_RSS_KIB = 2048         # kvmkit peak RSS minus guest RAM
TARGET_STARTUP_BARE = 1.2     # kvmkit run <= 1.2 x the raw-ioctl floor (mb_hello)
TARGET_STARTUP_MS = 10.0      # kvmkit run exec -> first byte (mb_hello)

# bench-irq-rate's paths, in its order; 'nop' is the mailbox baseline.
IRQ_PATHS = ('nop', 'line', 'irqfd-edge', 'irqfd-level', 'signal-msi', 'msi-irqfd')
IRQ_CATS = ('irq', 'irq-split')  # in-kernel irqchip, split irqchip
IRQ_TITLES = {
    'nop': 'mailbox NOP (baseline)',
    'line': 'KVM_IRQ_LINE pulse',
    'irqfd-edge': 'irqfd, IOAPIC edge',
    'irqfd-level': 'irqfd + resample, level',
    'signal-msi': 'KVM_SIGNAL_MSI',
    'msi-irqfd': 'MSI route + irqfd',
}


def parse(path):
    info, results, errors = {}, {}, []
    with open(path, errors='replace') as f:
        for line in f:
            words = line.split()
            if not words:
                continue
            if words[0] == 'INFO' and len(words) >= 2 and '=' in words[1]:
                k, v = words[1].split('=', 1)
                info[k] = v.replace('_', ' ')
            elif words[0] == 'RESULT' and len(words) >= 3:
                rec = {}
                for w in words[3:]:
                    if '=' in w:
                        k, v = w.split('=', 1)
                        try:
                            rec[k] = float(v)
                        except ValueError:
                            rec[k] = v
                results.setdefault((words[1], words[2]), []).append(rec)
            elif words[0] == 'ERROR':
                errors.append(line.rstrip())
    return info, results, errors


def summary(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {'median': statistics.median(values), 'min': min(values), 'max': max(values),
            'n': len(values)}


def column(results, key, field):
    return [r[field] for r in results.get(key, []) if isinstance(r.get(field), float)]


def paired(results, a, b, field, op):
    xs, ys = column(results, a, field), column(results, b, field)
    return [op(x, y) for x, y in zip(xs, ys)]


def fmt(s, digits=1, unit=''):
    if not s:
        return 'n/a'
    f = '%%.%df' % digits
    return (f % s['median'] + unit + '  [' + f % s['min'] + ' .. ' + f % s['max'] + ']'
            + ('  n=%d' % s['n']))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--where', required=True)
    ap.add_argument('--log', required=True)
    ap.add_argument('--json')
    ap.add_argument('--csv')
    args = ap.parse_args()

    info, res, errors = parse(args.log)
    out = {'where': args.where, 'machine': info, 'errors': errors, 'metrics': {},
           'targets': {}}
    m = out['metrics']

    def put(name, values, unit):
        s = summary(values)
        if s:
            s['unit'] = unit
            m[name] = s
        return s

    K, B, BT = ('exits', 'kvmkit'), ('exits', 'bare'), ('exits', 'bare-timed')
    KO = ('exits', 'kvmkit-run-once')
    for var, key in (('kvmkit', K), ('bare', B), ('bare_timed', BT), ('kvmkit_run_once', KO)):
        for f in ('exit_ns', 'mmio_ns', 'pio_ns'):
            put('exits.%s.%s' % (var, f), column(res, key, f), 'ns')
    put('exits.kvmkit.user_ns', column(res, K, 'user_ns'), 'ns')
    put('exits.bare_timed.user_ns', column(res, BT, 'user_ns'), 'ns')
    put('exits.kvmkit_run_once.user_ns', column(res, KO, 'user_ns'), 'ns')
    for f in ('exit_ns', 'mmio_ns', 'pio_ns'):
        put('exits.ratio.' + f, paired(res, K, B, f, lambda x, y: x / y), 'x')
        put('exits.overhead.' + f, paired(res, K, B, f, lambda x, y: x - y), 'ns')
    put('exits.timed_ratio.exit_ns', paired(res, K, BT, 'exit_ns', lambda x, y: x / y), 'x')
    put('exits.kvmkit_own_user_ns', paired(res, K, BT, 'user_ns', lambda x, y: x - y), 'ns')
    for f in ('bus_pio_ns', 'bus_mmio_ns', 'clock_ns', 'lock_ns'):
        put('micro.' + f, column(res, ('micro', 'kvmkit'), f), 'ns')

    labels = sorted({v for (b, v) in res if b == 'startup'})
    for lab in labels:
        for f, unit in (('first_byte_ms', 'ms'), ('exit_ms', 'ms'), ('maxrss_kib', 'KiB')):
            put('startup.%s.%s' % (lab, f), column(res, ('startup', lab), f), unit)
        # The share of runs over the absolute target: a stall in KVM makes
        # these distributions bimodal, so the median alone hides it.
        fb = column(res, ('startup', lab), 'first_byte_ms')
        if fb:
            put('startup.%s.over_10ms_pct' % lab,
                [100.0 * sum(1 for x in fb if x > TARGET_STARTUP_MS) / len(fb)], '%')
    # Guest RAM resident per boot protocol (bench-startup-phases labels its
    # line kvmkit for ELF64, kvmkit-mb for Multiboot).
    gkib = {}
    guest = None
    for plab, key in (('kvmkit', 'phases'), ('kvmkit-mb', 'phases_mb')):
        P = ('phases', plab)
        for f in ('exec_to_main_ms', 'read_ms', 'vm_create_ms', 'irqchip_ms', 'vcpu_create_ms',
                  'devices_ms', 'load_ms', 'first_exit_ms', 'to_first_exit_ms', 'run_ms'):
            put('%s.%s' % (key, f), column(res, P, f), 'ms')
        put(key + '.hwm_kib', column(res, P, 'hwm_kib'), 'KiB')
        g = put(key + '.guest_resident_kib', column(res, P, 'guest_resident_kib'), 'KiB')
        gkib[plab] = g['median'] if g else 0.0
        if plab == 'kvmkit':
            guest = g
    for lab in labels:
        if lab.startswith('phases'):
            continue
        g = gkib['kvmkit-mb'] if '-mb' in lab else gkib['kvmkit']
        put('startup.%s.rss_minus_guest_kib' % lab,
            [v - g for v in column(res, ('startup', lab), 'maxrss_kib')], 'KiB')
        if lab.startswith('qemu-'):
            put('startup.ratio_first_byte.kvmkit_vs_' + lab,
                paired(res, ('startup', 'kvmkit'), ('startup', lab), 'first_byte_ms',
                       lambda x, y: x / y), 'x')
    # kvmkit run against the raw-ioctl floor, same payload: per pair (runs
    # made next to each other) and as the ratio of the two medians.
    KM, BM = ('startup', 'kvmkit-mb'), ('startup', 'bare-mb')
    for f in ('first_byte_ms', 'exit_ms'):
        put('startup.ratio_%s.kvmkit-mb_vs_bare-mb' % f,
            paired(res, KM, BM, f, lambda x, y: x / y), 'x')
        a, b = summary(column(res, KM, f)), summary(column(res, BM, f))
        if a and b and b['median'] > 0:
            put('startup.ratio_of_medians_%s.kvmkit-mb_vs_bare-mb' % f,
                [a['median'] / b['median']], 'x')

    # Interrupt rate: every path of one bench-irq-rate process is paired with
    # the same process's baseline and KVM_IRQ_LINE figures; split-irqchip runs
    # ('irq-split') the same way, and each split path against the kernel one.
    for cat in IRQ_CATS:
        for pth in IRQ_PATHS:
            key = (cat, pth)
            for f, unit in (('rt_ns', 'ns'), ('rate_hz', '1/s'), ('rt_p50_ns', 'ns'),
                            ('rt_p90_ns', 'ns'), ('call_ns', 'ns'), ('call_p90_ns', 'ns'),
                            ('resample_ns', 'ns'), ('resample_p90_ns', 'ns'),
                            ('slow_pct', '%')):
                put('%s.%s.%s' % (cat, pth, f), column(res, key, f), unit)
            if cat != 'irq':
                put('%s.%s.rt_p50_ns_vs_kernel' % (cat, pth),
                    paired(res, key, ('irq', pth), 'rt_p50_ns', lambda x, y: x / y), 'x')
            if pth == 'nop':
                continue
            for f in ('rt_ns', 'rt_p50_ns'):
                put('%s.%s.%s_vs_nop' % (cat, pth, f),
                    paired(res, key, (cat, 'nop'), f, lambda x, y: x / y), 'x')
            if pth == 'line':
                continue
            for f in ('rt_ns', 'rt_p50_ns', 'call_ns'):
                put('%s.%s.%s_vs_line' % (cat, pth, f),
                    paired(res, key, (cat, 'line'), f, lambda x, y: x / y), 'x')

    # Targets, judged on medians.
    t = out['targets']

    def judge(name, metric, limit, le=True):
        s = m.get(metric)
        if s:
            t[name] = {'metric': metric, 'median': s['median'], 'limit': limit,
                       'met': s['median'] <= limit if le else s['median'] >= limit}

    judge('exit round trip <= 1.05 x bare', 'exits.ratio.exit_ns', TARGET_EXIT_RATIO)
    judge('userspace share <= 200 ns/exit', 'exits.kvmkit.user_ns', TARGET_USER_NS)
    judge('start-up <= 1/4 of QEMU microvm', 'startup.ratio_first_byte.kvmkit_vs_qemu-microvm',
          TARGET_STARTUP_RATIO)
    judge('start-up <= 1/4 of QEMU pc', 'startup.ratio_first_byte.kvmkit_vs_qemu-pc',
          TARGET_STARTUP_RATIO)
    judge('RSS - guest RAM < 2 MiB', 'startup.kvmkit.rss_minus_guest_kib', TARGET_RSS_KIB)
    judge('start-up <= 1.2 x bare (pairs)', 'startup.ratio_first_byte_ms.kvmkit-mb_vs_bare-mb',
          TARGET_STARTUP_BARE)
    judge('start-up <= 1.2 x bare (medians)',
          'startup.ratio_of_medians_first_byte_ms.kvmkit-mb_vs_bare-mb', TARGET_STARTUP_BARE)
    judge('start-up <= 10 ms', 'startup.kvmkit-mb.first_byte_ms', TARGET_STARTUP_MS)

    # ---- table -----------------------------------------------------------
    w = sys.stdout.write
    w('== kvmkit benchmarks: %s\n' % args.where)
    has = {b for (b, _v) in res}
    for k in ('cpu', 'cpus', 'kernel', 'kvm_module', 'clocksource', 'thp', 'qemu', 'iters',
              'reps', 'startup_reps', 'rt', 'loadavg_before', 'loadavg_after'):
        if k in info and (k != 'iters' or 'exits' in has):
            w('   %-12s %s\n' % (k, info[k]))
    if 'irq_m' in info and 'irq' in has:
        w('   %-12s %s\n' % ('irq_m', info['irq_m']))
    if 'exits' in has or 'micro' in has:
        exits_table(w, m)
    if 'startup' in has or 'phases' in has:
        startup_table(w, m, labels, guest)
    for cat in IRQ_CATS:
        if cat in has:
            irq_table(w, m, cat)
    w('\n-- targets (medians)\n')
    for name, v in t.items():
        w('   %-34s %-4s %.3f (limit %g)\n' % (name, 'met' if v['met'] else 'MISS', v['median'],
                                               v['limit']))
    for e in errors:
        w('   %s\n' % e)

    if args.json:
        with open(args.json, 'w') as f:
            json.dump(out, f, indent=1, sort_keys=True)
            f.write('\n')
    if args.csv:
        with open(args.csv, 'w', newline='') as f:
            cw = csv.writer(f)
            cw.writerow(['where', 'metric', 'median', 'min', 'max', 'n', 'unit'])
            for name in sorted(m):
                s = m[name]
                cw.writerow([args.where, name, '%.6g' % s['median'], '%.6g' % s['min'],
                             '%.6g' % s['max'], s['n'], s['unit']])
    return 1 if errors else 0


def exits_table(w, m):
    w('\n-- exit round trip, ns per exit: median [min .. max]\n')
    rows = [('kvmkit', 'kvmkit'), ('bare KVM_RUN loop', 'bare'),
            ('bare + 2 clock reads', 'bare_timed'), ('kvmkit run_once loop', 'kvmkit_run_once')]
    for title, var in rows:
        w('   %-22s all %s\n' % (title, fmt(m.get('exits.%s.exit_ns' % var))))
        w('   %-22s mmio %s | pio %s\n' % ('', fmt(m.get('exits.%s.mmio_ns' % var)),
                                          fmt(m.get('exits.%s.pio_ns' % var))))
    w('   %-22s %s\n' % ('ratio kvmkit/bare', fmt(m.get('exits.ratio.exit_ns'), 3)))
    w('   %-22s mmio %s | pio %s\n' % ('', fmt(m.get('exits.ratio.mmio_ns'), 3),
                                      fmt(m.get('exits.ratio.pio_ns'), 3)))
    w('   %-22s %s\n' % ('kvmkit - bare', fmt(m.get('exits.overhead.exit_ns'), 0, ' ns')))
    w('   %-22s %s\n' % ('kvmkit user share', fmt(m.get('exits.kvmkit.user_ns'), 0, ' ns')))
    w('   %-22s %s\n' % ('bare+clock user share', fmt(m.get('exits.bare_timed.user_ns'), 0, ' ns')))
    w('   %-22s %s\n' % ('run_once user share', fmt(m.get('exits.kvmkit_run_once.user_ns'), 0, ' ns')))
    w('   %-22s %s\n' % ('kvmkit own user time', fmt(m.get('exits.kvmkit_own_user_ns'), 0, ' ns')))
    w('   micro: bus dispatch pio %s, mmio %s; clock_gettime %s; mutex %s\n' % (
        fmt(m.get('micro.bus_pio_ns')), fmt(m.get('micro.bus_mmio_ns')),
        fmt(m.get('micro.clock_ns')), fmt(m.get('micro.lock_ns'))))


def startup_table(w, m, labels, guest):
    w('\n-- start-up (exec -> first guest serial byte), peak RSS\n')
    for lab in labels:
        w('   %-14s first byte %s  exit %s\n' % (
            lab, fmt(m.get('startup.%s.first_byte_ms' % lab), 2, ' ms'),
            fmt(m.get('startup.%s.exit_ms' % lab), 1, ' ms')))
        o = m.get('startup.%s.over_10ms_pct' % lab)
        if o:
            w('   %-14s first byte > 10 ms in %.0f %% of runs\n' % ('', o['median']))
        w('   %-14s maxrss %s  minus guest %s\n' % (
            '', fmt(m.get('startup.%s.maxrss_kib' % lab), 0, ' KiB'),
            fmt(m.get('startup.%s.rss_minus_guest_kib' % lab), 0, ' KiB')))
    for lab in labels:
        s = m.get('startup.ratio_first_byte.kvmkit_vs_' + lab)
        if s:
            w('   ratio kvmkit/%-10s %s\n' % (lab, fmt(s, 3)))
    for f in ('first_byte_ms', 'exit_ms'):
        s = m.get('startup.ratio_%s.kvmkit-mb_vs_bare-mb' % f)
        if s:
            w('   kvmkit-mb/bare-mb %s: pairs %s, medians %s\n' % (
                f, fmt(s, 3),
                fmt(m.get('startup.ratio_of_medians_%s.kvmkit-mb_vs_bare-mb' % f), 3)))
    w('   guest RAM resident (mincore, hello.elf): %s\n' % fmt(guest, 0, ' KiB'))
    for key, title in (('phases', 'hello.elf'), ('phases_mb', 'mb_hello.elf')):
        if not m.get(key + '.to_first_exit_ms'):
            continue
        w('\n-- kvmkit start-up phases (bench-startup-phases %s), ms\n' % title)
        for f in ('exec_to_main', 'read', 'vm_create', 'irqchip', 'vcpu_create', 'devices',
                  'load', 'first_exit', 'to_first_exit', 'run'):
            w('   %-14s %s\n' % (f, fmt(m.get('%s.%s_ms' % (key, f)), 3)))


def irq_table(w, m, cat='irq'):
    def g(pth, f):
        return m.get('%s.%s.%s' % (cat, pth, f))

    w('\n-- interrupt rate (bench-irq-rate%s), %s irqchip, closed loop, one interrupt\n'
      '   at a time; median [min .. max] over runs\n'
      % (' --split' if cat == 'irq-split' else '', 'split' if cat == 'irq-split' else 'in-kernel'))
    for pth in IRQ_PATHS:
        w('   %-24s %s  loop %s\n' % (IRQ_TITLES[pth], fmt(g(pth, 'rate_hz'), 0, '/s'),
                                       fmt(g(pth, 'rt_ns'), 0, ' ns')))
        w('   %-24s per-injection p50 %s  p90 %s\n' % (
            '', fmt(g(pth, 'rt_p50_ns'), 0, ' ns'), fmt(g(pth, 'rt_p90_ns'), 0, ' ns')))
        w('   %-24s injections > 1 ms (stalled) %s\n' % ('', fmt(g(pth, 'slow_pct'), 1, ' %')))
        w('   %-24s call %s  p90 %s\n' % ('', fmt(g(pth, 'call_ns'), 0, ' ns'),
                                          fmt(g(pth, 'call_p90_ns'), 0, ' ns')))
        if g(pth, 'resample_ns'):
            w('   %-24s resample round trip %s  p90 %s\n' % (
                '', fmt(g(pth, 'resample_ns'), 0, ' ns'),
                fmt(g(pth, 'resample_p90_ns'), 0, ' ns')))
    w('   ratios per run (x):\n')
    if cat != 'irq':
        for pth in IRQ_PATHS:
            w('   %-24s p50 split/kernel %s\n' % (IRQ_TITLES[pth],
                                                    fmt(g(pth, 'rt_p50_ns_vs_kernel'), 2)))
    for pth in IRQ_PATHS[1:]:
        w('   %-24s loop/nop %s  p50/nop %s\n' % (
            IRQ_TITLES[pth], fmt(g(pth, 'rt_ns_vs_nop'), 2), fmt(g(pth, 'rt_p50_ns_vs_nop'), 2)))
        if pth != 'line':
            w('   %-24s loop/line %s  p50/line %s  call/line %s\n' % (
                '', fmt(g(pth, 'rt_ns_vs_line'), 2), fmt(g(pth, 'rt_p50_ns_vs_line'), 2),
                fmt(g(pth, 'call_ns_vs_line'), 2)))


if __name__ == '__main__':
    sys.exit(main())
