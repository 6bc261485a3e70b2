"""The last good list kept on disk (-o cache_dir): what is written and how,
starting while the API is down, and mtimes that survive a remount.

Each test keeps its lists in a cache_dir of its own under tmp_path; every
mount is real, against the fake API in fixed-bearer mode.
"""
import errno
import hashlib
import os
import re
import shutil
import signal
import stat
import subprocess
import time

import pytest

from conftest import TOKEN, Mount, expected_files, make_keys, run, tree, wait_for
from test_login import auth_mount, default_session, env, read_session, sign_in  # noqa: F401

OTHER_TOKEN = "omi_dev_other_token_90ad7c3e"


def expected_tree(keys):
    return {k["id"]: expected_files(k) for k in keys}


def kept_files(d):
    return sorted(n for n in os.listdir(d) if n.startswith("list-"))


def kept_path(d):
    names = kept_files(d)
    assert len(names) == 1, names
    return os.path.join(d, names[0])


# What the failures these tests provoke print.
REFUSED_DIR = r"^omikeyfs: cache(_dir| file) \S+: group or others may read or write it \(mode [0-7]+\); chmod [67]00 it$"
FETCH_FAILED = r"^omikeyfs: cannot fetch the key list from \S+: HTTP (401|503): "
IGNORED = r"^omikeyfs: ignoring the kept list \S+: "
SERVED_KEPT = r"^omikeyfs: cannot fetch the key list: .*; serving the list kept from \S+ \(stale\) until the API answers$"
HEALED = r"^omikeyfs: fetching the key list works again after \d+ failed tries?$"

def keep(mount, d, keys, **kw):
    """Mount once with cache_dir=d so that keys are kept; returns what the
    mount showed: (tree, fetched_at xattr, {path: st_mtime_ns})."""
    m = mount(keys, opts=["cache_dir=" + d], **kw)
    shown = tree(m.mnt), m.xattr("fetched_at"), mtimes(m.mnt)
    m.unmount()
    return shown


def mtimes(mnt):
    """st_mtime_ns of the root and everything under it, by relative path."""
    out = {".": os.stat(mnt).st_mtime_ns}
    for top, dirs, files in os.walk(mnt):
        for name in dirs + files:
            path = os.path.join(top, name)
            out[os.path.relpath(path, mnt)] = os.stat(path).st_mtime_ns
    return out


def attempt(api, tmp_path, opts, token=TOKEN, url=None, name="fail", expect=()):
    """Run omikeyfs where mounting must fail: (exit status, stderr).  expect:
    the stderr lines (regexes) that failure may print; any other fails."""
    mnt = str(tmp_path / name)
    os.mkdir(mnt)
    m = Mount(url or api.url, mnt, opts=["timeout=5"] + list(opts), token=token, wait=False,
              expect_stderr=expect)
    try:
        rc = m.proc.wait(30)
    finally:
        m.kill()
    assert not os.path.ismount(mnt)
    m.check_stderr()
    return rc, m.stderr()


def lines(stderr):
    return [line for line in stderr.splitlines() if line.strip()]


# ---- what is written ---------------------------------------------------------

def test_kept_list_private_and_without_token(api, mount, tmp_path):
    d = str(tmp_path / "made" / "omikeyfs")
    keys = make_keys(5, seed=301)
    keep(mount, d, keys)
    for path in (str(tmp_path / "made"), d):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o700, path
    names = os.listdir(d)
    assert sorted(names) == sorted(["salt"] + kept_files(d)), names
    assert len(kept_files(d)) == 1
    for name in names:
        st = os.lstat(os.path.join(d, name))
        assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600, name
        with open(os.path.join(d, name), "rb") as f:
            data = f.read()
        assert TOKEN.encode() not in data, name
        assert TOKEN.encode() not in name.encode()
    res = run("grep", "-rF", TOKEN, d)
    assert res.returncode == 1, res.stdout
    with open(kept_path(d), "rb") as f:
        data = f.read()
    for key in keys:
        assert key["id"].encode() in data


