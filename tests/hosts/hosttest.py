#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Helpers for the 'hosts' meson suite.

  hosttest.py expect [--status N] [--output TEXT]... [--stderr TEXT]... -- CMD...
      Runs CMD, echoes its output, and passes (exit 0) only if CMD exited
      with status N (default 0) and its stdout/stderr contain each TEXT.
  hosttest.py missing TOOL HINT
      For a test that cannot run because TOOL is missing: fails (exit 1)
      saying so, or skips (77) if KVMKIT_HOSTS_SKIP_MISSING=1.
"""

import argparse
import subprocess
import sys


def expect(args):
    if not args.command:
        print('hosttest: no command', file=sys.stderr)
        return 2
    proc = subprocess.run(args.command, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    out = proc.stdout.decode('utf-8', 'replace')
    err = proc.stderr.decode('utf-8', 'replace')
    sys.stdout.write(out)
    sys.stderr.write(err)
    ok = True
    if proc.returncode != args.status:
        print('hosttest: FAIL: exit status %d, expected %d'
              % (proc.returncode, args.status))
        ok = False
    for text in args.output:
        if text not in out:
            print('hosttest: FAIL: stdout lacks %r' % text)
            ok = False
    for text in args.stderr:
        if text not in err:
            print('hosttest: FAIL: stderr lacks %r' % text)
            ok = False
    if ok:
        print('hosttest: ok: exit status %d as expected' % args.status)
    return 0 if ok else 1


def missing(args):
    import os
    msg = '%s not found; install: %s' % (args.tool, args.hint)
    if os.environ.get('KVMKIT_HOSTS_SKIP_MISSING') == '1':
        print('skipped: ' + msg)
        return 77
    print('hosttest: FAIL: cannot run this test: ' + msg
          + ' (set KVMKIT_HOSTS_SKIP_MISSING=1 to skip instead)')
    return 1


def main():
    ap = argparse.ArgumentParser(prog='hosttest.py')
    sub = ap.add_subparsers(dest='what', required=True)
    e = sub.add_parser('expect')
    e.add_argument('--status', type=int, default=0)
    e.add_argument('--output', action='append', default=[])
    e.add_argument('--stderr', action='append', default=[])
    e.add_argument('command', nargs=argparse.REMAINDER)
    m = sub.add_parser('missing')
    m.add_argument('tool')
    m.add_argument('hint')
    args = ap.parse_args()
    if args.what == 'expect':
        if args.command and args.command[0] == '--':
            args.command = args.command[1:]
        return expect(args)
    return missing(args)


if __name__ == '__main__':
    sys.exit(main())
