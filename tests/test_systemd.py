"""omikeyfs as a Debian and systemd citizen.

- the journal: with JOURNAL_STREAM naming its stderr, every line carries a
  syslog priority ("<3>", "<6>"); -o log_level= chooses what is logged;
- NOTIFY_SOCKET: READY=1 once the tree answers, STOPPING=1 on the way out;
- mount.fuse3 -o drop_privileges: omikeyfs gets /dev/fd/N, already mounted,
  and runs without capabilities;
- -o uid=,gid=,umask=: who may read the tree, enforced by the kernel;
- fsname is the API URL, and df leaves the mount out unless given -a.
"""
import os
import re
import shutil
import socket
import stat
import subprocess
import tempfile

import pytest

from conftest import (BIN, TOKEN, Mount, expected_files, make_keys, private_namespace_problem,
                      run, tree, unmount_all, wait_for)
from test_mounting import (MOUNT_FUSE3, Host, alive, mountinfo, reaper,  # noqa: F401 (fixture)
                           root_pid, write_key_file)

MEMBER_UID, GROUP, OUTSIDER_UID = 4243, 4242, 4244

# What a refused omi_dev_ key's message adds: the key list wants a sign-in.
DEV_KEY_HINT = (" (an omi_dev_ key cannot list keys: the key list needs a signed-in session; "
                "sign in with omikeyfs --login)")


def expected_tree(keys):
    return {k["id"]: expected_files(k) for k in keys}


