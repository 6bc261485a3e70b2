"""omikeyfs among the habits of network filesystems.

- fstab and mount(8): an entry of type fuse.omikeyfs goes through
  mount.fuse3, which runs the program named after "fuse." from PATH;
- daemon mode: without -f the command returns once the mount is ready, and
  reports a failure by its exit status with nothing left mounted;
- backups with `rsync -a --delete MNT/ backup/`: exact, and safe during an
  outage of the API;
- packaging: `meson install`, the man page, and (OMIKEYFS_TEST_DIST=1)
  `meson dist`.

Without -f omikeyfs detaches, so its daemon is nobody's child; the `reaper`
fixture makes this process the subreaper of orphans, so a test can wait for
a daemon and check that it exits 0.
"""
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tarfile
import time

import pytest

from conftest import (BIN, ROOT, TOKEN, expected_files, make_keys, meson_build_dir, run,
                      tree, wait_for)

MOUNT_FUSE3 = "/sbin/mount.fuse3"
PR_SET_CHILD_SUBREAPER = 36


# ---------------------------------------------------------------------------
# helpers

def expected_tree(keys):
    return {k["id"]: expected_files(k) for k in keys}


def root_pid(mnt):
    return int(os.getxattr(mnt, "user.omikeyfs.pid"))


def alive(pid):
    """Running: /proc/PID exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def mountinfo(mnt, table="/proc/self/mountinfo"):
    """The mountinfo entry of mnt: per-mount options, fstype, source."""
    with open(table) as f:
        for line in f:
            left, right = line.split(" - ", 1)
            fields, rest = left.split(), right.split()
            if fields[4] == mnt:
                return {"opts": fields[5].split(","), "fstype": rest[0], "source": rest[1]}
    return None


def processes_mentioning(text):
    """Pids of live processes whose command line holds text."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/cmdline" % entry, "rb") as f:
                    if text.encode() in f.read() and alive(int(entry)):
                        pids.append(int(entry))
            except OSError:
                pass
    return pids


def write_key_file(path, token=TOKEN):
    with open(path, "w") as f:
        f.write(token + "\n")
    os.chmod(path, 0o600)
    return str(path)


def closed_port():
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Reaper:
    """Waits for omikeyfs daemons that detached (see the module doc)."""

    def __init__(self):
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.pids = []
        self.mnts = []
        assert self.libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0

    def wait(self, pid, timeout=10):
        """Exit status of a daemon, which must end within timeout seconds."""
        deadline = time.monotonic() + timeout
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status)
            if time.monotonic() > deadline:
                raise AssertionError("omikeyfs daemon %d still running after %ss" % (pid, timeout))
            time.sleep(0.05)

    def close(self):
        for mnt in self.mnts:
            if os.path.ismount(mnt):
                subprocess.run(["umount", "-l", mnt], stderr=subprocess.DEVNULL)
        for pid in self.pids:
            try:
                if alive(pid):
                    os.kill(pid, signal.SIGTERM)
                self.wait(pid)
            except (ChildProcessError, ProcessLookupError, AssertionError):
                pass
        self.libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


@pytest.fixture
def reaper():
    r = Reaper()
    yield r
    r.close()


class Host:
    """Runs mount commands here, with omikeyfs first on PATH."""

    def __init__(self, bindir):
        self.env = dict(os.environ, PATH=bindir + ":" + os.environ.get("PATH", ""))

    def run(self, *argv):
        return run(*argv, env=self.env, timeout=30)

    def path(self, p):
        return p

    def mountinfo(self, mnt):
        return mountinfo(mnt)

    def close(self):
        pass


class PrivateNamespace:
    """A private mount namespace in which omikeyfs is on mount(8)'s PATH.

    mount(8) drops PATH from the environment of its helpers, so mount.fuse3's
    shell finds programs only on its default PATH; here /usr/local/sbin shows
    the directory holding omikeyfs.  Nothing leaks out of the namespace: its
    mounts are seen from here through /proc/PID/root."""

    def __init__(self, bindir):
        self.proc = subprocess.Popen(["unshare", "--mount", "--propagation", "private",
                                      "sleep", "600"], stderr=subprocess.PIPE)
        own = os.readlink("/proc/self/ns/mnt")

        def entered():
            if self.proc.poll() is not None:
                pytest.skip("no private mount namespace: %s" % self.proc.stderr.read().decode())
            try:
                return os.readlink("/proc/%d/ns/mnt" % self.proc.pid) != own
            except FileNotFoundError:
                return False
        wait_for(entered, what="the mount namespace")
        r = self.run("mount", "--bind", bindir, "/usr/local/sbin")
        if r.returncode != 0:
            self.close()
            raise AssertionError("cannot bind %s in the namespace: %s" % (bindir, r.stderr))

    def run(self, *argv):
        return run("nsenter", "-t", str(self.proc.pid), "-m", "-r", "-w", "--", *argv, timeout=30)

    def path(self, p):
        return "/proc/%d/root%s" % (self.proc.pid, p)

    def mountinfo(self, mnt):
        return mountinfo(mnt, "/proc/%d/mountinfo" % self.proc.pid)

    def close(self):
        with open("/proc/%d/mountinfo" % self.proc.pid) as f:
            for line in f:
                fields = line.split(" - ", 1)
                if fields[1].startswith("fuse.omikeyfs "):
                    self.run("umount", "-l", fields[0].split()[4])
        self.proc.kill()
        self.proc.wait()
        self.proc.stderr.close()


