#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""QEMU's live migration to a file, the baseline beside bench-migrate.

Boots the same guest (mig_loop.elf) in QEMU in kvmkit's entry state (the
stand-in firmware of tests/guest/qemu, built as bench/bootrom.bin), one
vCPU, MEM_MIB of RAM, the pattern area as bench-migrate lays it out, paced
to RATE_MIBS MiB/s after its first pass (which QEMU's guest writes itself,
flat out: QEMU has no host-side fill). Once the guest runs its second pass
and half a second more, QMP `migrate` sends the VM to "exec:cat > FILE"
and `query-migrate` is polled until it completes; QEMU's own figures are
reported: downtime (ms), total-time (ms), RAM transferred, and how many
dirty-page syncs (passes) it made. QEMU's defaults except max-bandwidth,
which is raised from 128 MiB/s to 64 GiB/s so that the link is not
throttled (kvmkit's migration has no bandwidth limit); the downtime limit
stays at QEMU's default 300 ms, so QEMU stops iterating once it expects
the rest to fit in 300 ms.

usage: qemu_migrate.py QEMU BOOTROM GUEST_ELF MEM_MIB RATE_MIBS REPS [ACCEL]
ACCEL: kvm (default) or tcg. Prints one line per repetition and
  RESULT qemu-migrate r<RATE> accel=.. mem_mib=.. rate_mibs=.. rate_before=..
         downtime_ms=.. total_ms=.. sent_mib=.. syncs=..   (medians; rate_before:
         MiB/s the guest wrote in the half second before the migration)
QEMU runs `-M microvm` (its lightest machine, as in the start-up and
snapshot baselines). With `-M pc`, QEMU's -accel kvm could not run the guest
on this machine's KVM-PVM (its vCPU stayed in the firmware's real-mode
start); microvm runs it under KVM.
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time

PARAMS = 0x9000
ABI = 0x200000
MIG_BASE = ABI + 0x40000
MIG_PAGES, MIG_RATE = MIG_BASE, MIG_BASE + 8
MIG_CPU0 = MIG_BASE + 0x100
MIG_AREA = 0x1000000
TICK_HZ = 200


def elf_entry(path):
    with open(path, 'rb') as f:
        hdr = f.read(32)
    return int.from_bytes(hdr[24:32], 'little')


class Qmp:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        for _ in range(300):
            try:
                self.s.connect(path)
                break
            except OSError:
                time.sleep(0.05)
        self.f = self.s.makefile('rw')
        self.read()  # greeting
        self.cmd('qmp_capabilities')

    def read(self):
        while True:
            msg = json.loads(self.f.readline())
            if 'event' not in msg:
                return msg

    def cmd(self, name, **args):
        self.f.write(json.dumps({'execute': name, 'arguments': args}) + '\n')
        self.f.flush()
        r = self.read()
        if 'error' in r:
            raise RuntimeError('%s: %s' % (name, r['error']))
        return r['return']

    def u64(self, addr):
        out = self.cmd('human-monitor-command', **{'command-line': 'xp /1gx %#x' % addr})
        return int(out.split(':')[1].split()[0], 16)


def one(qemu, rom, elf, mem, rate, accel, tmp):
    area_pages = (mem - 32) * 256
    qmp_path = os.path.join(tmp, 'qmp.sock')
    out_file = os.path.join(tmp, 'vm.mig')

    def data(addr, val):
        return ['-device', 'loader,addr=%#x,data=%#x,data-len=8' % (addr, val)]

    cmd = [qemu, '-accel', accel, '-M', 'microvm', '-cpu', 'host' if accel == 'kvm' else 'max',
           '-m', '%dM' % mem, '-smp', '1', '-bios', rom, '-display', 'none',
           '-nodefaults', '-no-reboot', '-device', 'loader,file=' + os.path.abspath(elf),
           '-qmp', 'unix:%s,server=on,wait=off' % qmp_path]
    cmd += data(PARAMS, elf_entry(elf)) + data(PARAMS + 8, 1) + data(PARAMS + 16, mem << 20)
    cmd += data(MIG_PAGES, area_pages) + data(MIG_RATE, rate * 256 // TICK_HZ)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        q = Qmp(qmp_path)
        end = time.time() + 600
        while q.u64(MIG_CPU0) < 2:  # the first pass fills the area
            if time.time() > end or proc.poll() is not None:
                raise RuntimeError('the guest did not finish its first pass')
            time.sleep(0.2)
        w0, t0 = q.u64(MIG_CPU0 + 0x30), time.time()
        time.sleep(0.5)
        rate_before = (q.u64(MIG_CPU0 + 0x30) - w0) / 256 / (time.time() - t0)
        q.cmd('migrate-set-parameters', **{'max-bandwidth': 64 << 30})
        q.cmd('migrate', uri='exec:cat > %s' % out_file)
        while True:
            st = q.cmd('query-migrate')
            if st.get('status') in ('completed', 'failed', 'cancelled'):
                break
            time.sleep(0.01)
        if st['status'] != 'completed':
            raise RuntimeError('migration %s' % st['status'])
        return (st['downtime'], st['total-time'], st['ram']['transferred'] / (1 << 20),
                st['ram'].get('dirty-sync-count', 0), os.path.getsize(out_file) / (1 << 20),
                rate_before)
    finally:
        proc.kill()
        err = proc.communicate()[1]
        if proc.returncode not in (0, -9) and err:
            sys.stderr.write(err.decode(errors='replace'))
        if os.path.exists(out_file):
            os.unlink(out_file)


def main():
    if len(sys.argv) < 7:
        sys.exit(__doc__)
    qemu, rom, elf = sys.argv[1:4]
    mem, rate, reps = (int(a) for a in sys.argv[4:7])
    accel = sys.argv[7] if len(sys.argv) > 7 else 'kvm'
    runs = []
    with tempfile.TemporaryDirectory(prefix='qemu-mig-') as tmp:
        for i in range(reps):
            r = one(qemu, rom, elf, mem, rate, accel, tmp)
            if r[1] == 0:  # QEMU 7.2 at times reports a total-time of 0: again
                print('# rep %d: QEMU reported total-time 0 (downtime %d): repeated'
                      % (i, r[0]), file=sys.stderr)
                r = one(qemu, rom, elf, mem, rate, accel, tmp)
            runs.append(r)
            print('# rep %d: downtime %d ms, total %d ms, %.1f MiB sent, %d syncs, file %.1f '
                  'MiB, guest rate %.1f MiB/s' % ((i,) + r), file=sys.stderr)
    med = sorted(runs)[len(runs) // 2]
    tot = sorted(r[1] for r in runs)[len(runs) // 2]
    before = sorted(r[5] for r in runs)[len(runs) // 2]
    print('RESULT qemu-migrate r%d accel=%s mem_mib=%d rate_mibs=%d rate_before=%.1f '
          'downtime_ms=%d total_ms=%d sent_mib=%.1f syncs=%d'
          % (rate, accel, mem, rate, before, med[0], tot, med[2], med[3]))


if __name__ == '__main__':
    main()