@pytest.fixture
def shared_dir():
    """A directory every uid can reach (pytest's tmp_path is root's alone)."""
    path = tempfile.mkdtemp(prefix="omikeyfs-shared-", dir="/tmp")
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def start(api, tmp_path):
    """start(keys, opts=(), env=None, where=tmp_path, journal=False, **kw) -> Mount.

    journal: JOURNAL_STREAM names the file the daemon's stderr goes to, as
    systemd does for a unit whose stderr is the journal."""
    mounts = []

    def go(keys, opts=(), env=None, where=None, journal=False, **kw):
        api.set_keys(keys)
        mnt = os.path.join(str(where or tmp_path), "mnt%d" % len(mounts))
        os.mkdir(mnt)
        env = dict(env or {})
        if journal:
            with open(mnt + ".stderr", "wb"):
                pass  # Mount reopens it with "wb": same inode
            st = os.stat(mnt + ".stderr")
            env["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
        m = Mount(api.url, mnt, opts=["ttl=60", "timeout=5"] + list(opts), env=env, **kw)
        mounts.append(m)
        return m

    yield go
    unmount_all(mounts)


# ---------------------------------------------------------------------------
# 1. the journal and log_level

PRIORITY_LINE = re.compile(r"^<[0-7]>[^<]")


def test_journal_lines_carry_priorities(start):
    keys = make_keys(3, seed=101)
    m = start(keys, journal=True)
    assert tree(m.mnt) == expected_tree(keys)
    m.unmount()
    lines = m.stderr().splitlines()
    assert lines, "nothing logged"
    assert all(PRIORITY_LINE.match(line) for line in lines), lines
    assert any(line.startswith("<6>mounted %s on %s " % (m.argv[-2], m.mnt)) for line in lines)


def test_journal_error_lines_are_priority_3(api, tmp_path):
    """main's own failure lines go through the log: <3> in the journal, and
    outside it the same "omikeyfs: ..." line as ever."""
    mnt = str(tmp_path / "mnt")
    os.mkdir(mnt)
    err_path = str(tmp_path / "stderr")
    for journal in (True, False):
        with open(err_path, "wb") as err:
            st = os.fstat(err.fileno())
            env = dict(os.environ, OMI_API_KEY="omi_dev_not_this_one")
            env.pop("JOURNAL_STREAM", None)
            if journal:
                env["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
            rc = subprocess.run([BIN, "-f", "-o", "timeout=5", api.url, mnt], env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=err, timeout=60).returncode
        with open(err_path) as f:
            text = f.read()
        assert rc == 2
        prefix = "<3>" if journal else "omikeyfs: "
        assert text == ("%scannot fetch the key list from %s: HTTP 401: "
                        "Invalid authentication credentials%s\n"
                        % (prefix, api.url, DEV_KEY_HINT)), text
        assert not os.path.ismount(mnt)


@pytest.mark.parametrize("level, shown", [("error", False), ("warning", False),
                                          ("info", True), ("debug", True)])
def test_log_level_decides_what_is_logged(level, shown, start):
    keys = make_keys(2, seed=102)
    m = start(keys, opts=["log_level=" + level], journal=True)
    assert tree(m.mnt) == expected_tree(keys)
    m.unmount()
    lines = m.stderr().splitlines()
    assert any(line.startswith("<6>mounted ") for line in lines) == shown, lines
    if not shown:
        assert lines == []


def test_log_level_is_checked(api, tmp_path):
    mnt = str(tmp_path / "mnt")
    os.mkdir(mnt)
    r = run(BIN, "-f", "-o", "log_level=verbose", api.url, mnt,
            env=dict(os.environ, OMI_API_KEY=TOKEN))
    assert (r.returncode, r.stderr) == (
        1, "omikeyfs: invalid log_level=verbose (expected error, warning, info or debug)\n")
    assert api.requests() == 0


# ---------------------------------------------------------------------------
# 2. NOTIFY_SOCKET

@pytest.fixture
def notify_socket(tmp_path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify")
    sock.bind(path)
    sock.settimeout(20)  # a deadline for a message that must come
    yield sock, path
    sock.close()


def test_ready_when_the_tree_answers_and_stopping_after_unmount(start, api, notify_socket):
    sock, path = notify_socket
    keys = make_keys(7, seed=103)
    m = start(keys, env={"NOTIFY_SOCKET": path}, wait=False)
    assert sock.recv(4096) == b"READY=1"
    # No waiting: at READY=1 the tree is mounted with every key.
    assert os.path.ismount(m.mnt)
    assert sorted(os.listdir(m.mnt)) == sorted(k["id"] for k in keys)
    assert tree(m.mnt) == expected_tree(keys)
    assert api.requests() == 1

    subprocess.run(["fusermount3", "-u", m.mnt], check=True)
    assert sock.recv(4096) == b"STOPPING=1"
    m.unmount()  # the daemon exits 0
    sock.settimeout(0)
    with pytest.raises(BlockingIOError):
        sock.recv(4096)


def test_no_ready_when_the_first_fetch_fails(api, tmp_path, notify_socket):
    sock, path = notify_socket
    mnt = str(tmp_path / "mnt")
    os.mkdir(mnt)
    r = run(BIN, "-f", "-o", "timeout=5", api.url, mnt,
            env=dict(os.environ, OMI_API_KEY="omi_dev_not_this_one", NOTIFY_SOCKET=path))
    assert r.returncode == 2, r.stderr
    sock.settimeout(0)
    with pytest.raises(BlockingIOError):
        sock.recv(4096)


# ---------------------------------------------------------------------------
# 3. mount.fuse3 -o drop_privileges: MOUNTPOINT is /dev/fd/N

@pytest.fixture
def fuse3_host(tmp_path):
    if not os.path.exists(MOUNT_FUSE3):
        pytest.skip("%s is not installed" % MOUNT_FUSE3)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    os.symlink(os.path.abspath(BIN), bindir / "omikeyfs")
    return Host(str(bindir))


def capabilities(pid):
    with open("/proc/%d/status" % pid) as f:
        return {k: v.strip() for k, v in (line.split(":", 1) for line in f)
                if k.startswith("Cap") or k == "Uid"}


def drop_privileges_mount(host, api, mnt, key_file, extra=""):
    # omikeyfs runs as root without capabilities: a 0600 key file of root's
    # is still its own to read.
    opts = "drop_privileges,auto_unmount,ro,noatime,key_file=%s,ttl=60,timeout=5" % key_file
    return host.run(MOUNT_FUSE3, "omikeyfs#" + api.url, mnt, "-o", opts + extra)


def test_drop_privileges_mount(shared_dir, api, reaper, fuse3_host, tmp_path):
    """The fstab line of the man page: served without privileges, shared
    with one group."""
    keys = make_keys(4, seed=104)
    api.set_keys(keys)
    mnt = os.path.join(shared_dir, "mnt")
    os.mkdir(mnt)
    reaper.mnts.append(mnt)
    r = drop_privileges_mount(fuse3_host, api, mnt, write_key_file(tmp_path / "token"),
                              ",allow_other,default_permissions,gid=%d,umask=027" % GROUP)
    assert (r.returncode, r.stderr) == (0, ""), r
    pid = root_pid(mnt)
    reaper.pids.append(pid)
    assert tree(mnt) == expected_tree(keys)
    assert api.requests() == 1
    # It really is the unprivileged process that serves the tree...
    caps = capabilities(pid)
    assert caps["CapEff"] == caps["CapPrm"] == caps["CapBnd"] == "0" * 16, caps
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        assert re.search(rb"\0/dev/fd/\d+\0", f.read())
    # ...of a mount mount.fuse3 made with the options it was given...
    info = mountinfo(mnt)
    assert info["fstype"] == "fuse.omikeyfs" and "ro" in info["opts"]
    # ...which the kernel enforces.
    st = os.stat(mnt)
    assert (stat.S_IMODE(st.st_mode), st.st_gid) == (0o550, GROUP)
    name = os.path.join(mnt, keys[0]["id"], "name")
    r = as_user(MEMBER_UID, GROUP, "cat", name)
    assert (r.returncode, r.stdout) == (0, keys[0]["name"] + "\n"), r
    r = as_user(OUTSIDER_UID, OUTSIDER_UID, "cat", name)
    assert r.returncode != 0 and "Permission denied" in r.stderr, r

    r = fuse3_host.run("umount", mnt)
    assert (r.returncode, r.stderr) == (0, "")
    assert reaper.wait(pid) == 0
    assert mountinfo(mnt) is None


def skip_without_auto_unmount():
    """fusermount3's auto_unmount watcher makes / private before it checks
    and removes the mount; where that fails (a chroot, whose / is no mount
    point) it exits quietly and leaves a dead mount."""
    why = private_namespace_problem()
    if why:
        pytest.skip("auto_unmount cannot work here (it makes / private first): " + why)


def assert_nothing_left(mnt):
    """No mount at all, not a dead one: auto_unmount's watcher removes it
    once omikeyfs has exited."""
    wait_for(lambda: mountinfo(mnt) is None, what="the mount to go")
    assert os.listdir(mnt) == []  # ENOTCONN if a dead mount were left


def test_drop_privileges_mount_with_a_refused_token_leaves_nothing(api, fuse3_host, tmp_path):
    skip_without_auto_unmount()
    mnt = str(tmp_path / "mnt")
    os.mkdir(mnt)
    key_file = write_key_file(tmp_path / "token", token="omi_dev_not_this_one")
    r = drop_privileges_mount(fuse3_host, api, mnt, key_file)
    assert r.returncode == 2, r
    assert r.stderr == ("omikeyfs: cannot fetch the key list from %s: HTTP 401: "
                        "Invalid authentication credentials%s\n" % (api.url, DEV_KEY_HINT))
    assert api.requests() == 1
    assert_nothing_left(mnt)


def test_drop_privileges_allow_other_needs_default_permissions(api, fuse3_host, tmp_path):
    """The kernel mount is made before omikeyfs runs, with the options given:
    allow_other without default_permissions would skip the mode checks."""
    skip_without_auto_unmount()
    mnt = str(tmp_path / "mnt")
    os.mkdir(mnt)
    key_file = write_key_file(tmp_path / "token")
    r = drop_privileges_mount(fuse3_host, api, mnt, key_file, ",allow_other")
    assert r.returncode == 1, r
    assert re.fullmatch(r"omikeyfs: mountpoint /dev/fd/\d+: allow_other needs "
                        r"default_permissions .*\n", r.stderr), r.stderr
    assert api.requests() == 0
    assert_nothing_left(mnt)


# ---------------------------------------------------------------------------
# 4. uid=, gid=, umask=

@pytest.mark.parametrize("opts, uid, gid, dmode, fmode", [
    ([], 0, 0, 0o555, 0o444),
    (["uid=1234", "gid=4242", "umask=027"], 1234, 4242, 0o550, 0o440),
    (["umask=0222"], 0, 0, 0o555, 0o444),
    (["uid=4294967294", "gid=0", "umask=0777"], 4294967294, 0, 0, 0),
], ids=["default", "027", "0222", "limits"])
def test_owner_group_and_modes(opts, uid, gid, dmode, fmode, start):
    keys = make_keys(3, seed=105)
    m = start(keys, opts=opts)
    assert os.getuid() == 0  # the mounting user
    root = os.stat(m.mnt)
    assert (stat.S_IFMT(root.st_mode), stat.S_IMODE(root.st_mode)) == (stat.S_IFDIR, dmode)
    assert (root.st_uid, root.st_gid) == (uid, gid)
    for k in keys:
        d = os.path.join(m.mnt, k["id"])
        st = os.stat(d)
        assert (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (
            stat.S_IFDIR, dmode, uid, gid)
        for f in expected_files(k):
            st = os.stat(os.path.join(d, f))
            assert (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid,
                    st.st_gid) == (stat.S_IFREG, fmode, uid, gid)
    assert tree(m.mnt) == expected_tree(keys)  # root reads whatever the modes


def as_user(uid, gid, *argv):
    return run("setpriv", "--reuid=%d" % uid, "--regid=%d" % gid, "--clear-groups", "--",
               *argv)


def test_allow_other_shares_the_tree_with_one_group(shared_dir, start):
    if not shutil.which("setpriv"):
        pytest.skip("setpriv (util-linux) is not installed")
    keys = make_keys(2, seed=106)
    m = start(keys, opts=["allow_other", "gid=%d" % GROUP, "umask=027"], where=shared_dir)
    name = os.path.join(m.mnt, keys[0]["id"], "name")

    r = as_user(MEMBER_UID, GROUP, "ls", m.mnt)
    assert (r.returncode, sorted(r.stdout.split())) == (0, sorted(k["id"] for k in keys)), r
    r = as_user(MEMBER_UID, GROUP, "cat", name)
    assert (r.returncode, r.stdout) == (0, keys[0]["name"] + "\n"), r

    for argv in (["ls", m.mnt], ["cat", name]):
        r = as_user(OUTSIDER_UID, OUTSIDER_UID, *argv)
        assert r.returncode != 0 and "Permission denied" in r.stderr, r
    # The same outsider may read a tree shared with everyone.
    m2 = start(keys, opts=["allow_other"], where=shared_dir)
    r = as_user(OUTSIDER_UID, OUTSIDER_UID, "cat", os.path.join(m2.mnt, keys[0]["id"], "name"))
    assert (r.returncode, r.stdout) == (0, keys[0]["name"] + "\n"), r


@pytest.mark.parametrize("opt, expected", [
    ("uid=-1", "a number from 0 to 4294967294"),
    ("uid=4294967295", "a number from 0 to 4294967294"),
    ("uid=12x", "a number from 0 to 4294967294"),
    ("uid=+5", "a number from 0 to 4294967294"),
    ("gid=", "a number from 0 to 4294967294"),
    ("gid=0x10", "a number from 0 to 4294967294"),
    ("umask=0778", "an octal mode from 0 to 0777"),
    ("umask=1000", "an octal mode from 0 to 0777"),
    ("umask=8", "an octal mode from 0 to 0777"),
    ("umask=-1", "an octal mode from 0 to 0777"),
])
def test_owner_options_are_checked(opt, expected, api, tmp_path):
    mnt = str(tmp_path / "mnt")
    os.mkdir(mnt)
    r = run(BIN, "-f", "-o", opt, api.url, mnt, env=dict(os.environ, OMI_API_KEY=TOKEN))
    assert (r.returncode, r.stdout, r.stderr) == (
        1, "", "omikeyfs: invalid %s (expected %s)\n" % (opt, expected))
    assert not os.path.ismount(mnt)
    assert api.requests() == 0


# ---------------------------------------------------------------------------
# 5. fsname, statfs and df, --help

def test_fsname_is_the_api_url(start, api):
    m = start(make_keys(1, seed=107))
    assert mountinfo(m.mnt)["source"] == api.url
    with open("/proc/mounts") as f:
        assert "%s %s fuse.omikeyfs " % (api.url, m.mnt) in f.read()
    m2 = start(make_keys(1, seed=107), opts=["fsname=omi-keys"])
    assert mountinfo(m2.mnt)["source"] == "omi-keys"


def df_rows(*args):
    r = run("df", *args, "--output=source,target")
    # Another mount on the machine may be dead (df then exits 1 naming it);
    # this mount must never be among df's complaints.
    errors = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 0 or (errors and all(
        "Transport endpoint is not connected" in e or "connection abort" in e
        for e in errors)), r.stderr
    return [line.split() for line in r.stdout.splitlines()[1:]]


def test_statfs_has_no_blocks_so_df_lists_the_mount_only_with_a(start, api):
    keys = make_keys(5, seed=108)
    m = start(keys)
    sv = os.statvfs(m.mnt)
    assert (sv.f_blocks, sv.f_bfree, sv.f_bavail) == (0, 0, 0)
    assert sv.f_files == 1 + len(keys) * 6
    assert [api.url, m.mnt] not in df_rows()
    assert [api.url, m.mnt] in df_rows("-a")


def test_help_lists_each_option_once():
    r = run(BIN, "--help")
    assert (r.returncode, r.stderr) == (0, "")
    for flag in ("-h", "-V", "-f", "-d", "-s"):
        rows = [line for line in r.stdout.splitlines() if re.match(r"\s+%s\b" % flag, line)]
        assert len(rows) == 1, (flag, rows)
    for word in ("log_level=", "uid=", "gid=", "umask=", "fsname=", "NOTIFY_SOCKET",
                 "JOURNAL_STREAM", "/dev/fd/N", "auto_unmount"):
        assert word in r.stdout, word
