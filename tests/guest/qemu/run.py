#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Runs a guest-kit ELF under QEMU/TCG (no /dev/kvm needed).

A development aid for checking guest images where kvmkit cannot run: the
stand-in firmware (bootrom.S) recreates kvmkit's long-mode entry state, the
guest's power-off port is backed by QEMU's isa-debug-exit, and port writes
to the report device (unassigned in QEMU) are recovered from QEMU's
memory_region_ops_write trace.

usage: run.py [--smp N] [--mem MiB] [--timeout S] [--poke ADDR=VAL]
              [--peek ADDR --peek-after S] [--io] GUEST.elf

Prints the UART output, the reported values and how the run ended
(GUEST_QEMU_KEEP=1 keeps QEMU's logs). QEMU's
own exit status for isa-debug-exit is (status << 1) | 1, so only the low
7 bits of the guest's status survive; the status printed comes from the
traced port write instead.
"""

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPORT_PORT = 0x500
POWER_OFF_PORT = 0x504
PARAMS = 0x9000


def build_rom(tmp, cc):
    obj = os.path.join(tmp, 'bootrom.o')
    rom = os.path.join(tmp, 'bootrom.bin')
    subprocess.check_call([cc, '-c', '-o', obj, os.path.join(HERE, 'bootrom.S')])
    subprocess.check_call(['ld', '-T', os.path.join(HERE, 'bootrom.ld'), '-o', rom, obj])
    if os.path.getsize(rom) != 0x10000:
        sys.exit('bootrom is %d bytes, expected 65536' % os.path.getsize(rom))
    return rom


def elf_entry(path):
    with open(path, 'rb') as f:
        hdr = f.read(32)
    if hdr[:4] != b'\x7fELF' or hdr[4] != 2:
        sys.exit('%s: not an ELF64 file' % path)
    return int.from_bytes(hdr[24:32], 'little')


def hmp(sock_path, cmd):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock_path)
    s.settimeout(2)
    buf = b''
    try:
        while b'(qemu)' not in buf:
            buf += s.recv(4096)
        s.sendall(cmd.encode() + b'\n')
        buf = b''
        while buf.count(b'(qemu)') < 1:
            buf += s.recv(4096)
    except socket.timeout:
        pass
    s.close()
    text = re.sub(r'\x1b\[[0-9;]*[A-Za-z]', '', buf.decode(errors='replace'))
    return '\n'.join(l for l in text.splitlines() if l.strip() and cmd not in l
                     and not l.startswith('(qemu)'))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('elf')
    ap.add_argument('--smp', type=int, default=1)
    ap.add_argument('--mem', type=int, default=16, help='MiB')
    ap.add_argument('--timeout', type=float, default=10)
    ap.add_argument('--poke', action='append', default=[], help='ADDR=VALUE (64-bit)')
    ap.add_argument('--peek', action='append', default=[], help='ADDR: print 2 quadwords')
    ap.add_argument('--peek-after', type=float, default=1.0)
    ap.add_argument('--io', action='store_true', help='list other port/MMIO accesses')
    ap.add_argument('--cc', default=os.environ.get('CC', 'cc'))
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix='guest-qemu-')
    rom = build_rom(tmp, args.cc)
    serial = os.path.join(tmp, 'serial.txt')
    trace = os.path.join(tmp, 'trace.txt')
    mon = os.path.join(tmp, 'mon.sock')
    ram = args.mem << 20

    def data(addr, val):
        return ['-device', 'loader,addr=%#x,data=%#x,data-len=8' % (addr, val)]

    cmd = ['qemu-system-x86_64', '-accel', 'tcg,thread=multi', '-M', 'pc',
           '-cpu', 'max', '-smp', str(args.smp), '-m', '%dM' % args.mem,
           '-bios', rom, '-display', 'none', '-no-reboot', '-nodefaults',
           '-serial', 'file:' + serial,
           '-device', 'isa-debug-exit,iobase=%#x,iosize=4' % POWER_OFF_PORT,
           '-device', 'loader,file=' + os.path.abspath(args.elf),
           '-trace', 'memory_region_ops_write', '-trace', 'memory_region_ops_read', '-d', 'cpu_reset,guest_errors', '-D', trace,
           '-monitor', 'unix:%s,server=on,wait=off' % mon]
    cmd += data(PARAMS, elf_entry(args.elf))
    cmd += data(PARAMS + 8, args.smp)
    cmd += data(PARAMS + 16, ram)
    for p in args.poke:
        a, v = p.split('=')
        cmd += data(int(a, 0), int(v, 0))

    proc = subprocess.Popen(cmd)
    peeks = []
    ended = None
    if args.peek:
        time.sleep(args.peek_after)
        if proc.poll() is None:
            for a in args.peek:
                peeks.append(hmp(mon, 'xp /2gx %#x' % int(a, 0)))
            time.sleep(args.peek_after)
            for a in args.peek:
                peeks.append(hmp(mon, 'xp /2gx %#x' % int(a, 0)))
    try:
        rc = proc.wait(timeout=args.timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        rc = None
        ended = 'timeout (still running after %gs)' % args.timeout

    with open(serial, errors='replace') as f:
        out = f.read()
    with open(trace, errors='replace') as f:
        log = f.read()
    reports = []
    status = None
    other = []
    pat = (r"memory_region_ops_(read|write) cpu (-?\d+) mr \S+ addr 0x([0-9a-f]+) "
           r"value 0x([0-9a-f]+) size (\d+) name '([^']*)'")
    for m in re.finditer(pat, log):
        op, cpu, addr, val, size, name = m.groups()
        addr, val = int(addr, 16), int(val, 16)
        if op == 'write' and name == 'io' and addr == REPORT_PORT:
            reports.append(val)
        elif op == 'write' and name == 'isa-debug-exit' and status is None:
            status = val
        elif name != 'serial' and int(cpu) >= 0 and not name.startswith('apic'):
            other.append('cpu%s %-5s %-16s %#x size %s value %#x'
                         % (cpu, op, name, addr, size, val))
    if ended is None:
        if status is not None:
            ended = 'power off, status %#x' % status
        elif 'Triple fault' in log or 'triple fault' in log:
            ended = 'triple fault (shutdown)'
        else:
            ended = 'qemu exited with %s' % rc

    sys.stdout.write('--- uart ---\n%s' % out)
    if out and not out.endswith('\n'):
        sys.stdout.write('\n')
    print('--- reports (%d) ---' % len(reports))
    print(' '.join('%#x' % v for v in reports))
    if args.io:
        print('--- other I/O (%d) ---' % len(other))
        print('\n'.join(other))
    for p in peeks:
        print('--- peek ---\n' + p)
    print('--- end: %s ---' % ended)
    if os.environ.get('GUEST_QEMU_KEEP'):
        print('logs in', tmp)
    else:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    main()
