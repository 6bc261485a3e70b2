"""Another user on the same machine against --login, --logout and the
session file.  The attacker is a real second uid (setpriv --reuid=12345):
it connects to the loopback listener, reads /proc/PID/cmdline, plants
files and links in directories it owns.  Sign-ins go through the Firebase
Auth Emulator and the fake API in real-auth mode, as in test_login.py.
"""
import html
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import conftest
from conftest import BIN, Mount, expected_files, http_call, make_keys, play_browser, tree, wait_for
from test_login import (ALREADY, PASTE, SIGNED_IN, SIGNING_IN, USER, Login,  # noqa: F401
                        auth_mount,
                        default_session, env, lines, read_session, sign_in)

MALLORY_UID = 12345
HOSTILE = ["setpriv", "--reuid=%d" % MALLORY_UID, "--regid=%d" % MALLORY_UID, "--clear-groups",
           "--"]
MALLORY_KEYS = make_keys(2, seed=171)
NOT_THIS = (b"This is not the sign-in omikeyfs is waiting for (no or another state); "
            b"it goes on waiting.\n")
REFUSED_CALLBACK = (r"^omikeyfs: a callback without this sign-in's state was refused "
                    r"\(an old browser tab, or another program\); still waiting$")


def as_mallory(*argv, **kw):
    """Run argv as uid 12345, no groups; the CompletedProcess."""
    kw.setdefault("capture_output", True)
    kw.setdefault("timeout", 60)
    kw.setdefault("cwd", "/")
    return subprocess.run(HOSTILE + list(argv), **kw)


@pytest.fixture
def mallory_dir():
    """A directory uid 12345 made and owns (0700): where it plants things."""
    if shutil.which("setpriv") is None:
        pytest.fail("setpriv (util-linux) is needed for a real second uid")
    r = as_mallory("mktemp", "-d", "/tmp/omikeyfs-mallory.XXXXXX", text=True)
    assert r.returncode == 0, r.stderr
    d = r.stdout.strip()
    assert os.stat(d).st_uid == MALLORY_UID
    yield d
    shutil.rmtree(d, ignore_errors=True)


def plant(path, data):
    """uid 12345 writes data to path, 0600, as its own file."""
    r = as_mallory("sh", "-c", 'umask 077 && cat > "$1"', "sh", path, input=data)
    assert r.returncode == 0, r.stderr
    assert os.stat(path).st_uid == MALLORY_UID


@pytest.fixture
def mallory_session(auth_api, env, tmp_path, chromium):  # noqa: F811
    """The bytes of a real session file of the Firebase user "mallory",
    whose key list is MALLORY_KEYS; the next sign-in is USER's again."""
    auth_api.set_user("mallory")
    auth_api.set_user_keys("mallory", MALLORY_KEYS)
    path = str(tmp_path / "mallory-made" / "session.json")
    sign_in(auth_api, env, chromium, opts=["session_file=" + path])
    with open(path, "rb") as f:
        data = f.read()
    shutil.rmtree(os.path.dirname(path))
    auth_api.set_user(USER)
    auth_api.control("reset", {})  # an empty request log
    return data


