"""omikeyfs --login, --logout and mounts with a signed-in session, for real:
the Firebase Auth Emulator (Google's own, installed by tests/deps.sh),
the fake API in real-auth mode (--firebase-auth), which answers the
sign-in as the backend does and lists keys only for a live Firebase ID
token (shared AUTH.md), and Debian's chromium, headless, as the browser:
sign_in runs the backend's page in it, and the xdg-open tests have
omikeyfs start it.  The tests that need the callback's exact answer read
the page's script instead (FakeAPI.browser_login).
"""
import json
import os
import re
import signal
import stat
import subprocess
import threading
import time

import pytest

from conftest import (BIN, SIGHUP_LINE, Mount, api_order, backend_page, expected_files,
                      free_port, http_call, make_keys, page_target, tree, unmount_all,
                      wait_for)

DEFAULT_FIREBASE_KEY = "AIzaSyA88gHcmiAxjN_aE23tHRWXOgFfapyO6dk"
USER = "omikeyfs-test-user"
KEYS = make_keys(4, seed=91)
SIGNING_IN = (r"^omikeyfs: signing in to \S+: open the URL below in a browser; waiting up to "
              r"[0-9.]+ s \(Ctrl-C cancels; a cancel in the browser is not seen here\)$")
PASTE = (r"^omikeyfs: or paste here the address the browser ends on "
         r"\(http://127\.0\.0\.1:(\d+)/callback\?code=\.\.\.\): whichever comes first wins$")
SSH_HINT = r"^omikeyfs: from another machine's browser: ssh -L (\d+):127\.0\.0\.1:(\d+) THIS-HOST first$"
SIGNED_IN = r"^omikeyfs: signed in as \S+; the session is saved in (\S+)$"
ALREADY = r"^omikeyfs: signed in as (\S+) already \(session file (\S+)\); signing in again replaces that session$"
ENDED = "the Omi account is disabled (USER_DISABLED); sign in again with omikeyfs --login"


def expected_tree(keys):
    return {k["id"]: expected_files(k) for k in keys}


def lines(text):
    return [line for line in text.splitlines() if line]


