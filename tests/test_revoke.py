"""-o allow_revoke: rmdir of a key directory revokes the key, for real: a
signed-in session (Google's Firebase Auth Emulator and the fake API in
real-auth mode, which answers DELETE /v1/dev/keys/{id} as the backend
does), real mounts, and the tools people would use (rmdir, rm, find,
xargs, setpriv).  Each case counts what reached the fake API.
"""
import errno
import glob
import json
import os
import platform
import re
import shutil
import signal
import stat
import subprocess
import tempfile

import pytest

from conftest import BIN, Mount, expected_files, http_call, make_keys, run, tree, wait_for
from test_core import WRITES, assert_write_fails_with_erofs
from test_login import auth_mount, env, sign_in  # noqa: F401 (fixtures)

KEYS = make_keys(6, seed=2020)
for i, k in enumerate(KEYS):
    k["last_used_at"] = None if i % 2 else k["last_used_at"] or "2025-06-01T10:00:00Z"
UNUSED = {k["id"] for k in KEYS if k["last_used_at"] is None}
REVOKED = r"^omikeyfs: revoked key %s \(name \"%s\"\) for uid %d$"
FAILED = r"^omikeyfs: revoking key %s \(name \"%s\"\) for uid %d failed \(%s\): %s$"
STALE = r"^omikeyfs: cannot fetch the key list: .*; serving the list kept from \S+ \(stale\)"
# rmdir's syscall, as /proc/PID/syscall shows a process blocked in it.
RMDIR_SYSCALL = {"x86_64": 84}.get(platform.machine())


def tree_of(keys):
    return {k["id"]: expected_files(k) for k in keys}


def deletes(api):
    return [e for e in api.request_log() if e["method"] == "DELETE"]


def gets(api):
    return [e for e in api.request_log()
            if e["method"] == "GET" and e["path"] == "/v1/dev/keys"]


@pytest.fixture
def signed_in(auth_api, env, chromium):  # noqa: F811
    auth_api.set_keys(KEYS)
    sign_in(auth_api, env, chromium)
    auth_api.control("reset", {})  # count from the mount on
    return auth_api


def revoke_mount(auth_mount, opts=(), **kw):  # noqa: F811
    return auth_mount(opts=["allow_revoke"] + list(opts), **kw)


def revoked_line(key, uid=0):
    return REVOKED % (key["id"], key["name"], uid)


def kept_file():
    """The kept list's bytes (b"" before the first is written)."""
    files = glob.glob(os.path.join(os.environ["XDG_CACHE_HOME"], "omikeyfs", "list-*"))
    assert len(files) <= 1, files
    if not files:
        return b""
    with open(files[0], "rb") as f:
        return f.read()


def test_rmdir_revokes_the_key_at_once_and_for_good(signed_in, auth_mount, tmp_path):  # noqa: F811
    api = signed_in
    gone, rest = KEYS[0], KEYS[1:]
    m = revoke_mount(auth_mount, expect_stderr=[revoked_line(gone)])
    assert tree(m.mnt) == tree_of(KEYS)
    assert stat.S_IMODE(os.stat(m.mnt).st_mode) == 0o755
    mnt_opts = [line.split()[3] for line in open("/proc/mounts") if line.split()[1] == m.mnt]
    assert mnt_opts and "rw" in mnt_opts[0].split(",") and "noatime" in mnt_opts[0].split(",")
    listed = len(gets(api))
    wait_for(lambda: gone["id"].encode() in kept_file(), what="the first kept list")

    os.rmdir(os.path.join(m.mnt, gone["id"]))

    # One DELETE, with the session's ID token, and nothing else sent.
    sent = deletes(api)
    assert [(e["path"], e["status"]) for e in sent] == [("/v1/dev/keys/" + gone["id"], 204)]
    assert sent[0]["headers"]["authorization"] == gets(api)[0]["headers"]["authorization"]
    assert api.stats()["revokes"] == [gone["id"]]
    assert len(gets(api)) == listed
    # Gone at once, for everyone: the entry, the listing, the root's links.
    assert not os.path.exists(os.path.join(m.mnt, gone["id"]))
    assert tree(m.mnt) == tree_of(rest)
    wait_for(lambda: os.stat(m.mnt).st_nlink == 2 + len(rest), what="the root's new nlink")
    assert sorted(run("ls", m.mnt).stdout.split()) == sorted(k["id"] for k in rest)
    # The audit trail: one line, at info.
    assert [line for line in m.stderr().splitlines() if line.startswith("omikeyfs: revok")] == \
        ['omikeyfs: revoked key %s (name "%s") for uid 0' % (gone["id"], gone["name"])]
    # The kept list no longer holds it.
    wait_for(lambda: gone["id"].encode() not in kept_file(), what="the kept list rewritten")
    assert all(k["id"].encode() in kept_file() for k in rest)

    # The next refresh confirms it.
    m.sighup()
    wait_for(lambda: len(gets(api)) == listed + 1, what="the refresh")
    assert tree(m.mnt) == tree_of(rest)
    m.unmount()

    # A mount that cannot reach the API serves the kept list: without it.
    api.fault(status=503)
    m2 = auth_mount(opts=["allow_revoke"], expect_stderr=[STALE])
    assert tree(m2.mnt) == tree_of(rest)
    assert m2.xattr("stale") == "1"
    api.clear()


