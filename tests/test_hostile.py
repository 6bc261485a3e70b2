"""Every byte from the network is hostile, and the token is a secret.

Real mounts against the fake API: hostile key entries and ids (names must
never escape the mount, every key must stay reachable), hostile bodies at
mount time and during a refresh, the HTTP policy (no redirects, URLs refused
before any traffic), the key file policy, and where the token may and may
not appear.
"""
import base64
import collections
import json
import os
import random
import re
import resource
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

from conftest import (BIN, FAKEAPI, PYTHON, SANITIZER_MARKS, TOKEN, FakeAPI,
                      make_key, make_keys, run, tree, wait_for)

# What a refresh that fails logs, once.
REFRESH_FAILED = r"^omikeyfs: fetching the key list failed: .*; serving the last good list$"
WORKS_AGAIN = r"^omikeyfs: fetching the key list works again after \d+ failed tries$"
# The warning for each entry that is skipped, and the line that ends a long run of them.
SKIPPED = r"^omikeyfs: skipping key #\d+\b"
MORE_SKIPPED = r"^omikeyfs: \.\.\. and \d+ more entries skipped \(-d shows them\)$"

FIELDS = ("name", "key_prefix", "created_at", "last_used_at", "scopes")
KEYNAME_MAX = 255
CUT_KEEP = KEYNAME_MAX - 18  # a cut name keeps this much, then "%~" + 16 hex
SECRET = "omi_dev_SECRET_c0ffee_7e3a91d5b2f4"  # a token easy to spot anywhere


# --------------------------------------------------------------------------
# What omikeyfs should show, computed independently of its C code

def fnv1a64(data):
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


ESCAPES = {ord("%"): b"%25", ord("/"): b"%2F", 0: b"%00"}


def dir_name(raw_id):
    """The directory name of a raw id (bytes), as omikeyfs(1) NAMES says."""
    if (raw_id and len(raw_id) <= KEYNAME_MAX and raw_id[:1] not in (b".", b"%")
            and b"/" not in raw_id and b"\0" not in raw_id):
        return raw_id
    pieces = [ESCAPES.get(b, bytes([b])) for b in raw_id]
    name = b"%" + b"".join(pieces)
    if len(name) <= KEYNAME_MAX:
        return name
    kept = b"%"
    for piece in pieces:  # whole pieces only: a cut never splits a %XX
        if len(kept) + len(piece) > CUT_KEEP:
            break
        kept += piece
    return kept + b"%~" + b"%016x" % fnv1a64(raw_id)


def text(v):
    return v if isinstance(v, bytes) else v.encode()


def is_string(v):
    return isinstance(v, (str, bytes))


def entry_is_valid(entry):
    if not isinstance(entry, dict) or not is_string(entry.get("id")):
        return False
    for field in FIELDS:
        v = entry.get(field)
        if v is None:
            continue
        if field == "scopes":
            if not isinstance(v, list) or not all(is_string(s) for s in v):
                return False
        elif not is_string(v):
            return False
    return True


def rendered(entry):
    files = {}
    for field in FIELDS:
        v = entry.get(field)
        if field == "scopes":
            files[field] = b"".join(text(s) + b"\n" for s in v or [])
        else:
            files[field] = b"" if v is None else text(v) + b"\n"
    return files


def expectation(entries):
    """({dir name: (raw id, files)}, [indices of skipped entries])."""
    shown, skipped = {}, []
    for i, entry in enumerate(entries):
        if not entry_is_valid(entry):
            skipped.append(i)
            continue
        raw_id = text(entry["id"])
        name = dir_name(raw_id)
        if name in shown:  # first in API order wins
            skipped.append(i)
            continue
        shown[name] = (raw_id, rendered(entry))
    return shown, skipped


