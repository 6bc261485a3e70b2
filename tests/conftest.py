"""Shared fixtures for omikeyfs's integration tests.

Every test mounts omikeyfs for real against tests/fakeapi.py on loopback and
looks at the tree through ordinary syscalls and tools.  The daemon runs in the
foreground with its stderr captured, and unmounting must end it with status
0.  At unmount every stderr line must be one the test declared it expects
(Mount's expect_stderr) or one every mount prints (NORMAL_STDERR): a warning,
a failure or a sanitizer report that no one asked for fails the test.
"""
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import datetime, timedelta, timezone

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BIN = os.environ.get("OMIKEYFS_BIN") or os.path.join(ROOT, "build", "omikeyfs")
FAKEAPI = os.path.join(HERE, "fakeapi.py")
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
TOKEN = "omi_dev_test_token_6f1c9a2b"

SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer",
                   "runtime error:", "ERROR: ")

# Lines any mount may print.
NORMAL_STDERR = [
    r"^omikeyfs: mounted \S+ on \S+ \(ttl [0-9.e+-]+ s, timeout [0-9.e+-]+ s\)$",
]
# With -d (-o debug), libfuse's request trace: every line that is not one of
# omikeyfs's own ("omikeyfs: ...", which must still be declared).
LIBFUSE_TRACE = r"^(?!omikeyfs: )"
# What a SIGHUP logs.
SIGHUP_LINE = r"^omikeyfs: SIGHUP: refreshing the key list$"

SCOPES = ["conversations:read", "conversations:write", "memories:read", "memories:write",
          "action_items:read", "action_items:write", "goals:read", "goals:write"]


def pytest_collection_modifyitems(config, items):
    if not os.path.exists("/dev/fuse") or os.geteuid() != 0:
        skip = pytest.mark.skip(reason="needs /dev/fuse and root to mount")
        for item in items:
            item.add_marker(skip)


def iso(dt):
    """The API's form: microseconds when non-zero, 'Z'."""
    s = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if dt.microsecond:
        s += ".%06d" % dt.microsecond
    return s + "Z"


def make_key(rng=None, **fields):
    """One key object shaped like the real API's."""
    rng = rng or random.Random()
    created = datetime(2025, 1, 1, tzinfo=timezone.utc) + timedelta(
        seconds=rng.randrange(0, 600 * 86400), microseconds=rng.choice([0, rng.randrange(1, 10**6)]))
    used = created + timedelta(seconds=rng.randrange(0, 30 * 86400))
    secret = "%032x" % rng.getrandbits(128)
    key = {
        "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "name": "key %d" % rng.randrange(10**6),
        "key_prefix": "omi_dev_%s...%s" % (secret[:4], secret[-4:]),
        "created_at": iso(created),
        "last_used_at": iso(used) if rng.random() < 0.7 else None,
        "scopes": sorted(rng.sample(SCOPES, rng.randrange(0, 5)), key=SCOPES.index),
    }
    key.update(fields)
    return key


def make_keys(n, seed=1):
    rng = random.Random(seed)
    return [make_key(rng) for _ in range(n)]


def api_order(keys):
    """Newest created_at first, ties by id ascending (what the API does)."""
    by_id = sorted(keys, key=lambda k: k["id"])
    return sorted(by_id, key=lambda k: k["created_at"], reverse=True)


def expected_files(key):
    """The five files' bytes for one well-formed key."""
    def text(v):
        return b"" if v is None else v.encode() + b"\n"
    scopes = key.get("scopes")
    return {
        "name": text(key.get("name")),
        "key_prefix": text(key.get("key_prefix")),
        "created_at": text(key.get("created_at")),
        "last_used_at": text(key.get("last_used_at")),
        "scopes": b"".join(s.encode() + b"\n" for s in scopes) if scopes else b"",
    }


