"""omikeyfs's core contract through a real mount against the fake API:
invocation, layout, metadata, and the basic cache behaviour (one request per
TTL, changes seen after the TTL, reads never torn).  Changes are made visible
with SIGHUP rather than by waiting for the TTL, except in the tests of the TTL
itself."""
import calendar
import errno
import glob
import os
import re
import signal
import subprocess
import threading
import time

import pytest

from conftest import (BIN, TOKEN, expected_files, make_key, make_keys, run,
                      tree, wait_for)

FIELDS = ["name", "key_prefix", "created_at", "last_used_at", "scopes"]

# Hand-made keys for the odd shapes the real API sends.
HAND = [
    make_key(id="00000000-0000-4000-8000-000000000001", name="Never used",
             created_at="2025-03-04T05:06:07.123456Z", last_used_at=None,
             scopes=["memories:read", "memories:write"]),
    make_key(id="00000000-0000-4000-8000-000000000002",
             name="Legacy Developer API key", key_prefix="omi_dev_legacy",
             created_at="2024-05-06T07:08:09Z", last_used_at="2024-06-01T00:00:00Z",
             scopes=None),
    make_key(id="00000000-0000-4000-8000-000000000003", name="No scopes",
             created_at="2025-07-08T09:10:11Z", last_used_at="2025-07-09T00:00:00.5Z",
             scopes=[]),
    make_key(id="00000000-0000-4000-8000-000000000004", name="Offset zone \u2615 caf\u00e9",
             created_at="2024-12-31T23:59:59+00:00", last_used_at="2025-01-01T10:00:00-07:00",
             scopes=["goals:read"]),
    make_key(id="00000000-0000-4000-8000-000000000005", name="No zone",
             created_at="2024-02-29T12:00:00.250000", last_used_at="2024-03-01T08:30:00",
             scopes=["conversations:read", "memories:write", "goals:write"]),
]
KEYS = make_keys(25, seed=7) + HAND

TS = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?"
                r"(Z|([+-])(\d\d):(\d\d))?$")


def ts_ns(text):
    """An RFC 3339 time (no zone read as UTC) in nanoseconds since the epoch."""
    m = TS.match(text)
    assert m, text
    secs = calendar.timegm(tuple(int(g) for g in m.groups()[:6]))
    if m.group(9):
        offset = int(m.group(10)) * 3600 + int(m.group(11)) * 60
        secs -= offset if m.group(9) == "+" else -offset
    return secs * 10**9 + int((m.group(7) or "").ljust(9, "0"))


def expected_tree(keys):
    return {k["id"]: expected_files(k) for k in keys}


def expected_mtimes(key):
    created = ts_ns(key["created_at"])
    used = ts_ns(key["last_used_at"]) if key["last_used_at"] else created
    return dict({f: created for f in FIELDS}, last_used_at=used)


def renamed(key, name):
    return dict(key, name=name)


def refresh(m, done, what="the refreshed list"):
    """kill -HUP the daemon, then poll until done() holds (a walk racing
    the refresh may meet a key that just vanished)."""
    m.sighup()
    return wait_for(done, what=what, ignore=(FileNotFoundError,))


def inode_map(mnt):
    """{relative path: (d_ino from readdir, st_ino from stat)} for every entry."""
    out = {}
    for d in os.scandir(mnt):
        out[d.name] = (d.inode(), os.stat(d.path).st_ino)
        for f in os.scandir(d.path):
            out[d.name + "/" + f.name] = (f.inode(), os.stat(f.path).st_ino)
    return out


def lines(text):
    return text.splitlines()


def ids_of(paths, mnt, suffix):
    """Key ids from tool output lines of the form MNT/ID/suffix."""
    out = set()
    for p in paths:
        assert p.startswith(mnt + "/") and p.endswith("/" + suffix), p
        out.add(p[len(mnt) + 1:-len(suffix) - 1])
    return out


# ---- layout -------------------------------------------------------------------

def test_every_file_has_exact_bytes_and_size(mount):
    m = mount(KEYS)
    assert tree(m.mnt) == expected_tree(KEYS)
    for key in KEYS:
        for field, data in expected_files(key).items():
            assert os.stat(os.path.join(m.mnt, key["id"], field)).st_size == len(data), \
                (key["id"], field)
    count = run("bash", "-c", 'ls "$1" | wc -l', "-", m.mnt)
    assert count.stdout.strip() == str(len(KEYS))
    for key in KEYS:
        assert sorted(os.listdir(os.path.join(m.mnt, key["id"]))) == sorted(FIELDS)


