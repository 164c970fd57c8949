#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Unit tests of kvmkit-host's own pieces (no QEMU, no downloads)."""

import contextlib
import importlib.machinery
import importlib.util
import io
import lzma
import os
import shutil
import stat
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree


def load_runner():
    loader = importlib.machinery.SourceFileLoader(
        'kvmkit_host', os.path.join(HERE, 'kvmkit-host'))
    spec = importlib.util.spec_from_loader('kvmkit_host', loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


kh = load_runner()


def parse_cpio(blob):
    """Minimal newc reader: list of (name, mode, data, rdevmajor, rdevminor)
    for every archive in blob (archives may be concatenated)."""
    out, pos = [], 0
    while pos < len(blob):
        if blob[pos:pos + 6] != b'070701':
            raise AssertionError('bad magic at %d: %r' % (pos,
                                                          blob[pos:pos + 6]))
        f = [int(blob[pos + 6 + 8 * i:pos + 14 + 8 * i], 16)
             for i in range(13)]
        mode, size, rmaj, rmin, namesize = f[1], f[6], f[9], f[10], f[11]
        name_start = pos + 110
        name = blob[name_start:name_start + namesize - 1].decode()
        assert blob[name_start + namesize - 1] == 0
        data_start = name_start + namesize
        data_start += -data_start % 4
        data = blob[data_start:data_start + size]
        pos = data_start + size
        pos += -pos % 4
        out.append((name, mode, data, rmaj, rmin))
    return out


class CpioTest(unittest.TestCase):
    def test_roundtrip(self):
        t = kh.Tree()
        t.add_data('/a/b/file', b'hello', 0o640)
        t.add_link('/a/link', 'b/file')
        t.add_dev('/dev/console', stat.S_IFCHR | 0o600, 5, 1)
        t.add_dir('/tmp', 0o1777)
        buf = io.BytesIO()
        t.cpio(buf)
        self.assertEqual(len(buf.getvalue()) % 4, 0)
        ents = {e[0]: e for e in parse_cpio(buf.getvalue())}
        self.assertIn('TRAILER!!!', ents)
        self.assertEqual(ents['a/b/file'][2], b'hello')
        self.assertEqual(ents['a/b/file'][1], stat.S_IFREG | 0o640)
        self.assertTrue(stat.S_ISDIR(ents['a'][1]))
        self.assertTrue(stat.S_ISDIR(ents['a/b'][1]))
        self.assertEqual(ents['a/link'][2], b'b/file')
        self.assertTrue(stat.S_ISLNK(ents['a/link'][1]))
        self.assertEqual(ents['dev/console'][3:], (5, 1))
        self.assertEqual(stat.S_IMODE(ents['tmp'][1]), 0o1777)
        names = [e[0] for e in parse_cpio(buf.getvalue())]
        self.assertLess(names.index('a'), names.index('a/b/file'))

    def test_cpio_tool_agrees(self):
        if not shutil.which('cpio'):
            self.skipTest('no cpio tool')
        import subprocess
        t = kh.Tree()
        t.add_data('/x/y', b'data' * 100)
        t.add_link('/x/z', 'y')
        buf = io.BytesIO()
        t.cpio(buf)
        res = subprocess.run(['cpio', '-it', '--quiet'], input=buf.getvalue(),
                             stdout=subprocess.PIPE, check=True)
        self.assertEqual(sorted(res.stdout.decode().split()),
                         ['x', 'x/y', 'x/z'])


class TreeTest(unittest.TestCase):
    def setUp(self):
        self.tmp = os.path.realpath(tempfile.mkdtemp())

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def p(self, *parts):
        return os.path.join(self.tmp, *parts)

    def test_symlinked_parent_reproduced(self):
        os.makedirs(self.p('real', 'lib'))
        with open(self.p('real', 'lib', 'f'), 'w') as f:
            f.write('x')
        os.symlink('real', self.p('lnk'))
        t = kh.Tree()
        t.add_host_path(self.p('lnk', 'lib', 'f'), 62)
        self.assertEqual(t.entries[self.p('lnk')], ('link', 'real'))
        self.assertEqual(t.entries[self.p('real', 'lib', 'f')][0], 'file')
        self.assertEqual(t.resolve(self.p('lnk', 'lib', 'f')),
                         self.p('real', 'lib', 'f'))

    def test_directory_recursive_with_links(self):
        os.makedirs(self.p('d', 'sub'))
        with open(self.p('d', 'sub', 'g'), 'w') as f:
            f.write('y')
        os.symlink('sub/g', self.p('d', 'ln'))
        os.symlink('/nonexistent/target', self.p('d', 'dangling'))
        t = kh.Tree()
        t.add_host_path(self.p('d'), 62)
        self.assertEqual(t.entries[self.p('d', 'sub', 'g')][0], 'file')
        self.assertEqual(t.entries[self.p('d', 'ln')], ('link', 'sub/g'))
        self.assertEqual(t.entries[self.p('d', 'dangling')][0], 'link')

    def test_reserved_and_missing(self):
        t = kh.Tree()
        with self.assertRaises(kh.HostError):
            t.add_host_path('/proc/self/status', 62)
        with self.assertRaises(kh.HostError):
            t.add_host_path(self.p('does-not-exist'), 62)

    def test_dynamic_elf_brings_libraries(self):
        exe = shutil.which('ls')
        info = kh.elf_info(os.path.realpath(exe)) if exe else None
        if not info or not info.interp or not shutil.which('ldd'):
            self.skipTest('no dynamically linked ls/ldd here')
        t = kh.Tree()
        t.add_host_path(exe, info.machine)
        files = [p for p, e in t.entries.items() if e[0] == 'file']
        self.assertTrue(any('libc.so' in p for p in files), files)
        self.assertTrue(any(os.path.basename(p).startswith('ld-') or
                            'ld-linux' in p for p in t.entries), files)

    def test_static_busybox_detected(self):
        bb = '/bin/busybox'
        info = kh.elf_info(bb) if os.path.exists(bb) else None
        if info is None:
            self.skipTest('no busybox')
        self.assertIsNotNone(info.machine)
        self.assertIsNone(kh.elf_info(__file__))


class ModuleTest(unittest.TestCase):
    def test_depends_and_closure(self):
        tmp = tempfile.mkdtemp()
        try:
            d = os.path.join(tmp, 'lib', 'modules', '1.0', 'kernel')
            os.makedirs(d)
            mods = {'a-b': b'\0license=GPL\0depends=c,d\0',
                    'c': b'\0depends=d\0', 'd': b'\0depends=\0'}
            for name, body in mods.items():
                data = b'\x7fELF' + body
                if name == 'c':
                    with open(os.path.join(d, name + '.ko.xz'), 'wb') as f:
                        f.write(lzma.compress(data))
                else:
                    with open(os.path.join(d, name + '.ko'), 'wb') as f:
                        f.write(data)
            index = kh.module_index(tmp)
            order = kh.module_closure(index, ['a-b'])
            self.assertEqual([n for n, _ in order], ['d', 'c', 'a_b'])
            self.assertTrue(order[1][1].startswith(b'\x7fELF'))
            with self.assertRaises(kh.HostError):
                kh.module_closure(index, ['nope'])
        finally:
            shutil.rmtree(tmp)


class ConsoleTest(unittest.TestCase):
    def run_console(self, chunks, nonce='0' * 32):
        con = kh.Console(nonce)
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            for c in chunks:
                con.feed(c)
            con.flush()
        return con, buf.getvalue()

    def test_markers(self):
        n = 'ab' * 16
        con, out = self.run_console([
            b'boot noise\r\n',
            ('KVMKIT-HOST-INIT %s\r\n' % n).encode(),
            ('KVMKIT-HOST-READY %s\r\n' % n).encode(),
            b'line one\r\nno newline',
            ('KVMKIT-HOST-EXIT %s 3\r\n' % n).encode(),
            b'after\r\n'], n)
        self.assertEqual(con.status, 3)
        self.assertEqual(out, 'line one\nno newline\n')
        # Console lines outside the command go to the host log, not stdout.
        self.assertEqual(con.boot_log, ['boot noise', 'after'])

    def test_forged_marker_ignored(self):
        n = 'cd' * 16
        con, out = self.run_console([
            ('KVMKIT-HOST-INIT %s\n' % n).encode(),
            ('KVMKIT-HOST-READY %s\n' % n).encode(),
            ('KVMKIT-HOST-EXIT %s 0\n' % ('ef' * 16)).encode(),
            ('KVMKIT-HOST-EXIT %s 7\n' % n).encode()], n)
        self.assertEqual(con.status, 7)
        self.assertIn('KVMKIT-HOST-EXIT ' + 'ef' * 16, out)

    def test_exit_before_ready_ignored(self):
        n = '12' * 16
        con, _ = self.run_console([
            ('KVMKIT-HOST-INIT %s\n' % n).encode(),
            ('KVMKIT-HOST-EXIT %s 0\n' % n).encode(),
            ('KVMKIT-HOST-FAIL %s insmod kvm failed\n' % n).encode()], n)
        self.assertIsNone(con.status)
        self.assertEqual(con.fail, 'insmod kvm failed')

    def test_heartbeat_cutting_a_line(self):
        # The heartbeat comes through printk and may land in the middle
        # of a line the command is writing: it is hidden and the line is
        # joined again.
        n = '34' * 16
        con, out = self.run_console([
            ('KVMKIT-HOST-INIT %s\n' % n).encode(),
            ('KVMKIT-HOST-READY %s\n' % n).encode(),
            ('ok: fir[   12.345678] KVMKIT-HOST-BEAT %s\r\n' % n).encode(),
            b'st line\r\n',
            ('[  22.000001] KVMKIT-HOST-BEAT %s\r\n' % n).encode(),
            b'second\r\n',
            ('KVMKIT-HOST-EXIT %s 0\n' % n).encode()], n)
        self.assertEqual(con.status, 0)
        self.assertEqual(out, 'ok: first line\nsecond\n')
        self.assertIsNotNone(con.beat_at)

    def test_panic_noticed(self):
        con, _ = self.run_console([b'Kernel panic - not syncing: boom\n'])
        self.assertIn('boom', con.panic)


class CliTest(unittest.TestCase):
    def test_missing_qemu_fails(self):
        env_old = os.environ.pop('KVMKIT_HOSTS_SKIP_MISSING', None)
        try:
            with contextlib.redirect_stderr(io.StringIO()) as err:
                rc = kh.main(['--arch', 'arm64', '--qemu',
                              '/nonexistent/qemu', '--', 'true'])
            self.assertEqual(rc, kh.EXIT_INFRA)
            self.assertIn('not found', err.getvalue())
            os.environ['KVMKIT_HOSTS_SKIP_MISSING'] = '1'
            with contextlib.redirect_stderr(io.StringIO()):
                rc = kh.main(['--arch', 'arm64', '--qemu',
                              '/nonexistent/qemu', '--', 'true'])
            self.assertEqual(rc, kh.EXIT_SKIP)
        finally:
            os.environ.pop('KVMKIT_HOSTS_SKIP_MISSING', None)
            if env_old is not None:
                os.environ['KVMKIT_HOSTS_SKIP_MISSING'] = env_old


if __name__ == '__main__':
    unittest.main(verbosity=2)