def try_mount(auth_api, env, tmp_path, opts=()):  # noqa: F811
    """(exit status, stderr lines, None) of a mount that did not come up,
    or (None, stderr lines, the tree it served) of one that did (then
    unmounted), so that a mount that should have been refused fails the
    test instead of hanging it."""
    mnt = str(tmp_path / "mnt")
    os.makedirs(mnt, exist_ok=True)
    argv = [BIN, "-f", "-o", ",".join(["timeout=5", "no_cache"] + list(opts)), auth_api.url, mnt]
    errpath = str(tmp_path / "mount.stderr")
    with open(errpath, "wb") as err:
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=err)
        try:
            wait_for(lambda: proc.poll() is not None or os.path.ismount(mnt), timeout=30,
                     what="the mount to come up or fail")
            served = None
            if os.path.ismount(mnt):
                served = tree(mnt)
                subprocess.run(["fusermount3", "-u", mnt], check=True)
            proc.wait(20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    with open(errpath) as f:
        text = f.read()
    return (None if served is not None else proc.returncode), lines(text), served


def expected_tree(keys):
    return {k["id"]: expected_files(k) for k in keys}


# ---- a callback without this sign-in's state --------------------------------

CALLBACK_FLOOD = r"""
import json, socket, sys
port, state = int(sys.argv[1]), sys.argv[2]
out = []
for query in ["", "?code=mallory", "?code=mallory&state=" + state[:-1] + "x",
              "?error=access_denied", "?error=access_denied&state=forged",
              "?state=&error=x"]:
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
    except OSError as e:  # the sign-in is over, and its listener gone
        out.append([query, "no listener: %s" % e, ""])
        continue
    s.sendall(("GET /callback%s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % query).encode())
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    out.append([query, head.split(b"\r\n")[0].decode(), body.decode()])
print(json.dumps(out))
"""


def test_callback_without_this_state_is_refused_and_the_wait_goes_on(auth_api, env, tmp_path):  # noqa: F811
    """uid 12345 watches for the listener and sends it callbacks with no
    state, a wrong one and ?error= without this sign-in's state: each gets
    a 400 page, and the user's own browser then signs in as before."""
    login = Login(auth_api, env)
    try:
        assert login.url
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(login.url).query))
        port = urllib.parse.urlsplit(query["redirect_uri"]).port
        # What the attacker sees: a new listener in /proc/net/tcp.
        r = as_mallory("cat", "/proc/net/tcp", text=True)
        assert ":%04X 00000000:0000 0A" % port in r.stdout
        # It cannot know the state; one byte off is as good a guess as any.
        r = as_mallory("/usr/bin/python3", "-c", CALLBACK_FLOOD, str(port), query["state"],
                       text=True)
        assert r.returncode == 0, r.stderr
        for q, status_line, body in json.loads(r.stdout):
            assert (q, status_line, body) == (q, "HTTP/1.1 400 Bad Request", NOT_THIS.decode())
        assert login.proc.poll() is None, "a forged callback ended the sign-in"

        status, _, body = auth_api.browser_login(login.url)
        login.finish()
    finally:
        if login.proc.poll() is None:
            login.proc.kill()
    assert (status, body, login.rc) == (200, b"Signed in to omikeyfs; you may close this tab.\n",
                                        0), login.stderr
    err = lines(login.stderr)
    assert re.match(SIGNING_IN, err[0]) and re.match(PASTE, err[1])
    assert re.match(REFUSED_CALLBACK, err[2])  # once, however many came
    assert re.match(SIGNED_IN, err[3]) and len(err) == 4, err
    assert read_session(default_session(tmp_path))["user_id"] == USER
    # The forged code never reached Omi.
    tokens = [e for e in auth_api.request_log() if e["path"] == "/v1/auth/token"]
    assert len(tokens) == 1 and "mallory" not in tokens[0]["body"]


def test_error_with_this_state_still_ends_the_sign_in(auth_api, env, tmp_path):  # noqa: F811
    """The backend never calls back with ?error=; a callback that does,
    with this sign-in's state, still ends it."""
    login = Login(auth_api, env)
    query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(login.url).query))
    status, _, body = http_call("GET", query["redirect_uri"] + "?" + urllib.parse.urlencode(
        {"error": "access_denied", "state": query["state"]}))
    login.finish()
    assert (status, login.rc) == (400, 2)
    assert body == b"The sign-in to omikeyfs failed; see the terminal for why.\n"
    assert lines(login.stderr)[2:] == ["omikeyfs: the sign-in failed: access_denied"]
    assert not os.path.exists(default_session(tmp_path))


# ---- the sign-in URL in no argv; who signed in -------------------------------

OPENER = """#!/bin/sh
printf '%%s\\n' "$$" "$1" > %(out)s.tmp && mv %(out)s.tmp %(out)s
read line < %(fifo)s
"""


