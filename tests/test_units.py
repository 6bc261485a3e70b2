"""The systemd units, the backup script and mount.omikeyfs, for real.

The units are checked as meson installs them (a staged `meson install` of
the build under test) with systemd-analyze verify; the scripts run against
real omikeyfs mounts of the fake API.
"""
import os
import re
import shutil
import shlex
import signal
import socket
import stat
import subprocess

import pytest

from conftest import (BIN, ROOT, TOKEN, expected_files, make_keys, meson_build_dir, run, tree,
                      wait_for)

BACKUP = os.path.join(ROOT, "systemd", "omikeyfs-backup")
MOUNT_HELPER = os.path.join(ROOT, "util", "mount.omikeyfs")
SYSTEM_UNITS = ["omikeyfs@.service", "omikeyfs-backup.service", "omikeyfs-backup.timer"]
USER_UNITS = ["omikeyfs.service"]
INSTANCE = r"mnt-omi\x2dkeys"

# Settings that give a service a mount namespace of its own (systemd's
# exec_needs_mount_namespace()), in which a FUSE mount would stay invisible.
NAMESPACING = ["ProtectSystem", "ProtectHome", "PrivateTmp", "PrivateDevices", "PrivateMounts",
               "ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs",
               "ProtectControlGroups", "ProtectProc", "ProcSubset", "ProtectHostname",
               "ReadOnlyPaths", "ReadWritePaths", "InaccessiblePaths", "ExecPaths",
               "NoExecPaths", "TemporaryFileSystem", "BindPaths", "BindReadOnlyPaths",
               "RootDirectory", "RootImage", "MountFlags", "DynamicUser", "PrivateIPC",
               "LogNamespace", "MountAPIVFS"]


