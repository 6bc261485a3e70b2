"""omikeyfs when the API misbehaves: the tree stays up and truthful.

Every test mounts for real against the fake API and injects faults through
its /_control/ endpoints (fault, raw, token, etag).  The rules checked here
come from the contract and the man page (CACHE AND FAILURES, STATUS,
LOGGING): a failed refresh keeps serving the last good list byte for byte,
the status xattrs say why, retries back off (Retry-After honoured), a
recovered API is picked up on the next try, a rotated key file is read
again after a 401, SIGHUP refreshes at once, and no reader ever sees a torn
or padded file.  The timing of the backoff and of Retry-After is tested with
a fake clock in tests/unit/test_cache.c; here each has one end-to-end test,
and the other tests drive their refreshes with SIGHUP.
"""
import json
import os
import random
import re
import threading
import time

import pytest

from conftest import TOKEN, expected_files, make_keys, run, tree, wait_for

FILES = ("name", "key_prefix", "created_at", "last_used_at", "scopes")


# ---- helpers -----------------------------------------------------------------

def expected_tree(keys):
    """What tree(mnt) must return for a list of well-formed keys."""
    return {k["id"]: expected_files(k) for k in keys}


def changed(keys):
    """The same list with one key gone, one renamed and one new key."""
    out = [dict(k) for k in keys[1:]]
    out[0]["name"] = out[0]["name"] + " (renamed)"
    out.append(make_keys(1, seed=999)[0])
    return out


def ls_count(mnt):
    """`ls MNT | wc -l`, as a user counts keys."""
    res = run("sh", "-c", 'ls "$1" | wc -l', "sh", mnt)
    assert res.returncode == 0, res.stderr
    return int(res.stdout)


def status(m):
    """(stale, last_error) of a mount, as getfattr shows them."""
    return m.xattr("stale"), m.xattr("last_error")


def poke(mnt):
    """Operations that reach omikeyfs once the list has expired."""
    os.stat(mnt)
    return os.listdir(mnt)


def failure_line(cause):
    """What omikeyfs logs when a refresh starts failing."""
    return r"^omikeyfs: fetching the key list failed: .*%s.*; serving the last good list$" % (
        re.escape(cause))


works_again_any = r"^omikeyfs: fetching the key list works again after \d+ failed tries$"


def works_again(tries):
    return r"^omikeyfs: fetching the key list works again after %d failed tries$" % tries


def hup_until(m, done, what):
    """kill -HUP, then poll until done() holds."""
    m.sighup()
    wait_for(done, what=what)


def wait_fresh(m, keys, timeout=8):
    """Wait until the mount serves exactly keys and reports no error."""
    want = expected_tree(keys)
    wait_for(lambda: status(m) == ("0", "") and tree(m.mnt) == want,
             timeout=timeout, what="the new list and a clear status",
             ignore=(FileNotFoundError,))  # a walk racing the refresh


