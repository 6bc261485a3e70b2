"""The package's units run by a real systemd.

A Debian 12 root (debootstrap --variant=minbase, plus systemd, dbus and
libpam-systemd) is made once and kept as a tarball under
~/.cache/omikeyfs-tests, named by a hash of what goes in it; the package's
dependencies are downloaded into it then, so later runs need no mirror.
Each run unpacks a fresh copy, installs the .deb built from the work tree
with apt (its Depends bring the rest), boots it with systemd-nspawn, and
drives the units with systemctl and journalctl through nsenter.  The
container shares the host's network: the fake API and the Firebase Auth
Emulator on the host's loopback are the ones it talks to.  Files are read
through /proc/PID1/root, the container's view of its mounts.

Slow (a boot, a package build): it runs when OMIKEYFS_TEST_DIST=1 (the
first pass of tests/all.sh) or OMIKEYFS_TEST_BOOT=1.  It runs once: the
package is built from the sources whatever binary the suite tests, so the
ASan pass would test the same .deb again.  There, and with
OMIKEYFS_NEED_EMULATOR=1 or OMIKEYFS_NEED_SYSTEMD=1, a machine that cannot
boot the root fails the test; elsewhere it skips, saying why.
OMIKEYFS_BOOT_DEB=PATH installs that .deb instead of building one (an
older build, to see a test fail); OMIKEYFS_SECURITY_LOG=FILE gets the whole
systemd-analyze security tables.
"""
import hashlib
import inspect
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import time

import pytest

from conftest import (INSTALL_CACHE, TOKEN, expected_files, make_keys, run, tree, wait_for)

SUITE = "bookworm"
MIRROR = os.environ.get("OMIKEYFS_DEBIAN_MIRROR", "http://deb.debian.org/debian")
# What the root gets besides minbase: an init, the bus loginctl and
# systemctl --user need, and the PAM module that starts user managers.
PACKAGES = ["systemd", "systemd-sysv", "dbus", "libpam-systemd"]
CACHE = os.path.join(INSTALL_CACHE, "omikeyfs-tests")

MNT = "/mnt/omi-keys"
INSTANCE = r"mnt-omi\x2dkeys"  # systemd-escape --path /mnt/omi-keys
UNIT = "omikeyfs@%s.service" % INSTANCE
# A path without '-': its instance name has no '\', so what it finds is
# not about escaping.
PLAIN_MNT = "/srv/omikeys"
PLAIN_UNIT = "omikeyfs@srv-omikeys.service"
USER = ("alice", 1500)


def needed():
    return (os.environ.get("OMIKEYFS_NEED_EMULATOR") == "1"
            or os.environ.get("OMIKEYFS_NEED_SYSTEMD") == "1")


def unavailable(why):
    if needed():
        pytest.fail(why)
    pytest.skip(why)


def make_root(root, deps):
    """debootstrap the root and download deps into its apt cache."""
    r = run("debootstrap", "--variant=minbase", "--include=" + ",".join(PACKAGES), SUITE,
            root, MIRROR, timeout=1200)
    if r.returncode != 0:
        unavailable("debootstrap failed: %s" % (r.stdout + r.stderr)[-2000:])
    r = run("chroot", root, "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install",
            "-y", "-q", "--download-only", *deps, timeout=600)
    if r.returncode != 0:
        unavailable("apt-get --download-only in the root failed: %s"
                    % (r.stdout + r.stderr)[-2000:])


def deb_dependencies(deb):
    """The package names of the .deb's Depends and Recommends."""
    names = []
    for field in ("Depends", "Recommends"):
        text = run("dpkg-deb", "-f", deb, field).stdout
        for item in text.split(","):
            if item.strip():
                names.append(item.split("|")[0].split()[0])
    return sorted(set(names))


