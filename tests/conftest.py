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


def private_namespace_problem():
    """Why no mount namespace with private propagation can be made here
    (unshare's error, e.g. in a chroot whose / is no mount point), or None."""
    global _private_ns_problem
    if _private_ns_problem is None:
        r = subprocess.run(["unshare", "-m", "--propagation", "private", "true"],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True)
        _private_ns_problem = (r.stderr.strip() or "unshare exited %d" % r.returncode
                               if r.returncode else "")
    return _private_ns_problem or None


_private_ns_problem = None


def meson_build_dir():
    """The meson build directory BIN was built in (the one holding
    meson-private), or None when BIN was not built by meson."""
    d = os.path.dirname(os.path.realpath(BIN))
    while d != os.path.dirname(d):
        if os.path.isdir(os.path.join(d, "meson-private")):
            return d
        d = os.path.dirname(d)
    return None
FAKEAPI = os.path.join(HERE, "fakeapi.py")
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
TOKEN = "omi_dev_test_token_6f1c9a2b"

SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer",
                   "runtime error:", "ERROR: ")

# Lines any mount may print ("<6>" instead of "omikeyfs: " when stderr is
# the journal).
NORMAL_STDERR = [
    # log_level=debug (and -d): each kept list written to cache_dir.
    r"^(omikeyfs: |<7>)kept the key list \(\d+ keys, \d+ bytes\) in [0-9.]+ ms$",
    r"^(omikeyfs: |<6>)mounted \S+ on \S+ \(ttl [0-9.e+-]+ s, timeout [0-9.e+-]+ s(, rmdir revokes keys)?\)$",
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

    # Sign-in (the fake API in Firebase mode; see firebase_emulator below).

    def browser_login(self, authorize_url, timeout=10):
        """Play the browser: GET authorize_url (this fake API's), not
        following the redirect, then GET its Location, which must be on
        loopback (omikeyfs's callback).  Returns the callback's answer as
        (status, headers, body) plus .location, or raises AssertionError."""
        return play_browser(authorize_url, self.url, timeout, self.ssl_context)

    def auth(self, **settings):
        """Change the sign-in settings (uid, outcome, code_lifetime,
        id_token_lifetime, reset); returns them all."""
        return self.control("auth", settings)

    def auth_reset(self):
        """Sign-in settings back to defaults, codes and per-user lists,
        gates and Firebase refusals gone."""
        return self.auth(reset=True)

    def set_user(self, uid):
        """The user the next sign-in plays."""
        self.auth(uid=uid)

    def set_login_outcome(self, outcome):
        """"ok", "provider_error" (400 "Auth error: access_denied" in the
        browser), "session_expired" (400 "Invalid auth session") or
        "mint_fails" (/v1/auth/token's 502)."""
        self.auth(outcome=outcome)

    def gate(self, status=None, detail=None, count=None):
        """The account gate on the key list (403, 426 or 503 with detail,
        after the token check); gate() alone: none."""
        self.control("gate", {} if status is None else
                     {"status": status, "detail": detail, "count": count})

    def firebase_refusal(self, status=None, message=None, reason=None, call=None):
        """What this fake's stand-in Firebase paths answer; no status: 404."""
        self.control("firebase_refusal", {} if status is None else
                     {"status": status, "message": message, "reason": reason, "call": call})

    def set_token_lifetime(self, seconds):
        """Refuse ID tokens older than seconds (by iat); None: only exp."""
        self.auth(id_token_lifetime=seconds)

    def set_code_lifetime(self, seconds):
        self.auth(code_lifetime=seconds)

    def set_user_keys(self, uid, keys, sort=True):
        """uid's own key list (the default user's is set_keys's)."""
        self.control("user_keys", {"uid": uid, "keys": keys, "sort": sort})

    def request_log(self):
        """Every API request since the last reset, oldest first: dicts of
        method, path, query, headers (lower-case names), body, status."""
        return self.control("log")["requests"]


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
        # A kept list of its own per mount (unless the test says where):
        # none in the real ~/.cache, none carried from test to test.
        full_env["XDG_CACHE_HOME"] = mnt + ".cache"
        # Likewise no real ~/.config/omikeyfs/session.json is ever used.
        full_env["XDG_CONFIG_HOME"] = mnt + ".config"
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


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    """Daemons a test starts itself keep their lists under its tmp_path,
    not in the real ~/.cache, and find no real session in ~/.config (Mount
    gives each mount its own)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))


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



def build_package(top):
    """dpkg-buildpackage -b of what git tracks, as it is in the work tree
    (no build directories), in top/omikeyfs; returns the .deb's path.
    Skips when the tools or a git checkout are missing."""
    for tool in ("dpkg-buildpackage", "dh", "git"):
        if not shutil.which(tool):
            pytest.skip("%s not installed" % tool)
    files = run("git", "-C", ROOT, "ls-files", "-z")
    if files.returncode != 0:
        pytest.skip("not a git checkout: %s" % files.stderr.strip())
    src = os.path.join(str(top), "omikeyfs")
    os.mkdir(src)
    for name in files.stdout.split("\0"):
        if not name or not os.path.lexists(os.path.join(ROOT, name)):
            continue
        dst = os.path.join(src, name)
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(os.path.join(ROOT, name), dst, follow_symlinks=False)
    r = run("dpkg-buildpackage", "-us", "-uc", "-b", cwd=src, timeout=900)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    debs = [p for p in os.listdir(str(top)) if re.match(r"omikeyfs_.*\.deb$", p)]
    assert len(debs) == 1, os.listdir(str(top))
    return os.path.join(str(top), debs[0])


@pytest.fixture(scope="session")
def package_deb(tmp_path_factory):
    """(the .deb, the directory it was built in), built once per run for
    the package tests and the booted-systemd tests."""
    top = tmp_path_factory.mktemp("deb")
    return build_package(top), str(top)

# ---------------------------------------------------------------------------
# Sign-in: Google's Firebase Auth Emulator (installed by tests/deps.sh) and
# the fake API in Firebase mode.  Nothing of ours stands in for Firebase.

FIREBASE_PROJECT = "demo-omikeyfs"
# Read once at import: tests point XDG_CACHE_HOME at their own tmp_path.
INSTALL_CACHE = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")


def firebase_dir():
    """Where tests/deps.sh installs tests/firebase (the same computation)."""
    explicit = os.environ.get("OMIKEYFS_FIREBASE_DIR")
    if explicit:
        return explicit
    import hashlib
    with open(os.path.join(HERE, "firebase", "package-lock.json"), "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    return os.path.join(INSTALL_CACHE, "omikeyfs-tests", "firebase-" + digest)


def free_port():
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_call(method, url, body=None, headers=None, timeout=10, context=None):
    """(status, headers, body bytes) of one request, no redirects followed."""
    import http.client
    import urllib.parse
    u = urllib.parse.urlsplit(url)
    if u.scheme == "https":
        conn = http.client.HTTPSConnection(u.hostname, u.port, timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        conn.request(method, (u.path or "/") + ("?" + u.query if u.query else ""), body=body,
                     headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


class BrowserAnswer(tuple):
    """(status, headers, body) of the callback, plus .location (the URL
    the page's script sends the browser to) and .page (that page)."""
    location = None
    page = None


PAGE_CONSTANT = r'const %s = "([^"\\]*)";'


def page_target(page):
    """Where the backend's callback page sends the browser: what its
    script computes from its three constants (JavaScript string literals,
    which HTML entities do not touch), or None when the page would not
    navigate.  A reading of the script, for the tests that need the
    callback's exact answer; the browser tests run it in Chromium."""
    import re
    import urllib.parse
    text = page.decode("utf-8")
    found = {}
    for name in ("code", "state", "redirectUri"):
        m = re.search(PAGE_CONSTANT % name, text)
        assert m, "no %s constant in the callback page" % name
        found[name] = m.group(1)
    assert "window.location.href = target" in text, "the page does not navigate"
    if not found["code"]:
        return None

    def component(v):  # JavaScript's encodeURIComponent
        return urllib.parse.quote(v, safe="-_.!~*'()")

    target = found["redirectUri"] + "?code=" + component(found["code"])
    if found["state"]:
        target += "&state=" + component(found["state"])
    return target


def backend_page(authorize_url, api_url, timeout=10, context=None):
    """(status, headers, body, url) of what the browser shows after the
    provider step: GET authorize_url (this fake API's), then its redirect,
    which must stay on the API (the provider's consent is played there)."""
    import urllib.parse
    assert authorize_url.startswith(api_url + "/v1/auth/authorize?"), \
        "not this fake API's authorize URL: %r" % authorize_url
    status, headers, body = http_call("GET", authorize_url, timeout=timeout, context=context)
    assert status == 307 and headers.get("location"), \
        "authorize answered %d: %r" % (status, body[:200])
    location = headers["location"]
    assert location.startswith(api_url + "/v1/auth/callback/"), location
    status, headers, body = http_call("GET", location, timeout=timeout, context=context)
    return status, headers, body, location


def play_browser(authorize_url, api_url, timeout=10, context=None):
    import urllib.parse
    status, headers, page, _ = backend_page(authorize_url, api_url, timeout, context)
    assert status == 200 and headers.get("content-type", "").startswith("text/html"), \
        "the callback page answered %d: %r" % (status, page[:200])
    location = page_target(page)
    host = urllib.parse.urlsplit(location).hostname
    assert host in ("127.0.0.1", "localhost"), "redirect off loopback: %r" % location
    answer = BrowserAnswer(http_call("GET", location, timeout=timeout))
    answer.location = location
    answer.page = page
    return answer


class Chromium:
    """Debian's chromium, headless, as the browser xdg-open starts: env()
    puts BROWSER (which xdg-open runs when there is no desktop) at a
    script that starts chromium on the URL or file it is given, with an
    empty profile of its own.  visit(url) starts it directly.  Every
    chromium started is ended at close(), by its process group."""

    FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync"]

    def __init__(self, workdir):
        self.dir = workdir
        self.binary = shutil.which("chromium")
        self.opener = os.path.join(workdir, "browser")
        self.groups = os.path.join(workdir, "groups")
        self.procs = []
        with open(self.opener, "w") as f:
            f.write("#!/bin/sh\n"
                    "# What xdg-open runs as $BROWSER: one headless chromium, its\n"
                    "# process group noted so the tests can end it.\n"
                    "ps -o pgid= $$ >> %s\n"
                    "profile=$(mktemp -d %s/profile.XXXXXX)\n"
                    "exec %s %s --user-data-dir=\"$profile\" \"$1\"\n"
                    % (self.groups, workdir, self.binary, " ".join(self.FLAGS)))
        os.chmod(self.opener, 0o755)

    def env(self):
        """What omikeyfs --login needs so that its xdg-open starts this
        chromium: no desktop to ask, BROWSER set."""
        e = {"BROWSER": self.opener, "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        return e

    def visit(self, url):
        """Open url in a new headless chromium (its script runs), not waiting."""
        profile = tempfile.mkdtemp(prefix="profile.", dir=self.dir)
        self.procs.append(subprocess.Popen(
            [self.binary] + self.FLAGS + ["--user-data-dir=" + profile, url],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True))

    def started_by_opener(self):
        """How many chromiums xdg-open has started through BROWSER."""
        if not os.path.exists(self.groups):
            return 0
        with open(self.groups) as f:
            return len([l for l in f if l.strip()])

    def close(self):
        groups = [p.pid for p in self.procs]
        if os.path.exists(self.groups):
            with open(self.groups) as f:
                groups += [int(l) for l in f if l.strip()]
        for pgid in groups:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for p in self.procs:
            p.wait(10)


@pytest.fixture
def chromium(tmp_path):
    """A headless chromium for the sign-in tests (see Chromium).  Missing,
    it skips the test, and fails it under tests/all.sh
    (OMIKEYFS_NEED_EMULATOR=1): a real component that cannot start."""
    binary = shutil.which("chromium")
    why = None
    if not binary or not shutil.which("xdg-open"):
        why = "chromium or xdg-open is not installed (run tests/deps.sh)"
    else:
        r = subprocess.run([binary, "--headless", "--no-sandbox", "--version"],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            why = "chromium does not start: %s" % r.stderr.strip()[-300:]
    if why:
        if os.environ.get("OMIKEYFS_NEED_EMULATOR") == "1":
            pytest.fail(why)
        pytest.skip(why)
    workdir = tmp_path / "chromium"
    workdir.mkdir()
    browser = Chromium(str(workdir))
    yield browser
    browser.close()


class FirebaseEmulator:
    """One running Firebase Auth Emulator: .host, .port, .hostport and
    helpers for its REST API (the same paths as Google's, under its host)."""

    def __init__(self, host, port, project=FIREBASE_PROJECT, proc=None, workdir=None):
        self.host, self.port, self.project = host, port, project
        self.hostport = "%s:%d" % (host, port)
        self.base = "http://" + self.hostport
        self.proc, self.workdir = proc, workdir
        self.log_path = os.path.join(workdir, "emulator.log") if workdir else None

    def log_tail(self, size=3000, everything=False):
        """The end of its output (everything: and all of its debug log)."""
        out = ""
        names = ["emulator.log"] + (["firebase-debug.log"] if everything else [])
        for name in names:
            try:
                with open(os.path.join(self.workdir, name), "rb") as f:
                    data = f.read()
            except (OSError, TypeError):
                continue
            out += (data if everything else data[-size:]).decode(errors="replace")
        return out

    def death(self):
        """None while it runs; else what to say: its exit status and log."""
        if self.proc is None or self.proc.poll() is None:
            return None
        return "the Firebase Auth Emulator (pid %d, %s) exited with status %d; its log " \
            "(kept in %s) ends:\n%s" % (self.proc.pid, self.hostport, self.proc.returncode,
                                       self.workdir, self.log_tail())

    def check(self):
        """Fails the caller, saying why, when it is no longer running."""
        why = self.death()
        if why:
            pytest.fail(why, pytrace=False)

    def env(self):
        """What a client needs to use this emulator instead of Google."""
        return {"FIREBASE_AUTH_EMULATOR_HOST": self.hostport}

    def call(self, method, path, obj=None, form=None, headers=None):
        """(status, parsed JSON or raw bytes) of one request."""
        import urllib.parse
        hdrs = dict(headers or {})
        data = None
        if obj is not None:
            data = json.dumps(obj).encode()
            hdrs["Content-Type"] = "application/json"
        elif form is not None:
            data = urllib.parse.urlencode(form).encode()
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            status, _, body = http_call(method, self.base + path, body=data, headers=hdrs)
        except OSError as e:
            why = self.death()
            if why:
                raise AssertionError("%s %s: %s; %s" % (method, path, e, why)) from None
            raise
        try:
            return status, json.loads(body)
        except ValueError:
            return status, body

    def sign_in_with_custom_token(self, custom_token):
        """(status, JSON): idToken, refreshToken, expiresIn on success."""
        return self.call("POST", "/identitytoolkit.googleapis.com/v1/"
                         "accounts:signInWithCustomToken?key=fake-api-key",
                         {"token": custom_token, "returnSecureToken": True})

    def refresh(self, refresh_token):
        """(status, JSON): id_token, refresh_token... or {"error": ...}."""
        return self.call("POST", "/securetoken.googleapis.com/v1/token?key=fake-api-key",
                         form={"grant_type": "refresh_token", "refresh_token": refresh_token})

    def update_user(self, uid, **fields):
        status, out = self.call(
            "POST", "/identitytoolkit.googleapis.com/v1/projects/%s/accounts:update" % self.project,
            dict(localId=uid, **fields), headers={"Authorization": "Bearer owner"})
        assert status == 200, "accounts:update %s: %d %r" % (uid, status, out)
        return out

    def disable_user(self, uid):
        """Renewing that user's sessions then fails with USER_DISABLED."""
        return self.update_user(uid, disableUser=True)

    def enable_user(self, uid):
        return self.update_user(uid, disableUser=False)

    def delete_user(self, uid):
        status, out = self.call(
            "POST", "/identitytoolkit.googleapis.com/v1/projects/%s/accounts:delete" % self.project,
            {"localId": uid}, headers={"Authorization": "Bearer owner"})
        assert status == 200, "accounts:delete %s: %d %r" % (uid, status, out)

    def clear_users(self):
        status, out = self.call("DELETE", "/emulator/v1/projects/%s/accounts" % self.project)
        assert status == 200, "clearing accounts: %d %r" % (status, out)


def listening_ports(pid):
    """The 127.0.0.1 and ::1 TCP ports process pid listens on (its own
    sockets, found through /proc/PID/fd and /proc/net/tcp{,6})."""
    inodes = set()
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    except OSError:
        return set()
    loopback = ("0100007F", "00000000000000000000000001000000")
    ports = set()
    for table in ("tcp", "tcp6"):
        try:
            with open("/proc/%d/net/%s" % (pid, table)) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            addr, port = fields[1].split(":")
            if fields[3] == "0A" and addr in loopback and fields[9] in inodes:
                ports.add(int(port, 16))
    return ports


# firebase-tools (13.35.1) starts, beside the Auth Emulator, its hub (first
# free port from 4400 up unless firebase.json names one) and its logging
# emulator (from 4500 up), the latter AFTER the Auth Emulator: ports chosen
# when it starts, bound up to tens of seconds later on a loaded machine.  Two
# emulators started close together (several test runs at once) chose the same
# one, and the loser exited with EADDRINUSE after its Auth Emulator had
# answered "ready".  So: the logging emulator is off (START_LOGGING_EMULATOR
# defaults to the string "false", which firebase-tools takes as true), the
# hub's port is named, and ready means every port this process will serve
# is bound by this very process.
EMULATOR_READY = b"All emulators ready!"
PORT_TAKEN = ("EADDRINUSE", "is not open on", "port taken")


def start_firebase_emulator(install, workdir, deadline=120):
    """Popen of the emulator on free loopback ports, answering; or raises
    (PortTaken when its log says a port was taken under it)."""
    import signal as _signal
    port = free_port()
    hub_port = free_port()
    while hub_port == port:
        hub_port = free_port()
    with open(os.path.join(workdir, "firebase.json"), "w") as f:
        # The hub on a free port of its own: its default (4400, then the
        # next ones) is fought over by every emulator on the machine.  The
        # logging emulator, which would be bound last, after the Auth
        # Emulator answers, is off (START_LOGGING_EMULATOR below).
        json.dump({"emulators": {"auth": {"host": "127.0.0.1", "port": port},
                                 "hub": {"host": "127.0.0.1", "port": hub_port},
                                 "ui": {"enabled": False}}}, f)
    home = os.path.join(workdir, "home")
    tmp = os.path.join(workdir, "tmp")
    os.makedirs(home, exist_ok=True)
    os.makedirs(tmp, exist_ok=True)
    # A fresh HOME holds no credentials and no usage consent (so no
    # telemetry); its own TMPDIR keeps the hub's per-project locator file
    # from meeting another run's; no proxy, nothing from the caller.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home,
           "XDG_CONFIG_HOME": os.path.join(home, ".config"),
           "XDG_CACHE_HOME": os.path.join(home, ".cache"), "TMPDIR": tmp,
           "NO_UPDATE_NOTIFIER": "1", "CI": "1", "LANG": "C.UTF-8",
           "START_LOGGING_EMULATOR": "false"}
    log_path = os.path.join(workdir, "emulator.log")
    log = open(log_path, "wb")
    cli = os.path.join(install, "node_modules", "firebase-tools", "lib", "bin", "firebase.js")
    proc = subprocess.Popen([shutil.which("node") or "node", cli, "emulators:start", "--only",
                             "auth", "--project", FIREBASE_PROJECT],
                            cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    emu = FirebaseEmulator("127.0.0.1", port, proc=proc, workdir=workdir)
    end = time.monotonic() + deadline
    while True:
        if proc.poll() is not None:
            break
        # Its own sockets, not some other emulator's on a reused port; and
        # its start-up over, so that nothing is left to fail.
        if {port, hub_port} <= listening_ports(proc.pid):
            with open(log_path, "rb") as f:
                done = EMULATOR_READY in f.read()
            try:
                status, out = emu.call("GET", "/")
                if done and status == 200 and isinstance(out, dict) and \
                        out.get("authEmulator", {}).get("ready") and proc.poll() is None:
                    return proc, emu
            except OSError:
                pass
        if time.monotonic() > end:
            break
        time.sleep(0.1)
    stop_process_group(proc, _signal)
    why = "did not come up on port %d (hub %d), status %s" % (port, hub_port, proc.returncode)
    if any(s in emu.log_tail(everything=True) for s in PORT_TAKEN):
        raise PortTaken("Firebase Auth Emulator %s:\n%s" % (why, emu.log_tail()))
    raise RuntimeError("Firebase Auth Emulator %s:\n%s" % (why, emu.log_tail()))


class PortTaken(RuntimeError):
    """Another process bound a port between free_port() and the emulator."""


def stop_process_group(proc, _signal):
    """SIGTERM to the whole group, SIGKILL after 15 s; nothing left over."""
    pgid = proc.pid
    for sig, wait in ((_signal.SIGTERM, 15), (_signal.SIGKILL, 10)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue
        # The leader is gone; take any child it left with it.
        try:
            os.killpg(pgid, _signal.SIGKILL)
        except ProcessLookupError:
            pass
        return


@pytest.fixture(scope="session")
def firebase_emulator():
    """The Firebase Auth Emulator (project demo-omikeyfs) on a free port for
    the whole session, as a FirebaseEmulator; skips when tests/deps.sh has
    not installed it (fails instead with OMIKEYFS_NEED_EMULATOR=1)."""
    install = firebase_dir()
    if not os.path.exists(os.path.join(install, "node_modules", "firebase-tools")) \
            or not shutil.which("node"):
        why = "Firebase Auth Emulator not installed in %s (run tests/deps.sh)" % install
        if os.environ.get("OMIKEYFS_NEED_EMULATOR") == "1":
            pytest.fail(why)
        pytest.skip(why)
    import signal as _signal
    for attempt in range(3):
        workdir = tempfile.mkdtemp(prefix="omikeyfs-firebase-")
        try:
            proc, emu = start_firebase_emulator(install, workdir)
            break
        except PortTaken:
            # Bound by someone else between free_port() and the emulator
            # (its log says so): other ports, up to three times.
            shutil.rmtree(workdir, ignore_errors=True)
            if attempt == 2:
                raise
    global RUNNING_EMULATOR
    RUNNING_EMULATOR = emu
    try:
        yield emu
    finally:
        RUNNING_EMULATOR = None
        died = emu.death()
        stop_process_group(proc, _signal)
        if died:
            # Kept for whoever reads the failures; said on the terminal.
            sys.stderr.write("\n%s\n" % died)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


RUNNING_EMULATOR = None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A test that failed while the emulator was dead says so, with its log."""
    outcome = yield
    report = outcome.get_result()
    emu = RUNNING_EMULATOR
    if report.failed and emu is not None and "firebase_emulator" in item.fixturenames:
        why = emu.death()
        if why and why.splitlines()[0] not in str(report.longrepr):
            report.sections.append(("Firebase Auth Emulator", why))


@pytest.fixture
def firebase(firebase_emulator):
    """The emulator with no accounts at the start of the test."""
    firebase_emulator.check()
    firebase_emulator.clear_users()
    return firebase_emulator


@pytest.fixture(scope="session")
def auth_api_server(firebase_emulator):
    """The fake API in Firebase mode (ID tokens of demo-omikeyfs only)."""
    server = FakeAPI(extra=["--firebase-auth", "--firebase-project", FIREBASE_PROJECT])
    yield server
    server.stop()


@pytest.fixture
def auth_api(auth_api_server, firebase):
    """The Firebase-mode fake API, reset (default user omikeyfs-test-user,
    instant successful sign-in, no token lifetime, no faults), with an
    emulator that has no accounts.  auth_api.firebase is that emulator."""
    auth_api_server.reset()
    auth_api_server.auth_reset()
    auth_api_server.firebase = firebase
    yield auth_api_server
    auth_api_server.clear()
