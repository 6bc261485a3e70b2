"""The last good list kept on disk (-o cache_dir): what is written and how,
starting while the API is down, and mtimes that survive a remount.

Each test keeps its lists in a cache_dir of its own under tmp_path; every
mount is real, against the fake API in fixed-bearer mode.
"""
import os
import signal
import stat
import subprocess
import time

import pytest

from conftest import TOKEN, Mount, expected_files, make_keys, run, tree, wait_for

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