def test_modes_owner_nlink_and_directory_sizes(mount):
    m = mount(KEYS)
    root = os.stat(m.mnt)
    assert (root.st_mode, root.st_nlink, root.st_size) == (0o40555, 2 + len(KEYS), len(KEYS))
    assert (root.st_uid, root.st_gid) == (os.getuid(), os.getgid())
    assert run("stat", "-c", "%A", m.mnt).stdout == "dr-xr-xr-x\n"
    for key in KEYS:
        d = os.path.join(m.mnt, key["id"])
        st = os.stat(d)
        assert (st.st_mode, st.st_nlink, st.st_size) == (0o40555, 2, 5)
        assert (st.st_uid, st.st_gid) == (os.getuid(), os.getgid())
        for field in FIELDS:
            st = os.stat(os.path.join(d, field))
            assert (st.st_mode, st.st_nlink) == (0o100444, 1), (d, field)
            assert (st.st_uid, st.st_gid) == (os.getuid(), os.getgid())
    modes = run("bash", "-c", 'stat -c %A "$1"/*/*', "-", m.mnt).stdout
    assert lines(modes) == ["-r--r--r--"] * (5 * len(KEYS))
    with open("/proc/self/mounts") as f:
        entry = [l.split() for l in f if l.split()[1] == m.mnt]
    assert len(entry) == 1
    source, _, fstype, options = entry[0][:4]
    assert (source, fstype) == (m.argv[-2], "fuse.omikeyfs")  # fsname: the API URL
    assert {"ro", "noatime"} <= set(options.split(","))


# ---- inode numbers ----------------------------------------------------------------

def check_inodes(mnt, keys):
    got = inode_map(mnt)
    assert len(got) == 6 * len(keys)
    for path, (d_ino, st_ino) in got.items():
        assert d_ino == st_ino, path
    assert os.stat(mnt).st_ino == 1
    for key in keys:
        base = got[key["id"]][1]
        assert base % 8 == 0 and base >= 16
        assert [got[key["id"] + "/" + f][1] for f in FIELDS] == [base + i for i in range(1, 6)]
    assert len({st for _, st in got.values()}) == len(got)
    return {path: st for path, (_, st) in got.items()}


def test_inode_numbers_stable_across_remount_and_refresh(mount, api):
    first = mount(KEYS)
    before = check_inodes(first.mnt, KEYS)
    first.unmount()
    again = mount(KEYS)
    assert check_inodes(again.mnt, KEYS) == before
    more = KEYS + make_keys(3, seed=99)
    api.set_keys(more)
    refresh(again, lambda: len(os.listdir(again.mnt)) == len(more))
    after = check_inodes(again.mnt, more)
    assert {p: after[p] for p in before} == before


# ---- times ------------------------------------------------------------------------

def check_key_times(mnt, key):
    d = os.path.join(mnt, key["id"])
    st = os.stat(d)
    assert st.st_mtime_ns == st.st_ctime_ns == st.st_atime_ns == ts_ns(key["created_at"]), d
    for field, want in expected_mtimes(key).items():
        st = os.stat(os.path.join(d, field))
        assert st.st_mtime_ns == st.st_ctime_ns == st.st_atime_ns == want, (d, field)


def newest_created(keys):
    return max(ts_ns(k["created_at"]) for k in keys)


def test_times_follow_the_keys_dates(mount):
    m = mount(KEYS)
    for key in KEYS:
        check_key_times(m.mnt, key)
    assert os.stat(m.mnt).st_mtime_ns == newest_created(KEYS)
    # ls -lt sorts keys by creation time, newest first.
    order = sorted(KEYS, key=lambda k: (-ts_ns(k["created_at"]), k["id"]))
    listed = run("ls", "-t", m.mnt, env=dict(os.environ, LC_ALL="C")).stdout
    assert [k["id"] for k in order] == lines(listed)


