#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""QEMU's own migration to a file, the baseline of bench-snapshot.

usage: qemu_snapshot.py QEMU BOOTROM GUEST_ELF MEM_MIB REPS [--accel kvm|tcg]

The same guest as bench-snapshot (snap_loop.elf, TIMERS mode, one vCPU)
booted by QEMU with the kit's stand-in firmware (tests/guest/qemu/bootrom.S,
the guest's entry state as kvmkit gives it), `-M microvm`, in two variants:
  fresh   RAM as the guest left it (a few MiB used)
  filled  every page from 16 MiB to the end non-zero: RAM is a private
          mapping of a file filled with 0xa5 from 16 MiB
          (memory-backend-file, share=off), as bench-snapshot's host fill
Per variant the guest runs until its loop counter moves, is stopped (QMP
`stop`) and migrated to a file (`migrate "exec:cat > FILE"`, max-bandwidth
unlimited): snap_ms is from the migrate command to `completed` (QMP
polling every 1 ms), file_mib the file's size. Then REPS times QEMU is
started again with `-incoming "exec:cat FILE"` and watched through QMP
until the guest's loop counter (read with HMP `xp`) changes: first_ms is
from just before the exec to that change, restore_ms from the exec to the
incoming migration done (QMP `query-status` "paused": the source was
stopped, so QEMU keeps the destination paused) and `cont` sent.

prints per variant:
  RESULT qemu-migrate <variant> mem_mib=.. snap_ms=.. file_mib=..
         first_ms=.. first_min_ms=.. first_max_ms=.. restore_ms=.. accel=..
"""

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

MIB = 1 << 20
COUNTER = 0x230100  # GUEST_SNAP_CPU(0) + GUEST_SNAP_COUNTER (guest_abi.h)
ENTRY = 0x100000
WAIT_S = 60.0


class Qmp:
    """A minimal QMP client: one command at a time, events skipped."""

    def __init__(self, path, deadline):
        while True:
            try:
                self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.s.connect(path)
                break
            except OSError:
                self.s.close()
                if time.monotonic() > deadline:
                    raise RuntimeError("QMP socket never came up")
                time.sleep(0.0005)
        self.f = self.s.makefile("rwb", buffering=0)
        self._read()  # greeting
        self.cmd("qmp_capabilities")

    def _read(self):
        while True:
            line = self.f.readline()
            if not line:
                raise RuntimeError("QMP connection closed")
            msg = json.loads(line)
            if "event" not in msg:
                return msg

    def cmd(self, name, **args):
        req = {"execute": name}
        if args:
            req["arguments"] = args
        self.f.write(json.dumps(req).encode() + b"\n")
        msg = self._read()
        if "error" in msg:
            raise RuntimeError(f"{name}: {msg['error']}")
        return msg["return"]

    def counter(self):
        out = self.cmd("human-monitor-command", **{"command-line": f"xp /1gx {COUNTER:#x}"})
        # "0000000000230100: 0x000000000001e240"
        return int(out.split(":")[1].split()[0], 16)

    def close(self):
        self.s.close()


def qemu_cmd(qemu, bootrom, elf, mem_mib, accel, qmp_path, backing):
    cmd = [qemu, "-accel", accel, "-M", "microvm", "-m", f"{mem_mib}M", "-smp", "1",
           "-display", "none", "-nodefaults", "-no-reboot", "-bios", bootrom,
           "-device", f"loader,file={elf}",
           "-device", f"loader,addr=0x9000,data={ENTRY:#x},data-len=8",
           "-device", "loader,addr=0x9008,data=1,data-len=8",
           "-device", f"loader,addr=0x9010,data={mem_mib * MIB},data-len=8",
           "-qmp", f"unix:{qmp_path},server=on,wait=off"]
    if accel == "kvm":
        cmd[3:3] = ["-cpu", "host"]
    if backing:
        cmd += ["-object", f"memory-backend-file,id=ram,size={mem_mib}M,mem-path={backing},share=off",
                "-machine", "memory-backend=ram"]
    return cmd


def fill_file(path, mem):
    """A file of MEM bytes: zeros below 16 MiB, 0xa5 above."""
    chunk = b"\xa5" * (16 * MIB)
    with open(path, "wb") as f:
        f.truncate(mem)
        f.seek(16 * MIB)
        left = mem - 16 * MIB
        while left > 0:
            n = min(left, len(chunk))
            f.write(chunk[:n])
            left -= n


def end(proc):
    """Waits for a QEMU told to quit; kills one that did not get there."""
    try:
        proc.wait(timeout=WAIT_S if proc.poll() is None else 0)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def drop(path):
    """QEMU removes its socket when it quits; gone either way."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def wait_moved(q, before, deadline):
    while q.counter() == before:
        if time.monotonic() > deadline:
            raise RuntimeError("the guest does not run")