@pytest.mark.parametrize("what", ["dir", "file"])
def test_cache_readable_by_others_refused(api, mount, tmp_path, what):
    d = str(tmp_path / "c")
    keys = make_keys(2, seed=302)
    if what == "dir":
        os.mkdir(d)
        os.chmod(d, 0o755)
    else:
        keep(mount, d, keys)
        os.chmod(kept_path(d), 0o644)
    rc, stderr = attempt(api, tmp_path, ["cache_dir=" + d], expect=[REFUSED_DIR])
    assert rc == 1, stderr
    out = lines(stderr)
    assert len(out) == 1 and out[0].startswith("omikeyfs: ") and \
        "group or others" in out[0], stderr


def test_no_cache_writes_nothing(api, mount, tmp_path):
    d = str(tmp_path / "never")
    xdg = str(tmp_path / "xdg")
    os.mkdir(xdg)
    m = mount(make_keys(3, seed=303), opts=["cache_dir=" + d, "no_cache"],
              env={"XDG_CACHE_HOME": xdg})
    tree(m.mnt)
    m.unmount()
    assert not os.path.exists(d)
    assert os.listdir(xdg) == []


def test_default_cache_dir_is_xdg(api, mount, tmp_path):
    xdg = str(tmp_path / "xdg")
    m = mount(make_keys(2, seed=304), env={"XDG_CACHE_HOME": xdg})
    m.unmount()
    assert len(kept_files(os.path.join(xdg, "omikeyfs"))) == 1


# ---- offline start -----------------------------------------------------------

@pytest.mark.parametrize("fault", [dict(status=503, body={"detail": "backend down"}),
                                   dict(reset=True)], ids=["503", "reset"])
def test_offline_start_serves_kept_list(api, mount, tmp_path, fault):
    d = str(tmp_path / "c")
    keys = make_keys(20, seed=305)
    shown, fetched_at, times = keep(mount, d, keys)
    assert shown == expected_tree(keys)

    api.fault(**fault)
    m = mount(opts=["cache_dir=" + d], expect_stderr=[SERVED_KEPT, HEALED])
    assert tree(m.mnt) == shown
    assert mtimes(m.mnt) == times
    assert m.xattr("stale") == "1"
    assert m.xattr("fetched_at") == fetched_at
    error = m.xattr("last_error")
    assert error and ("503" in error if "status" in fault else True), error
    out = [line for line in lines(m.stderr()) if "list kept from" in line]
    assert len(out) == 1 and error in out[0], m.stderr()

    # The API is back: SIGHUP, and the mount is fresh again.
    api.clear()
    before = api.requests()
    m.sighup()
    wait_for(lambda: m.xattr("stale") == "0", what="stale to clear")
    assert api.requests() > before
    assert m.xattr("last_error") == ""
    assert tree(m.mnt) == shown


def test_refused_token_exits_2_despite_kept_list(api, mount, tmp_path):
    d = str(tmp_path / "c")
    keep(mount, d, make_keys(3, seed=306))
    api.fault(status=401, body={"detail": "Invalid authentication credentials"})
    rc, stderr = attempt(api, tmp_path, ["cache_dir=" + d], expect=[FETCH_FAILED, IGNORED])
    assert rc == 2, stderr
    assert "list kept from" not in stderr


def test_no_kept_list_exits_3(api, tmp_path):
    api.fault(status=503)
    rc, stderr = attempt(api, tmp_path, ["cache_dir=" + str(tmp_path / "c")], expect=[FETCH_FAILED, IGNORED])
    assert rc == 3, stderr