class Login:
    """One `omikeyfs --login --no-browser` run; .url is the sign-in URL it
    printed (None when it printed none), .finish() waits for its exit."""

    def __init__(self, api, env, args=(), opts=(), cwd=None, browser=False, stdin=None):
        argv = [BIN, "--login"] + ([] if browser else ["--no-browser"]) + list(args)
        if opts:
            argv += ["-o", ",".join(opts)]
        argv.append(api.url)
        self.proc = subprocess.Popen(argv, env=env, cwd=cwd,
                                     stdin=subprocess.DEVNULL if stdin is None else stdin,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # A hang must fail the test, not the run.
        self.timer = threading.Timer(60, self.proc.kill)
        self.timer.start()
        line = self.proc.stdout.readline()
        self.url = line.rstrip("\n") or None

    @property
    def pid(self):
        return self.proc.pid

    def stderr_line(self):
        """The next line of stderr (kept for .stderr), waiting for it."""
        line = self.proc.stderr.readline()
        self.early_stderr = getattr(self, "early_stderr", "") + line
        return line.rstrip("\n")

    def paste(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def finish(self):
        out, err = self.proc.communicate()
        self.timer.cancel()
        self.rest_of_stdout = out
        self.stderr = getattr(self, "early_stderr", "") + err
        self.rc = self.proc.returncode
        return self


@pytest.fixture
def env(auth_api, tmp_path):
    """What each omikeyfs of a test runs with: the emulator, and a config
    directory of the test's own (so the default session file is in it)."""
    e = dict(os.environ)
    e.pop("OMI_API_KEY", None)
    e.update(auth_api.firebase.env())
    e["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    return e


def default_session(tmp_path):
    return str(tmp_path / "config" / "omikeyfs" / "session.json")


def sign_in(auth_api, env, browser, args=(), opts=()):
    """A whole successful --login --no-browser, its URL opened in the
    headless chromium browser; returns the finished Login."""
    login = Login(auth_api, env, args, opts)
    assert login.url, "no sign-in URL: %s" % login.finish().stderr
    browser.visit(login.url)
    login.finish()
    assert login.rc == 0, login.stderr
    return login


def read_session(path):
    with open(path) as f:
        return json.load(f)


@pytest.fixture
def auth_mount(auth_api, env, tmp_path):
    """auth_mount(opts=(), env=None, **kw) -> Mount against the real-auth fake API."""
    mounts = []

    def start(opts=(), extra_env=None, ttl=60, **kw):
        mnt = str(tmp_path / ("mnt%d" % len(mounts)))
        os.mkdir(mnt)
        m = Mount(auth_api.url, mnt, opts=["ttl=%s" % ttl, "timeout=5"] + list(opts),
                  env=dict(env, **(extra_env or {})), token=kw.pop("token", None), **kw)
        mounts.append(m)
        return m

    yield start
    unmount_all(mounts)


def mount_fails(auth_api, env, tmp_path, opts=(), token=None):
    """(exit status, stderr) of a mount that must not come up."""
    mnt = str(tmp_path / "failing")
    os.makedirs(mnt, exist_ok=True)
    e = dict(env)
    if token is not None:
        e["OMI_API_KEY"] = token
    argv = [BIN, "-f", "-o", ",".join(["timeout=5"] + list(opts)), auth_api.url, mnt]
    r = subprocess.run(argv, env=e, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True, timeout=60)
    assert not os.path.ismount(mnt)
    return r.returncode, r.stderr


def list_log(auth_api):
    return [e for e in auth_api.request_log() if e["path"] == "/v1/dev/keys"]


# ---------------------------------------------------------------------------

def test_login_saves_a_private_session_and_a_mount_uses_it(auth_api, env, auth_mount, tmp_path, chromium):
    auth_api.set_keys(KEYS)
    port = free_port()
    login = sign_in(auth_api, env, chromium, args=["--port=%d" % port])

    # The URL: Omi's authorize endpoint, the loopback callback on --port.
    assert login.url.startswith(auth_api.url + "/v1/auth/authorize?provider=google&")
    assert "redirect_uri=http%%3A%%2F%%2F127.0.0.1%%3A%d%%2Fcallback" % port in login.url
    assert "code_challenge_method=S256" in login.url
    assert login.rest_of_stdout == ""
    path = default_session(tmp_path)
    err = lines(login.stderr)
    assert len(err) == 4, err
    assert re.match(SIGNING_IN, err[0]) and re.match(SSH_HINT, err[1])
    assert re.match(PASTE, err[2]).group(1) == str(port)
    assert re.match(SIGNED_IN, err[3]).group(1) == path
    assert err[3].startswith("omikeyfs: signed in as %s; " % USER)

    st = os.stat(path)
    assert stat.S_IMODE(st.st_mode) == 0o600 and stat.S_ISREG(st.st_mode)
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    session = read_session(path)
    assert set(session) == {"version", "api_url", "firebase_api_key", "user_id",
                            "refresh_token", "created"}
    assert session["version"] == 1 and session["api_url"] == auth_api.url
    assert session["firebase_api_key"] == DEFAULT_FIREBASE_KEY
    assert session["user_id"] == USER
    assert isinstance(session["created"], int) and abs(session["created"] - time.time()) < 3600
    refresh = session["refresh_token"]
    status, renewed = auth_api.firebase.refresh(refresh)
    assert status == 200 and renewed["user_id"] == USER

    # No credential given: the default session file.  Under -d, too, no secret shows.
    m = auth_mount(opts=["debug"], expect_stderr=[r"^omikeyfs: using the session in %s \(user %s\)$"
                                                  % (re.escape(path), USER)])
    assert tree(m.mnt) == expected_tree(KEYS)
    with open("/proc/%d/cmdline" % m.pid, "rb") as f:
        cmdline = f.read()
    assert refresh.encode() not in cmdline
    m.unmount()
    assert refresh not in m.stderr() and refresh not in login.stderr

    # Which secret went where: the refresh token never to the API, the
    # ID token only to the key list.
    log = auth_api.request_log()
    text = [json.dumps(e) for e in log]
    assert not any(refresh in t for t in text)
    keys = [e for e in log if e["path"] == "/v1/dev/keys"]
    assert [e["status"] for e in keys] == [200]
    bearer = keys[0]["headers"]["authorization"]
    assert bearer.startswith("Bearer ey")
    id_token = bearer.split(" ", 1)[1]
    assert [e["path"] for e, t in zip(log, text) if id_token in t] == ["/v1/dev/keys"]
    assert [(e["method"], e["path"]) for e in log if e["path"] != "/favicon.ico"] == [
        ("GET", "/v1/auth/authorize"), ("GET", "/v1/auth/callback/google"),
        ("POST", "/v1/auth/token"), ("GET", "/v1/dev/keys")]


def test_mount_with_session_file_option(auth_api, env, auth_mount, tmp_path, chromium):
    alice = make_keys(3, seed=92)
    auth_api.set_user("alice")
    auth_api.set_user_keys("alice", alice)
    path = str(tmp_path / "elsewhere" / "alice.json")
    login = sign_in(auth_api, env, chromium, opts=["session_file=" + path])
    assert re.match(SIGNED_IN, lines(login.stderr)[-1]).group(1) == path
    assert not os.path.exists(default_session(tmp_path))
    assert read_session(path)["user_id"] == "alice"
    m = auth_mount(opts=["session_file=" + path])
    assert tree(m.mnt) == expected_tree(alice)


def test_relative_session_file_is_made_absolute(auth_api, env, tmp_path):
    login = Login(auth_api, env, opts=["session_file=s.json"], cwd=str(tmp_path))
    auth_api.browser_login(login.url)
    assert login.finish().rc == 0, login.stderr
    path = str(tmp_path / "s.json")
    assert re.match(SIGNED_IN, lines(login.stderr)[-1]).group(1) == path
    assert read_session(path)["user_id"] == USER


def test_renewals_while_walking(auth_api, env, auth_mount, chromium):
    """ID tokens the API treats as expired after 2 s: the mount renews
    inside the fetches the TTL calls for, never failing an operation."""
    auth_api.set_keys(KEYS)
    sign_in(auth_api, env, chromium)
    auth_api.set_token_lifetime(2)
    m = auth_mount(ttl=0.3)
    want = expected_tree(KEYS)
    walks = 0
    errors = []

    def walker():
        nonlocal walks
        while not done.is_set():
            try:
                assert tree(m.mnt) == want
                walks += 1
                assert m.xattr("stale") == "0" and m.xattr("last_error") == ""
            except Exception as e:  # reported below
                errors.append(e)
                return

    done = threading.Event()
    threads = [threading.Thread(target=walker) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        # Until the mount has renewed at least three times.
        wait_for(lambda: errors or sum(e["status"] == 401 for e in list_log(auth_api)) >= 3,
                 timeout=60, interval=0.2, what="three renewals")
    finally:
        done.set()
        for t in threads:
            t.join()
    assert not errors, errors[0]

    statuses = [e["status"] for e in list_log(auth_api)]
    renewals = statuses.count(401)
    assert set(statuses) == {200, 401}
    # Each refresh ends in one 200; a refresh that needed a renewal made
    # exactly one extra request, the 401 before it.
    assert statuses[-1] == 200 and statuses[0] == 200
    for a, b in zip(statuses, statuses[1:]):
        assert not (a == 401 and b == 401), statuses
    assert statuses.count(200) == len(statuses) - renewals
    print("%d walks: %d list requests, %d of them a 401 before a renewal"
          % (walks, len(statuses), renewals))


@pytest.mark.parametrize("again_as", ["same user, enabled again", "another user"])
def test_disabled_account_ends_the_session_and_login_heals_it(auth_api, env, auth_mount,
                                                              tmp_path, again_as, chromium):
    auth_api.set_keys(KEYS)
    sign_in(auth_api, env, chromium)
    path = default_session(tmp_path)
    m = auth_mount(ttl=0.3)
    before = tree(m.mnt)

    auth_api.firebase.disable_user(USER)
    auth_api.set_token_lifetime(1)  # the next refresh needs a renewal
    m.expect_stderr(r"^omikeyfs: fetching the key list failed: %s; serving the last good "
                    r"list$" % re.escape(ENDED),
                    r"^omikeyfs: fetching the key list works again after \d+ failed tries$")
    wait_for(lambda: m.xattr("stale") == "1", timeout=30, what="the ended session")
    assert m.xattr("last_error") == ENDED
    assert tree(m.mnt) == before  # the last good list stays

    # A new mount with the ended session: exit 2, one line, nothing mounted.
    rc, err = mount_fails(auth_api, env, tmp_path)
    assert rc == 2
    assert lines(err) == ["omikeyfs: cannot fetch the key list from %s: %s"
                          % (auth_api.url, ENDED)]

    # Sign in again while mounted: the mount heals without a remount.
    if again_as == "another user":
        keys = make_keys(2, seed=93)
        auth_api.set_user("bob")
        auth_api.set_user_keys("bob", keys)
    else:
        keys = KEYS
        auth_api.firebase.enable_user(USER)
    auth_api.set_token_lifetime(None)
    old = read_session(path)
    sign_in(auth_api, env, chromium)
    # The emulator gives a user the same refresh token each time; the
    # file is a new sign-in all the same.
    assert read_session(path) != old
    m.sighup()
    wait_for(lambda: m.xattr("stale") == "0", timeout=30, what="the healed mount")
    wait_for(lambda: tree(m.mnt) == expected_tree(keys), timeout=10, what="the new list",
             ignore=(FileNotFoundError,))
    assert m.xattr("pid") == str(m.pid)


def session_bytes(path):
    if not os.path.exists(path):
        return None
    with open(path, "rb") as f:
        return f.read(), os.stat(path).st_mtime_ns


@pytest.mark.parametrize("existing", [False, True], ids=["no session", "a session"])
@pytest.mark.parametrize("how, rc, reason", [
    # An ?error= with this sign-in's state ends it (one without the state
    # is refused and the wait goes on: test_hostile_login).  The backend
    # never sends one; a browser elsewhere could be made to.
    ("error=", 2, "the sign-in failed: access_denied"),
    # The backend shows these in the browser and never calls back: all
    # omikeyfs can see is the time running out.
    ("provider error", 3, "timed out waiting for the sign-in (2 s)"),
    ("auth session expired", 3, "timed out waiting for the sign-in (2 s)"),
    ("expired code", 2, "the Omi API refused the sign-in code (HTTP 400: Invalid or expired code)"),
    ("no custom token", 3, "the Omi API could not finish the sign-in (HTTP 502: Failed to "
                           "generate authentication token); try again"),
    ("disabled user", 2, "the Omi account is disabled (USER_DISABLED); sign in again with "
                         "omikeyfs --login"),
    ("timeout", 3, "timed out waiting for the sign-in (1 s)"),
])
def test_failed_login_leaves_the_session_file_alone(auth_api, env, tmp_path, existing, how, rc,
                                                    reason, chromium):
    path = default_session(tmp_path)
    if existing or how == "disabled user":
        sign_in(auth_api, env, chromium)  # makes the user, and a session file
    if not existing and os.path.exists(path):
        os.unlink(path)
    before = session_bytes(path)
    opts = []
    if how == "provider error":
        auth_api.set_login_outcome("provider_error")
        opts = ["login_timeout=2"]
    elif how == "auth session expired":
        auth_api.set_login_outcome("session_expired")
        opts = ["login_timeout=2"]
    elif how == "expired code":
        auth_api.set_code_lifetime(0)
    elif how == "no custom token":
        auth_api.set_login_outcome("mint_fails")
    elif how == "disabled user":
        auth_api.firebase.disable_user(USER)
    elif how == "timeout":
        opts = ["login_timeout=1"]
    auth_api.control("reset", {})  # an empty request log

    login = Login(auth_api, env, opts=opts)
    assert login.url
    if how == "error=":
        import urllib.parse
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(login.url).query))
        status, _, body = http_call("GET", query["redirect_uri"] + "?" + urllib.parse.urlencode(
            {"error": "access_denied", "state": query["state"]}))
        assert status == 400
        assert body == b"The sign-in to omikeyfs failed; see the terminal for why.\n"
    elif how in ("provider error", "auth session expired"):
        status, _, body, _ = backend_page(login.url, auth_api.url)
        assert status == 400, body
    elif how != "timeout":
        chromium.visit(login.url)
    login.finish()
    assert login.rc == rc, login.stderr
    err = lines(login.stderr)
    if existing:
        assert re.match(ALREADY, err[0]).groups() == (USER, path), err
        err = err[1:]
    assert re.match(SIGNING_IN, err[0]) and re.match(PASTE, err[1])
    assert err[2:] == ["omikeyfs: " + reason]
    assert session_bytes(path) == before
    if not existing:
        assert not os.path.exists(os.path.dirname(path)) or os.listdir(os.path.dirname(path)) == []


def test_reused_code_is_refused(auth_api, env, tmp_path):
    """The browser's callback played twice: the second --login gets the
    first one's code, which works once."""
    first = Login(auth_api, env)
    answer = auth_api.browser_login(first.url)
    assert first.finish().rc == 0
    before = session_bytes(default_session(tmp_path))
    second = Login(auth_api, env)
    # The old code with the second run's state, sent to its listener.
    import urllib.parse
    code = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(answer.location).query))["code"]
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(second.url).query))
    callback = query["redirect_uri"] + "?" + urllib.parse.urlencode(
        {"code": code, "state": query["state"]})
    from conftest import http_call
    assert http_call("GET", callback)[0] == 200
    second.finish()
    assert second.rc == 2
    assert re.match(ALREADY, lines(second.stderr)[0])
    assert re.match(SIGNING_IN, lines(second.stderr)[1])
    assert re.match(PASTE, lines(second.stderr)[2])
    assert lines(second.stderr)[3:] == [
        "omikeyfs: the Omi API refused the sign-in code (HTTP 400: Invalid or expired code)"]
    assert session_bytes(default_session(tmp_path)) == before