def to_json(v):
    """JSON bytes; a bytes value is a string sent byte for byte (so it can
    carry invalid UTF-8), with only '"', '\\' and control bytes escaped."""
    if isinstance(v, str):
        v = v.encode()
    if isinstance(v, bytes):
        return b'"' + re.sub(rb'["\\\x00-\x1f]', lambda m: b"\\u%04x" % m.group()[0], v) + b'"'
    if isinstance(v, dict):
        return b"{" + b",".join(to_json(k) + b":" + to_json(x) for k, x in v.items()) + b"}"
    if isinstance(v, list):
        return b"[" + b",".join(to_json(x) for x in v) + b"]"
    return json.dumps(v).encode()


def serve(api, body):
    """Serve these exact bytes as the key list (after the token check)."""
    api.control("raw", {"body_b64": base64.b64encode(body).decode()})


# --------------------------------------------------------------------------
# Helpers

def attempt(url, mnt, opts=(), token=TOKEN, wrapper=(), timeout=30):
    """Run omikeyfs where it must fail before mounting.
    Returns (exit status, stderr, peak RSS in KiB)."""
    env = dict(os.environ)
    env.pop("OMI_API_KEY", None)
    if token is not None:
        env["OMI_API_KEY"] = token
    argv = list(wrapper) + [BIN, "-f"] + (["-o", ",".join(opts)] if opts else []) + [url, mnt]
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                raise AssertionError("omikeyfs did not exit: %r" % argv)
            time.sleep(0.02)
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    if os.path.ismount(mnt):
        subprocess.run(["fusermount3", "-u", "-z", mnt])
        raise AssertionError("a failed omikeyfs left a mount behind")
    for mark in SANITIZER_MARKS:
        assert mark not in stderr, stderr
    for secret in (TOKEN, SECRET):
        assert secret not in stderr, "the token leaked into an error message"
    return proc.returncode, stderr, usage.ru_maxrss


def one_line(stderr):
    """The single 'omikeyfs: ...' line a failure prints."""
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("omikeyfs: "), stderr
    assert all(c >= " " for c in lines[0]), stderr
    return lines[0]


def new_mountpoint(tmp_path, name="mnt"):
    path = str(tmp_path / name)
    os.mkdir(path)
    return path


def key_file(tmp_path, content, mode=0o600, name="token"):
    path = tmp_path / name
    path.write_bytes(content)
    os.chmod(path, mode)
    return str(path)


@pytest.fixture(scope="module")
def other_api():
    """A second fake API on another loopback port: it must never be contacted."""
    server = FakeAPI(token=TOKEN)
    yield server
    server.stop()


# --------------------------------------------------------------------------
# 1. Hostile key entries

def k(seed, **fields):
    return make_key(random.Random(seed), **fields)


SHARED = "s" * 900
BIG_NAME = random.Random(11).randbytes(1 << 20)