def test_damaged_kept_list_exits_3_then_replaced(api, mount, tmp_path):
    d = str(tmp_path / "c")
    keys = make_keys(4, seed=307)
    keep(mount, d, keys)
    path = kept_path(d)
    size = os.path.getsize(path)
    os.truncate(path, size // 2)
    api.fault(status=503)
    rc, stderr = attempt(api, tmp_path, ["cache_dir=" + d], expect=[FETCH_FAILED, IGNORED])
    assert rc == 3, stderr
    ignored = [line for line in lines(stderr) if "ignoring the kept list" in line]
    assert len(ignored) == 1, stderr
    # The next good fetch replaces it.
    api.clear()
    keep(mount, d, keys, expect_stderr=[IGNORED])
    assert os.path.getsize(path) == size


def test_other_urls_list_not_used(api, mount, tmp_path):
    d = str(tmp_path / "c")
    keys = make_keys(3, seed=308)
    keep(mount, d, keys)
    first = kept_files(d)
    other = "http://localhost:%d" % api.port
    api.fault(status=503)
    rc, stderr = attempt(api, tmp_path, ["cache_dir=" + d], url=other, expect=[FETCH_FAILED, IGNORED])
    assert rc == 3, stderr

    # Even a file in that URL's place, but written for the first, is refused.
    api.clear()
    keep(mount, d, keys, url=other)
    second = [n for n in kept_files(d) if n not in first]
    assert len(second) == 1
    os.replace(os.path.join(d, first[0]), os.path.join(d, second[0]))
    api.fault(status=503)
    rc, stderr = attempt(api, tmp_path, ["cache_dir=" + d], url=other, name="fail2", expect=[FETCH_FAILED, IGNORED])
    assert rc == 3, stderr
    assert "another URL" in stderr


def test_other_credentials_list_not_used(api, mount, tmp_path):
    d = str(tmp_path / "c")
    keys = make_keys(3, seed=309)
    keep(mount, d, keys)
    first = kept_files(d)
    api.control("token", {"token": OTHER_TOKEN})
    api.fault(status=503)
    rc, stderr = attempt(api, tmp_path, ["cache_dir=" + d], token=OTHER_TOKEN, expect=[FETCH_FAILED, IGNORED])
    assert rc == 3, stderr

    api.clear()
    keep(mount, d, keys, token=OTHER_TOKEN)
    second = [n for n in kept_files(d) if n not in first]
    assert len(second) == 1
    for name in os.listdir(d):
        with open(os.path.join(d, name), "rb") as f:
            assert OTHER_TOKEN.encode() not in f.read()
    os.replace(os.path.join(d, first[0]), os.path.join(d, second[0]))
    api.fault(status=503)
    rc, stderr = attempt(api, tmp_path, ["cache_dir=" + d], token=OTHER_TOKEN, name="fail2", expect=[FETCH_FAILED, IGNORED])
    assert rc == 3, stderr
    assert "another credential" in stderr


# ---- mtimes across remounts --------------------------------------------------

def test_unchanged_mtimes_survive_remount(api, mount, tmp_path):
    d = str(tmp_path / "c")
    keys = make_keys(10, seed=310)
    m = mount(keys, opts=["cache_dir=" + d])
    # Changes seen while mounted: a renamed key and a new one (the root's
    # mtime becomes the time the key appeared).
    changed = [dict(k) for k in keys]
    changed[0]["name"] = changed[0]["name"] + " (renamed)"
    changed.append(make_keys(1, seed=311)[0])
    seen = time.time_ns()
    api.set_keys(changed)
    m.sighup()
    # The listing changes at the swap; the root's cached attributes once
    # the notifier has told the kernel, a moment later.
    wait_for(lambda: len(os.listdir(m.mnt)) == len(changed)
             and os.stat(m.mnt).st_mtime_ns >= seen, what="the new key")
    with open(os.path.join(m.mnt, changed[0]["id"], "name"), "rb") as f:
        assert f.read() == expected_files(changed[0])["name"]
    before = mtimes(m.mnt)
    m.unmount()
    name_file = os.path.join(changed[0]["id"], "name")
    created = os.path.join(changed[0]["id"], "created_at")
    assert before[name_file] != before[created]   # a time omikeyfs saw, not created_at

    m = mount(opts=["cache_dir=" + d])
    assert mtimes(m.mnt) == before
    m.unmount()


def test_change_while_unmounted_reaches_rsync(api, mount, tmp_path):
    d = str(tmp_path / "c")
    backup = str(tmp_path / "backup")
    keys = make_keys(6, seed=312)
    m = mount(keys, opts=["cache_dir=" + d])
    res = run("rsync", "-a", m.mnt + "/", backup + "/")
    assert res.returncode == 0, res.stderr
    before = mtimes(m.mnt)
    m.unmount()

    # Renamed to a name of the same length while nothing was mounted.
    renamed = [dict(k) for k in keys]
    old = renamed[2]["name"]
    renamed[2]["name"] = old[:-1] + ("x" if old[-1] != "x" else "y")
    assert len(renamed[2]["name"]) == len(old)
    api.set_keys(renamed)

    m = mount(opts=["cache_dir=" + d])
    after = mtimes(m.mnt)
    name_file = os.path.join(renamed[2]["id"], "name")
    assert after[name_file] != before[name_file]
    assert {p: t for p, t in after.items() if p != name_file} == \
        {p: t for p, t in before.items() if p != name_file}
    res = run("rsync", "-a", "--itemize-changes", m.mnt + "/", backup + "/")
    assert res.returncode == 0, res.stderr
    assert name_file in res.stdout, res.stdout
    with open(os.path.join(backup, name_file), "rb") as f:
        assert f.read() == expected_files(renamed[2])["name"]
    res = run("rsync", "-a", "--itemize-changes", m.mnt + "/", backup + "/")
    assert res.returncode == 0 and res.stdout == "", res.stdout
    m.unmount()


# ---- whose list a kept file is -----------------------------------------------

ROTATED = r"^omikeyfs: the API refused the token; retrying with the new one in \S+$"


def write_key_file(path, token):
    """Replace the key file at once, as a rotation would."""
    tmp = path + ".new"
    with open(tmp, "w") as f:
        f.write(token + "\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def test_kept_list_follows_a_key_file_rotated_to_another_account(api, mount, tmp_path):
    """The token in the key file is replaced by another account's: the list
    fetched with it is kept as that token's, and each token's offline start
    shows its own account's list, never the other's."""
    d = str(tmp_path / "c")
    path = str(tmp_path / "token")
    write_key_file(path, TOKEN)
    first, second = make_keys(3, seed=320), make_keys(2, seed=321)
    opts = ["cache_dir=" + d, "key_file=" + path]
    m = mount(first, token=None, opts=opts, expect_stderr=[ROTATED])
    assert tree(m.mnt) == expected_tree(first)
    write_key_file(path, OTHER_TOKEN)
    api.control("token", {"token": OTHER_TOKEN})
    api.set_keys(second)
    m.sighup()
    wait_for(lambda: tree(m.mnt) == expected_tree(second), what="the other account's list",
             ignore=(FileNotFoundError,))
    m.unmount()
    assert len(kept_files(d)) == 2

    api.fault(status=503)
    for token, keys in ((TOKEN, first), (OTHER_TOKEN, second)):
        write_key_file(path, token)
        m = mount(token=None, opts=opts, expect_stderr=[SERVED_KEPT, HEALED])
        assert tree(m.mnt) == expected_tree(keys), token
        assert m.xattr("stale") == "1"
        m.unmount()


def user_kept_name(list_url, uid):
    """A signed-in user's kept file: named by the URL and the user id alone."""
    digest = hashlib.sha256(("%s\nuser:%s" % (list_url, uid)).encode()).hexdigest()
    return "list-" + digest[:32]


ENDED = "the Omi account is disabled (USER_DISABLED); sign in again with omikeyfs --login"


def test_kept_list_follows_a_session_healed_by_another_account(auth_api, env, auth_mount,
                                                                tmp_path, chromium):
    """alice's session ends, bob signs in and the mount heals with his: his
    list is kept as his, and alice's offline start shows hers."""
    d = str(tmp_path / "c")
    session = str(tmp_path / "s" / "session.json")
    alice_copy = str(tmp_path / "a" / "session.json")
    alice, bob = make_keys(3, seed=330), make_keys(2, seed=331)
    auth_api.set_user_keys("alice", alice)
    auth_api.set_user_keys("bob", bob)
    auth_api.set_user("alice")
    sign_in(auth_api, env, chromium, opts=["session_file=" + session])
    os.mkdir(os.path.dirname(alice_copy), 0o700)
    shutil.copy(session, alice_copy)
    opts = ["cache_dir=" + d, "session_file=" + session]
    m = auth_mount(opts=opts, ttl=0.3)
    assert tree(m.mnt) == expected_tree(alice)

    auth_api.firebase.disable_user("alice")
    auth_api.set_token_lifetime(1)  # the next refresh needs a renewal
    m.expect_stderr(r"^omikeyfs: fetching the key list failed: %s; serving the last good "
                    r"list$" % re.escape(ENDED), HEALED)
    wait_for(lambda: m.xattr("stale") == "1", timeout=30, what="the ended session")
    auth_api.set_token_lifetime(None)
    auth_api.set_user("bob")
    sign_in(auth_api, env, chromium, opts=["session_file=" + session])
    m.sighup()
    wait_for(lambda: tree(m.mnt) == expected_tree(bob), timeout=30, what="bob's list",
             ignore=(FileNotFoundError,))
    m.unmount()

    list_url = auth_api.url + "/v1/dev/keys"
    assert sorted(kept_files(d)) == sorted([user_kept_name(list_url, "alice"),
                                            user_kept_name(list_url, "bob")])
    for uid, keys in (("alice", alice), ("bob", bob)):
        with open(os.path.join(d, user_kept_name(list_url, uid)), "rb") as f:
            data = f.read()
        assert b"\ncredential user:%s\n" % uid.encode() in data
        assert all(k["id"].encode() in data for k in keys), uid

    # alice, enabled again, starts offline with her own list.
    auth_api.firebase.enable_user("alice")
    auth_api.fault(status=503)
    m = auth_mount(opts=["cache_dir=" + d, "session_file=" + alice_copy],
                   expect_stderr=[SERVED_KEPT, HEALED])
    assert tree(m.mnt) == expected_tree(alice)


def test_renewal_as_another_user_is_refused(auth_api, env, tmp_path, chromium):
    """A session file naming alice whose refresh token is bob's: Firebase
    renews it as bob, which is refused before his ID token lists anything."""
    alice_file, bob_file = str(tmp_path / "a" / "s.json"), str(tmp_path / "b" / "s.json")
    auth_api.set_user("alice")
    sign_in(auth_api, env, chromium, opts=["session_file=" + alice_file])
    auth_api.set_user("bob")
    sign_in(auth_api, env, chromium, opts=["session_file=" + bob_file])
    mixed = read_session(alice_file)
    mixed["refresh_token"] = read_session(bob_file)["refresh_token"]
    path = str(tmp_path / "m" / "s.json")
    os.mkdir(os.path.dirname(path), 0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        import json
        json.dump(mixed, f)
    auth_api.control("reset", {})  # an empty request log
    want = ("omikeyfs: cannot fetch the key list from %s: Firebase renewed the session as "
            "another user than the session file's (alice); sign in again with omikeyfs "
            "--login" % auth_api.url)
    mnt = str(tmp_path / "mnt")
    os.mkdir(mnt)
    m = Mount(auth_api.url, mnt, opts=["timeout=5", "session_file=" + path,
                                       "cache_dir=" + str(tmp_path / "c")],
              env=env, token=None, wait=False, expect_stderr=["^" + re.escape(want) + "$"])
    try:
        rc = m.proc.wait(30)
    finally:
        m.kill()
    assert not os.path.ismount(mnt)
    assert (rc, lines(m.stderr())) == (2, [want])
    assert [e for e in auth_api.request_log() if e["path"] == "/v1/dev/keys"] == []
    assert read_session(path) == mixed


# ---- a default cache_dir that cannot be used ---------------------------------

@pytest.fixture
def full_tmpfs(tmp_path):
    """A small tmpfs, filled up: every write to it fails with ENOSPC."""
    d = str(tmp_path / "full")
    os.mkdir(d, 0o700)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "omikeyfs-full", d],
                   check=True)
    try:
        fd = os.open(os.path.join(d, "filler"), os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while True:
                os.write(fd, b"x" * 4096)
        except OSError as e:
            assert e.errno == errno.ENOSPC
        finally:
            os.close(fd)
        yield d
    finally:
        subprocess.run(["umount", d], check=True)


@pytest.mark.parametrize("var", ["XDG_CACHE_HOME", "HOME"])
def test_full_disk_under_the_default_cache_dir_does_not_stop_a_mount(api, mount, full_tmpfs,
                                                                     var):
    env = {"XDG_CACHE_HOME": full_tmpfs} if var == "XDG_CACHE_HOME" else \
        {"XDG_CACHE_HOME": "", "HOME": full_tmpfs}
    keys = make_keys(3, seed=340)
    warning = (r"^omikeyfs: cache_dir %s/\S*omikeyfs: .*No space left on device; keeping no "
               r"list \(set -o cache_dir= or no_cache\)$" % re.escape(full_tmpfs))
    m = mount(keys, env=env, expect_stderr=[warning])
    assert tree(m.mnt) == expected_tree(keys)
    m.unmount()
    assert len([line for line in lines(m.stderr()) if re.search(warning, line)]) == 1


@pytest.mark.parametrize("how", ["file", "dir"])
def test_default_cache_dir_open_to_others_does_not_stop_a_mount(api, mount, tmp_path, how):
    """Warned about and not used: neither read nor written."""
    xdg = str(tmp_path / "xdg")
    d = os.path.join(xdg, "omikeyfs")
    keys = make_keys(2, seed=341)
    keep(mount, d, keys)
    before = {n: open(os.path.join(d, n), "rb").read() for n in os.listdir(d)}
    os.chmod(d, 0o755) if how == "dir" else os.chmod(kept_path(d), 0o644)
    api.set_keys(make_keys(4, seed=342))
    m = mount(env={"XDG_CACHE_HOME": xdg}, expect_stderr=[
        r"^omikeyfs: cache(_dir| file) %s\S*: group or others may read or write it \(mode "
        r"[0-7]+\); chmod [67]00 it; keeping no list \(set -o cache_dir= or no_cache\)$"
        % re.escape(d)])
    assert len(os.listdir(m.mnt)) == 4
    m.unmount()
    assert {n: open(os.path.join(d, n), "rb").read() for n in os.listdir(d)} == before


# ---- a kept file larger than max_size ----------------------------------------

def test_kept_list_of_a_body_larger_than_max_size_is_not_served(api, mount, tmp_path):
    """max_size refuses such a list from the API; from a kept file neither."""
    d = str(tmp_path / "c")
    keys = make_keys(40, seed=350)
    keep(mount, d, keys)
    assert os.path.getsize(kept_path(d)) > 4096
    api.fault(status=503)
    rc, stderr = attempt(api, tmp_path, ["cache_dir=" + d, "max_size=4096"],
                         expect=[FETCH_FAILED, IGNORED])
    assert rc == 3, stderr
    ignored = [line for line in lines(stderr) if re.search(IGNORED, line)]
    assert len(ignored) == 1 and "max_size" in ignored[0], stderr


def peak_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM for pid %d" % pid)


def test_huge_kept_file_is_not_read(api, mount, tmp_path):
    """A 256 MiB kept file (sparse: no disk) under the default max_size of
    64 MiB: refused by its size, before a byte of it is in memory."""
    d = str(tmp_path / "c")
    keys = make_keys(3, seed=351)
    keep(mount, d, keys)
    huge = 256 << 20
    os.truncate(kept_path(d), huge)
    m = mount(keys, opts=["cache_dir=" + d], expect_stderr=[
        r"^omikeyfs: ignoring the kept list %s/list-[0-9a-f]+: %d bytes, more than a list of "
        r"max_size \(67108864\) takes$" % (re.escape(d), huge)])
    assert tree(m.mnt) == expected_tree(keys)
    assert peak_rss_kib(m.pid) * 1024 < huge // 2
    assert "ignoring the kept list" in m.stderr()
    m.unmount()
