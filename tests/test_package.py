"""The Debian package: it builds, holds what it should, passes lintian,
and what it installs works.

Building takes a while (about 20 s here), so the package is built only when
OMIKEYFS_TEST_PACKAGE=1 or OMIKEYFS_TEST_DIST=1 (tests/all.sh sets the
latter for its first run); the version check always runs.
"""
import os
import re
import shutil
import subprocess

import pytest

from conftest import BIN, ROOT, run
import test_units

EXPECTED = {
    "usr/bin/omikeyfs",
    "usr/sbin/mount.omikeyfs",
    "usr/libexec/omikeyfs/omikeyfs-backup",
    "usr/share/man/man1/omikeyfs.1.gz",
    "usr/share/man/man8/mount.omikeyfs.8.gz",
    "lib/systemd/system/omikeyfs@.service",
    "lib/systemd/system/omikeyfs-backup.service",
    "lib/systemd/system/omikeyfs-backup.timer",
    "usr/lib/systemd/user/omikeyfs.service",
    "usr/share/doc/omikeyfs/README.md.gz",
    "usr/share/doc/omikeyfs/copyright",
    "usr/share/doc/omikeyfs/changelog.gz",
    "usr/share/doc/omikeyfs/examples/omikeyfs.env.example",
}


def changelog_version():
    with open(os.path.join(ROOT, "debian", "changelog")) as f:
        return re.match(r"omikeyfs \(([^)]+)\)", f.readline()).group(1)


def meson_version():
    with open(os.path.join(ROOT, "meson.build")) as f:
        return re.search(r"project\('omikeyfs'.*?version: '([^']+)'", f.read(), re.S).group(1)


def binary_version(binary):
    out = run(binary, "--version").stdout
    return re.match(r"omikeyfs (\S+)", out).group(1)


def test_version_in_one_place():
    assert changelog_version() == meson_version() == binary_version(BIN)


@pytest.fixture(scope="module")
def deb(request):
    """(path of the .deb, the directory it was built in, its dpkg -x root)."""
    if not (os.environ.get("OMIKEYFS_TEST_PACKAGE") == "1"
            or os.environ.get("OMIKEYFS_TEST_DIST") == "1"):
        pytest.skip("slow: set OMIKEYFS_TEST_PACKAGE=1 to build the package")
    path, top = request.getfixturevalue("package_deb")
    root = os.path.join(top, "root")
    if not os.path.isdir(root):
        assert run("dpkg", "-x", path, root).returncode == 0
    return path, top, root


def test_package_files(deb):
    path, _, _ = deb
    out = subprocess.run("dpkg-deb --fsys-tarfile '%s' | tar -t" % path, shell=True,
                         capture_output=True, text=True, check=True).stdout
    files = {n[2:].rstrip("/") for n in out.split() if n not in ("./",)}
    assert EXPECTED <= files, EXPECTED - files
    # Everything else is a directory on the way to one of them.
    unexpected = {f for f in files if not any(e == f or e.startswith(f + "/") for e in EXPECTED)}
    assert not unexpected, unexpected


def test_package_fields(deb):
    path, _, root = deb
    fields = dict(line.split(": ", 1) for line in
                  run("dpkg-deb", "-f", path, "Package", "Version", "Depends",
                      "Recommends").stdout.splitlines())
    assert fields["Version"] == binary_version(os.path.join(root, "usr/bin/omikeyfs"))
    assert fields["Version"] == meson_version()
    depends = [d.strip().split()[0] for d in fields["Depends"].split(",")]
    assert "fuse3" in depends and "libfuse3-3" in depends
    assert fields["Recommends"] == "rsync"
    mode = os.stat(os.path.join(root, "usr/sbin/mount.omikeyfs")).st_mode
    assert mode & 0o777 == 0o755


def test_lintian_reports_no_errors(deb):
    if not shutil.which("lintian"):
        pytest.skip("lintian not installed")
    _, top, _ = deb
    changes = [p for p in os.listdir(top) if p.endswith(".changes")]
    r = run("lintian", os.path.join(top, changes[0]), timeout=300)
    errors = [line for line in r.stdout.splitlines() if line.startswith("E:")]
    assert not errors, r.stdout


def test_package_units_verify(deb, tmp_path):
    _, _, root = deb
    test_units.verify_units(root, test_units.SYSTEM_UNITS, test_units.USER_UNITS, tmp_path)


def test_package_mount_helper(deb, api, tmp_path):
    _, _, root = deb
    test_units.check_mount_helper(os.path.join(root, "usr/sbin/mount.omikeyfs"), api, tmp_path)