def read_in_chunks(path, rng):
    """Read a file through one fd, 3 to 7 bytes at a time, until EOF.
    Returns (bytes read, st_size from fstat on that fd)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        data = b""
        while True:
            chunk = os.read(fd, rng.randint(3, 7))
            if not chunk:
                return data, size
            data += chunk
    finally:
        os.close(fd)


@pytest.fixture
def etag(api):
    """The fake API sends ETags and answers If-None-Match with 304."""
    api.control("etag", {"enabled": True})
    yield
    api.control("etag", {"enabled": False})


# ---- 1. stale on error -------------------------------------------------------

KEYS = make_keys(6, seed=11)
GOOD_BODY = json.dumps(KEYS)

FAULTS = [
    ("reset", dict(reset=True), ["reset"]),
    ("http-500", dict(status=500, body={"detail": "Internal failure in keys store"}),
     ["HTTP 500", "Internal failure in keys store"]),
    ("http-502-detail-list", dict(status=502, body={"detail": [{"msg": "upstream gone"}]}),
     ["HTTP 502", "upstream gone"]),
    ("http-503", dict(status=503, body={"detail": "Firestore unavailable"}),
     ["HTTP 503", "Firestore unavailable"]),
    ("http-429", dict(status=429, body={"detail": "Too many requests"},
                      headers={"Retry-After": "1"}),
     ["HTTP 429", "Too many requests", "retry after 1 s"]),
    ("http-401", dict(status=401, body={"detail": "Invalid authentication credentials"}),
     ["HTTP 401", "Invalid authentication credentials"]),
    ("http-403", dict(status=403, body={"detail": "Not authenticated"}),
     ["HTTP 403", "Not authenticated"]),
    ("timeout", dict(delay=3), ["timed out"]),
    ("html", dict(status=200, body="<html><body>502 Bad Gateway</body></html>",
                  content_type="text/html"), ["malformed response"]),
    ("truncated-json", dict(status=200, body=GOOD_BODY[:len(GOOD_BODY) // 2]),
     ["malformed response"]),
    ("truncated-transfer", dict(truncate=len(GOOD_BODY) // 2), ["transfer"]),
    ("empty", dict(status=200, body=""), ["malformed response"]),
    ("json-object", dict(status=200, body={"keys": KEYS}), ["malformed response"]),
    # Not one usable key: a broken response, not an empty account (that is
    # "[]"); taking it would empty the tree and let rsync --delete wipe backups.
    ("array-of-non-objects", dict(status=200, body=[1, "two", None]),
     ["malformed response"]),
]


@pytest.mark.parametrize("fault,causes", [f[1:] for f in FAULTS], ids=[f[0] for f in FAULTS])
def test_failed_refresh_serves_last_good_list(api, mount, fault, causes):
    # A short timeout only where timing out is the fault: elsewhere a slow
    # moment of a loaded machine must not turn into another failure.
    m = mount(KEYS, ttl=0.5, timeout=1 if "delay" in fault else 5,
              expect_stderr=[failure_line(causes[0])])
    if fault.get("body") == [1, "two", None]:
        m.expect_stderr(r"^omikeyfs: skipping key #[012]: it is (a number|a string|null), "
                        r"not an object$")
    before = tree(m.mnt)
    assert before == expected_tree(KEYS)
    count = ls_count(m.mnt)
    assert count == len(KEYS)
    assert status(m) == ("0", "")
    fetched_at = m.xattr("fetched_at")

    api.fault(**fault)
    # The server's list changes too: only a successful fetch may show it.
    new_keys = changed(KEYS)
    api.set_keys(new_keys)
    # Asking for the status once the TTL has run out makes the refresh.
    wait_for(lambda: status(m)[0] == "1", what="the failed refresh")
    assert tree(m.mnt) == before
    assert ls_count(m.mnt) == count
    assert api.requests() >= 2
    stale, error = status(m)
    assert stale == "1"
    for cause in causes:
        assert cause in error, (cause, error)
    assert TOKEN not in error
    assert m.xattr("fetched_at") == fetched_at

    api.clear()
    m.expect_stderr(works_again_any)
    m.sighup()
    wait_fresh(m, new_keys)
    assert ls_count(m.mnt) == len(new_keys)


# ---- 2. bounded waits --------------------------------------------------------

def test_hung_api_costs_one_timeout_then_answers_from_the_last_list(api, mount):
    m = mount(KEYS, ttl=0.5, timeout=1, expect_stderr=[failure_line("timed out")])
    before = tree(m.mnt)
    key = KEYS[0]["id"]
    api.fault(delay=10)
    # Once the TTL has run out, one operation waits for the try to time out.
    wait_for(lambda: m.xattr("stale") == "1", what="the timed-out refresh")
    assert api.requests() == 2  # the mount's fetch and one timed-out try
    # Until the next try is due, operations are answered from the last list
    # without another request (each of which would wait for the timeout).
    path = os.path.join(m.mnt, key, "name")
    assert os.stat(os.path.join(m.mnt, key)).st_ino % 8 == 0
    for op, arg in ((os.listdir, m.mnt), (os.stat, m.mnt), (os.stat, path),
                    (os.listdir, os.path.join(m.mnt, key))):
        op(arg)
    with open(path, "rb") as f:
        assert f.read() == before[key]["name"]
    assert api.requests() == 2
    stale, error = status(m)
    assert stale == "1"
    assert "timed out" in error
    assert tree(m.mnt) == before


# ---- 3. backoff --------------------------------------------------------------

def test_outage_retries_back_off(api, mount):
    """After each failed try, operations are answered from the last list
    without a request until the backoff allows the next try, which comes by
    itself; the whole outage is logged once, and so is the recovery."""
    m = mount(KEYS, ttl=0.5, timeout=5,
              expect_stderr=[failure_line("Firestore unavailable"), works_again(3)])
    before = tree(m.mnt)
    kept = KEYS[2]["id"]  # in changed(KEYS) too, unchanged
    key_dir = os.path.join(m.mnt, kept)
    api.fault(status=503, body={"detail": "Firestore unavailable"})
    api.control("reset", {})

    def one_round():
        poke(m.mnt)
        os.stat(key_dir)
        with open(os.path.join(key_dir, "scopes"), "rb") as f:
            assert f.read() == before[kept]["scopes"]
        return api.requests()

    for tries in (1, 2, 3):
        wait_for(lambda: one_round() >= tries, what="failed try %d" % tries)
        assert status(m)[0] == "1"
        # Right after a try, the backoff (at least 0.5 s) holds the next.
        assert [one_round() for _ in range(5)] == [tries] * 5
    assert tree(m.mnt) == before

    new_keys = changed(KEYS)
    api.set_keys(new_keys)
    api.clear()
    # The next try, when the backoff allows it, succeeds.
    wait_for(lambda: one_round() == 4 and status(m) == ("0", ""), what="the recovery")
    assert tree(m.mnt) == expected_tree(new_keys)
    assert api.stats()["last_status"] == 200
    lines = m.stderr().splitlines()
    assert len([l for l in lines if re.search(failure_line("HTTP 503"), l)]) == 1, lines
    assert len([l for l in lines if "works again" in l]) == 1, lines
    assert "Bearer" not in m.stderr()


# ---- 4. Retry-After ----------------------------------------------------------

@pytest.mark.parametrize("code", [503, 429])
def test_retry_after_is_honoured(api, mount, code):
    """Retry-After: 30 holds every try, where the backoff alone would have
    retried within 1 s; SIGHUP still refreshes at once."""
    m = mount(KEYS, ttl=0.5, timeout=5, expect_stderr=[failure_line("slow down"),
                                                       works_again(1)])
    api.fault(status=code, body={"detail": "slow down"}, headers={"Retry-After": "30"})
    api.control("reset", {})
    wait_for(lambda: m.xattr("stale") == "1", what="the failed refresh")
    assert api.requests() == 1
    assert "retry after 30 s" in m.xattr("last_error")

    # Constant access for longer than the first backoff (at most 1 s): still
    # no second request.
    end = time.monotonic() + 1.5
    while time.monotonic() < end:
        poke(m.mnt)
        assert m.xattr("stale") == "1"
        assert api.requests() == 1
    api.clear()
    hup_until(m, lambda: status(m) == ("0", ""), "the refresh after SIGHUP")
    assert api.requests() == 2
    wait_fresh(m, KEYS)


# ---- 6. token rotation -------------------------------------------------------

NEW_TOKEN = "omi_dev_rotated_token_93e0d4c7"


def write_key_file(path, token):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(token + "\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def mount_with_key_file(mount, tmp_path):
    key_file = str(tmp_path / "token")
    write_key_file(key_file, TOKEN)
    m = mount(KEYS, timeout=5, opts=["key_file=" + key_file], token=None)
    return m, key_file


def test_rotated_key_file_is_used_without_remount(api, mount, tmp_path):
    m, key_file = mount_with_key_file(mount, tmp_path)
    assert tree(m.mnt) == expected_tree(KEYS)
    new_keys = changed(KEYS)
    api.set_keys(new_keys)
    api.control("token", {"token": NEW_TOKEN})
    write_key_file(key_file, NEW_TOKEN)
    m.expect_stderr(r"^omikeyfs: the API refused the token; retrying with the new one in %s$"
                    % re.escape(key_file))
    m.sighup()

    wait_fresh(m, new_keys, timeout=5)
    assert api.stats()["last_headers"]["authorization"] == "Bearer " + NEW_TOKEN
    assert m.xattr("pid") == str(m.pid)  # the same daemon: no remount
    assert NEW_TOKEN not in m.stderr()


def test_token_refused_keeps_tree_until_key_file_updated(api, mount, tmp_path):
    m, key_file = mount_with_key_file(mount, tmp_path)
    before = tree(m.mnt)
    api.control("token", {"token": NEW_TOKEN})
    m.expect_stderr(failure_line("HTTP 401"), works_again(1),
                    r"^omikeyfs: the API refused the token; retrying with the new one in %s$"
                    % re.escape(key_file))
    hup_until(m, lambda: status(m)[0] == "1", "the refused refresh")

    assert tree(m.mnt) == before
    stale, error = status(m)
    assert stale == "1"
    assert "HTTP 401" in error and "Invalid authentication credentials" in error

    # The user puts the new token in the file: the next try picks it up.
    new_keys = changed(KEYS)
    api.set_keys(new_keys)
    write_key_file(key_file, NEW_TOKEN)
    m.sighup()
    wait_fresh(m, new_keys, timeout=8)
    assert api.stats()["last_headers"]["authorization"] == "Bearer " + NEW_TOKEN
    assert NEW_TOKEN not in m.stderr()


# ---- 7. SIGHUP ---------------------------------------------------------------

def test_sighup_refreshes_at_once(api, mount):
    keys = make_keys(4, seed=21)
    m = mount(keys, ttl=3600)
    assert tree(m.mnt) == expected_tree(keys)
    assert api.requests() == 1

    gone, renamed = keys[0], dict(keys[1])
    renamed["name"] = "a longer name than before, for the new size"
    added = make_keys(1, seed=22)[0]
    new_keys = [renamed] + keys[2:] + [added]
    api.set_keys(new_keys)
    # Within the TTL the kernel answers from its caches: nothing changes.
    assert tree(m.mnt) == expected_tree(keys)
    assert api.requests() == 1

    m.sighup()
    want = expected_tree(new_keys)
    wait_for(lambda: tree(m.mnt) == want, timeout=5, what="the list after SIGHUP",
             ignore=(FileNotFoundError,))
    assert not os.path.exists(os.path.join(m.mnt, gone["id"]))
    assert sorted(os.listdir(m.mnt)) == sorted(want)
    name = os.path.join(m.mnt, renamed["id"], "name")
    assert os.stat(name).st_size == len(want[renamed["id"]]["name"])
    assert run("cat", name).stdout.encode() == want[renamed["id"]]["name"]
    for f in FILES:
        assert os.stat(os.path.join(m.mnt, added["id"], f)).st_size == len(want[added["id"]][f])
    assert api.requests() == 2
    assert status(m) == ("0", "")


# ---- 8. coherence ------------------------------------------------------------

def test_changed_files_always_read_whole(api, mount):
    base = make_keys(3, seed=31)
    key = base[0]["id"]
    versions = [
        dict(name="k", scopes=[], last_used_at=None),
        dict(name="a much longer name for the same key, to grow the file",
             scopes=["conversations:read", "memories:read", "memories:write"],
             last_used_at="2025-06-01T08:00:00.250000Z"),
        dict(name="mid-sized name", scopes=None, last_used_at="2025-06-02T08:00:00Z"),
        dict(name="x" * 200, scopes=["goals:write"], last_used_at=None),
        dict(name="k", scopes=[], last_used_at=None),
    ]
    m = mount(base, timeout=5)
    old = expected_files(base[0])
    for fields in versions:
        keys = [dict(base[0], **fields)] + base[1:]
        new = expected_files(keys[0])
        api.set_keys(keys)
        m.sighup()

        def caught_up():
            seen = {}
            for f in FILES:
                data, size = read_in_chunks(os.path.join(m.mnt, key, f), random)
                assert data in (old[f], new[f]), (f, data)
                assert size == len(data), (f, size, data)
                seen[f] = data
            return seen == new
        wait_for(caught_up, timeout=5, what="the changed key")
        for f in FILES:
            path = os.path.join(m.mnt, key, f)
            assert run("cat", path).stdout.encode() == new[f]
            assert int(run("stat", "-c", "%s", path).stdout) == len(new[f])
        old = new
    assert status(m) == ("0", "")


# ---- 9. ETag / 304 -----------------------------------------------------------

def test_not_modified_keeps_tree(api, mount, etag):
    m = mount(KEYS, timeout=5)
    before = tree(m.mnt)
    assert before == expected_tree(KEYS)
    api.control("reset", {})
    for n in (1, 2, 3):
        hup_until(m, lambda: api.stats()["last_status"] == 304 and api.requests() == n,
                  "304 number %d" % n)
        assert tree(m.mnt) == before
        assert status(m) == ("0", "")
    stats = api.stats()
    assert stats["requests"] == 3
    assert stats["last_headers"].get("if-none-match", "").startswith('"')

    new_keys = changed(KEYS)
    api.set_keys(new_keys)
    m.sighup()
    wait_fresh(m, new_keys, timeout=5)
    assert api.stats()["last_status"] == 200


def test_rejected_body_is_not_confirmed_by_a_304(api, mount, etag):
    """A malformed 200 that carried an ETag must not come back as "unchanged"
    on the next try: its validators are forgotten, so the mount keeps saying
    it is stale for as long as the API keeps sending that body."""
    m = mount(KEYS, timeout=5, expect_stderr=[failure_line("malformed response")])
    before = tree(m.mnt)
    api.raw("<html>maintenance</html>", content_type="text/html")
    api.control("reset", {})
    hup_until(m, lambda: status(m)[0] == "1", "the malformed body to be seen")
    # Two more tries.
    for n in (2, 3):
        hup_until(m, lambda: api.requests() == n and api.stats()["last_status"] == 200,
                  "try %d" % n)
    stats = api.stats()
    assert "if-none-match" not in stats["last_headers"]
    assert stats["last_status"] == 200
    assert status(m)[0] == "1"
    assert status(m)[1].startswith("malformed response")
    assert tree(m.mnt) == before


# ---- 11. soak ----------------------------------------------------------------

def soak_versions():
    """Two versions of the same keys: other name lengths, other scopes."""
    v1 = make_keys(6, seed=41)
    v2 = []
    for i, k in enumerate(v1):
        k2 = dict(k, name=k["name"] + " v2" + "!" * i,
                  scopes=[s for s in ["memories:read", "goals:write"][: i % 3]],
                  last_used_at=None if k["last_used_at"] else "2026-01-02T03:04:05Z")
        v2.append(k2)
    return v1, v2


def test_soak_flipping_list_reads_never_torn(api, mount):
    v1, v2 = soak_versions()
    want = [expected_tree(v1), expected_tree(v2)]
    ids = sorted(want[0])
    m = mount(v1, ttl=0.2, timeout=5)
    stop = threading.Event()
    errors = []
    reads = [0]
    flips = [0]
    seen = set()  # versions told apart by the bytes read

    def flipper():
        try:
            i = 0
            while not stop.is_set():
                i += 1
                api.set_keys(v2 if i % 2 else v1)
                flips[0] += 1
                stop.wait(0.3)
        except Exception as e:  # reported below
            errors.append("flipper: %r" % e)

    def reader(seed):
        rng = random.Random(seed)
        try:
            while not stop.is_set():
                kid, f = rng.choice(ids), rng.choice(FILES)
                data, size = read_in_chunks(os.path.join(m.mnt, kid, f), rng)
                if data not in (want[0][kid][f], want[1][kid][f]):
                    errors.append("%s/%s read %r" % (kid, f, data))
                elif want[0][kid][f] != want[1][kid][f]:
                    seen.add(0 if data == want[0][kid][f] else 1)
                if size != len(data):
                    errors.append("%s/%s fstat size %d, read %d bytes" % (kid, f, size, len(data)))
                if rng.random() < 0.1 and sorted(os.listdir(m.mnt)) != ids:
                    errors.append("root listed %r" % os.listdir(m.mnt))
                reads[0] += 1
        except Exception as e:  # reported below
            errors.append("reader: %r" % e)

    threads = [threading.Thread(target=flipper)] + [
        threading.Thread(target=reader, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: errors or (flips[0] >= 10 and reads[0] > 100 and seen == {0, 1}),
                 timeout=30, what="both versions read, across ten flips")
    finally:
        stop.set()
    for t in threads:
        t.join(30)
    assert not errors, errors[:10]
    assert flips[0] >= 10 and reads[0] > 100, (flips[0], reads[0])
    assert seen == {0, 1}, "the readers never saw the list change"
    last = v2 if flips[0] % 2 else v1
    wait_fresh(m, last, timeout=5)