def unit_settings(path):
    """{key: [values]} of a unit file, sections ignored."""
    out = {}
    for line in open(path):
        line = line.strip()
        if not line or line[0] in "#;[":
            continue
        key, _, value = line.partition("=")
        out.setdefault(key, []).append(value)
    return out


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    """The build under test installed into a throwaway root."""
    build = meson_build_dir()
    if not build:
        pytest.skip("OMIKEYFS_BIN is not in a meson build directory")
    dest = str(tmp_path_factory.mktemp("stage"))
    r = run("meson", "install", "-C", build, "--destdir", dest, "--no-rebuild", "--quiet",
            timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return dest


def find_installed(root, name):
    for d, _, files in os.walk(root):
        if name in files:
            return os.path.join(d, name)
    raise AssertionError("%s not installed under %s" % (name, root))


def verify_units(root, system, user, tmp_path):
    """systemd-analyze verify on units installed under root, with their
    absolute paths pointed into root (verify wants ExecStart= to exist)."""
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze not installed")
    work = tmp_path / "units"
    work.mkdir()
    prefix = None
    for name in system + user:
        text = open(find_installed(root, name)).read()
        m = re.search(r"^ExecStart=(/\S+)/(bin|libexec)/", text, re.M)
        if m:
            prefix = m.group(1)
        # A template is verified as one instance of it.
        out = name.replace("@.", "@%s." % INSTANCE)
        (work / out).write_text(text)
    assert prefix, "no ExecStart= under a prefix"
    for name in os.listdir(work):
        p = work / name
        text = p.read_text()
        for path in re.findall(r"^Exec\w+=[-@:+!]*(\S+)", text, re.M):
            inside = root + path if path.startswith(prefix + "/") else path
            assert os.access(inside, os.X_OK), "%s: %s is not installed" % (name, path)
        p.write_text(text.replace(prefix + "/", root + prefix + "/"))
    env = dict(os.environ, MANPATH=os.path.join(root + prefix, "share", "man"),
               XDG_RUNTIME_DIR=str(tmp_path))
    sys_units = [n.replace("@.", "@%s." % INSTANCE) for n in system]
    for args in (sys_units, ["--user"] + user):
        r = run("systemd-analyze", "verify", *args, cwd=str(work), env=env)
        assert r.returncode == 0 and not r.stderr.strip(), r.stdout + r.stderr


def test_installed_units_verify(staged, tmp_path):
    verify_units(staged, SYSTEM_UNITS, USER_UNITS, tmp_path)


def test_system_unit_keeps_the_host_mount_namespace():
    """No setting that would give omikeyfs@ a private mount namespace."""
    settings = unit_settings(os.path.join(ROOT, "systemd", "omikeyfs@.service.in"))
    found = sorted(set(settings) & set(NAMESPACING))
    assert not found, "omikeyfs@.service would mount in a namespace of its own: %s" % found
    assert settings["Type"] == ["notify"]
    assert settings["LoadCredential"] == ["token:/etc/omikeyfs/%I.token"]
    assert settings["EnvironmentFile"] == ["-/etc/omikeyfs/%I.env"]
    assert settings["RestartPreventExitStatus"] == ["1 2 243"]
    assert "/dev/fuse rw" in settings["DeviceAllow"]


def test_mount_in_a_private_namespace_is_invisible_outside(api, tmp_path):
    """Why the rule above: what systemd's namespacing does to a FUSE mount."""
    if not shutil.which("unshare"):
        pytest.skip("unshare not installed")
    # In a chroot whose / is no mount point of its own, unshare cannot make
    # the copy a slave ("cannot change root filesystem propagation").
    probe = run("unshare", "-m", "--propagation", "slave", "true")
    if probe.returncode != 0:
        pytest.skip("unshare --propagation slave fails here: %s" % probe.stderr.strip())
    api.set_keys(make_keys(2))
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    # The namespace holds the mount while its shell waits for stdin to close.
    script = ('"$0" -o ttl=60 "$1" "$2" && mountpoint -q "$2" && echo inside && read x; '
              'fusermount3 -u "$2"')
    p = subprocess.Popen(["unshare", "-m", "--propagation", "slave", "sh", "-c", script,
                          BIN, api.url, str(mnt)],
                         env=dict(os.environ, OMI_API_KEY=TOKEN), stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "inside", p.stderr.read()
        assert not os.path.ismount(str(mnt))
        assert os.listdir(str(mnt)) == []
    finally:
        p.stdin.close()
        p.wait(30)


def test_stop_post_clears_a_killed_daemon(api, tmp_path):
    """omikeyfs@'s ExecStopPost=: a restart after SIGKILL finds no dead mount."""
    api.set_keys(make_keys(3))
    mnt = str(tmp_path / "mnt")
    os.mkdir(mnt)
    post = unit_settings(os.path.join(ROOT, "systemd", "omikeyfs@.service.in"))["ExecStopPost"]
    assert len(post) == 1 and post[0].startswith("-")
    # As systemd splits it: quotes, "$$" for "$", %f the mount point.
    argv = [mnt if w == "%f" else w.replace("$$", "$") for w in shlex.split(post[0][1:])]
    env = dict(os.environ, OMI_API_KEY=TOKEN)
    p = subprocess.Popen([BIN, "-f", "-o", "ttl=60", api.url, mnt], env=env,
                         stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: os.path.ismount(mnt), timeout=20, what="mount")
        p.kill()
        p.wait(20)
        with pytest.raises(OSError):
            os.listdir(mnt)  # the dead mount
        assert run(*argv).returncode == 0
        assert not os.path.ismount(mnt)
        r = run(BIN, "-o", "ttl=60", api.url, mnt, env=env)
        assert r.returncode == 0, r.stderr
        assert len(os.listdir(mnt)) == 3
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        if os.path.ismount(mnt) or run("mountpoint", "-q", mnt).returncode != 0:
            subprocess.run(["fusermount3", "-u", "-z", mnt], stderr=subprocess.DEVNULL)
    # After a clean exit it finds nothing, runs nothing and says nothing:
    # fusermount3's "failed to unmount" in the journal would look like a fault.
    r = run(*argv)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")


def system_exec_start():
    line = [v for v in unit_settings(os.path.join(ROOT, "systemd", "omikeyfs@.service.in"))
            ["ExecStart"]][0]
    return line.split()


def test_system_unit_command_line_mounts_and_notifies(api, tmp_path):
    """omikeyfs@'s ExecStart= as systemd would run it, with NOTIFY_SOCKET."""
    help_text = run(BIN, "--help").stdout + run(BIN, "--help").stderr
    missing = [w for w in ("NOTIFY_SOCKET", "umask=", "cache_dir=") if w not in help_text]
    if missing:
        pytest.skip("omikeyfs does not have %s yet" % ", ".join(missing))
    api.set_keys(make_keys(2))
    mnt = str(tmp_path / "mnt")
    os.mkdir(mnt)
    # Named as systemd names them for /mnt/omi-keys: the '\\' reaches
    # omikeyfs through the environment, never through -o.
    creds = tmp_path / ("omikeyfs@%s.service" % INSTANCE)
    creds.mkdir()
    (creds / "token").write_text(TOKEN + "\n")
    os.chmod(str(creds / "token"), 0o400)
    cache = tmp_path / INSTANCE
    cache.mkdir(mode=0o700)
    subst = {"@bindir@/omikeyfs": BIN, "%f": mnt, "$OMIKEYFS_ARGS": None,
             "$OMIKEYFS_URL": api.url}
    argv = []
    for word in system_exec_start():
        if word in subst:
            if subst[word] is not None:
                argv.append(subst[word])
            continue
        assert "$" not in word and "/" not in word, word
        argv.append(word)
    sock_path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(sock_path)
    sock.settimeout(60)
    env = {k: v for k, v in os.environ.items() if k != "OMI_API_KEY"}
    env.update(NOTIFY_SOCKET=sock_path, CREDENTIALS_DIRECTORY=str(creds),
               CACHE_DIRECTORY=str(cache))
    p = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, start_new_session=True)
    try:
        msgs = sock.recv(4096).decode().split("\n")
        assert "READY=1" in msgs
        assert os.path.ismount(mnt)
        assert len(os.listdir(mnt)) == 2
        wait_for(lambda: [n for n in os.listdir(str(cache)) if n.startswith("list-")],
                 timeout=20, what="the kept list in $CACHE_DIRECTORY")
        p.send_signal(signal.SIGTERM)
        assert "STOPPING=1" in sock.recv(4096).decode().split("\n")
        assert p.wait(30) == 0
        assert not os.path.ismount(mnt)
    finally:
        sock.close()
        if os.path.ismount(mnt):
            subprocess.run(["fusermount3", "-u", "-z", mnt])
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stderr.close()


# --- the backup script --------------------------------------------------------

def backup(mnt, dest, date, **kw):
    env = dict(os.environ, MNT=str(mnt), DEST=str(dest), DATE=date)
    return run("sh", BACKUP, env=env, **kw)


def state(top):
    """Everything about a tree that a backup must not change."""
    out = {}
    for d, dirs, files in os.walk(str(top)):
        dirs.sort()
        for name in sorted(dirs + files):
            p = os.path.join(d, name)
            st = os.lstat(p)
            data = open(p, "rb").read() if stat.S_ISREG(st.st_mode) else None
            out[os.path.relpath(p, str(top))] = (st.st_mode, st.st_ino, st.st_nlink if data is None
                                                 else None, st.st_size, st.st_mtime_ns, data)
    return out


def snapshot_state(top):
    """Like state(), but without link counts, which later snapshots raise."""
    return {k: v[:2] + v[3:] for k, v in state(top).items()}


def read_tree(top):
    return tree(str(top))


def expected_tree(keys):
    return {k["id"]: expected_files(k) for k in keys}


def refresh(m, keys):
    m.sighup()
    wait_for(lambda: tree(m.mnt) == expected_tree(keys), timeout=20, what="the new list",
             ignore=(FileNotFoundError,))


def test_backup_refuses_an_unmounted_directory(tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    dest = tmp_path / "dest"
    (dest / "2026-11-01" / "k").mkdir(parents=True)
    (dest / "2026-11-01" / "k" / "name").write_bytes(b"old\n")
    before = state(dest)
    r = backup(mnt, dest, "2026-11-02")
    assert r.returncode == 2, r.stderr
    assert "not mounted" in r.stderr
    assert state(dest) == before


def test_backup_usage_errors(tmp_path):
    dest = tmp_path / "dest"
    r = backup(tmp_path, dest, "yesterday")
    assert r.returncode == 1 and "YYYY-MM-DD" in r.stderr
    r = backup("relative/mnt", dest, "2026-11-01")
    assert r.returncode == 1
    assert not dest.exists()


def test_backup_snapshots_link_and_survive_an_empty_list(api, mount, tmp_path):
    keys = make_keys(4, seed=7)
    m = mount(keys=keys)
    dest = tmp_path / "backups"

    r = backup(m.mnt, dest, "2026-11-01")
    assert r.returncode == 0, r.stderr
    assert read_tree(dest / "2026-11-01") == expected_tree(keys)
    assert sorted(os.listdir(str(dest))) == [".snapshots", "2026-11-01"]
    assert open(str(dest / ".snapshots")).read() == "2026-11-01\n"

    # One key renamed: the next day's snapshot links everything else.
    keys[0] = dict(keys[0], name="renamed %s" % keys[0]["name"])
    api.set_keys(keys)
    refresh(m, keys)
    r = backup(m.mnt, dest, "2026-11-02")
    assert r.returncode == 0, r.stderr
    day1, day2 = dest / "2026-11-01", dest / "2026-11-02"
    assert read_tree(day2) == expected_tree(keys)
    for k in keys:
        for f in expected_files(k):
            a = os.stat(str(day1 / k["id"] / f))
            b = os.stat(str(day2 / k["id"] / f))
            if k is keys[0] and f == "name":
                assert a.st_ino != b.st_ino
            else:
                assert a.st_ino == b.st_ino, (k["id"], f)
    kept = snapshot_state(day1), snapshot_state(day2)

    # The API wrongly answers []: that day is empty, the earlier days stay.
    m.expect_stderr(r"^omikeyfs: the key list shrank from 4 to 0 keys in one refresh$")
    api.set_keys([])
    refresh(m, [])
    r = backup(m.mnt, dest, "2026-11-03")
    assert r.returncode == 0, r.stderr
    assert os.listdir(str(dest / "2026-11-03")) == []
    assert (snapshot_state(day1), snapshot_state(day2)) == kept


def test_backup_twice_a_day_replaces_only_that_day(api, mount, tmp_path):
    keys = make_keys(3, seed=8)
    m = mount(keys=keys)
    dest = tmp_path / "backups"
    assert backup(m.mnt, dest, "2026-11-01").returncode == 0
    day1 = snapshot_state(dest / "2026-11-01")
    assert backup(m.mnt, dest, "2026-11-02").returncode == 0

    keys = keys[1:]
    api.set_keys(keys)
    refresh(m, keys)
    r = backup(m.mnt, dest, "2026-11-02")
    assert r.returncode == 0, r.stderr
    assert read_tree(dest / "2026-11-02") == expected_tree(keys)
    assert snapshot_state(dest / "2026-11-01") == day1
    assert sorted(os.listdir(str(dest))) == [".snapshots", "2026-11-01", "2026-11-02"]
    assert open(str(dest / ".snapshots")).read() == "2026-11-01\n2026-11-02\n"


# The hostile local user: a real second uid.
MALLORY = 12345


def as_mallory(*argv):
    r = run("setpriv", "--reuid=%d" % MALLORY, "--regid=%d" % MALLORY, "--clear-groups",
            *argv)
    assert r.returncode == 0, (argv, r.stderr)
    return r


@pytest.fixture
def shared_dir():
    """A directory like /tmp (root's, 1777) where the hostile user can plant
    things, outside the test's private tmp_path."""
    import tempfile
    d = tempfile.mkdtemp(prefix="omikeyfs-shared-", dir="/tmp")
    os.chmod(d, 0o1777)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def nothing_written(dest):
    return not os.path.exists(dest) or \
        [n for n in os.listdir(dest) if n[0].isdigit() or n == ".snapshots"] == []


@pytest.mark.parametrize("how", ["DEST another user's", "DEST writable by others",
                                 "a directory above DEST another user's"])
def test_backup_refuses_a_dest_others_could_change(api, mount, shared_dir, how):
    m = mount(keys=make_keys(2, seed=10))
    if how == "DEST another user's":
        dest = os.path.join(shared_dir, "dest")
        as_mallory("mkdir", "-m", "700", dest)
        want = "omikeyfs-backup: DEST %s belongs to uid %d, not to uid 0; no snapshot taken" \
            % (dest, MALLORY)
    elif how == "DEST writable by others":
        dest = os.path.join(shared_dir, "dest")
        os.mkdir(dest)
        os.chmod(dest, 0o777)
        want = ("omikeyfs-backup: DEST %s may be written by group or others (mode 777); "
                "chmod go-w it" % dest)
    else:
        above = os.path.join(shared_dir, "mallory")
        as_mallory("mkdir", "-m", "755", above)
        dest = os.path.join(above, "dest")
        os.mkdir(dest, 0o700)
        want = ("omikeyfs-backup: %s, above DEST, belongs to uid %d; no snapshot taken"
                % (above, MALLORY))
    r = backup(m.mnt, dest, "2026-11-01")
    assert (r.returncode, r.stderr.splitlines()) == (1, [want])
    assert nothing_written(dest), os.listdir(dest)


def test_backup_lock_follows_no_planted_link(api, mount, shared_dir):
    """A .lock link planted while DEST was open to all is not followed
    once DEST is the user's alone: no file appears where it points."""
    m = mount(keys=make_keys(2, seed=11))
    dest = os.path.join(shared_dir, "dest")
    os.mkdir(dest)
    os.chmod(dest, 0o1777)
    target = os.path.join(shared_dir, "made-by-root")
    as_mallory("ln", "-s", target, os.path.join(dest, ".lock"))
    os.chmod(dest, 0o700)
    r = backup(m.mnt, dest, "2026-11-01")
    assert r.returncode == 0, r.stderr
    assert not os.path.lexists(target)
    assert read_tree(os.path.join(dest, "2026-11-01")) == tree(m.mnt)


def test_backup_links_only_to_snapshots_it_made(api, mount, shared_dir):
    """A 2099-12-31 directory planted in DEST (a copy of the tree, files
    and all) is no snapshot: the next one links to the script's own."""
    m = mount(keys=make_keys(3, seed=12))
    dest = os.path.join(shared_dir, "dest")
    os.mkdir(dest, 0o700)
    r = backup(m.mnt, dest, "2026-11-01")
    assert r.returncode == 0, r.stderr
    # The tree, where the hostile user may read it, copied in while DEST
    # was open to all.
    copy = os.path.join(shared_dir, "copy")
    shutil.copytree(m.mnt, copy)
    assert run("chmod", "-R", "a+rX", copy).returncode == 0
    os.chmod(dest, 0o1777)
    as_mallory("cp", "-r", copy, os.path.join(dest, "2099-12-31"))
    os.chmod(dest, 0o700)
    r = backup(m.mnt, dest, "2026-11-02")
    assert r.returncode == 0, r.stderr
    day1, day2 = os.path.join(dest, "2026-11-01"), os.path.join(dest, "2026-11-02")
    assert r.stdout.strip() == ("omikeyfs-backup: %s copied to %s (unchanged files linked "
                                "to %s)" % (m.mnt, day2, day1))
    for key in os.listdir(m.mnt):
        for f in os.listdir(os.path.join(m.mnt, key)):
            assert os.stat(os.path.join(day2, key, f)).st_ino == \
                os.stat(os.path.join(day1, key, f)).st_ino, (key, f)
    assert open(os.path.join(dest, ".snapshots")).read() == "2026-11-01\n2026-11-02\n"


@pytest.mark.parametrize("what", ["/dev/shm", "a tmpfs"])
def test_backup_refuses_a_mount_that_is_not_omikeyfs(tmp_path, what):
    dest = str(tmp_path / "dest")
    mnt = "/dev/shm"
    if what == "a tmpfs":
        mnt = str(tmp_path / "mnt")
        os.mkdir(mnt)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "omikeyfs", mnt], check=True)
    try:
        r = backup(mnt, dest, "2026-11-01")
    finally:
        if what == "a tmpfs":
            subprocess.run(["umount", mnt], check=True)
    assert (r.returncode, r.stderr.splitlines()) == (2, [
        "omikeyfs-backup: %s is not an omikeyfs mount (fuse.omikeyfs); no snapshot taken"
        % mnt])
    assert not os.path.exists(dest)