def cached_root(deb, tmp):
    """A fresh copy of the cached root (made first when missing)."""
    deps = deb_dependencies(deb)
    key = hashlib.sha256(("\n".join([SUITE, MIRROR] + PACKAGES + deps) + "\n"
                          + inspect.getsource(make_root)).encode()).hexdigest()[:16]
    tarball = os.path.join(CACHE, "%s-root-%s.tar" % (SUITE, key))
    if not os.path.exists(tarball):
        os.makedirs(CACHE, exist_ok=True)
        build = tempfile.mkdtemp(prefix="root-", dir=tmp)
        os.chmod(build, 0o755)  # tar keeps it: the root's / for every user
        make_root(build, deps)
        part = tarball + ".part%d" % os.getpid()
        r = run("tar", "-C", build, "--numeric-owner", "--xattrs", "-cf", part, ".",
                timeout=600)
        assert r.returncode == 0, r.stderr
        os.rename(part, tarball)  # whole or not at all
        shutil.rmtree(build)
    root = tempfile.mkdtemp(prefix="root-", dir=tmp)
    r = run("tar", "-C", root, "--numeric-owner", "--xattrs", "-xf", tarball, timeout=600)
    assert r.returncode == 0, r.stderr
    os.chmod(root, 0o755)
    return root