def test_renamed_key_name_gets_refresh_time_and_new_size(mount, api):
    m = mount(KEYS)
    key = KEYS[3]
    new = renamed(key, key["name"] + " (renamed for the audit)")
    keys = [new if k is key else k for k in KEYS]
    path = os.path.join(m.mnt, key["id"], "name")
    before = time.time_ns()
    api.set_keys(keys)
    refresh(m, lambda: os.stat(path).st_size == len(new["name"]) + 1)
    after = time.time_ns()
    st = os.stat(path)
    assert before <= st.st_mtime_ns <= after
    assert st.st_size == len(new["name"]) + 1
    with open(path, "rb") as f:
        assert f.read() == new["name"].encode() + b"\n"
    for field, want in expected_mtimes(key).items():
        if field != "name":
            assert os.stat(os.path.join(m.mnt, key["id"], field)).st_mtime_ns == want
    assert os.stat(os.path.join(m.mnt, key["id"])).st_mtime_ns == ts_ns(key["created_at"])
    assert os.stat(m.mnt).st_mtime_ns == newest_created(KEYS)  # no key came or went


def test_root_mtime_is_when_a_key_appears_or_vanishes(mount, api):
    m = mount(KEYS)
    old = make_key(id="00000000-0000-4000-8000-0000000000aa", created_at="2020-01-01T00:00:00Z")
    for keys in (KEYS + [old], KEYS[1:] + [old]):
        ids = sorted(k["id"] for k in keys)
        before = time.time_ns()
        api.set_keys(keys)
        # The listing changes at the swap; the root's cached attributes once
        # the notifier has told the kernel, a moment later.
        refresh(m, lambda: sorted(os.listdir(m.mnt)) == ids
                and os.stat(m.mnt).st_mtime_ns >= before)
        after = time.time_ns()
        st = os.stat(m.mnt)
        assert before <= st.st_mtime_ns <= after
        assert st.st_nlink == 2 + len(keys)
        assert sorted(os.listdir(m.mnt)) == sorted(k["id"] for k in keys)


# ---- writes -----------------------------------------------------------------------

WRITES = {
    "open-wronly": lambda d, f: os.open(f, os.O_WRONLY),
    "open-rdwr": lambda d, f: os.open(f, os.O_RDWR),
    "open-append": lambda d, f: os.open(f, os.O_WRONLY | os.O_APPEND),
    "open-trunc": lambda d, f: os.open(f, os.O_RDONLY | os.O_TRUNC),
    "create-in-root": lambda d, f: os.open(os.path.dirname(d) + "/new", os.O_CREAT | os.O_WRONLY, 0o644),
    "create-in-key": lambda d, f: os.open(d + "/notes", os.O_CREAT | os.O_WRONLY, 0o644),
    "mkdir": lambda d, f: os.mkdir(os.path.dirname(d) + "/newkey"),
    "rmdir": lambda d, f: os.rmdir(d),
    "unlink": lambda d, f: os.unlink(f),
    "rename-file": lambda d, f: os.rename(f, d + "/other"),
    "rename-over": lambda d, f: os.rename(f, d + "/scopes"),
    "rename-dir": lambda d, f: os.rename(d, d + "-old"),
    "chmod": lambda d, f: os.chmod(f, 0o644),
    "chmod-dir": lambda d, f: os.chmod(d, 0o755),
    "chown": lambda d, f: os.chown(f, 1000, 1000),
    "utime": lambda d, f: os.utime(f, (0, 0)),
    "utime-now": lambda d, f: os.utime(d, None),
    "truncate": lambda d, f: os.truncate(f, 0),
    "symlink": lambda d, f: os.symlink("name", d + "/alias"),
    "link": lambda d, f: os.link(f, d + "/hardlink"),
    "setxattr": lambda d, f: os.setxattr(f, "user.note", b"x"),
    "setxattr-root": lambda d, f: os.setxattr(os.path.dirname(d), "user.omikeyfs.stale", b"0"),
    "removexattr": lambda d, f: os.removexattr(d, "user.omikeyfs.id"),
    "mknod-fifo": lambda d, f: os.mkfifo(d + "/fifo"),
}


def assert_write_fails_with_erofs(op, d):
    """WRITES[op] on key directory d (and its name file) fails with EROFS."""
    try:
        result = WRITES[op](d, d + "/name")
    except OSError as e:
        assert e.errno == errno.EROFS, e
    else:
        if isinstance(result, int):
            os.close(result)
        pytest.fail("%s succeeded on a read-only tree" % op)