def test_find_recipe_revokes_exactly_the_never_used_keys(signed_in, auth_mount):  # noqa: F811
    api = signed_in
    unused = [k for k in KEYS if k["id"] in UNUSED]
    assert 0 < len(unused) < len(KEYS)
    m = revoke_mount(auth_mount, expect_stderr=[revoked_line(k) for k in unused])
    r = run("sh", "-c", "find \"$1\" -mindepth 2 -name last_used_at -empty -printf '%h\\n' "
            "| xargs -r rmdir", "sh", m.mnt)
    assert r.returncode == 0, r.stderr
    assert sorted(api.stats()["revokes"]) == sorted(UNUSED)
    assert len(deletes(api)) == len(UNUSED)
    assert tree(m.mnt) == tree_of([k for k in KEYS if k["id"] not in UNUSED])


def test_rm_r_revokes_nothing_and_find_delete_does(signed_in, auth_mount):  # noqa: F811
    api = signed_in
    target, other = KEYS[1], KEYS[2]
    m = revoke_mount(auth_mount, expect_stderr=[revoked_line(other)])
    for argv in (["rm", "-rf"], ["rm", "-r"], ["rm", "-r", "--interactive=never"]):
        r = run(*argv, os.path.join(m.mnt, target["id"]))
        assert r.returncode != 0
        assert "Read-only file system" in r.stderr, r.stderr
        assert "Directory not empty" not in r.stderr
    assert deletes(api) == []
    assert tree(m.mnt) == tree_of(KEYS)

    # find -delete removes depth first: its unlinks fail, then it rmdirs.
    r = run("find", os.path.join(m.mnt, other["id"]), "-delete")
    assert r.returncode != 0 and "Read-only file system" in r.stderr
    assert api.stats()["revokes"] == [other["id"]]
    assert not os.path.exists(os.path.join(m.mnt, other["id"]))


def test_another_user_is_refused_and_nothing_is_sent(signed_in, env):  # noqa: F811
    api = signed_in
    key = KEYS[0]
    # A place every uid can reach (pytest's tmp_path is root's alone).
    shared = tempfile.mkdtemp(prefix="omikeyfs-revoke-", dir="/tmp")
    os.chmod(shared, 0o755)
    m = Mount(api.url, os.path.join(shared, "mnt"), wait=False, token=None, env=env,
              opts=["allow_revoke", "allow_other", "timeout=5"]) \
        if os.mkdir(os.path.join(shared, "mnt")) is None else None
    try:
        m.wait_mounted()
        path = os.path.join(m.mnt, key["id"])
        who = ["setpriv", "--reuid=12345", "--regid=12345", "--clear-groups", "--"]
        # The other user reads the tree...
        r = run(*who, "cat", os.path.join(path, "name"))
        assert (r.returncode, r.stdout) == (0, key["name"] + "\n"), r.stderr
        # ...but may not revoke: the root is the mounting user's alone.
        assert stat.S_IMODE(os.stat(m.mnt).st_mode) == 0o755 and os.stat(m.mnt).st_uid == 0
        for argv in (["rmdir", path], ["find", path, "-delete"], ["rm", "-rf", path]):
            r = run(*who, *argv)
            assert r.returncode != 0 and "Permission denied" in r.stderr, (argv, r.stderr)
        assert deletes(api) == []
        assert tree(m.mnt) == tree_of(KEYS)
        m.unmount()
    finally:
        m.kill()
        shutil.rmtree(shared, ignore_errors=True)