CASES = {
    "id empty": [k(1, id="")],
    "id dot": [k(1, id=".")],
    "id dotdot": [k(1, id="..")],
    "id slash": [k(1, id="a/b")],
    "id lone slash": [k(1, id="/")],
    "id traversal": [k(1, id="../../etc")],
    "id percent": [k(1, id="%2F")],
    "id lone percent": [k(1, id="%")],
    "id hidden": [k(1, id=".hidden")],
    "id with nul": [k(1, id="a\0b"), k(2, id="\0")],
    "id 255 bytes": [k(1, id="i" * 255)],
    "id 256 bytes": [k(1, id="j" * 256)],
    "id 1000 bytes": [k(1, id="k" * 1000)],
    "ids share 900 bytes": [k(1, id=SHARED + "a" * 100), k(2, id=SHARED + "b" * 100)],
    "cut next to escapes": [k(i, id="x" * i + "/" * 300) for i in range(3)]
                           + [k(3, id="%" * 300), k(4, id="\0" * 80 + "y" * 300)],
    "id invalid utf-8": [k(1, id=b"\xff\xfe-key"), k(2, id=b"\xc0\xae\xc0\xae\xc0\xaf")],
    "duplicate ids": [k(1, id="dup", name="first"), k(2, id="dup", name="second"),
                      k(3, id="dup", name="third")],
    "duplicate of a normal key": [k(1, id=make_keys(3, seed=5)[0]["id"], name="impostor")],
    "missing id": [{f: v for f, v in k(1).items() if f != "id"}],
    "id not a string": [k(1, id=5), k(2, id=None), k(3, id={}), k(4, id=[]),
                        k(5, id=True), k(6, id=1.5), k(7, id=["x"])],
    "wrong types": [k(1, name=5), k(2, scopes="x"), k(3, scopes=[1]), k(4, created_at=12),
                    k(5, key_prefix=[]), k(6, last_used_at=True), k(7, scopes=[None]),
                    k(8, name={"a": "b"}), k(9, scopes={"goals:read": 1})],
    "not objects": ["a string", 42, None, [], ["nested", "list"], True],
    "unknown fields": [k(1, extra={"deep": [1, {"x": None}]}, secret="sk_live_1", id2=5,
                        **{"": "empty key", "Name": "not the name", "scopes ": 5})],
    "hostile strings": [
        k(1, name="line one\nline two\n\n"),
        k(2, name="nul\0inside\0"),
        k(3, name=b"bad \xff\xfe \xc3"),
        k(4, name=b"overlong \xc0\xaf \xe0\x80\xaf \xf8\x88\x80\x80\x80"),
        k(5, key_prefix="omi_dev_\r\nX-Injected: 1", created_at="not a time\n"),
        k(6, scopes=["a\nb", "", b"\xff", "\0"]),
        k(7, name="", key_prefix=None, created_at=None, last_used_at=None, scopes=None),
    ],
    "1 MB name": [k(1, name=BIG_NAME)],
}


@pytest.mark.parametrize("case", list(CASES), ids=[c.replace(" ", "_") for c in CASES])
def test_hostile_entries(api, mount, case):
    normal = make_keys(3, seed=5)
    hostile = CASES[case]
    half = (len(hostile) + 1) // 2
    entries = [normal[0]] + hostile[:half] + [normal[1]] + hostile[half:] + [normal[2]]
    shown, skipped = expectation(entries)
    for key in normal:  # the normal keys must all be shown intact
        assert key["id"].encode() in shown
    serve(api, to_json(entries))
    m = mount(expect_stderr=[SKIPPED] if skipped else [])
    mnt = os.fsencode(m.mnt)
    base = os.path.realpath(mnt)

    names = os.listdir(mnt)
    assert sorted(names) == sorted(shown)
    for name in names:
        assert 0 < len(name) <= KEYNAME_MAX and name not in (b".", b"..")
        path = os.path.join(mnt, name)
        assert os.path.realpath(path) == os.path.join(base, name)
        raw_id, files = shown[name]
        assert os.getxattr(path, "user.omikeyfs.id") == raw_id
        assert sorted(os.listdir(path)) == sorted(f.encode() for f in FIELDS)
        for field, want in files.items():
            fpath = os.path.join(path, field.encode())
            assert os.path.realpath(fpath) == os.path.join(base, name, field.encode())
            assert os.stat(fpath).st_size == len(want), (name[:80], field)
            with open(fpath, "rb") as f:
                got = f.read()
            assert got == want, "%r/%s: %d bytes differ from the %d sent" % (
                name[:80], field, len(got), len(want))

    assert os.stat(mnt).st_nlink == 2 + len(shown)
    # Only the real "." and ".." (ls -b writes any odd byte as an escape).
    listing = run("ls", "-ab", m.mnt, errors="surrogateescape").stdout.split("\n")[:-1]
    assert len(listing) == len(shown) + 2
    assert listing.count(".") == 1 and listing.count("..") == 1
    assert run("sh", "-c", 'ls "$1" | wc -l', "sh", m.mnt).stdout.strip() == str(len(shown))
    walk = run("find", m.mnt, "-mindepth", "1", errors="surrogateescape").stdout.split("\n")[:-1]
    assert len(walk) == 6 * len(shown)

    # One warning for each skipped entry, naming its place in the list.
    warned = collections.Counter(int(i) for i in re.findall(r"skipping key #(\d+)\b", m.stderr()))
    assert warned == collections.Counter(skipped), m.stderr()