# ---------------------------------------------------------------------------
# 1. fstab and mount.fuse3

MOUNT_WAYS = ["mount.fuse3", "mount -t", "fstab", "fstab x-systemd.automount"]


@pytest.mark.parametrize("way", MOUNT_WAYS)
def test_fstab_style_mount(way, api, reaper, tmp_path):
    """mount.fuse3 finds omikeyfs on PATH and runs it with the fstab options;
    the mount is ro, of type fuse.omikeyfs, and umount ends the daemon."""
    if not os.path.exists(MOUNT_FUSE3):
        pytest.skip("%s is not installed" % MOUNT_FUSE3)
    keys = make_keys(3, seed=11)
    api.set_keys(keys)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    os.symlink(os.path.abspath(BIN), bindir / "omikeyfs")
    key_file = write_key_file(tmp_path / "token")
    mnt = str(tmp_path / "mnt")
    os.mkdir(mnt)

    opts = "key_file=%s,ttl=120,_netdev,timeout=5" % key_file
    if way == "mount.fuse3":
        # What mount(8) runs for -t fuse.omikeyfs, here with our PATH kept.
        where = Host(str(bindir))
        argv = [MOUNT_FUSE3, api.url, mnt, "-o", opts, "-t", "fuse.omikeyfs"]
    else:
        where = PrivateNamespace(str(bindir))
        if way == "mount -t":
            argv = ["mount", "-t", "fuse.omikeyfs", "-o", opts, api.url, mnt]
        else:
            fstab_opts = "key_file=%s,_netdev,noauto,nofail" % key_file
            if "automount" in way:
                fstab_opts += ",x-systemd.automount"
            fstab = tmp_path / "fstab"
            fstab.write_text("# omikeyfs\n%s %s fuse.omikeyfs %s 0 0\n"
                             % (api.url, mnt, fstab_opts))
            argv = ["mount", "-T", str(fstab), mnt]
    try:
        r = where.run(*argv)
        assert (r.returncode, r.stderr) == (0, ""), r
        seen = where.path(mnt)
        assert os.path.ismount(seen)
        pid = root_pid(seen)
        reaper.pids.append(pid)
        assert tree(seen) == expected_tree(keys)
        info = where.mountinfo(mnt)
        assert info["fstype"] == "fuse.omikeyfs"
        assert "ro" in info["opts"] and "rw" not in info["opts"]
        assert info["source"] == api.url
        assert alive(pid)

        r = where.run("umount", mnt)
        assert (r.returncode, r.stderr) == (0, "")
        assert reaper.wait(pid) == 0
        assert not os.path.ismount(seen)
        assert where.mountinfo(mnt) is None
    finally:
        where.close()


def test_fstab_only_words_are_ignored(mount, api):
    """The words fstab and systemd add reach omikeyfs when it is run by hand
    or by a helper that passes them on; they change nothing."""
    keys = make_keys(2, seed=12)
    m = mount(keys, opts=["_netdev", "noauto", "nofail", "auto", "defaults",
                          "x-systemd.automount", "x-systemd.idle-timeout=60"])
    assert tree(m.mnt) == expected_tree(keys)


# ---------------------------------------------------------------------------
# 2. daemon mode