def test_unavailable_revocation_gives_eagain_and_the_key_stays(signed_in, auth_mount):  # noqa: F811
    api = signed_in
    key = KEYS[3]
    m = revoke_mount(auth_mount, expect_stderr=[
        FAILED % (key["id"], key["name"], 0, "Resource temporarily unavailable",
                  r"HTTP 503: API key revocation temporarily unavailable"),
        revoked_line(key)])
    api.control("revoke", {"unavailable": True})
    with pytest.raises(OSError) as e:
        os.rmdir(os.path.join(m.mnt, key["id"]))
    assert e.value.errno == errno.EAGAIN
    assert [e["status"] for e in deletes(api)] == [503]
    assert api.stats()["revokes"] == []
    assert tree(m.mnt) == tree_of(KEYS)
    assert m.xattr("last_error") == ""  # a revoke that may pass is no status
    # Once the API can revoke again, so can rmdir.
    api.control("revoke", {"unavailable": False})
    os.rmdir(os.path.join(m.mnt, key["id"]))
    assert [e["status"] for e in deletes(api)] == [503, 204]


def wait_in_rmdir(pid):
    """Until pid is blocked in rmdir(2) (it waits for the root's lock)."""
    def inside():
        with open("/proc/%d/syscall" % pid) as f:
            return f.read().split()[0] == str(RMDIR_SYSCALL)
    wait_for(inside, what="the second rmdir to be under way")


@pytest.mark.skipif(RMDIR_SYSCALL is None, reason="rmdir's syscall number is known on x86_64 only")
def test_two_rmdirs_at_once_send_one_delete(signed_in, auth_mount):  # noqa: F811
    api = signed_in
    key = KEYS[4]
    m = revoke_mount(auth_mount, expect_stderr=[revoked_line(key)])
    path = os.path.join(m.mnt, key["id"])
    api.control("revoke", {"gate": "closed"})
    try:
        first = subprocess.Popen(["rmdir", path], stderr=subprocess.PIPE, text=True)
        wait_for(lambda: api.stats()["revokes_waiting"] == 1, what="the first DELETE")
        second = subprocess.Popen(["rmdir", path], stderr=subprocess.PIPE, text=True)
        wait_in_rmdir(second.pid)
        assert api.stats()["revokes_waiting"] == 1
    finally:
        api.control("revoke", {"gate": "open"})
    results = sorted([(first.wait(30), first.stderr.read()), (second.wait(30), second.stderr.read())])
    assert results[0] == (0, "")
    assert results[1][0] == 1 and "No such file or directory" in results[1][1]
    assert len(deletes(api)) == 1 and api.stats()["revokes"] == [key["id"]]
    assert not os.path.exists(path)


def test_refused_session_gives_eacces_and_says_to_sign_in(signed_in, auth_mount):  # noqa: F811
    api = signed_in
    key = KEYS[5]
    m = revoke_mount(auth_mount, expect_stderr=[
        FAILED % (key["id"], key["name"], 0, "Permission denied",
                  r"the Omi account is disabled \(USER_DISABLED\); sign in again with "
                  r"omikeyfs --login")])
    # The ID token is refused from now on, and renewing it too.
    api.firebase.disable_user("omikeyfs-test-user")
    api.set_token_lifetime(0)
    with pytest.raises(OSError) as e:
        os.rmdir(os.path.join(m.mnt, key["id"]))
    assert e.value.errno == errno.EACCES
    assert [e["status"] for e in deletes(api)] == [401]
    assert api.stats()["revokes"] == []
    assert "omikeyfs --login" in m.xattr("last_error")
    assert key["id"] in os.listdir(m.mnt)


def test_timeout_gives_etimedout(signed_in, auth_mount):  # noqa: F811
    api = signed_in
    key = KEYS[2]
    m = revoke_mount(auth_mount, opts=["timeout=1"], expect_stderr=[
        FAILED % (key["id"], key["name"], 0, "Connection timed out", "timed out after 1 s")])
    api.control("revoke", {"gate": "closed"})
    try:
        with pytest.raises(OSError) as e:
            os.rmdir(os.path.join(m.mnt, key["id"]))
    finally:
        api.control("revoke", {"gate": "open"})
    assert e.value.errno == errno.ETIMEDOUT
    assert len(deletes(api)) == 1
    assert key["id"] in os.listdir(m.mnt)