class FakeAPI:
    """tests/fakeapi.py in a child process, driven through /_control/.

    extra: more command-line arguments; scheme: "https" when they give it
    a certificate; ssl_context: how the control channel verifies it."""

    def __init__(self, token=TOKEN, port=0, extra=(), scheme="http", ssl_context=None):
        self.dir = tempfile.mkdtemp(prefix="omikeyfs-api-")
        port_file = os.path.join(self.dir, "port")
        self.proc = subprocess.Popen(
            [PYTHON, FAKEAPI, "--port", str(port), "--port-file", port_file,
             "--token", token] + list(extra),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 15
        while not os.path.exists(port_file):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("fake API did not start: %s" % self.proc.stderr.read())
            time.sleep(0.02)
        with open(port_file) as f:
            self.port = int(f.read().strip())
        self.url = "%s://127.0.0.1:%d" % (scheme, self.port)
        self.banner = self.proc.stdout.readline().decode().strip()
        self.proc.stdout.close()
        self.ssl_context = ssl_context

    def control(self, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + "/_control/" + path, data=data,
                                     method="GET" if body is None else "POST")
        with urllib.request.urlopen(req, timeout=10, context=self.ssl_context) as resp:
            out = resp.read()
        return json.loads(out) if out else None

    def stats(self):
        return self.control("stats")

    def requests(self):
        return self.stats()["requests"]

    def reset(self):
        self.control("clear", {})
        self.control("reset", {})
        self.control("token", {"token": TOKEN})

    def set_keys(self, keys):
        self.control("keys", keys)

    def fault(self, **fault):
        self.control("fault", fault)

    def raw(self, body, status=200, **extra):
        self.control("raw", dict(body=body, status=status, **extra))

    def clear(self):
        self.control("clear", {})

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Mount:
    """One omikeyfs daemon in the foreground (-f), stderr captured.

    expect_stderr: regular expressions (re.search) for the stderr lines this
    mount may print besides NORMAL_STDERR; more can be declared later with
    expect_stderr().  With the debug option, libfuse's trace is expected."""

    def __init__(self, api_url, mnt, opts=(), env=None, token=TOKEN, args=None,
                 wait=True, foreground=True, expect_stderr=()):
        self.mnt = mnt
        self.expected = list(NORMAL_STDERR) + list(expect_stderr)
        if "debug" in opts or (args and ("-d" in args or "debug" in args)):
            self.expected.append(LIBFUSE_TRACE)
        self.stderr_path = mnt + ".stderr"
        self.stderr_file = open(self.stderr_path, "wb")
        full_env = dict(os.environ)
        full_env.pop("OMI_API_KEY", None)
        if token is not None:
            full_env["OMI_API_KEY"] = token
        if env:
            full_env.update(env)
        if args is None:
            args = []
            if foreground:
                args.append("-f")
            if opts:
                args += ["-o", ",".join(opts)]
            args += [api_url, mnt]
        self.argv = [BIN] + list(args)
        self.proc = subprocess.Popen(self.argv, env=full_env, stdout=subprocess.DEVNULL,
                                     stderr=self.stderr_file, stdin=subprocess.DEVNULL)
        self.unmounted = False
        if wait:
            self.wait_mounted()

    def expect_stderr(self, *patterns):
        """Declare more stderr lines this mount may print (re.search)."""
        self.expected.extend(patterns)

    def sighup(self):
        """kill -HUP: refresh now (and log that it does)."""
        self.expect_stderr(SIGHUP_LINE)
        os.kill(self.pid, signal.SIGHUP)

    @property
    def pid(self):
        return self.proc.pid

    def stderr(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode(errors="replace")

    def wait_mounted(self, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if os.path.ismount(self.mnt):
                return
            if self.proc.poll() is not None:
                # The daemon may have exited after mounting in daemon mode.
                if os.path.ismount(self.mnt):
                    return
                raise AssertionError("omikeyfs exited with %s before mounting: %s"
                                     % (self.proc.returncode, self.stderr()))
            time.sleep(0.02)
        raise AssertionError("mount not ready after %ss: %s" % (timeout, self.stderr()))

    def check_stderr(self):
        err = self.stderr()
        for mark in SANITIZER_MARKS:
            assert mark not in err, "daemon stderr shows %r:\n%s" % (mark, err)
        assert TOKEN not in err, "the token leaked to stderr"
        patterns = [re.compile(p) for p in self.expected]
        unexpected = [line for line in err.splitlines()
                      if not any(p.search(line) for p in patterns)]
        assert not unexpected, "unexpected daemon stderr:\n%s" % "\n".join(unexpected[:20])

    def unmount(self):
        if self.unmounted:
            return
        self.unmounted = True
        if os.path.ismount(self.mnt):
            subprocess.run(["fusermount3", "-u", self.mnt], check=True)
        try:
            rc = self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("omikeyfs did not exit after unmount")
        self.stderr_file.close()
        assert rc == 0, "omikeyfs exited %s after unmount: %s" % (rc, self.stderr())
        self.check_stderr()

    def kill(self):
        """Tear down without checks (after a failed test)."""
        if os.path.ismount(self.mnt):
            subprocess.run(["fusermount3", "-u", "-z", self.mnt], stderr=subprocess.DEVNULL)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if not self.stderr_file.closed:
            self.stderr_file.close()

    def xattr(self, name):
        return os.getxattr(self.mnt, "user.omikeyfs." + name).decode()


@pytest.fixture(scope="session")
def api_server():
    server = FakeAPI()
    yield server
    server.stop()


@pytest.fixture
def api(api_server):
    """The fake API, reset: default token, no faults, counters at zero."""
    api_server.reset()
    yield api_server
    api_server.clear()


@pytest.fixture
def mount(api, tmp_path):
    """mount(keys=None, ttl=60, timeout=5, opts=(), **kw) -> Mount."""
    mounts = []

    def start(keys=None, ttl=60, timeout=5, opts=(), url=None, **kw):
        if keys is not None:
            api.set_keys(keys)
        mnt = str(tmp_path / ("mnt%d" % len(mounts)))
        os.mkdir(mnt)
        all_opts = ["ttl=%s" % ttl, "timeout=%s" % timeout] + list(opts)
        m = Mount(url or api.url, mnt, opts=all_opts, **kw)
        mounts.append(m)
        return m

    yield start
    unmount_all(mounts)


def unmount_all(mounts):
    """Unmount each (checking its exit), then raise the first failure."""
    failed = []
    for m in mounts:
        try:
            m.unmount()
        except Exception as e:  # report after cleaning up every mount
            failed.append(e)
            m.kill()
    if failed:
        raise failed[0]


def run(*argv, **kw):
    """Run a command, return CompletedProcess (text, captured)."""
    kw.setdefault("capture_output", True)
    kw.setdefault("text", True)
    kw.setdefault("timeout", 60)
    return subprocess.run(list(argv), **kw)


def tree(mnt):
    """{key_dir: {file: bytes}} read through the mount."""
    out = {}
    for d in sorted(os.listdir(mnt)):
        files = {}
        for f in sorted(os.listdir(os.path.join(mnt, d))):
            with open(os.path.join(mnt, d, f), "rb") as fh:
                files[f] = fh.read()
        out[d] = files
    return out


def wait_for(predicate, timeout=10, interval=0.05, what="condition", ignore=()):
    """Poll predicate until true; exceptions in `ignore` count as false
    (a walk racing a refresh may meet a key that just vanished)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except ignore:
            value = None
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("timed out waiting for " + what)