def launch(url, mnt, token=TOKEN, opts="ttl=60,timeout=2"):
    """omikeyfs without -f: returns (launcher pid, exit status, stdout, stderr)."""
    env = dict(os.environ, OMI_API_KEY=token)
    p = subprocess.Popen([BIN, "-o", opts, url, mnt], env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = p.communicate(timeout=30)
    return p.pid, p.returncode, out, err


def test_daemon_is_ready_when_the_command_returns(api, reaper, tmp_path):
    keys = make_keys(5, seed=21)
    api.set_keys(keys)
    mnt = str(tmp_path / "mnt")
    os.mkdir(mnt)
    reaper.mnts.append(mnt)
    launcher, rc, out, err = launch(api.url, mnt)
    # No polling: the mount is usable the moment the command has returned.
    assert rc == 0, err
    assert sorted(os.listdir(mnt)) == sorted(k["id"] for k in keys)
    assert api.requests() == 1
    assert (out, err) == ("", "")  # once detached, omikeyfs logs to syslog

    pid = root_pid(mnt)
    reaper.pids.append(pid)
    assert pid != launcher and alive(pid)
    assert not alive(launcher)
    assert tree(mnt) == expected_tree(keys)
    assert api.requests() == 1

    subprocess.run(["fusermount3", "-u", mnt], check=True)
    assert reaper.wait(pid) == 0
    assert not os.path.ismount(mnt)


@pytest.mark.parametrize("case", ["token refused", "API down"])
def test_daemon_failure_is_reported_by_the_command(case, api, tmp_path):
    mnt = str(tmp_path / "mnt")
    os.mkdir(mnt)
    if case == "token refused":
        url, token, status = api.url, "omi_dev_not_this_one", 2
        reason = r"401.*Invalid authentication credentials"
    else:
        url, token, status = "http://127.0.0.1:%d" % closed_port(), TOKEN, 3
        reason = r"(?i)could not connect.*connection refused"
    _, rc, out, err = launch(url, mnt, token=token)
    assert rc == status, err
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("omikeyfs: "), err
    assert re.search(reason, err), err
    assert not os.path.ismount(mnt)
    assert mountinfo(mnt) is None
    assert processes_mentioning(mnt) == []
    assert api.requests() == (1 if case == "token refused" else 0)


# ---------------------------------------------------------------------------
# 3. backups: rsync -a --delete MNT/ backup/

TTL = 1


def rsync(mnt, backup, *extra):
    r = run("rsync", "-a", "--delete", *extra, mnt + "/", str(backup) + "/")
    assert r.returncode == 0, r.stderr
    return r.stdout


def itemized(stdout):
    """Paths rsync --itemize-changes reports as changed or deleted."""
    out = []
    for line in stdout.splitlines():
        if line.startswith("*deleting "):
            out.append(line[len("*deleting "):].strip())
        elif re.match(r"^[<>ch.][fdLDS][.+?a-zA-Z ]{9} ", line):
            out.append(line[12:])
    return sorted(out)


def snapshot(root):
    """{relative path: (bytes or None for a directory, mtime)} of a backup."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(dirpath, name)
            data = None
            if name in files:
                with open(path, "rb") as f:
                    data = f.read()
            out[os.path.relpath(path, root)] = (data, os.lstat(path).st_mtime_ns)
    return out


@pytest.fixture
def backup(tmp_path):
    path = tmp_path / "backup"
    path.mkdir()
    return path


def test_rsync_picks_up_a_same_length_rename(mount, api, backup):
    """A rename that keeps the size changes the file's mtime, so rsync's
    quick check (size and mtime, no -c) sends it."""
    keys = make_keys(3, seed=31)
    keys[0]["name"] = "alpha"
    m = mount(keys, ttl=TTL)
    rsync(m.mnt, backup)
    assert tree(str(backup)) == expected_tree(keys)

    keys[0]["name"] = "bravo"
    api.set_keys(keys)
    name = os.path.join(m.mnt, keys[0]["id"], "name")
    m.sighup()
    wait_for(lambda: open(name, "rb").read() == b"bravo\n", what="the rename")
    changed = itemized(rsync(m.mnt, backup, "--itemize-changes"))
    assert changed == [keys[0]["id"] + "/name"]
    assert (backup / keys[0]["id"] / "name").read_bytes() == b"bravo\n"
    assert tree(str(backup)) == expected_tree(keys)


@pytest.mark.parametrize("fault", [{"status": 503}, {"reset": True}],
                         ids=["503", "connection reset"])
def test_rsync_delete_during_an_outage_deletes_nothing(fault, mount, api, backup):
    keys = make_keys(4, seed=32)
    m = mount(keys, ttl=TTL, timeout=2, expect_stderr=[
        r"^omikeyfs: fetching the key list failed: .*; serving the last good list$"])
    rsync(m.mnt, backup)
    before = snapshot(backup)
    assert len(before) == 4 * 6

    api.fault(**fault)
    # Once the TTL has run out the walk reaches the API, which fails; the
    # last good list is served.
    wait_for(lambda: rsync(m.mnt, backup) is not None and m.xattr("stale") == "1",
             what="a walk during the outage")
    assert api.requests() >= 2
    assert m.xattr("last_error") != ""
    assert snapshot(backup) == before


def test_rsync_delete_removes_a_key_the_api_removed(mount, api, backup):
    keys = make_keys(3, seed=33)
    m = mount(keys, ttl=TTL)
    rsync(m.mnt, backup)
    assert sorted(os.listdir(backup)) == sorted(k["id"] for k in keys)

    gone, kept = keys[1], keys[:1] + keys[2:]
    api.set_keys(kept)
    m.sighup()
    wait_for(lambda: sorted(os.listdir(m.mnt)) == sorted(k["id"] for k in kept),
             what="the key to vanish")
    changed = itemized(rsync(m.mnt, backup, "--itemize-changes"))
    # Deleted: the key's directory and its five files; the root's mtime is
    # when omikeyfs saw the key vanish.
    gone_paths = [gone["id"] + "/"] + [gone["id"] + "/" + f for f in expected_files(gone)]
    assert changed == sorted(["./"] + gone_paths)
    assert tree(str(backup)) == expected_tree(kept)


def test_second_rsync_with_nothing_changed_transfers_nothing(mount, api, backup):
    keys = make_keys(6, seed=34)
    m = mount(keys, ttl=TTL)
    rsync(m.mnt, backup)
    before = snapshot(backup)

    # Within the TTL (answered by the kernel's caches), then after the TTL
    # ran out and a refresh brought the same list.
    assert rsync(m.mnt, backup, "--itemize-changes") == ""
    asked = api.requests()
    wait_for(lambda: m.xattr("fetched_at") and api.requests() == asked + 1,
             what="the refresh after the TTL")
    out = rsync(m.mnt, backup, "--itemize-changes", "--stats")
    assert itemized(out) == []
    assert "Number of regular files transferred: 0\n" in out
    assert snapshot(backup) == before


# ---------------------------------------------------------------------------
# 4. packaging

def build_dir():
    build = meson_build_dir()
    if not build:
        pytest.skip("%s is not in a meson build directory" % BIN)
    return build


def project_version():
    with open(os.path.join(ROOT, "meson.build")) as f:
        text = f.read()
    m = re.search(r"project\(\s*'omikeyfs'.*?\bversion\s*:\s*'([^']+)'", text, re.S)
    assert m, "no version in meson.build's project()"
    return m.group(1)


def build_option(build, name):
    r = run("meson", "introspect", "--buildoptions", build)
    assert r.returncode == 0, r.stderr
    return next(o["value"] for o in json.loads(r.stdout) if o["name"] == name)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """`meson install --destdir`: (installed binary, installed man page)."""
    build = build_dir()
    dest = str(tmp_path_factory.mktemp("destdir"))
    r = run("meson", "install", "--no-rebuild", "--quiet", "--destdir", dest, "-C", build,
            timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    prefix = build_option(build, "prefix")

    def under_prefix(*parts):
        return os.path.join(dest + prefix, *parts)
    return (under_prefix(build_option(build, "bindir"), "omikeyfs"),
            under_prefix(build_option(build, "mandir"), "man1", "omikeyfs.1"))


def test_meson_install_installs_the_binary_and_man_page(installed):
    binary, page = installed
    assert os.access(binary, os.X_OK)
    r = run(binary, "--version")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "omikeyfs " + project_version()
    with open(page, "rb") as f:
        assert re.search(rb'^\.TH "?omikeyfs"? "?1"?', f.read(), re.M | re.I)


def test_installed_man_page_renders_cleanly(installed):
    _, page = installed
    if not shutil.which("man"):
        pytest.skip("man is not installed")
    env = dict(os.environ, MANWIDTH="80", LANG="C.UTF-8", MANPAGER="cat", PAGER="cat")
    r = run("man", "-l", page, env=env)
    assert (r.returncode, r.stderr) == (0, "")
    assert "omikeyfs - mount the Omi developer API" in r.stdout
    if not shutil.which("groff"):
        pytest.skip("groff is not installed: rendered by man only")
    r = run("groff", "-ww", "-man", "-Tutf8", page, env=env)
    assert (r.returncode, r.stderr) == (0, "")


@pytest.mark.skipif(os.environ.get("OMIKEYFS_TEST_DIST") != "1",
                    reason="meson dist is slow: set OMIKEYFS_TEST_DIST=1 to run it")
def test_meson_dist_tarball_builds_and_passes_unit_tests(tmp_path):
    build = build_dir()
    git = run("git", "-C", ROOT, "rev-parse", "--is-inside-work-tree")
    if git.returncode != 0 or git.stdout.strip() != "true":
        pytest.skip("meson dist needs a git checkout; %s is not one" % ROOT)
    r = run("meson", "dist", "-C", build, "--no-tests", "--allow-dirty", "--formats", "gztar",
            timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    name = "omikeyfs-" + project_version()
    with tarfile.open(os.path.join(build, "meson-dist", name + ".tar.gz")) as tar:
        tar.extractall(tmp_path)  # our own tarball, just made
    src, out = str(tmp_path / name), str(tmp_path / "build")
    for argv in (["meson", "setup", out, src], ["meson", "compile", "-C", out],
                 ["meson", "test", "-C", out, "--suite", "unit", "--print-errorlogs"]):
        r = run(*argv, timeout=600)
        assert r.returncode == 0, "%s failed:\n%s%s" % (" ".join(argv), r.stdout, r.stderr)