def test_unknown_field_name_with_nul(api, mount):
    """The fields "id\\u0000" and "name\\u0000x" are unknown, not "id" and
    "name": the key is shown as sent (or, at worst, skipped with a warning),
    never under the id or name those fields carry."""
    normal = make_keys(2, seed=5)
    hostile = k(1, **{"id\0": "forged", "name\0x": "forged"})
    serve(api, to_json([normal[0], hostile, normal[1]]))
    m = mount(expect_stderr=[r"^omikeyfs: skipping key #1: a field name holds a NUL byte$"])
    got = tree(m.mnt)
    assert "forged" not in got
    assert all(files["name"] != b"forged\n" for files in got.values())
    for key in normal:
        assert got[key["id"]] == rendered(key)
    if hostile["id"] in got:
        assert got[hostile["id"]] == rendered(hostile)
    else:
        assert re.findall(r"skipping key #(\d+)\b", m.stderr()) == ["1"]


# --------------------------------------------------------------------------
# 2. and 3. Hostile bodies

VALID_LIST = to_json(make_keys(3, seed=21))

BODIES = {
    "not json": (b"<html><body>502 Bad Gateway</body></html>", "malformed response"),
    "truncated": (VALID_LIST[:len(VALID_LIST) // 2], "malformed response"),
    "object": (b'{"keys": []}', "malformed response"),
    "nested": (b"[" * 300000, "malformed response"),
    "trailing data": (b"[] []", "malformed response"),
    "nul byte": (b"[\0]", "malformed response"),
    "empty": (b"", "malformed response"),
    "too large": (to_json([k(1, name="x" * 200000)]), "larger than"),
}


def size_opts(body):
    """The too-large body is 200 KB against max_size=100000."""
    return ["max_size=100000"] if body == "too large" else []


@pytest.mark.parametrize("body", list(BODIES), ids=[b.replace(" ", "_") for b in BODIES])
def test_hostile_body_at_mount(api, tmp_path, body):
    data, words = BODIES[body]
    serve(api, data)
    mnt = new_mountpoint(tmp_path)
    ours_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rc, stderr, rss_kib = attempt(api.url, mnt, ["timeout=5"] + size_opts(body))
    assert rc == 3, stderr
    assert words in one_line(stderr)
    assert os.listdir(mnt) == []
    # It refuses and exits; it does not build a tree of the hostile body.  The
    # child's peak counts from fork, when it had our size: allow 64 MiB more.
    assert rss_kib < ours_kib + 64 * 1024, "peak RSS %d KiB" % rss_kib


def test_empty_list_mounts_empty_tree(api, mount):
    serve(api, b" [ ] \n")
    m = mount()
    assert os.listdir(m.mnt) == []
    assert os.stat(m.mnt).st_nlink == 2
    assert run("sh", "-c", 'ls -a "$1" | wc -l', "sh", m.mnt).stdout.strip() == "2"


def test_many_keys(api, mount):
    keys = make_keys(20000, seed=3)
    m = mount(keys)
    assert run("sh", "-c", 'ls "$1" | wc -l', "sh", m.mnt).stdout.strip() == "20000"
    assert set(os.listdir(m.mnt)) == {key["id"] for key in keys}


@pytest.mark.parametrize("body", list(BODIES), ids=[b.replace(" ", "_") for b in BODIES])
def test_hostile_body_on_refresh(api, mount, body):
    data, words = BODIES[body]
    keys = make_keys(3, seed=22)
    m = mount(keys, timeout=5, opts=size_opts(body),
              expect_stderr=[REFRESH_FAILED, WORKS_AGAIN])
    good = tree(m.mnt)
    serve(api, data)
    m.sighup()
    wait_for(lambda: m.xattr("stale") == "1", what="a failed refresh")
    assert words in m.xattr("last_error")
    assert tree(m.mnt) == good
    assert m.proc.poll() is None
    # And it keeps working once the API is sane again.
    api.clear()
    m.sighup()
    wait_for(lambda: m.xattr("stale") == "0", what="a good refresh")
    assert tree(m.mnt) == good


# --------------------------------------------------------------------------
# 4. HTTP policy

def test_redirect_not_followed_at_mount(api, other_api, tmp_path):
    other_api.reset()
    api.fault(redirect=other_api.url + "/v1/dev/keys")
    mnt = new_mountpoint(tmp_path)
    rc, stderr, _ = attempt(api.url, mnt, ["timeout=5"])
    assert rc == 3, stderr
    assert "redirect" in one_line(stderr)
    assert api.requests() == 1
    assert other_api.stats()["paths"] == []  # nothing at all, so no token either


def test_redirect_not_followed_on_refresh(api, other_api, mount):
    other_api.reset()
    m = mount(make_keys(2, seed=23), timeout=5, expect_stderr=[REFRESH_FAILED])
    good = tree(m.mnt)
    api.fault(redirect=other_api.url + "/v1/dev/keys")
    m.sighup()
    wait_for(lambda: m.xattr("stale") == "1", what="a failed refresh")
    assert "redirect" in m.xattr("last_error")
    assert tree(m.mnt) == good
    assert other_api.stats()["paths"] == []


REFUSED_URLS = ["http://example.com", "http://10.0.0.1", "ftp://127.0.0.1",
                "http://user:pass@127.0.0.1:{port}", "http://127.0.0.1.evil.com",
                "http://127.0.0.1:{port}/?x=1", "http://localhost.:{port}@10.0.0.1"]


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_url_refused_before_traffic(api, tmp_path, url):
    url = url.format(port=api.port)
    mnt = new_mountpoint(tmp_path)
    # In a network namespace of its own, with nothing but a down loopback: a
    # URL that were not refused could reach no one and would fail with 3.
    rc, stderr, _ = attempt(url, mnt, ["timeout=2"], wrapper=["unshare", "--net"])
    assert rc == 1, stderr
    assert "user:pass@" not in one_line(stderr)
    # And outside that namespace too, where the fake API could be reached.
    if "127.0.0.1" in url and "evil" not in url:
        rc, stderr, _ = attempt(url, mnt, ["timeout=2"])
        assert rc == 1, stderr
        one_line(stderr)
        assert api.stats()["paths"] == []


@pytest.mark.parametrize("url", ["http://localhost:{port}", "http://127.0.0.1:{port}/",
                                 "HTTP://127.0.0.1:{port}//"])
def test_url_accepted(api, mount, url):
    keys = make_keys(2, seed=24)
    m = mount(keys, url=url.format(port=api.port))
    assert sorted(os.listdir(m.mnt)) == sorted(key["id"] for key in keys)
    assert api.stats()["paths"] == ["/v1/dev/keys"]


def test_url_ipv6_loopback(mount, tmp_path):
    try:
        socket.socket(socket.AF_INET6).close()
    except OSError:
        pytest.skip("no IPv6 here")
    port_file = str(tmp_path / "port6")
    proc = subprocess.Popen([PYTHON, FAKEAPI, "--host", "::1", "--port", "0",
                             "--port-file", port_file, "--token", TOKEN, "--generate", "4"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while not os.path.exists(port_file):
            if proc.poll() is not None:
                pytest.skip("the fake API cannot listen on [::1]")
            assert time.monotonic() < deadline, "fake API on [::1] did not start"
            time.sleep(0.02)
        with open(port_file) as f:
            port = int(f.read())
        m = mount(url="http://[::1]:%d" % port)
        assert len(os.listdir(m.mnt)) == 4
        m.unmount()
    finally:
        proc.terminate()
        proc.wait(10)


# --------------------------------------------------------------------------
# 5. Key file policy

@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o601])
def test_key_file_open_to_others_refused(api, tmp_path, mode):
    path = key_file(tmp_path, TOKEN.encode() + b"\n", mode)
    rc, stderr, _ = attempt(api.url, new_mountpoint(tmp_path), ["key_file=" + path], token=None)
    assert rc == 1, stderr
    line = one_line(stderr)
    assert "chmod 600" in line and path in line
    assert api.stats()["paths"] == []


@pytest.mark.parametrize("content", [b"", b"   \n", b" \t\r\n\n", b"\n" + TOKEN.encode() + b"\n"],
                         ids=["empty", "spaces", "blank", "token_on_line_2"])
def test_key_file_without_token_refused(api, tmp_path, content):
    path = key_file(tmp_path, content)
    rc, stderr, _ = attempt(api.url, new_mountpoint(tmp_path), ["key_file=" + path], token=None)
    assert rc == 1, stderr
    assert path in one_line(stderr)
    assert api.stats()["paths"] == []


@pytest.mark.parametrize("what", ["missing", "directory"])
def test_key_file_not_a_file_refused(api, tmp_path, what):
    path = str(tmp_path / "token")
    if what == "directory":
        os.mkdir(path, 0o700)
    rc, stderr, _ = attempt(api.url, new_mountpoint(tmp_path), ["key_file=" + path],
                            token=TOKEN)  # the environment's token is not a fallback
    assert rc == 1, stderr
    assert path in one_line(stderr)
    assert api.stats()["paths"] == []


@pytest.mark.parametrize("mode,content", [
    (0o600, TOKEN.encode()),
    (0o400, TOKEN.encode() + b"\n"),
    (0o600, b" \t " + TOKEN.encode() + b" \t\r\nsecond line\nthird\n"),
], ids=["0600", "0400", "trimmed_first_line"])
def test_key_file_accepted(api, mount, tmp_path, mode, content):
    path = key_file(tmp_path, content, mode)
    keys = make_keys(2, seed=25)
    m = mount(keys, opts=["key_file=" + path], token=None)
    assert sorted(os.listdir(m.mnt)) == sorted(key["id"] for key in keys)
    assert api.stats()["last_headers"]["authorization"] == "Bearer " + TOKEN


# --------------------------------------------------------------------------
# 6. Token secrecy

def use_secret(api):
    api.control("token", {"token": SECRET})


def check_sent_only_as_bearer(api):
    stats = api.stats()
    assert stats["paths"] and set(stats["paths"]) == {"/v1/dev/keys"}
    assert all(h["authorization"] for h in stats["all_headers"])
    headers = stats["last_headers"]
    assert headers["authorization"] == "Bearer " + SECRET
    assert not [name for name, value in headers.items()
                if SECRET in value and name != "authorization"]


@pytest.mark.parametrize("source", ["environment", "key_file"])
def test_token_not_in_proc(api, mount, tmp_path, source):
    use_secret(api)
    if source == "environment":
        m = mount(make_keys(2, seed=26), token=SECRET)
    else:
        path = key_file(tmp_path, SECRET.encode() + b"\n")
        m = mount(make_keys(2, seed=26), opts=["key_file=" + path], token=None)
    for name in ("cmdline", "environ"):
        with open("/proc/%d/%s" % (m.pid, name), "rb") as f:
            data = f.read()
        assert data, name
        assert SECRET.encode() not in data, "the token is in /proc/PID/" + name
    check_sent_only_as_bearer(api)


def test_token_not_in_debug_output(api, mount, tmp_path):
    use_secret(api)
    path = key_file(tmp_path, SECRET.encode() + b"\n")
    m = mount(make_keys(3, seed=27), timeout=5, opts=["debug", "key_file=" + path],
              token=None, expect_stderr=[REFRESH_FAILED, WORKS_AGAIN])
    assert len(tree(m.mnt)) == 3
    check_sent_only_as_bearer(api)
    api.fault(status=503, body={"detail": "backend down"})
    m.sighup()
    wait_for(lambda: "503" in m.xattr("last_error"), what="a 503")
    api.clear()
    api.control("token", {"token": "a-token-the-daemon-does-not-have"})
    m.sighup()
    wait_for(lambda: "401" in m.xattr("last_error"), what="a 401")
    use_secret(api)
    m.sighup()
    wait_for(lambda: m.xattr("stale") == "0", what="recovery")
    assert len(tree(m.mnt)) == 3
    err = m.stderr()
    assert "unique: " in err and "503" in err and "401" in err  # -d was on
    assert SECRET not in err and "Bearer" not in err


FAILURES = {
    "401": (2, lambda api: api.control("token", {"token": "another"})),
    "403": (2, lambda api: api.fault(status=403, body={"detail": "Forbidden"})),
    "503": (3, lambda api: api.fault(status=503)),
    "malformed": (3, lambda api: serve(api, b"[{")),
    "redirect": (3, lambda api: api.fault(redirect="http://127.0.0.1:9/v1/dev/keys")),
}


@pytest.mark.parametrize("failure", list(FAILURES))
def test_token_not_in_failed_mount_messages(api, tmp_path, failure):
    status, make_it_fail = FAILURES[failure]
    use_secret(api)
    make_it_fail(api)
    path = key_file(tmp_path, SECRET.encode() + b"\n")
    for opts, token in ((["key_file=" + path], None), ([], SECRET)):
        rc, stderr, _ = attempt(api.url, new_mountpoint(tmp_path, "mnt%d" % len(opts)),
                                ["timeout=2"] + opts, token=token)
        assert rc == status, stderr
        one_line(stderr)  # attempt() checked that the token is not in it
    if failure == "401":
        assert api.stats()["last_headers"]["authorization"] == "Bearer " + SECRET


def test_daemon_not_dumpable(api, tmp_path):
    """PR_SET_DUMPABLE 0: no core dump, and another process of the same
    user cannot read the daemon's memory or environment.  As root nothing
    stops us, so the daemon runs as nobody here, next to a dumpable process
    of nobody's to compare with."""
    if shutil.which("setpriv") is None:
        pytest.skip("needs setpriv")
    home = tempfile.mkdtemp(prefix="omikeyfs-nobody-")
    try:
        os.chmod(home, 0o755)
        binary = shutil.copy(BIN, os.path.join(home, "omikeyfs"))
        mnt = os.path.join(home, "mnt")
        os.mkdir(mnt)
        as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        control = subprocess.Popen(as_nobody + ["sleep", "30"])
        api.fault(delay=2, status=503, count=1)
        env = dict(os.environ, OMI_API_KEY=TOKEN)
        daemon = subprocess.Popen(as_nobody + [binary, "-f", "-o", "timeout=10", api.url, mnt],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            # The first request is under way: main() has long made its choice.
            wait_for(lambda: api.requests() == 1, what="the first request")
            for proc, dumpable in ((control, True), (daemon, False)):
                status = "/proc/%d/status" % proc.pid
                with open(status) as f:
                    assert "\nUid:\t65534\t" in f.read()
                assert os.stat(status).st_uid == (65534 if dumpable else 0)
                peek = run(*as_nobody, "cat", "/proc/%d/environ" % proc.pid,
                           errors="surrogateescape")
                assert (peek.returncode == 0) == dumpable, peek.stderr
        finally:
            control.kill()
            control.wait()
            _, err = daemon.communicate(timeout=20)
        assert daemon.returncode == 3, err
        assert TOKEN.encode() not in err
    finally:
        shutil.rmtree(home)


# --------------------------------------------------------------------------
# 7. allow_other

def test_allow_other_implies_default_permissions(api, mount):
    m = mount(make_keys(1, seed=28), opts=["allow_other"])
    with open("/proc/self/mountinfo") as f:
        lines = [line.split() for line in f if line.split()[4] == m.mnt]
    assert len(lines) == 1
    fields = lines[0]
    sep = fields.index("-")
    mount_opts = fields[5].split(",")
    fstype, source, super_opts = fields[sep + 1], fields[sep + 2], fields[sep + 3].split(",")
    assert "ro" in mount_opts and "noatime" in mount_opts
    assert fstype == "fuse.omikeyfs" and source == api.url
    assert "default_permissions" in super_opts and "allow_other" in super_opts