@pytest.mark.parametrize("op", sorted(WRITES))
def test_every_write_fails_with_erofs(mount, op):
    m = mount(KEYS[:3])
    assert_write_fails_with_erofs(op, os.path.join(m.mnt, KEYS[0]["id"]))
    assert tree(m.mnt) == expected_tree(KEYS[:3])


# ---- audits with standard tools ------------------------------------------------------

def test_audits_with_grep_and_find(mount):
    m = mount(KEYS)
    writers = {k["id"] for k in KEYS if "memories:write" in (k["scopes"] or [])}
    assert len(writers) >= 2
    out = run("grep", "-rl", "memories:write", m.mnt)
    assert out.returncode == 0 and ids_of(lines(out.stdout), m.mnt, "scopes") == writers
    assert len(lines(out.stdout)) == len(writers)
    out = run("grep", "-lx", "memories:write", *sorted(glob.glob(m.mnt + "/*/scopes")))
    assert ids_of(lines(out.stdout), m.mnt, "scopes") == writers

    used = sorted(expected_mtimes(k)["last_used_at"] for k in KEYS)
    cut = used[len(used) // 2] // 10**9
    newer = {k["id"] for k in KEYS if expected_mtimes(k)["last_used_at"] > cut * 10**9}
    assert 0 < len(newer) < len(KEYS)
    out = run("find", m.mnt, "-name", "last_used_at", "-newermt", "@%d" % cut)
    assert out.returncode == 0, out.stderr
    assert ids_of(lines(out.stdout), m.mnt, "last_used_at") == newer
    assert len(lines(out.stdout)) == len(newer)

    never = {k["id"] for k in KEYS if k["last_used_at"] is None}
    assert never
    out = run("find", m.mnt, "-name", "last_used_at", "-empty")
    assert ids_of(lines(out.stdout), m.mnt, "last_used_at") == never
    assert len(lines(out.stdout)) == len(never)

    damaged = run("grep", "-lx", "omi_dev_legacy", *sorted(glob.glob(m.mnt + "/*/key_prefix")))
    assert ids_of(lines(damaged.stdout), m.mnt, "key_prefix") == {HAND[1]["id"]}


def read_tree(root):
    """{relative path: bytes} of every file under root, and the set of dirs."""
    files, dirs = {}, set()
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        dirs.update(os.path.normpath(os.path.join(rel, d)) for d in dirnames)
        for f in filenames:
            with open(os.path.join(dirpath, f), "rb") as fh:
                files[os.path.normpath(os.path.join(rel, f))] = fh.read()
    return files, dirs


def flat_expected(keys):
    files = {k["id"] + "/" + f: data for k in keys for f, data in expected_files(k).items()}
    return files, {k["id"] for k in keys}


def test_tar_copies_every_byte(mount, tmp_path):
    m = mount(KEYS)
    dst = tmp_path / "untarred"
    dst.mkdir()
    out = run("bash", "-c", 'set -o pipefail; tar -cf - -C "$1" . | tar -xf - -C "$2"',
              "-", m.mnt, str(dst))
    assert (out.returncode, out.stderr) == (0, "")
    assert read_tree(str(dst)) == flat_expected(KEYS)


def test_second_rsync_transfers_nothing(mount, tmp_path):
    m = mount(KEYS)
    dst = str(tmp_path / "backup") + "/"
    first = run("rsync", "-a", m.mnt + "/", dst)
    assert (first.returncode, first.stderr) == (0, "")
    assert read_tree(dst) == flat_expected(KEYS)
    second = run("rsync", "-a", "--itemize-changes", "--stats", m.mnt + "/", dst)
    assert (second.returncode, second.stderr) == (0, "")
    assert "Number of regular files transferred: 0\n" in second.stdout
    itemized = [l for l in lines(second.stdout) if re.match(r"[<>ch.*][fdLDS]\S{9} ", l)]
    assert itemized == []


# ---- one request per TTL ------------------------------------------------------------

def walk_everything(mnt):
    assert tree(mnt) == expected_tree(KEYS)
    for dirpath, dirnames, filenames in os.walk(mnt):
        for name in dirnames + filenames:
            os.lstat(os.path.join(dirpath, name))


def test_whole_tree_walks_make_one_request(mount, api):
    m = mount(KEYS, ttl=60)
    walk_everything(m.mnt)
    for argv, count in ((["ls", "-lR", m.mnt], None),
                        (["find", m.mnt], 1 + 6 * len(KEYS)),
                        (["grep", "-r", "", m.mnt], None),
                        (["du", "-a", m.mnt], 1 + 6 * len(KEYS)),
                        (["stat", "-c", "%i %s %Y", m.mnt] + glob.glob(m.mnt + "/*/*"), 1 + 5 * len(KEYS))):
        out = run(*argv)
        assert (out.returncode, out.stderr) == (0, ""), argv
        if count is not None:
            assert len(lines(out.stdout)) == count, argv
    walk_everything(m.mnt)
    assert api.requests() == 1


def walk_in_threads(mnt, n=4):
    barrier = threading.Barrier(n)
    errors = []

    def worker():
        try:
            barrier.wait()
            walk_everything(mnt)
        except Exception as e:  # reported by the test thread
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors


def test_concurrent_walks_make_one_request(mount, api):
    m = mount(KEYS, ttl=60)
    walk_in_threads(m.mnt)
    assert api.requests() == 1


def test_concurrent_operations_after_the_ttl_share_one_request(mount, api):
    m = mount(KEYS, ttl=1)
    api.fault(delay=0.5, count=1)  # keep the refresh in flight while all threads arrive
    time.sleep(1)  # the TTL runs out: what this test is about
    n = 4
    barrier = threading.Barrier(n)
    seen, errors = {}, []

    def worker(i):
        try:
            key = KEYS[i]
            barrier.wait()
            os.stat(os.path.join(m.mnt, key["id"]))
            with open(os.path.join(m.mnt, key["id"], "name"), "rb") as f:
                seen[i] = (f.read(), sorted(os.listdir(m.mnt)))
        except Exception as e:  # reported by the test thread
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    ids = sorted(k["id"] for k in KEYS)
    assert seen == {i: (expected_files(KEYS[i])["name"], ids) for i in range(n)}
    # The mount's fetch, then one refresh for all four.
    assert api.requests() == 2


# ---- changes seen after the TTL -------------------------------------------------------

def test_changes_are_seen_after_the_ttl(mount, api):
    m = mount(KEYS, ttl=1)
    assert tree(m.mnt) == expected_tree(KEYS)
    gone = KEYS[0]
    grown = KEYS[1]
    added = make_key(id="00000000-0000-4000-8000-0000000000bb", name="Added after mount",
                     last_used_at=None, scopes=["goals:read", "goals:write"])
    new = [renamed(grown, grown["name"] + " with a much longer name")] + KEYS[2:] + [added]
    api.set_keys(new)
    want = expected_tree(new)
    wait_for(lambda: tree(m.mnt) == want, what="the new list after the TTL",
             ignore=(FileNotFoundError,))
    for key in new:
        for field, data in expected_files(key).items():
            path = os.path.join(m.mnt, key["id"], field)
            assert os.stat(path).st_size == len(data)
    for key in (added, new[0]):
        path = os.path.join(m.mnt, key["id"], "name")
        out = subprocess.run(["cat", path], capture_output=True, check=True)
        assert out.stdout == key["name"].encode() + b"\n"
    with pytest.raises(FileNotFoundError):
        os.stat(os.path.join(m.mnt, gone["id"]))
    with pytest.raises(FileNotFoundError):
        open(os.path.join(m.mnt, gone["id"], "name"), "rb")
    assert os.stat(m.mnt).st_nlink == 2 + len(new)


def test_open_file_keeps_its_snapshot(mount, api):
    m = mount(KEYS)
    key = KEYS[2]
    path = os.path.join(m.mnt, key["id"], "name")
    old = key["name"].encode() + b"\n"
    new = renamed(key, "A replacement name, longer than before")

    def read_anew():
        with open(path, "rb") as g:
            return g.read()
    with open(path, "rb", buffering=0) as f:
        head = f.read(3)
        api.set_keys([new if k is key else k for k in KEYS])
        # Opened again, the file has the new name; the open one does not.
        refresh(m, lambda: read_anew() == new["name"].encode() + b"\n")
        assert head + f.read() == old
        assert os.fstat(f.fileno()).st_size == len(old)
    with open(path, "rb", buffering=0) as f:
        assert f.read() == new["name"].encode() + b"\n"
        assert os.fstat(f.fileno()).st_size == len(new["name"]) + 1


# ---- invocation -------------------------------------------------------------------------

def run_daemon(args, token=TOKEN, mnt=None):
    """Runs omikeyfs expecting it to end by itself; never leaves a mount."""
    env = dict(os.environ)
    env.pop("OMI_API_KEY", None)
    if token is not None:
        env["OMI_API_KEY"] = token
    proc = subprocess.Popen([BIN] + args, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=30)
    finally:
        if mnt and os.path.ismount(mnt):
            subprocess.run(["fusermount3", "-u", "-z", mnt])
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, out, err


def test_help_lists_the_options():
    rc, out, err = run_daemon(["--help"])
    assert rc == 0
    for word in ("key_file", "ttl", "timeout", "max_size", "cafile"):
        assert word in out + err, word


def test_version_names_the_libraries():
    rc, out, err = run_daemon(["--version"])
    assert rc == 0
    for word in ("omikeyfs", "libfuse", "libcurl", "json-c"):
        assert re.search(r"^%s \d" % word, out, re.M), (word, out)


FAILURES = {
    # name: (argv builder (url, mnt), token, exit status, text in the message)
    "token-refused": (lambda u, m: ["-f", u, m], "wrong-token", 2,
                      "Invalid authentication credentials"),
    "no-token": (lambda u, m: ["-f", u, m], None, 1, "OMI_API_KEY"),
    "http-remote": (lambda u, m: ["-f", "http://example.com", m], TOKEN, 1, "http"),
    "too-many-args": (lambda u, m: ["-f", u, m, m], TOKEN, 1, "usage"),
    "ttl-negative": (lambda u, m: ["-f", "-o", "ttl=-1", u, m], TOKEN, 1, "ttl"),
    "timeout-zero": (lambda u, m: ["-f", "-o", "timeout=0", u, m], TOKEN, 1, "timeout"),
    "max-size-tiny": (lambda u, m: ["-f", "-o", "max_size=12", u, m], TOKEN, 1, "max_size"),
    "unknown-option": (lambda u, m: ["-f", "-o", "no_such_option", u, m], TOKEN, 1,
                       "no_such_option"),
    "no-mountpoint": (lambda u, m: ["-f", u, m + "/missing"], TOKEN, 1, "missing"),
}


@pytest.mark.parametrize("case", sorted(FAILURES))
def test_refused_invocations_say_one_line_and_mount_nothing(api, tmp_path, case):
    build, token, status, text = FAILURES[case]
    mnt = str(tmp_path / "mnt")
    os.mkdir(mnt)
    rc, out, err = run_daemon(build(api.url, mnt), token=token, mnt=mnt)
    assert rc == status, err
    assert len(lines(err)) == 1 and err.startswith("omikeyfs: ") and err.endswith("\n"), err
    assert text in err
    assert TOKEN not in err
    assert not os.path.ismount(mnt)
    assert api.requests() == (1 if case == "token-refused" else 0)


# ---- the token --------------------------------------------------------------------------

@pytest.mark.parametrize("source", ["env", "key_file"])
def test_token_stays_out_of_proc_and_goes_in_the_header(mount, api, tmp_path, source):
    if source == "env":
        m = mount(KEYS[:2])
    else:
        path = tmp_path / "token"
        path.write_text("  %s  \nsecond line ignored\n" % TOKEN)
        path.chmod(0o600)
        m = mount(KEYS[:2], opts=["key_file=%s" % path], token=None)
    for what in ("cmdline", "environ"):
        with open("/proc/%d/%s" % (m.pid, what), "rb") as f:
            assert TOKEN.encode() not in f.read(), what
    headers = api.stats()["last_headers"]
    assert headers["authorization"] == "Bearer " + TOKEN
    assert headers["accept"] == "application/json"
    assert headers["user-agent"].startswith("omikeyfs/")
    assert tree(m.mnt) == expected_tree(KEYS[:2])


# ---- unmount ----------------------------------------------------------------------------

def test_sigterm_unmounts_and_exits_zero(mount):
    m = mount(KEYS[:2])
    os.kill(m.pid, signal.SIGTERM)
    assert m.proc.wait(20) == 0
    assert not os.path.ismount(m.mnt)
    m.unmount()  # checks the status and stderr again


def test_fusermount_unmounts_and_exits_zero(mount):
    m = mount(KEYS[:2])
    m.unmount()  # fusermount3 -u, then status 0 and a clean stderr
    assert not os.path.ismount(m.mnt)
    assert os.listdir(m.mnt) == []


# ---- extended attributes ---------------------------------------------------------------

def test_status_xattrs_are_not_files(mount):
    m = mount(KEYS)
    key = KEYS[0]
    listed = run("ls", "-a", m.mnt, env=dict(os.environ, LC_ALL="C")).stdout
    assert sorted(lines(listed)) == sorted([".", ".."] + [k["id"] for k in KEYS])
    listed = run("ls", "-a", os.path.join(m.mnt, key["id"])).stdout
    assert sorted(lines(listed)) == sorted([".", ".."] + FIELDS)
    out = run("grep", "-r", "omikeyfs", m.mnt)
    assert (out.returncode, out.stdout) == (1, "")

    out = run("getfattr", "--absolute-names", "-d", "-m", "-", m.mnt)
    assert out.returncode == 0, out.stderr
    attrs = dict(re.match(r'([^=]+)(?:="(.*)")?$', l).groups()
                 for l in lines(out.stdout) if l and not l.startswith("#"))
    assert set(attrs) == {"user.omikeyfs.fetched_at", "user.omikeyfs.stale",
                          "user.omikeyfs.last_error", "user.omikeyfs.pid"}
    assert attrs["user.omikeyfs.pid"] == str(m.pid)
    assert attrs["user.omikeyfs.stale"] == "0"
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", attrs["user.omikeyfs.fetched_at"])

    out = run("getfattr", "-n", "user.omikeyfs.id", "--only-values",
              os.path.join(m.mnt, key["id"]))
    assert (out.returncode, out.stdout) == (0, key["id"])


def test_legacy_xattr_tells_null_scopes_from_empty(mount, api):
    """Legacy keys are the ones whose scopes the API sends as null; [] gives
    the same empty scopes file, so only user.omikeyfs.legacy tells them
    apart, and it follows the key when a refresh changes it."""
    rng = __import__("random").Random(31)
    legacy, empty, scoped = (make_key(rng, scopes=None), make_key(rng, scopes=[]),
                             make_key(rng, scopes=["memories:read"]))
    # A damaged prefix is no sign of a legacy key.
    damaged = make_key(rng, scopes=["goals:read"], key_prefix="omi_dev_legacy")
    keys = [legacy, empty, scoped, damaged]
    m = mount(keys, ttl=0.2)

    def value(key):
        out = run("getfattr", "-n", "user.omikeyfs.legacy", "--only-values",
                  os.path.join(m.mnt, key["id"]))
        assert out.returncode == 0, out.stderr
        return out.stdout

    assert [value(k) for k in keys] == ["1", "0", "0", "0"]
    with open(os.path.join(m.mnt, legacy["id"], "scopes"), "rb") as f:
        assert f.read() == b""
    assert sorted(os.listxattr(os.path.join(m.mnt, empty["id"]))) == [
        "user.omikeyfs.id", "user.omikeyfs.legacy"]
    assert os.listxattr(os.path.join(m.mnt, empty["id"], "scopes")) == []
    with pytest.raises(OSError) as e:
        os.getxattr(os.path.join(m.mnt, empty["id"], "scopes"), "user.omikeyfs.legacy")
    assert e.value.errno == errno.ENODATA
    out = run("find", m.mnt, "-mindepth", "1", "-maxdepth", "1", "-type", "d")
    found = [os.path.basename(d) for d in lines(out.stdout)
             if os.getxattr(d, "user.omikeyfs.legacy") == b"1"]
    assert found == [legacy["id"]]

    # Null and [] swap places: the attribute follows on the next refresh.
    api.set_keys([dict(legacy, scopes=[]), dict(empty, scopes=None), scoped, damaged])
    wait_for(lambda: [value(k) for k in keys] == ["0", "1", "0", "0"], timeout=10,
             what="the new legacy flags")


def test_ls_l_probes_xattrs_once_not_per_file(mount):
    """SELinux labels and POSIX ACLs do not exist here: they are refused with
    ENOTSUP, which ls -l remembers for the whole filesystem instead of asking
    for each file (two requests per file, each a round trip)."""
    keys = make_keys(20, seed=77)
    m = mount(keys, opts=["debug"])
    listing = run("ls", "-lR", m.mnt)
    assert listing.returncode == 0
    assert listing.stdout.count("-r--r--r--") == 5 * len(keys)
    # Two (security.selinux and system.posix_acl_access), both for the root:
    # the first file ls -lR looks at.
    probes = re.findall(r"opcode: GETXATTR \(\d+\), nodeid: (\d+),", m.stderr())
    assert probes == ["1", "1"], "GETXATTR requests for one ls -lR, by node: %s" % probes
    with pytest.raises(OSError) as e:
        os.getxattr(os.path.join(m.mnt, keys[0]["id"], "name"), "security.selinux")
    assert e.value.errno == errno.ENOTSUP
    with pytest.raises(OSError) as e:
        os.getxattr(os.path.join(m.mnt, keys[0]["id"], "name"), "user.other")
    assert e.value.errno == errno.ENODATA


def getdents_names(fd):
    """The names one getdents64 call returns from fd's current offset."""
    import ctypes
    import struct
    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(8192)
    n = libc.syscall(217, fd, buf, len(buf))  # SYS_getdents64 on x86_64
    assert n >= 0, os.strerror(ctypes.get_errno())
    names, pos = [], 0
    while pos < n:
        reclen = struct.unpack_from("<H", buf.raw, pos + 16)[0]
        names.append(buf.raw[pos + 19:pos + reclen].split(b"\0", 1)[0].decode())
        pos += reclen
    return names


@pytest.mark.parametrize("offset", [3, 6, 7, 8, 2**31 + 4, 2**32 + 3, 2**62, 2**63 - 1])
def test_any_directory_offset_is_safe(mount, offset):
    """lseek can hand readdir any offset: beyond the last entry it lists
    nothing, inside it resumes at the next entry, and never crashes."""
    keys = make_keys(3, seed=5)
    m = mount(keys)
    fields = FIELDS  # readdir order: name, key_prefix, created_at, ...
    for d in (os.path.join(m.mnt, keys[0]["id"]), m.mnt):
        fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.lseek(fd, offset, os.SEEK_SET)
            names = getdents_names(fd)
        finally:
            os.close(fd)
        if d == m.mnt:
            # The root lists keys in inode order, its offsets being inode
            # numbers: it resumes at the first key numbered above offset.
            by_ino = sorted((os.stat(os.path.join(m.mnt, k["id"])).st_ino, k["id"])
                            for k in keys)
            assert names == [kid for ino, kid in by_ino if ino > offset]
        elif offset <= 7:
            assert names == fields[offset - 2:]
        else:
            assert names == []
    assert sorted(os.listdir(m.mnt)) == sorted(k["id"] for k in keys)


def resident(path):
    """Whether all of a file's bytes are in the page cache: mmap and
    mincore, which ask the kernel without reading (so without a READ)."""
    import ctypes
    import mmap
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        assert addr != ctypes.c_void_p(-1).value, os.strerror(ctypes.get_errno())
        try:
            pages = ctypes.create_string_buffer((size + mmap.PAGESIZE - 1) // mmap.PAGESIZE)
            assert libc.mincore(addr, size, pages) == 0, os.strerror(ctypes.get_errno())
            return all(b & 1 for b in pages.raw)
        finally:
            libc.munmap(addr, size)
    finally:
        os.close(fd)


def test_listed_keys_are_read_from_the_page_cache(mount):
    """While files are being read, listing a key directory has omikeyfs push
    its files' bytes into the page cache, so that grep -r, tar or rsync find
    them there instead of sending one READ per file.  The push runs beside
    the requests (a reader that gets there first sends its READ, which makes
    a count over a cold grep -r depend on scheduling): this test waits for
    the pages, then counts the READs of a grep -r over the whole tree."""
    keys = make_keys(40, seed=78)
    m = mount(keys, opts=["debug"])
    files = [os.path.join(m.mnt, k["id"], f)
             for k in keys for f, data in expected_files(k).items() if data]
    assert not any(resident(f) for f in files)  # cold
    with open(files[0], "rb") as f:  # one READ: something is reading now
        f.read()
    for k in keys:
        os.listdir(os.path.join(m.mnt, k["id"]))
    wait_for(lambda: all(resident(f) for f in files), what="the pushed pages")
    out = run("grep", "-r", "omi_dev_", m.mnt)
    assert out.returncode == 0, out.stderr
    assert len(lines(out.stdout)) == len(keys)
    reads = re.findall(r"^unique: \d+, opcode: READ \(\d+\), nodeid: (\d+),", m.stderr(), re.M)
    assert len(reads) == 1, "%d READs for %d non-empty files" % (len(reads), len(files))