def test_browser_opener_gets_a_private_page_never_the_url(auth_api, env, tmp_path):  # noqa: F811
    """Without --no-browser: the opener's argv, which uid 12345 reads in
    /proc/PID/cmdline, holds neither the state nor the code challenge; it
    names a 0600 page in a 0700 directory that sends the browser on to the
    sign-in URL, and that page is gone once the sign-in is over."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    out, fifo = str(tmp_path / "opener.out"), str(tmp_path / "opener.fifo")
    os.mkfifo(fifo, 0o600)
    opener = bindir / "xdg-open"
    opener.write_text(OPENER % {"out": out, "fifo": fifo})
    opener.chmod(0o700)
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700)
    e = dict(env, PATH="%s:%s" % (bindir, env["PATH"]), XDG_RUNTIME_DIR=str(runtime))
    proc = subprocess.Popen([BIN, "--login", auth_api.url], env=e, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    released = False

    def release():
        nonlocal released
        if not released:
            released = True
            os.close(os.open(fifo, os.O_WRONLY))  # the opener's read ends

    try:
        url = proc.stdout.readline().rstrip("\n")
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
        wait_for(lambda: os.path.exists(out), timeout=20, what="the browser opener")
        with open(out) as f:
            pid, arg = f.read().splitlines()
        r = as_mallory("cat", "/proc/%s/cmdline" % pid)
        assert r.returncode == 0, r.stderr
        argv = r.stdout.split(b"\0")
        assert argv[-2:] == [arg.encode(), b""]
        for secret in (query["state"], query["code_challenge"]):
            assert secret.encode() not in r.stdout
        assert b"authorize" not in r.stdout

        # The page: private to the user, in $XDG_RUNTIME_DIR.
        assert os.path.dirname(os.path.dirname(arg)) == str(runtime)
        st, dst = os.lstat(arg), os.lstat(os.path.dirname(arg))
        assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
        assert stat.S_IMODE(dst.st_mode) == 0o700 and st.st_uid == dst.st_uid == os.getuid()
        assert as_mallory("cat", arg).returncode != 0
        with open(arg) as f:
            page = f.read()
        m = re.search(r'<meta http-equiv="refresh" content="0;url=([^"]*)">', page)
        assert m and html.unescape(m.group(1)) == url
        release()
        answer = play_browser(html.unescape(m.group(1)), auth_api.url)
        assert answer[0] == 200
        proc.wait(60)
    finally:
        release()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = proc.stderr.read()
    assert proc.returncode == 0, err
    assert not os.path.exists(arg) and not os.path.exists(os.path.dirname(arg))
    assert os.listdir(runtime) == []


def test_login_names_who_signed_in_and_keeps_it(auth_api, env, tmp_path, auth_mount,  # noqa: F811
                                                chromium):
    """The email of the ID token (else its uid) is printed on success,
    kept in the session file, and named by a later --login; a session file
    without it (as older omikeyfs wrote) is still read."""
    path = default_session(tmp_path)
    first = sign_in(auth_api, env, chromium)
    err = lines(first.stderr)
    assert err[-1] == "omikeyfs: signed in as %s; the session is saved in %s" % (USER, path)
    assert "email" not in read_session(path)

    auth_api.firebase.update_user(USER, email="victim@example.com")
    second = sign_in(auth_api, env, chromium)
    err = lines(second.stderr)
    assert re.match(ALREADY, err[0]).groups() == (USER, path)
    assert err[-1] == ("omikeyfs: signed in as victim@example.com; the session is saved in %s"
                       % path)
    session = read_session(path)
    assert session["email"] == "victim@example.com" and session["user_id"] == USER

    third = Login(auth_api, env, opts=["login_timeout=1"])
    third.finish()
    assert third.rc == 3
    assert re.match(ALREADY, lines(third.stderr)[0]).groups() == ("victim@example.com", path)

    # The file as an omikeyfs without the field wrote it still mounts.
    del session["email"]
    fd = os.open(path + ".new", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(session, f)
    os.replace(path + ".new", path)
    auth_api.set_keys(make_keys(2, seed=172))
    m = auth_mount()
    assert tree(m.mnt) == expected_tree(make_keys(2, seed=172))


# ---- the session file and its directory are the user's -----------------------

def login_refused_before_the_browser(auth_api, env):
    """A --login that must end before it prints a URL, finished."""
    login = Login(auth_api, env, opts=["login_timeout=5"])
    try:
        assert login.url is None, "--login went on to sign in"
        login.finish()
    finally:
        if login.proc.poll() is None:
            login.proc.kill()
            login.finish()
    return login


def one_refusal(rc, err, served, want):
    assert served is None, "mounted and listed another user's keys: %r" % sorted(served)
    assert rc == 1 and len(err) == 1, (rc, err)
    assert re.match(want, err[0]), err


def test_session_file_in_a_directory_of_another_user_is_refused(auth_api, env, tmp_path,  # noqa: F811
                                                                mallory_dir, mallory_session):
    planted = os.path.join(mallory_dir, "session.json")
    plant(planted, mallory_session)
    rc, err, served = try_mount(auth_api, env, tmp_path, ["session_file=" + planted])
    one_refusal(rc, err, served,
                r"^omikeyfs: session file %s: its directory %s is owned by uid %d, not by uid "
                r"%d \(you\)$" % (re.escape(planted), re.escape(mallory_dir), MALLORY_UID,
                                  os.geteuid()))
    assert auth_api.request_log() == []


@pytest.mark.parametrize("what", ["file", "symlink"])
def test_session_file_another_user_owns_is_refused(auth_api, env, tmp_path, mallory_dir,  # noqa: F811
                                                    mallory_session, what):
    """In the user's own 0700 directory: a 0600 file uid 12345 owns, or a
    link it owns to its file (moved in, as a careless copy would)."""
    target = os.path.join(mallory_dir, "session.json")
    plant(target, mallory_session)
    if what == "symlink":
        made = os.path.join(mallory_dir, "link")
        assert as_mallory("ln", "-s", target, made).returncode == 0
        assert os.lstat(made).st_uid == MALLORY_UID
    else:
        made = target
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    path = str(private / "session.json")
    os.rename(made, path)
    rc, err, served = try_mount(auth_api, env, tmp_path, ["session_file=" + path])
    if what == "file":
        want = r"^omikeyfs: session file %s is owned by uid %d, not by uid %d \(you\)$" % (
            re.escape(path), MALLORY_UID, os.geteuid())
    else:
        want = r"^omikeyfs: session file %s is a symbolic link; it must be the file itself$" % (
            re.escape(path))
    one_refusal(rc, err, served, want)
    assert auth_api.request_log() == []


def test_symlinked_config_directory_is_refused_by_mount_and_login(auth_api, env, tmp_path,  # noqa: F811
                                                                 mallory_dir, mallory_session):
    """~/.config/omikeyfs a link to a directory uid 12345 owns, holding its
    session: the mount refuses it, and --login writes nothing there."""
    theirs = os.path.join(mallory_dir, "omikeyfs")
    assert as_mallory("mkdir", "-m", "0755", theirs).returncode == 0
    plant(os.path.join(theirs, "session.json"), mallory_session)
    config = tmp_path / "config"
    config.mkdir(mode=0o700)
    os.symlink(theirs, str(config / "omikeyfs"))
    want = (r"^omikeyfs: session file %s: its directory %s is a symbolic link; it must be a "
            r"directory of your own$" % (re.escape(default_session(tmp_path)),
                                          re.escape(str(config / "omikeyfs"))))
    rc, err, served = try_mount(auth_api, env, tmp_path)
    one_refusal(rc, err, served, want)

    login = login_refused_before_the_browser(auth_api, env)
    assert login.rc == 1 and len(lines(login.stderr)) == 1, login.stderr
    assert re.match(want, lines(login.stderr)[0])
    assert sorted(os.listdir(theirs)) == ["session.json"]
    with open(os.path.join(theirs, "session.json"), "rb") as f:
        assert f.read() == mallory_session
    assert auth_api.request_log() == []


def test_config_directory_open_to_others_is_refused(auth_api, env, tmp_path,  # noqa: F811
                                                     chromium):
    """A 0777 omikeyfs/ directory, where uid 12345 could plant a session or
    swap the file: --login refuses before the browser, a mount refuses."""
    d = tmp_path / "config" / "omikeyfs"
    d.mkdir(parents=True)
    os.chmod(str(d), 0o777)
    want = ("omikeyfs: session file %s: its directory %s is open to group or others (mode "
            "777); run: chmod 700 %s" % (default_session(tmp_path), d, d))
    login = login_refused_before_the_browser(auth_api, env)
    assert (login.rc, lines(login.stderr)) == (1, [want])
    assert os.listdir(str(d)) == []

    # A session saved before the directory was opened up is refused too.
    os.chmod(str(d), 0o700)
    sign_in(auth_api, env, chromium)
    os.chmod(str(d), 0o777)
    rc, err, served = try_mount(auth_api, env, tmp_path)
    one_refusal(rc, err, served, "^" + re.escape(want) + "$")


# ---- --logout removes only a session -----------------------------------------

def logout(env, *args):  # noqa: F811
    r = subprocess.run([BIN, "--logout"] + list(args), env=env, capture_output=True, text=True,
                       timeout=60)
    return r.returncode, lines(r.stderr)


def test_logout_through_a_symlink_is_refused(auth_api, env, tmp_path, mallory_dir,  # noqa: F811
                                             chromium):
    """The session file a link (uid 12345's) to the user's real session
    elsewhere: --logout would remove the link and leave the refresh token."""
    real = str(tmp_path / "kept" / "session.json")
    sign_in(auth_api, env, chromium, opts=["session_file=" + real])
    with open(real, "rb") as f:
        before = f.read()
    made = os.path.join(mallory_dir, "link")
    assert as_mallory("ln", "-s", real, made).returncode == 0
    path = default_session(tmp_path)
    os.makedirs(os.path.dirname(path), mode=0o700)
    os.rename(made, path)
    rc, err = logout(env)
    assert (rc, err) == (1, ["omikeyfs: session file %s is a symbolic link; it must be the file "
                             "itself; nothing was removed" % path])
    assert os.path.islink(path)
    with open(real, "rb") as f:
        assert f.read() == before


def test_logout_refuses_a_file_that_is_not_a_session(auth_api, env, tmp_path):  # noqa: F811
    home = tmp_path / "home"
    ssh = home / ".ssh"
    ssh.mkdir(parents=True, mode=0o700)
    key = ssh / "id_ed25519"
    secret = b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n" \
             b"-----END OPENSSH PRIVATE KEY-----\n"
    fd = os.open(str(key), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, secret)
    os.close(fd)
    # As a shell expands -o session_file=~/.ssh/id_ed25519.
    rc, err = logout(dict(env, HOME=str(home)), "-o", "session_file=%s" % key)
    assert rc == 1 and len(err) == 1, err
    assert re.match(r"^omikeyfs: session file %s: .*; nothing was removed$"
                    % re.escape(str(key)), err[0]), err
    assert key.read_bytes() == secret


def test_logout_in_a_directory_of_another_user_is_refused(auth_api, env, tmp_path,  # noqa: F811
                                                          mallory_dir, mallory_session):
    planted = os.path.join(mallory_dir, "session.json")
    plant(planted, mallory_session)
    rc, err = logout(env, "-o", "session_file=" + planted)
    assert (rc, err) == (1, ["omikeyfs: session file %s: its directory %s is owned by uid %d, "
                             "not by uid %d (you); nothing was removed"
                             % (planted, mallory_dir, MALLORY_UID, os.geteuid())])
    assert os.path.exists(planted)


# ---- a rotated refresh token never overwrites a concurrent --login -----------

class RotatingSecureToken:
    """securetoken in front of the Auth Emulator, rotating as Google's may:
    each renewal answers a refresh token never seen before (the emulator's
    own with "~rotN" added, taken off again on the way in) and expires_in
    "1", so that every fetch of the mount renews."""

    def __init__(self, emulator):
        self.emulator = emulator
        self.renewals = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                form = dict(urllib.parse.parse_qsl(body.decode()))
                if "refresh_token" in form:
                    form["refresh_token"] = form["refresh_token"].split("~rot")[0]
                status, _, answer = http_call(
                    "POST", outer.emulator.base + self.path,
                    urllib.parse.urlencode(form).encode(),
                    {"Content-Type": "application/x-www-form-urlencoded"})
                if status == 200:
                    obj = json.loads(answer)
                    outer.renewals += 1
                    obj["refresh_token"] += "~rot%d" % outer.renewals
                    obj["expires_in"] = "1"
                    answer = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.hostport = "127.0.0.1:%d" % self.server.server_address[1]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def test_rotation_saved_by_a_mount_never_overwrites_a_concurrent_login(
        auth_api, env, tmp_path, monkeypatch, chromium):  # noqa: F811
    """The mount's fsyncs slowed by strace (as in the report): it has read
    the file and is writing the rotated token when a second --login saves
    its new session.  That sign-in must be what the file holds after."""
    if shutil.which("strace") is None:
        pytest.fail("strace is needed to slow the mount's fsync")
    auth_api.set_keys(make_keys(2, seed=173))
    sign_in(auth_api, env, chromium)
    path = default_session(tmp_path)
    directory = os.path.dirname(path)
    proxy = RotatingSecureToken(auth_api.firebase)
    wrapper = tmp_path / "strace-omikeyfs"
    # LeakSanitizer cannot work under ptrace: off for this one daemon.
    wrapper.write_text("#!/bin/sh\nASAN_OPTIONS=\"${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0\" "
                       "exec strace -f -qq -o /dev/null -e trace=fsync "
                       "-e inject=fsync:delay_enter=2000000 %s \"$@\"\n" % BIN)
    wrapper.chmod(0o700)
    monkeypatch.setattr(conftest, "BIN", str(wrapper))
    mnt = str(tmp_path / "mnt")
    os.mkdir(mnt)
    m = None
    login = None
    try:
        m = Mount(auth_api.url, mnt, opts=["ttl=60", "timeout=10", "no_cache"],
                  env=dict(env, FIREBASE_AUTH_EMULATOR_HOST=proxy.hostport), token=None,
                  wait=False)
        m.wait_mounted(timeout=60)
        # The first renewal's token is in the file: a rotation with nobody else.
        wait_for(lambda: read_session(path)["refresh_token"].endswith("~rot1"), timeout=30,
                 what="the first rotated token saved")
        daemon = int(m.xattr("pid"))

        login = Login(auth_api, env)
        assert login.url
        # A refresh: renewal 2, and the mount saves its rotated token.
        m.expect_stderr(conftest.SIGHUP_LINE)
        os.kill(daemon, signal.SIGHUP)
        walker = threading.Thread(target=lambda: os.listdir(mnt))
        walker.start()

        def writing():  # its temporary file beside the session file
            return any(n != "session.json" for n in os.listdir(directory))

        wait_for(lambda: proxy.renewals >= 2 and writing(), timeout=30,
                 what="the mount writing its rotated token")
        # Now, while the mount is in its fsync, the second sign-in lands.
        status, _, _ = auth_api.browser_login(login.url)
        login.finish()
        assert (status, login.rc) == (200, 0), login.stderr
        walker.join(60)
        wait_for(lambda: not writing(), timeout=30, what="the mount's save to end")
        after = read_session(path)
        # The emulator hands a user the same refresh token each time: the
        # second sign-in's is the emulator's own, without "~rot".
        assert "~rot" not in after["refresh_token"], \
            "the mount's rotated token overwrote the new sign-in"
        m.unmount()
    finally:
        if login and login.proc.poll() is None:
            login.proc.kill()
        if m:
            m.kill()
        proxy.stop()