class Machine:
    """A booted root: sh() runs a command inside it (nsenter into all of
    PID 1's namespaces), path() is a host path to a file in its view."""

    def __init__(self, root, log, fuse):
        self.root = root
        self.log_path = log
        self.log = open(log, "wb")
        self.proc = subprocess.Popen(
            ["systemd-nspawn", "--quiet", "--boot", "--register=no", "--keep-unit",
             "--bind=%s:/dev/fuse" % fuse, "--directory", root],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True)
        self.pid1 = None
        try:
            # Its PID 1 is the child of systemd-nspawn that runs systemd.
            self.pid1 = wait_for(self.find_pid1, timeout=60, what="the container's PID 1")
        except AssertionError:
            self.stop()
            unavailable("systemd-nspawn did not boot the root: %s" % self.output())

    def find_pid1(self):
        if self.proc.poll() is not None:
            return None
        with open("/proc/%d/task/%d/children" % (self.proc.pid, self.proc.pid)) as f:
            for pid in f.read().split():
                with open("/proc/%s/comm" % pid) as c:
                    if c.read().strip() == "systemd":
                        return int(pid)
        return None

    def output(self):
        with open(self.log_path, "rb") as f:
            return f.read()[-3000:].decode(errors="replace")

    def sh(self, *argv, user=None, timeout=120):
        pre = ["nsenter", "-t", str(self.pid1), "-a", "-r", "-w"]
        if user:
            name, uid = user
            pre += ["setpriv", "--reuid=%d" % uid, "--regid=%d" % uid, "--clear-groups",
                    "env", "HOME=/home/" + name, "USER=" + name,
                    "XDG_RUNTIME_DIR=/run/user/%d" % uid]
        return run(*(pre + list(argv)), timeout=timeout)

    def ok(self, *argv, **kw):
        r = self.sh(*argv, **kw)
        assert r.returncode == 0, "%s: %s%s" % (" ".join(argv), r.stdout, r.stderr)
        return r.stdout

    def start(self, unit, user=None):
        """systemctl start; on failure, the unit's journal says why."""
        args = ["systemctl"] + (["--user"] if user else []) + ["start", unit]
        r = self.sh(*args, user=user)
        if r.returncode != 0:
            log = self.sh("journalctl", "--no-pager", "-n", "40",
                          ("_SYSTEMD_USER_UNIT=" if user else "_SYSTEMD_UNIT=") + unit).stdout
            log += self.sh("journalctl", "--no-pager", "-n", "20", "-u", unit).stdout
            raise AssertionError("%s: %s%s\n%s" % (" ".join(args), r.stdout, r.stderr, log))

    def path(self, p):
        return "/proc/%d/root%s" % (self.pid1, p)

    def show(self, unit, prop, user=None):
        args = ["systemctl"] + (["--user"] if user else []) + ["show", "-P", prop, unit]
        return self.ok(*args, user=user).strip()

    def mounted(self, p):
        with open("/proc/%d/mountinfo" % self.pid1) as f:
            return any(line.split()[4] == p for line in f)

    def cursor(self):
        out = self.ok("journalctl", "-n0", "--show-cursor", "--no-pager")
        return re.search(r"-- cursor: (\S+)", out).group(1)

    def journal(self, cursor, unit, max_priority=7, user=False):
        """The unit's journal lines since cursor (its own and systemd's
        about it) at max_priority or worse, as (priority, identifier,
        message).  Filtered here: journalctl 252 combines --after-cursor
        with some matches (-t, -p) wrongly."""
        self.ok("journalctl", "--sync")
        out = self.ok("journalctl", "--after-cursor=" + cursor, "--no-pager", "-o", "json")
        keys = ("_SYSTEMD_USER_UNIT", "USER_UNIT") if user else ("_SYSTEMD_UNIT", "UNIT")
        lines = []
        for raw in out.splitlines():
            e = json.loads(raw)
            if unit in [e.get(k) for k in keys] and int(e.get("PRIORITY", 6)) <= max_priority:
                lines.append((int(e.get("PRIORITY", 6)), e.get("SYSLOG_IDENTIFIER"),
                              e.get("MESSAGE")))
        return lines

    def stop(self):
        if self.proc.poll() is None:
            # systemd-nspawn asks PID 1 to power off on SIGTERM.
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def write(path, text, mode=0o644, owner=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    if owner:
        os.chown(path, owner, owner)


def expected_tree(keys):
    return {k["id"]: expected_files(k) for k in keys}


@pytest.fixture(scope="module")
def machine(request, tmp_path_factory, api_server):
    if not (os.environ.get("OMIKEYFS_TEST_DIST") == "1"
            or os.environ.get("OMIKEYFS_TEST_BOOT") == "1"):
        pytest.skip("slow, and the same for every build (it tests the .deb built from the "
                    "sources): runs with OMIKEYFS_TEST_DIST=1, tests/all.sh's first pass, "
                    "or OMIKEYFS_TEST_BOOT=1")
    if os.geteuid() != 0:
        unavailable("booting a container needs root")
    for tool in ("systemd-nspawn", "debootstrap", "nsenter", "dpkg-deb"):
        if not shutil.which(tool):
            unavailable("%s not installed (tests/deps.sh installs it)" % tool)
    if not os.path.exists("/dev/fuse"):
        unavailable("no /dev/fuse")
    # The emulator and its fake API, for the user unit's test, are started
    # before the container boots; without them that test alone skips.  (One
    # started while the container runs survives it too; the dropped
    # connections once seen here match firebase-tools' logging emulator
    # losing its port to another run's: see start_firebase_emulator.)
    try:
        request.getfixturevalue("auth_api_server")
    except pytest.skip.Exception:
        pass
    deb = os.environ.get("OMIKEYFS_BOOT_DEB") or request.getfixturevalue("package_deb")[0]
    tmp = str(tmp_path_factory.mktemp("boot"))
    root = cached_root(deb, tmp)

    shutil.copy(deb, os.path.join(root, "tmp", "omikeyfs.deb"))
    # Its dependencies come from the root's apt cache (apt's --no-download
    # refuses a .deb given by path).
    r = run("chroot", root, "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install",
            "-y", "-q", "/tmp/omikeyfs.deb", timeout=300)
    assert r.returncode == 0, "apt-get install of the .deb: %s%s" % (r.stdout, r.stderr)

    # The README's system mount, and a user who signs in.
    os.makedirs(root + MNT)
    os.makedirs(root + PLAIN_MNT)
    for mnt in (MNT, PLAIN_MNT):
        write("%s/etc/omikeyfs%s.token" % (root, mnt), TOKEN + "\n", 0o600)
        write("%s/etc/omikeyfs%s.env" % (root, mnt), "OMIKEYFS_URL=%s\n" % api_server.url)
    # Shortened from 30 s so that the restart after kill -9 is quick.
    write(root + "/etc/systemd/system/omikeyfs@.service.d/restart.conf",
          "[Service]\nRestartSec=1s\n")
    r = run("chroot", root, "useradd", "-m", "-u", str(USER[1]), "-U", "-s", "/bin/sh",
            USER[0])
    assert r.returncode == 0, r.stderr

    # The host's /dev/fuse, as a node of mode 0666, which Debian's udev
    # gives it and without which no user can mount: a bind mount of the
    # host's own would carry its mode, which may be 0600.
    fuse = os.path.join(tmp, "fuse")
    os.mknod(fuse, stat.S_IFCHR | 0o600, os.stat("/dev/fuse").st_rdev)
    os.chmod(fuse, 0o666)
    m = Machine(root, os.path.join(tmp, "nspawn.log"), fuse)
    try:
        # systemctl needs PID 1's socket before it can wait for anything.
        wait_for(lambda: os.path.exists(m.path("/run/systemd/private")), timeout=60,
                 what="systemd's socket in the container")
        r = m.sh("timeout", "120", "systemctl", "is-system-running", "--wait", timeout=180)
        state = r.stdout.strip()
        if state != "running":
            jobs = m.sh("systemctl", "list-jobs", "--no-pager").stdout
            failed = m.sh("systemctl", "--failed", "--no-legend").stdout
            pytest.fail("the container is %r, not running: %s%s%s\n%s" % (
                state, r.stderr, failed, jobs, m.output()))
        yield m
    finally:
        m.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def booted(machine, api):
    """The machine, with the fake API reset and nothing of ours running."""
    yield machine
    for unit in (UNIT, PLAIN_UNIT):
        machine.sh("systemctl", "stop", unit)
        machine.sh("systemctl", "reset-failed", unit)


def warnings(m, cursor, unit, user=False):
    """The unit's journal lines at warning (4) or worse since cursor."""
    return m.journal(cursor, unit, 4, user)


def test_readme_mount_at_a_path_with_a_dash(booted, api):
    """omikeyfs@ for /mnt/omi-keys as the README sets it up: started, it
    serves the whole tree; reloaded, it fetches; killed, it comes back; a
    stop leaves nothing.  (The credential and cache paths carry the
    instance's \\x2d, which omikeyfs once got through -o, mangled.)"""
    m = booted
    keys = make_keys(5, seed=31)
    api.set_keys(keys)
    m.start(UNIT)
    # Type=notify: started means the tree is there, whole.
    assert tree(m.path(MNT)) == expected_tree(keys)
    cache = m.path("/var/cache/omikeyfs/%s" % INSTANCE)
    assert any(n.startswith("list-") for n in os.listdir(cache)), os.listdir(cache)

    before = api.requests()
    m.ok("systemctl", "reload", UNIT)
    wait_for(lambda: api.requests() == before + 1, timeout=20, what="the reload's fetch")

    pid = m.show(UNIT, "MainPID")
    m.ok("systemctl", "kill", "--kill-who=main", "--signal=SIGKILL", UNIT)
    wait_for(lambda: m.show(UNIT, "NRestarts") == "1" and m.show(UNIT, "ActiveState")
             == "active", timeout=60, what="the restart after kill -9")
    assert m.show(UNIT, "MainPID") != pid
    assert tree(m.path(MNT)) == expected_tree(keys)

    cursor = m.cursor()
    m.ok("systemctl", "stop", UNIT)
    assert not m.mounted(MNT)
    assert m.show(UNIT, "ActiveState") == "inactive"
    assert warnings(m, cursor, UNIT) == []


def test_reload_fetches_now(booted, api):
    """systemctl reload on the package's dependencies alone (no procps)."""
    m = booted
    api.set_keys(make_keys(2, seed=32))
    m.start(PLAIN_UNIT)
    before = api.requests()
    m.ok("systemctl", "reload", PLAIN_UNIT)
    wait_for(lambda: api.requests() == before + 1, timeout=20, what="the reload's fetch")


def test_clean_stop_logs_nothing_alarming(booted, api):
    m = booted
    api.set_keys(make_keys(2, seed=33))
    m.start(PLAIN_UNIT)
    cursor = m.cursor()
    m.ok("systemctl", "stop", PLAIN_UNIT)
    assert not m.mounted(PLAIN_MNT)
    assert warnings(m, cursor, PLAIN_UNIT) == []
    # fusermount3 run on nothing said "failed to unmount" at priority 6.
    lines = m.journal(cursor, PLAIN_UNIT)
    assert not [e for e in lines if "fusermount" in str(e) or "failed" in str(e)], lines


def test_refused_token_fails_once_and_says_why(booted, api):
    m = booted
    api.control("token", {"token": "another"})
    cursor = m.cursor()
    assert m.sh("systemctl", "start", UNIT).returncode != 0
    # Failed and staying so: a restart would show as auto-restart.
    assert (m.show(UNIT, "ActiveState"), m.show(UNIT, "SubState")) == ("failed", "failed")
    assert m.show(UNIT, "ExecMainStatus") == "2"
    assert m.show(UNIT, "NRestarts") == "0"
    assert not m.mounted(MNT)
    # omikeyfs's own line, at priority 3 (err); journald may file a line
    # of a service's stdout stream after systemd's own about its exit.
    wait_for(lambda: [e for e in m.journal(cursor, UNIT, 3) if e[:2] == (3, "omikeyfs")
                      and "HTTP 401" in e[2]], timeout=20, what="omikeyfs's error line")


def test_offline_start_serves_the_kept_list(booted, api):
    """503 at start, with a list kept by an earlier run: started, stale."""
    m = booted
    keys = make_keys(3, seed=34)
    api.set_keys(keys)
    m.start(UNIT)
    m.ok("systemctl", "stop", UNIT)
    api.fault(status=503, body={"detail": "Service Unavailable"})
    m.start(UNIT)
    root = m.path(MNT)
    assert os.getxattr(root, "user.omikeyfs.stale") == b"1"
    assert tree(root) == expected_tree(keys)


def snapshots(m):
    top = m.path("/var/backups/omi-keys")
    return sorted(n for n in os.listdir(top) if re.match(r"\d{4}-\d\d-\d\d$", n))


def test_backup_service_and_timer(booted, api):
    m = booted
    keys = make_keys(4, seed=35)
    api.set_keys(keys)
    m.start(UNIT)
    m.start("omikeyfs-backup.service")
    days = snapshots(m)
    assert len(days) == 1
    day = m.path("/var/backups/omi-keys/" + days[0])
    assert tree(day) == expected_tree(keys)
    kept = {k: v for k, v in tree(day).items()}
    mtimes = [os.stat(os.path.join(d, f)).st_mtime_ns
              for d, _, fs in os.walk(day) for f in fs]

    m.start("omikeyfs-backup.timer")
    assert m.show("omikeyfs-backup.timer", "ActiveState") == "active"
    assert m.show("omikeyfs-backup.timer", "NextElapseUSecRealtime") != ""

    m.ok("systemctl", "stop", UNIT)
    r = m.sh("systemctl", "start", "omikeyfs-backup.service")
    assert r.returncode != 0
    # AssertPathIsMountPoint= failed: the script did not even run.
    assert m.show("omikeyfs-backup.service", "AssertResult") == "no"
    assert snapshots(m) == days
    assert tree(day) == kept
    assert [os.stat(os.path.join(d, f)).st_mtime_ns
            for d, _, fs in os.walk(day) for f in fs] == mtimes
    m.sh("systemctl", "stop", "omikeyfs-backup.timer")
    m.sh("systemctl", "reset-failed", "omikeyfs-backup.service")


def test_fstab_entries_of_both_types(booted, api):
    """fuse.omikeyfs (mount.fuse3) and omikeyfs (mount.omikeyfs) at paths
    with a '-', through their .mount units and through mount(8)."""
    m = booted
    keys = make_keys(3, seed=36)
    api.set_keys(keys)
    write(m.path("/etc/omikeyfs/fstab.token"), TOKEN + "\n", 0o600)
    lines = ""
    for kind in ("fuse.omikeyfs", "omikeyfs"):
        p = "/mnt/fstab-" + kind.replace(".", "-")
        os.makedirs(m.path(p), exist_ok=True)
        lines += "%s %s %s key_file=/etc/omikeyfs/fstab.token,noauto,_netdev 0 0\n" % (
            api.url, p, kind)
    write(m.path("/etc/fstab"), lines)
    m.ok("systemctl", "daemon-reload")
    for kind in ("fuse.omikeyfs", "omikeyfs"):
        p = "/mnt/fstab-" + kind.replace(".", "-")
        unit = m.ok("systemd-escape", "--path", "--suffix=mount", p).strip()
        m.start(unit)
        assert tree(m.path(p)) == expected_tree(keys)
        m.ok("systemctl", "stop", unit)
        assert not m.mounted(p)
        m.ok("mount", p)
        assert m.mounted(p)
        assert tree(m.path(p)) == expected_tree(keys)
        m.ok("umount", p)
        wait_for(lambda: not m.mounted(p), timeout=20, what="the unmount")


def test_user_unit_with_a_signed_in_session(machine, auth_api, tmp_path, capsys, chromium):
    """omikeyfs.service under a lingering user's systemd --user, with the
    session file omikeyfs --login wrote against the Auth Emulator."""
    import test_login
    m = machine
    name, uid = USER
    keys = make_keys(3, seed=37)
    auth_api.set_user_keys("omikeyfs-test-user", keys)
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config"), **auth_api.firebase.env())
    env.pop("OMI_API_KEY", None)
    test_login.sign_in(auth_api, env, chromium)
    home = m.path("/home/" + name)
    config = os.path.join(home, ".config", "omikeyfs")
    for d in (os.path.join(home, ".config"), config):
        os.makedirs(d, mode=0o700, exist_ok=True)
        os.chown(d, uid, uid)
    with open(test_login.default_session(tmp_path)) as f:
        write(os.path.join(config, "session.json"), f.read(), 0o600, uid)
    write(os.path.join(config, "env"), "OMIKEYFS_URL=%s\n%s\n" % (auth_api.url, "\n".join(
        "%s=%s" % kv for kv in auth_api.firebase.env().items())), 0o644, uid)

    m.ok("loginctl", "enable-linger", name)
    wait_for(lambda: m.sh("systemctl", "--user", "is-system-running", user=USER)
             .stdout.strip() in ("running", "degraded"), timeout=60, what="systemd --user")
    try:
        try:
            m.start("omikeyfs.service", user=USER)
        except AssertionError as e:
            with open(auth_api.firebase.log_path, errors="replace") as f:
                raise AssertionError("%s\nemulator: %s" % (e, f.read()[-3000:]))
        mnt = "/home/%s/omi-keys" % name
        names = m.ok("sh", "-c", 'cat "$1"/*/name', "sh", mnt, user=USER)
        assert sorted(names.splitlines()) == sorted(k["name"] for k in keys)
        before = len(test_login.list_log(auth_api))
        m.ok("systemctl", "--user", "reload", "omikeyfs.service", user=USER)
        wait_for(lambda: len(test_login.list_log(auth_api)) == before + 1, timeout=20,
                 what="the reload's fetch")
        cursor = m.cursor()
        m.ok("systemctl", "--user", "stop", "omikeyfs.service", user=USER)
        assert not m.mounted(mnt)
        assert warnings(m, cursor, "omikeyfs.service", user=True) == []
        out = m.ok("systemd-analyze", "--user", "security", "--no-pager", "omikeyfs.service",
                   user=USER)
        with open(os.environ.get("OMIKEYFS_SECURITY_LOG", os.devnull), "a") as f:
            f.write(out)
        with capsys.disabled():
            print("\nsystemd-analyze --user security: %s" % ", ".join(
                "%s %s" % kv for kv in SECURITY.findall(out)))
    finally:
        m.sh("systemctl", "--user", "stop", "omikeyfs.service", user=USER)
        m.sh("loginctl", "disable-linger", name)


SECURITY = re.compile(r"Overall exposure level for (\S+): (\d+\.\d+)")


def test_security_exposure(booted, capsys):
    """systemd-analyze security of each unit, printed; the system units at
    most what they score now, so that hardening does not slip."""
    m = booted
    out = m.ok("systemd-analyze", "security", "--no-pager", UNIT, "omikeyfs-backup.service")
    scores = dict(SECURITY.findall(out))
    with open(os.environ.get("OMIKEYFS_SECURITY_LOG", os.devnull), "a") as f:
        f.write(out)
    with capsys.disabled():
        print("\nsystemd-analyze security: %s" % ", ".join(
            "%s %s" % kv for kv in sorted(scores.items())))
    assert float(scores[UNIT]) <= 9.6, out
    assert float(scores["omikeyfs-backup.service"]) <= 9.6, out