@pytest.mark.parametrize("host", ["example.com:9099", "10.0.0.1:9099", "[2001:db8::1]:9099",
                                  "127.0.0.1"])
def test_emulator_off_loopback_is_refused_before_any_traffic(auth_api, env, tmp_path, host, chromium):
    sign_in(auth_api, env, chromium)
    auth_api.control("reset", {})  # an empty request log
    env = dict(env, FIREBASE_AUTH_EMULATOR_HOST=host)
    r = subprocess.run([BIN, "--login", "--no-browser", auth_api.url], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and r.stdout == ""
    want = ["omikeyfs: FIREBASE_AUTH_EMULATOR_HOST=%s is not a loopback HOST:PORT such as "
            "127.0.0.1:9099, [::1]:9099 or localhost:9099" % host]
    assert lines(r.stderr) == want
    rc, err = mount_fails(auth_api, env, tmp_path)
    assert (rc, lines(err)) == (1, want)
    assert auth_api.request_log() == []


def test_developer_key_is_refused_with_the_login_hint(auth_api, env, tmp_path):
    rc, err = mount_fails(auth_api, env, tmp_path, token="omi_dev_" + "3fa9" * 8)
    assert rc == 2
    assert lines(err) == [
        "omikeyfs: cannot fetch the key list from %s: HTTP 401: Invalid authentication "
        "credentials (an omi_dev_ key cannot list keys: the key list needs a signed-in "
        "session; sign in with omikeyfs --login)" % auth_api.url]


def test_no_credentials_names_login_first(auth_api, env, tmp_path):
    rc, err = mount_fails(auth_api, env, tmp_path)
    assert rc == 1
    assert lines(err) == ["omikeyfs: no API token: sign in with omikeyfs --login, or set "
                          "OMI_API_KEY or use -o key_file=PATH"]
    assert auth_api.request_log() == []


def test_logout(auth_api, env, tmp_path, chromium):
    sign_in(auth_api, env, chromium)
    path = default_session(tmp_path)
    r = subprocess.run([BIN, "--logout"], env=env, capture_output=True, text=True, timeout=60)
    assert (r.returncode, r.stdout) == (0, "")
    assert lines(r.stderr) == ["omikeyfs: signed out: removed the session file %s" % path]
    assert not os.path.exists(path)
    r = subprocess.run([BIN, "--logout"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0
    assert lines(r.stderr) == ["omikeyfs: not signed in: there is no session file %s" % path]


def test_session_file_open_to_others_is_refused(auth_api, env, tmp_path, chromium):
    sign_in(auth_api, env, chromium)
    path = default_session(tmp_path)
    os.chmod(path, 0o644)
    auth_api.control("reset", {})  # an empty request log
    rc, err = mount_fails(auth_api, env, tmp_path)
    assert rc == 1
    assert lines(err) == ["omikeyfs: session file %s is accessible by group or others "
                          "(mode 644); run: chmod 600 %s" % (path, path)]
    assert auth_api.request_log() == []


def test_fifo_as_session_file_is_refused_without_hanging(auth_api, env, tmp_path):
    fifo = str(tmp_path / "fifo")
    os.mkfifo(fifo, 0o600)
    rc, err = mount_fails(auth_api, env, tmp_path, opts=["session_file=" + fifo])
    assert rc == 1
    assert len(lines(err)) == 1 and fifo in err and "regular file" in err


def test_session_for_another_api_is_refused(auth_api, env, tmp_path, chromium):
    sign_in(auth_api, env, chromium)
    path = default_session(tmp_path)
    s = read_session(path)
    s["api_url"] = "https://api.example.com"
    fd = os.open(path + ".new", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(s, f)
    os.replace(path + ".new", path)
    auth_api.control("reset", {})  # an empty request log
    rc, err = mount_fails(auth_api, env, tmp_path)
    assert rc == 2
    assert len(lines(err)) == 1 and "omikeyfs --login" in err and "api.example.com" in err
    assert auth_api.request_log() == []


def test_session_the_api_refuses_exits_2_naming_login(auth_api, env, tmp_path, chromium):
    """Every ID token refused (as if the API no longer took this user's):
    one renewal and one retry, then exit 2 with the hint."""
    sign_in(auth_api, env, chromium)
    auth_api.set_token_lifetime(0)
    auth_api.control("reset", {})
    rc, err = mount_fails(auth_api, env, tmp_path)
    assert rc == 2
    assert lines(err) == ["omikeyfs: cannot fetch the key list from %s: HTTP 401: Invalid "
                          "authentication credentials; sign in again with omikeyfs --login"
                          % auth_api.url]
    assert [e["status"] for e in list_log(auth_api)] == [401, 401]


# ---------------------------------------------------------------------------
# a real browser through xdg-open

def browser_env(env, chromium):
    """env for an omikeyfs whose xdg-open is to start the headless chromium:
    no desktop for xdg-open to ask, BROWSER set."""
    e = {k: v for k, v in env.items()
         if k not in ("DISPLAY", "WAYLAND_DISPLAY", "XDG_CURRENT_DESKTOP", "DESKTOP_SESSION",
                      "BROWSER", "KDE_FULL_SESSION", "GNOME_DESKTOP_SESSION_ID")}
    e.update(chromium.env())
    return e


def test_xdg_open_runs_chromium_for_a_whole_login_and_a_second_one(auth_api, env, auth_mount,
                                                                   tmp_path, chromium):
    """--login as a user runs it: xdg-open starts the browser, the
    backend's page runs its script there and reaches the loopback.  A
    second --login over the existing session replaces it."""
    auth_api.set_keys(KEYS)
    e = browser_env(env, chromium)
    first = Login(auth_api, e, browser=True)
    assert first.url
    first.finish()
    assert first.rc == 0, first.stderr
    err = lines(first.stderr)
    assert re.match(SIGNING_IN, err[0]) and len(err) == 2  # no paste line without --no-browser
    path = re.match(SIGNED_IN, err[1]).group(1)
    assert path == default_session(tmp_path)
    assert chromium.started_by_opener() == 1
    old = read_session(path)

    auth_api.set_user("bob")
    bob = make_keys(2, seed=94)
    auth_api.set_user_keys("bob", bob)
    second = Login(auth_api, e, browser=True)
    second.finish()
    assert second.rc == 0, second.stderr
    assert chromium.started_by_opener() == 2
    new = read_session(path)
    assert (old["user_id"], new["user_id"]) == (USER, "bob")
    assert new["refresh_token"] != old["refresh_token"]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    m = auth_mount()
    assert tree(m.mnt) == expected_tree(bob)
    # The page was the backend's, run in a browser: no request of the
    # sign-in skipped its callback page.
    paths = [x["path"] for x in auth_api.request_log() if x["path"].startswith("/v1/auth/")]
    assert paths == ["/v1/auth/authorize", "/v1/auth/callback/google", "/v1/auth/token"] * 2


# ---------------------------------------------------------------------------
# pasting the address back

def pasted_address(auth_api, login):
    """What a browser elsewhere ends on: the page's target, which fails to
    load there (so no callback reaches this loopback)."""
    status, _, page, _ = backend_page(login.url, auth_api.url)
    assert status == 200
    return page_target(page)


def test_pasted_address_signs_in(auth_api, env, auth_mount, tmp_path):
    auth_api.set_keys(KEYS)
    login = Login(auth_api, env, stdin=subprocess.PIPE)
    address = pasted_address(auth_api, login)
    login.paste("not the address")
    login.paste("  " + address + "\r")  # as a terminal may hand it over
    login.finish()
    assert login.rc == 0, login.stderr
    err = lines(login.stderr)
    assert re.match(SIGNING_IN, err[0])
    port = re.match(PASTE, err[1]).group(1)
    assert address.startswith("http://127.0.0.1:%s/callback?code=" % port)
    assert err[2] == ("omikeyfs: that is not this sign-in's address: paste the whole "
                      "http://127.0.0.1:PORT/callback?... line the browser ended on; "
                      "still waiting")
    assert re.match(SIGNED_IN, err[3]).group(1) == default_session(tmp_path)
    assert len(err) == 4
    assert read_session(default_session(tmp_path))["user_id"] == USER
    m = auth_mount()
    assert tree(m.mnt) == expected_tree(KEYS)


@pytest.mark.parametrize("change, want", [
    ("another port", "omikeyfs: that is not this sign-in's address: paste the whole "
                     "http://127.0.0.1:PORT/callback?... line the browser ended on; still waiting"),
    ("another path", "omikeyfs: that is not this sign-in's address: paste the whole "
                     "http://127.0.0.1:PORT/callback?... line the browser ended on; still waiting"),
    ("bad query", "omikeyfs: that address is this sign-in's, but its query is malformed; "
                  "still waiting"),
])
def test_pasted_address_must_be_this_callbacks(auth_api, env, tmp_path, change, want):
    """Anything but this callback's address is refused and the wait goes
    on; the browser's own callback, coming later, still wins."""
    login = Login(auth_api, env, stdin=subprocess.PIPE)
    address = pasted_address(auth_api, login)
    port = int(address.split(":")[2].split("/")[0])
    if change == "another port":
        wrong = address.replace(":%d/" % port, ":%d/" % (port + 1 if port < 65535 else port - 1))
    elif change == "another path":
        wrong = address.replace("/callback?", "/callbackx?")
    else:
        wrong = address + "&code=again"
    login.paste(wrong)
    assert re.match(SIGNING_IN, login.stderr_line()) and re.match(PASTE, login.stderr_line())
    assert login.stderr_line() == want  # refused, and still waiting:
    answer = http_call("GET", address)  # the callback itself then wins
    assert answer[0] == 200
    login.finish()
    assert login.rc == 0, login.stderr
    assert re.match(SIGNED_IN, lines(login.stderr)[3])


def test_pasted_address_with_another_state_is_refused(auth_api, env, tmp_path):
    """As a callback without this sign-in's state is: refused, and the
    wait goes on (the right address, pasted next, still signs in)."""
    before = session_bytes(default_session(tmp_path))
    login = Login(auth_api, env, stdin=subprocess.PIPE)
    address = pasted_address(auth_api, login)
    login.paste(re.sub(r"state=[^&]*", "state=someone-elses", address))
    assert re.match(SIGNING_IN, login.stderr_line()) and re.match(PASTE, login.stderr_line())
    assert login.stderr_line() == ("omikeyfs: that address is not this sign-in's (no or another "
                                   "state: an older sign-in's?); still waiting")
    assert session_bytes(default_session(tmp_path)) == before
    login.paste(address)
    login.finish()
    assert login.rc == 0, login.stderr
    assert re.match(SIGNED_IN, lines(login.stderr)[3]) and len(lines(login.stderr)) == 4
    assert read_session(default_session(tmp_path))["user_id"] == USER


def test_pasted_code_works_once(auth_api, env, tmp_path, chromium):
    """The address of an earlier sign-in, pasted into a new one with the
    new state: the code was used, the backend refuses it."""
    first = Login(auth_api, env, stdin=subprocess.PIPE)
    old_address = pasted_address(auth_api, first)
    first.paste(old_address)
    assert first.finish().rc == 0
    before = session_bytes(default_session(tmp_path))
    second = Login(auth_api, env, stdin=subprocess.PIPE)
    new_state = re.search(r"[?&]state=([^&]*)", second.url).group(1)
    port = re.search(r"127\.0\.0\.1%3A(\d+)%2Fcallback", second.url).group(1)
    code = re.search(r"code=([^&]*)", old_address).group(1)
    second.paste("http://127.0.0.1:%s/callback?code=%s&state=%s" % (port, code, new_state))
    second.finish()
    assert second.rc == 2
    assert re.match(ALREADY, lines(second.stderr)[0])
    assert lines(second.stderr)[3:] == [
        "omikeyfs: the Omi API refused the sign-in code (HTTP 400: Invalid or expired code)"]
    assert session_bytes(default_session(tmp_path)) == before


def test_end_of_input_leaves_the_callback(auth_api, env, chromium):
    """stdin at its end (here /dev/null) is watched no more; the browser
    still signs in."""
    login = sign_in(auth_api, env, chromium)
    assert re.match(PASTE, lines(login.stderr)[1])


# ---------------------------------------------------------------------------
# cancelling

@pytest.mark.parametrize("sig, name", [(signal.SIGINT, "SIGINT"), (signal.SIGTERM, "SIGTERM")])
@pytest.mark.parametrize("existing", [False, True], ids=["no session", "a session"])
def test_signal_while_waiting_cancels_and_saves_nothing(auth_api, env, tmp_path, chromium, sig,
                                                        name, existing):
    if existing:
        sign_in(auth_api, env, chromium)
    path = default_session(tmp_path)
    before = session_bytes(path)
    # stdin open and silent, as a terminal's is: only the signal ends it.
    login = Login(auth_api, env, stdin=subprocess.PIPE)
    assert login.url  # printed once the handlers are in place
    login.proc.send_signal(sig)
    try:
        out, err = login.proc.communicate(timeout=30)
    finally:
        login.timer.cancel()
    assert login.proc.returncode == 5, err
    err = lines(err)
    if existing:
        assert re.match(ALREADY, err[0]).groups() == (USER, path), err
        err = err[1:]
    assert re.match(SIGNING_IN, err[0]) and re.match(PASTE, err[1])
    assert err[2:] == ["omikeyfs: the sign-in was cancelled by %s; nothing was saved" % name]
    assert out == ""
    assert session_bytes(path) == before
    assert [x["path"] for x in auth_api.request_log()
            if x["path"] == "/v1/auth/token"] == ([] if not existing else ["/v1/auth/token"])


# ---------------------------------------------------------------------------
# the API's account gates

DELETED = "This account has been deleted"
MIGRATING = {"code": "migration_blocked", "message": "Account migration in progress",
             "retryable": False}
UPGRADE = {"code": "migration_client_upgrade_required",
           "message": "This account needs the newest app", "retryable": False}
MAINTENANCE = {"code": "migration_maintenance", "message": "Down \u001b[31mfor a moment",
               "retryable": True}


@pytest.mark.parametrize("status, detail, rc, line", [
    (403, DELETED, 2, "HTTP 403: This account has been deleted; the Omi account is deleted, "
                      "so signing in again does not help"),
    (403, MIGRATING, 2, "HTTP 403: Account migration in progress (migration_blocked)"),
    (426, UPGRADE, 2, "HTTP 426: This account needs the newest app "
                      "(migration_client_upgrade_required); the Omi account needs a newer "
                      "client than this omikeyfs"),
    (503, MAINTENANCE, 3, "HTTP 503: Down  [31mfor a moment (migration_maintenance)"),
], ids=["deleted", "migration 403", "426", "503"])
def test_account_gate_on_the_first_fetch(auth_api, env, tmp_path, chromium, status, detail, rc,
                                         line):
    """A gate is the account's state: its message and code, no advice to
    sign in again; 426 is final; a 503 with nothing kept is a failed fetch."""
    sign_in(auth_api, env, chromium)
    auth_api.gate(status, detail)
    got, err = mount_fails(auth_api, env, tmp_path, opts=["cache_dir=" + str(tmp_path / "c")])
    assert (got, lines(err)) == (rc, ["omikeyfs: cannot fetch the key list from %s: %s"
                                      % (auth_api.url, line)])
    assert [e["status"] for e in list_log(auth_api)] == [status]  # no retry with a renewal


def test_retryable_gate_is_transient(auth_api, env, auth_mount, tmp_path, chromium):
    """A 503 gate while mounted: the last good list stays (stale), the
    message and code in last_error, and the mount heals by itself once the
    gate lifts; a mount started during it serves the kept list."""
    auth_api.set_keys(KEYS)
    sign_in(auth_api, env, chromium)
    cache = "cache_dir=" + str(tmp_path / "c")
    want = "HTTP 503: Down  [31mfor a moment (migration_maintenance)"
    m = auth_mount(opts=[cache], ttl=0.2)
    shown = tree(m.mnt)
    assert shown == expected_tree(KEYS)
    auth_api.gate(503, MAINTENANCE)
    m.expect_stderr(r"^omikeyfs: fetching the key list failed: %s; serving the last good list$"
                    % re.escape(want),
                    r"^omikeyfs: fetching the key list works again after \d+ failed tries?$")
    wait_for(lambda: m.xattr("stale") == "1", timeout=30, what="the gate")
    assert m.xattr("last_error") == want
    assert tree(m.mnt) == shown
    m.unmount()

    # Started while the gate holds: the kept list, stale.
    m = auth_mount(opts=[cache], ttl=0.2, expect_stderr=[
        r"^omikeyfs: cannot fetch the key list: %s; serving the list kept from \S+ \(stale\) "
        r"until the API answers$" % re.escape(want),
        r"^omikeyfs: fetching the key list works again after \d+ failed tries?$"])
    assert tree(m.mnt) == shown and m.xattr("stale") == "1"
    auth_api.gate()
    wait_for(lambda: m.xattr("stale") == "0", timeout=30, what="the gate to lift")
    assert m.xattr("last_error") == ""


# ---------------------------------------------------------------------------
# Firebase's refusals, each with its cure

def renewal_fails(auth_api, env, tmp_path, firebase_host=None):
    e = dict(env)
    if firebase_host:
        e["FIREBASE_AUTH_EMULATOR_HOST"] = firebase_host
    return mount_fails(auth_api, e, tmp_path)


@pytest.mark.parametrize("how, line", [
    # The emulator forgets a deleted user's refresh tokens (Google's own
    # service says USER_NOT_FOUND there: see test_renewal_refusals).
    ("user deleted", "the session's refresh token is not valid "
                     "(INVALID_REFRESH_TOKEN); sign in again with omikeyfs --login"),
    ("refresh token damaged", "the session's refresh token is not valid "
                              "(INVALID_REFRESH_TOKEN); sign in again with omikeyfs --login"),
    ("user disabled", "the Omi account is disabled (USER_DISABLED); sign in again with "
                      "omikeyfs --login"),
])
def test_session_refusals_from_the_emulator(auth_api, env, tmp_path, chromium, how, line):
    sign_in(auth_api, env, chromium)
    path = default_session(tmp_path)
    if how == "user deleted":
        auth_api.firebase.delete_user(USER)
    elif how == "user disabled":
        auth_api.firebase.disable_user(USER)
    else:
        s = read_session(path)
        s["refresh_token"] = "damaged" + s["refresh_token"][7:]
        fd = os.open(path + ".new", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(s, f)
        os.replace(path + ".new", path)
    rc, err = renewal_fails(auth_api, env, tmp_path)
    assert (rc, lines(err)) == (2, ["omikeyfs: cannot fetch the key list from %s: %s"
                                    % (auth_api.url, line)])


# The Auth Emulator takes any Web API key and unsigned custom tokens, lets
# no refresh token expire and says INVALID_REFRESH_TOKEN for a deleted
# user, so it cannot give these: the fake API's stand-in answers them, in
# Google's error shape.
REFERRER = (403, "Requests from referer <empty> are blocked.", "API_KEY_HTTP_REFERRER_BLOCKED")
INVALID_KEY = (400, "API key not valid. Please pass a valid API key.", "API_KEY_INVALID")


@pytest.mark.parametrize("refusal, line", [
    (REFERRER, "Firebase refused the Web API key: it is restricted to web browsers "
               "(API_KEY_HTTP_REFERRER_BLOCKED); give the right key with -o "
               "firebase_api_key=KEY"),
    (INVALID_KEY, "Firebase says the Web API key is not valid (API_KEY_INVALID); give the "
                  "right key with -o firebase_api_key=KEY"),
    ((400, "CREDENTIAL_MISMATCH", None),
     "Firebase refused Omi's sign-in token: the Web API key is of another Firebase project "
     "than Omi's (CREDENTIAL_MISMATCH); give the right key with -o firebase_api_key=KEY"),
    ((400, "INVALID_CUSTOM_TOKEN : audience mismatch", None),
     "Firebase refused Omi's sign-in token: the Web API key may be of another Firebase "
     "project than Omi's (INVALID_CUSTOM_TOKEN); give the right key with -o "
     "firebase_api_key=KEY"),
    ((400, "SOMETHING_NEW : words", None),
     "Firebase refused the sign-in (HTTP 400: SOMETHING_NEW : words)"),
], ids=["referrer", "invalid key", "mismatch", "custom token", "unknown"])
def test_sign_in_refusals(auth_api, env, tmp_path, refusal, line):
    status, message, reason = refusal
    auth_api.firebase_refusal(status, message, reason, call="sign_in")
    e = dict(env, FIREBASE_AUTH_EMULATOR_HOST="127.0.0.1:%d" % auth_api.port)
    login = Login(auth_api, e, stdin=subprocess.PIPE)
    login.paste(pasted_address(auth_api, login))
    login.finish()
    assert login.rc == 2
    assert lines(login.stderr)[2:] == ["omikeyfs: " + line]
    assert not os.path.exists(default_session(tmp_path))


@pytest.mark.parametrize("refusal, line", [
    ((400, "TOKEN_EXPIRED", None),
     "the session has expired (TOKEN_EXPIRED); sign in again with omikeyfs --login"),
    ((400, "USER_NOT_FOUND", None),
     "the Omi account no longer exists (USER_NOT_FOUND); sign in again with omikeyfs --login"),
    (REFERRER, "Firebase refused the Web API key: it is restricted to web browsers "
               "(API_KEY_HTTP_REFERRER_BLOCKED); sign in again with omikeyfs --login -o "
               "firebase_api_key=KEY"),
    (INVALID_KEY, "Firebase says the Web API key is not valid (API_KEY_INVALID); sign in "
                  "again with omikeyfs --login -o firebase_api_key=KEY"),
], ids=["expired", "not found", "referrer", "invalid key"])
def test_renewal_refusals(auth_api, env, tmp_path, chromium, refusal, line):
    sign_in(auth_api, env, chromium)
    status, message, reason = refusal
    auth_api.firebase_refusal(status, message, reason, call="renew")
    rc, err = renewal_fails(auth_api, env, tmp_path, "127.0.0.1:%d" % auth_api.port)
    assert (rc, lines(err)) == (2, ["omikeyfs: cannot fetch the key list from %s: %s"
                                    % (auth_api.url, line)])