# --- mount.omikeyfs -------------------------------------------------------------

def helper_root(tmp_path, helper=MOUNT_HELPER, binary=BIN):
    """An installed layout: PREFIX/sbin/mount.omikeyfs next to PREFIX/bin."""
    root = tmp_path / "usr"
    (root / "sbin").mkdir(parents=True)
    (root / "bin").mkdir()
    shutil.copy(helper, str(root / "sbin" / "mount.omikeyfs"))
    os.symlink(binary, str(root / "bin" / "omikeyfs"))
    return str(root / "sbin" / "mount.omikeyfs")


def check_mount_helper(helper, api, tmp_path):
    """mount(8)'s argument form: SPEC DIR [-sfnv] [-o OPTIONS]."""
    keys = make_keys(3, seed=9)
    api.set_keys(keys)
    mnt = str(tmp_path / "mnt")
    os.mkdir(mnt)
    key_file = tmp_path / "token"
    key_file.write_text(TOKEN + "\n")
    os.chmod(str(key_file), 0o600)
    opts = "key_file=%s,ttl=60,_netdev,nofail,rw" % key_file

    r = run(helper, api.url, mnt, "-f", "-o", opts)
    assert r.returncode == 0, r.stderr
    assert not os.path.ismount(mnt)

    env = {k: v for k, v in os.environ.items() if k != "OMI_API_KEY"}
    r = run(helper, api.url, mnt, "-n", "-v", "-o", opts, env=env)
    assert r.returncode == 0, r.stderr
    try:
        assert os.path.ismount(mnt)
        fstype = [line.split()[2] for line in open("/proc/mounts")
                  if line.split()[1] == mnt]
        assert fstype == ["fuse.omikeyfs"]
        assert tree(mnt) == expected_tree(keys)
        pid = int(os.getxattr(mnt, "user.omikeyfs.pid"))
    finally:
        subprocess.run(["fusermount3", "-u", mnt], check=True)
    wait_for(lambda: not os.path.exists("/proc/%d" % pid), timeout=20, what="daemon exit")

    api.control("token", {"token": "another"})
    r = run(helper, api.url, mnt, "-o", opts, env=env)
    assert r.returncode == 2, r.stderr
    assert not os.path.ismount(mnt)