def variant(qemu, bootrom, elf, mem_mib, reps, accel, filled, tmp):
    qmp_path = os.path.join(tmp, "qmp.sock")
    mig = os.path.join(tmp, "migration")
    backing = None
    if filled:
        backing = os.path.join(tmp, "ram")
        fill_file(backing, mem_mib * MIB)
    src = subprocess.Popen(qemu_cmd(qemu, bootrom, elf, mem_mib, accel, qmp_path, backing),
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    try:
        q = Qmp(qmp_path, time.monotonic() + WAIT_S)
        deadline = time.monotonic() + WAIT_S
        wait_moved(q, 0, deadline)
        q.cmd("stop")
        q.cmd("migrate-set-parameters", **{"max-bandwidth": 1 << 62})
        t0 = time.monotonic()
        q.cmd("migrate", uri=f"exec:cat > {mig}")
        while True:
            st = q.cmd("query-migrate").get("status")
            if st == "completed":
                break
            if st in ("failed", "cancelled"):
                raise RuntimeError(f"migration {st}")
            if time.monotonic() > t0 + 10 * WAIT_S:
                raise RuntimeError("migration does not end")
            time.sleep(0.001)
        snap = time.monotonic() - t0
        q.cmd("quit")
        q.close()
    finally:
        end(src)
    drop(qmp_path)
    file_mib = os.stat(mig).st_blocks * 512 / MIB

    first, restore = [], []
    for _ in range(reps):
        cmd = qemu_cmd(qemu, bootrom, elf, mem_mib, accel, qmp_path, backing)
        cmd += ["-incoming", f"exec:cat {mig}"]
        t0 = time.monotonic()
        dst = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        try:
            q = Qmp(qmp_path, t0 + WAIT_S)
            # The source was stopped, so the incoming VM stays paused
            # ("inmigrate" while loading, then "paused"): continue it.
            while q.cmd("query-status").get("status") != "paused":
                if time.monotonic() > t0 + WAIT_S:
                    raise RuntimeError("the incoming migration never ends")
                time.sleep(0.0005)
            saved = q.counter()
            q.cmd("cont")
            restore.append(time.monotonic() - t0)
            wait_moved(q, saved, t0 + WAIT_S)
            first.append(time.monotonic() - t0)
            q.cmd("quit")
            q.close()
        finally:
            end(dst)
        drop(qmp_path)
    os.unlink(mig)
    if backing:
        os.unlink(backing)
    first.sort()
    print(f"RESULT qemu-migrate {'filled' if filled else 'fresh'} mem_mib={mem_mib} "
          f"snap_ms={snap * 1e3:.2f} file_mib={file_mib:.1f} "
          f"first_ms={statistics.median(first) * 1e3:.2f} first_min_ms={first[0] * 1e3:.2f} "
          f"first_max_ms={first[-1] * 1e3:.2f} "
          f"restore_ms={statistics.median(restore) * 1e3:.2f} accel={accel}", flush=True)


def main():
    args = sys.argv[1:]
    accel = "kvm"
    if "--accel" in args:
        i = args.index("--accel")
        accel = args[i + 1]
        del args[i:i + 2]
    if len(args) != 5:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    qemu, bootrom, elf, mem_mib, reps = args[0], args[1], args[2], int(args[3]), int(args[4])
    tmpbase = os.environ.get("TMPDIR", "/var/tmp")
    with tempfile.TemporaryDirectory(prefix="kvmkit-bench-qemu-", dir=tmpbase) as tmp:
        for filled in (False, True):
            variant(qemu, bootrom, elf, mem_mib, reps, accel, filled, tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