def test_sigterm_ends_a_delete_under_way(signed_in, auth_mount):  # noqa: F811
    api = signed_in
    key = KEYS[1]
    m = revoke_mount(auth_mount, opts=["timeout=600"], expect_stderr=[
        FAILED % (key["id"], key["name"], 0, "Operation canceled", r"transfer aborted: .*")])
    api.control("revoke", {"gate": "closed"})
    try:
        rmdir = subprocess.Popen(["rmdir", os.path.join(m.mnt, key["id"])],
                                 stderr=subprocess.PIPE, text=True)
        wait_for(lambda: api.stats()["revokes_waiting"] == 1, what="the DELETE")
        os.kill(m.pid, signal.SIGTERM)
        assert m.proc.wait(20) == 0
        assert rmdir.wait(20) != 0
    finally:
        api.control("revoke", {"gate": "open"})
    assert not os.path.ismount(m.mnt)
    assert len(deletes(api)) == 1
    m.unmount()  # the status and stderr, checked


# rmdir on an allow_revoke mount revokes: the tests above cover it.
@pytest.mark.parametrize("op,allow_revoke", [
    pytest.param(op, revoke, id="%s-%s" % (op, "allow_revoke" if revoke else "ro"))
    for revoke in (False, True) for op in sorted(WRITES) if not (revoke and op == "rmdir")])
def test_every_other_change_fails_with_erofs(signed_in, auth_mount, op, allow_revoke):  # noqa: F811
    api = signed_in
    m = auth_mount(opts=["allow_revoke"] if allow_revoke else [])
    assert_write_fails_with_erofs(op, os.path.join(m.mnt, KEYS[0]["id"]))
    assert tree(m.mnt) == tree_of(KEYS)
    assert deletes(api) == []


def test_allow_revoke_refused_at_mount(signed_in, env, tmp_path):  # noqa: F811
    api = signed_in
    mnt = str(tmp_path / "refused")
    os.mkdir(mnt)
    token_file = tmp_path / "token"
    token_file.write_text("omi_dev_" + "1" * 32 + "\n")
    os.chmod(token_file, 0o600)
    cases = [
        ({"OMI_API_KEY": "omi_dev_" + "2" * 32}, "allow_revoke",
         r"allow_revoke needs a signed-in session \(omikeyfs --login\)"),
        ({}, "allow_revoke,key_file=%s" % token_file,
         r"allow_revoke needs a signed-in session \(omikeyfs --login\)"),
        ({}, "allow_revoke,uid=12345", r"allow_revoke with uid=12345: only the mounting user"),
        ({}, "allow_revoke,ro", r"allow_revoke needs a read-write mount"),
    ]
    for extra, opts, why in cases:
        r = subprocess.run([BIN, "-f", "-o", opts, api.url, mnt], env=dict(env, **extra),
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True, timeout=60)
        assert r.returncode == 1, (opts, r.stderr)
        assert len(r.stderr.splitlines()) == 1, r.stderr
        assert re.match(r"^omikeyfs: " + why, r.stderr), r.stderr
        assert not os.path.ismount(mnt)
    assert api.request_log() == []


def test_the_fake_api_revokes_as_the_real_one(signed_in, auth_mount):  # noqa: F811
    """DELETE answers 204 for any id of a session, 401 to a developer key."""
    api = signed_in
    m = auth_mount()
    bearer = gets(api)[0]["headers"]["authorization"]
    status, _, body = http_call("DELETE", api.url + "/v1/dev/keys/no-such-key",
                                headers={"Authorization": bearer})
    assert (status, body) == (204, b"")
    status, _, body = http_call("DELETE", api.url + "/v1/dev/keys/" + KEYS[0]["id"],
                                headers={"Authorization": "Bearer omi_dev_" + "3" * 32})
    assert status == 401 and json.loads(body) == {"detail": "Invalid authentication credentials"}
    assert api.stats()["revokes"] == ["no-such-key"]
    assert tree(m.mnt) == tree_of(KEYS)


def test_a_key_gone_meanwhile_gives_enoent_and_sends_nothing(signed_in, auth_mount):  # noqa: F811
    api = signed_in
    key = KEYS[0]
    m = revoke_mount(auth_mount)
    path = os.path.join(m.mnt, key["id"])
    assert os.path.isdir(path)
    # Revoked elsewhere (the Omi app); a refresh takes it out.
    listed = len(gets(api))
    api.set_keys(KEYS[1:])
    m.sighup()
    wait_for(lambda: len(gets(api)) == listed + 1, what="the refresh")
    wait_for(lambda: key["id"] not in os.listdir(m.mnt), what="the key gone")
    with pytest.raises(OSError) as e:
        os.rmdir(path)
    assert e.value.errno == errno.ENOENT
    assert deletes(api) == []