def test_mount_helper_mounts_like_mount8(api, tmp_path):
    check_mount_helper(helper_root(tmp_path), api, tmp_path)


def test_mount_helper_rejects_bad_arguments(tmp_path):
    helper = helper_root(tmp_path)
    assert run(helper, "https://api.omi.me").returncode == 1
    assert run(helper, "https://api.omi.me", str(tmp_path), "-x").returncode == 1
    assert run(helper, "https://api.omi.me", str(tmp_path), "-t", "nfs").returncode == 1


@pytest.mark.parametrize("where", ["source", "mount point"])
def test_mount_helper_refuses_an_argument_that_looks_like_an_option(api, tmp_path, where):
    """`-d` as the source would reach mount.fuse3, and omikeyfs, as the
    debug option (then a mount of the default URL); refused instead,
    before anything runs."""
    helper = helper_root(tmp_path)
    mnt = str(tmp_path / "mnt")
    os.mkdir(mnt)
    key_file = tmp_path / "token"
    key_file.write_text(TOKEN + "\n")
    os.chmod(str(key_file), 0o600)
    args = ["-d", mnt] if where == "source" else [api.url, "-d"]
    r = run(helper, *args, "-o", "key_file=%s,timeout=2" % key_file, cwd=str(tmp_path))
    assert r.returncode == 1, r.stderr
    assert r.stderr.splitlines() == [
        "mount.omikeyfs: the %s must not start with '-': -d" % where]
    assert not os.path.ismount(mnt)
    assert api.requests() == 0
