"""omikeyfs against inputs and events that must neither hang nor mislead:
key files that are no files, signals during a hung refresh, key files
rotated through symlinks, mounts stacked on mounts, numbers past their
limits, terminal controls from the API, huge headers, deep nesting and
lists that shrink at once.

Waits here are deadlines for something that must happen (generous, for
loaded machines and ASan builds), never measurements.
"""
import json
import os
import re
import signal
import subprocess
import sys

import pytest

from conftest import (BIN, PYTHON, SIGHUP_LINE, TOKEN, Mount, make_keys,
                      private_namespace_problem, run, tree,
                      wait_for)

KEYS = make_keys(6, seed=41)
FAILED = r"^omikeyfs: fetching the key list failed: .*%s.*; serving the last good list$"
WORKS_AGAIN = r"^omikeyfs: fetching the key list works again after \d+ failed tries$"
# Far past any deadline below: a daemon that exits before this has aborted
# its transfer, it has not timed out.
LONG_TIMEOUT = 600
DEADLINE = 30


def key_file(path, token=TOKEN):
    with open(path, "w") as f:
        f.write(token + "\n")
    os.chmod(path, 0o600)
    return str(path)


def daemon(args, env=None, cwd=None, timeout=DEADLINE):
    """Run omikeyfs in the foreground to its end (it must end by itself)."""
    full_env = dict(os.environ)
    full_env.pop("OMI_API_KEY", None)
    full_env.update(env or {})
    return subprocess.run([BIN, "-f"] + list(args), env=full_env, cwd=cwd,
                          capture_output=True, timeout=timeout)


def one_line(res):
    """The daemon's only stderr line."""
    lines = res.stderr.decode(errors="replace").splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def xattr_in_child(mnt, name, timeout=DEADLINE):
    """A root xattr read by another process, so a daemon that hangs fails
    the test instead of hanging it."""
    res = subprocess.run([PYTHON, "-c", "import os, sys; sys.stdout.buffer.write("
                          "os.getxattr(sys.argv[1], 'user.omikeyfs.' + sys.argv[2]))",
                          mnt, name], capture_output=True, timeout=timeout)
    assert res.returncode == 0, res.stderr
    return res.stdout


# ---- 1. key files that would block open() ------------------------------------

def test_fifo_key_file_is_refused_at_mount(api, tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o600)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    res = daemon(["-o", "key_file=./fifo", api.url, str(mnt)], cwd=str(tmp_path))
    assert res.returncode == 1
    assert re.fullmatch(r"omikeyfs: key file /\S*/fifo is not a regular file", one_line(res))
    assert api.requests() == 0
    assert not os.path.ismount(mnt)


def test_key_file_replaced_by_fifo_is_refused_at_reread(api, mount, tmp_path):
    path = key_file(tmp_path / "token")
    m = mount(KEYS, ttl=60, token=None, opts=["key_file=" + path],
              expect_stderr=[r"^omikeyfs: key file %s is not a regular file$" % path,
                             FAILED % "HTTP 401"])
    before = tree(m.mnt)
    os.unlink(path)
    os.mkfifo(path, 0o600)
    api.control("token", {"token": "omi_dev_rotated_elsewhere"})
    m.sighup()
    # The 401 makes the daemon read the key file again: refused, not
    # waited on, and the last good list is still served.
    wait_for(lambda: xattr_in_child(m.mnt, "stale") == b"1", timeout=DEADLINE,
             what="the refused refresh")
    assert b"HTTP 401" in xattr_in_child(m.mnt, "last_error")
    assert tree(m.mnt) == before
    assert "is not a regular file" in m.stderr()


# ---- 2. stopping during a hung refresh ---------------------------------------

def hang_refresh(api, m):
    """Make the API hang and the daemon's notifier start a refresh that
    would wait LONG_TIMEOUT for it."""
    api.fault(delay=LONG_TIMEOUT * 2)
    m.sighup()
    wait_for(lambda: api.requests() == 2, timeout=DEADLINE, what="the hung refresh")


def ended(m, rc=0):
    """The daemon ended with rc by itself, within DEADLINE, unmounted."""
    try:
        got = m.proc.wait(DEADLINE)
    except subprocess.TimeoutExpired:
        # Killed first: looking at the mount would wait for the daemon.
        m.proc.kill()
        m.proc.wait()
        subprocess.run(["fusermount3", "-u", "-z", m.mnt], stderr=subprocess.DEVNULL)
        m.stderr_file.close()
        m.unmounted = True
        pytest.fail("omikeyfs still runs %d s after being told to stop" % DEADLINE)
    m.unmounted = True
    m.stderr_file.close()
    assert got == rc, m.stderr()
    assert not os.path.ismount(m.mnt)
    m.check_stderr()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_ends_a_hung_refresh(api, mount, sig):
    m = mount(KEYS, ttl=60, timeout=LONG_TIMEOUT)
    hang_refresh(api, m)
    # Another SIGHUP while the first one's fetch hangs: once stopping, no
    # second fetch starts.
    m.sighup()
    os.kill(m.pid, sig)
    ended(m)
    assert api.requests() == 2


def test_sigterm_answers_operations_waiting_for_a_hung_refresh(api, mount):
    m = mount(KEYS, ttl=0, timeout=LONG_TIMEOUT)
    key = KEYS[0]["id"]
    api.fault(delay=LONG_TIMEOUT * 2)
    sent = api.requests()  # the mount's, and its first stats' (ttl=0)
    # With ttl=0 the operation itself refreshes, and waits.
    reader = subprocess.Popen([PYTHON, "-c", "import os, sys; os.stat(sys.argv[1])",
                               os.path.join(m.mnt, key)], stderr=subprocess.PIPE)
    wait_for(lambda: api.requests() == sent + 1, timeout=DEADLINE, what="the hung refresh")
    os.kill(m.pid, signal.SIGTERM)
    ended(m)
    # Answered (from the last good list) or refused, never left hanging.
    try:
        reader.wait(DEADLINE)
    except subprocess.TimeoutExpired:
        reader.kill()
        pytest.fail("the waiting operation was never answered")
    assert api.requests() == sent + 1


def test_unmount_ends_a_hung_refresh(api, mount):
    m = mount(KEYS, ttl=60, timeout=LONG_TIMEOUT)
    hang_refresh(api, m)
    subprocess.run(["fusermount3", "-u", m.mnt], check=True)
    ended(m)


# ---- 3. a key file rotated through symlinks ----------------------------------

def test_token_rotated_by_swapping_a_symlinked_directory(api, mount, tmp_path):
    """Kubernetes' secret volume: token -> ..data/token, ..data -> a dated
    directory, rotated by renaming a new ..data link over the old one."""
    secret = tmp_path / "secret"
    (secret / "v1").mkdir(parents=True)
    key_file(secret / "v1" / "token")
    os.symlink("v1", secret / "..data")
    os.symlink("..data/token", secret / "token")
    path = str(secret / "token")
    m = mount(KEYS, ttl=60, token=None, opts=["key_file=" + path],
              expect_stderr=[r"^omikeyfs: the API refused the token; retrying with the new "
                             r"one in %s$" % re.escape(path)])
    assert len(os.listdir(m.mnt)) == len(KEYS)

    rotated = "omi_dev_rotated_token_9d2e"
    (secret / "v2").mkdir()
    key_file(secret / "v2" / "token", rotated)
    os.symlink("v2", secret / "..data_tmp")
    os.rename(secret / "..data_tmp", secret / "..data")
    api.control("token", {"token": rotated})
    new_keys = make_keys(3, seed=42)
    api.set_keys(new_keys)
    m.sighup()
    wait_for(lambda: sorted(os.listdir(m.mnt)) == sorted(k["id"] for k in new_keys),
             timeout=DEADLINE, what="the tree fetched with the rotated token")
    assert m.xattr("stale") == "0"
    assert api.stats()["last_headers"]["authorization"] == "Bearer " + rotated


# ---- 4. stacked and dead mounts ----------------------------------------------

def test_second_mount_on_the_same_path_is_refused(api, mount):
    m = mount(KEYS)
    res = daemon([api.url, m.mnt], env={"OMI_API_KEY": TOKEN})
    assert res.returncode == 4
    assert one_line(res) == ("omikeyfs: mountpoint %s is already an omikeyfs mount (pid %d); "
                             "unmount it first: fusermount3 -u %s" % (m.mnt, m.pid, m.mnt))
    assert api.requests() == 1  # the first mount's fetch only
    # Still the first mount alone, answering.
    assert len(os.listdir(m.mnt)) == len(KEYS)
    assert m.xattr("pid") == str(m.pid)


@pytest.mark.parametrize("ttl", [600, 0], ids=["root-cached", "root-expired"])
def test_mount_on_a_dead_mount_is_refused_with_the_cure(api, mount, ttl):
    m = mount(KEYS, ttl=ttl)
    os.stat(m.mnt)
    m.proc.kill()
    m.proc.wait()
    m.unmounted = True
    m.stderr_file.close()
    try:
        res = daemon([api.url, m.mnt], env={"OMI_API_KEY": TOKEN})
        assert res.returncode == 4
        assert one_line(res) == ("omikeyfs: mountpoint %s: a previous mount died (Transport "
                                 "endpoint is not connected); fusermount3 -u %s clears it"
                                 % (m.mnt, m.mnt))
    except BaseException:
        subprocess.run(["fusermount3", "-u", "-z", m.mnt])
        raise
    # What the message says works, and then mounting there does.
    subprocess.run(["fusermount3", "-u", m.mnt], check=True)
    again = Mount(api.url, m.mnt, opts=["ttl=60", "timeout=5"])
    try:
        assert len(os.listdir(m.mnt)) == len(KEYS)
    finally:
        again.unmount()


# ---- 5. numbers and bytes ----------------------------------------------------

@pytest.mark.parametrize("opt,limit", [
    ("max_size=17179869185G", "from 1024 to under 2G"),  # 2^64 + 1G: wrapped to 1G
    ("max_size=8589934592K", "from 1024 to under 2G"),
    ("ttl=1e308", "at most 31536000"),
    ("ttl=31536001", "at most 31536000"),
    ("timeout=1e308", "at most 31536000"),
])
def test_numbers_past_their_limits_are_refused(api, tmp_path, opt, limit):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    res = daemon(["-o", opt, api.url, str(mnt)], env={"OMI_API_KEY": TOKEN})
    assert res.returncode == 1, res.stderr
    line = one_line(res)
    assert line.startswith("omikeyfs: invalid %s " % opt), line
    assert limit in line
    assert api.requests() == 0


def test_nul_in_the_key_file_is_refused_before_any_request(api, tmp_path):
    path = tmp_path / "token"
    path.write_bytes(b"omi_dev\0" + TOKEN.encode() + b"\n")
    os.chmod(path, 0o600)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    res = daemon(["-o", "key_file=%s" % path, api.url, str(mnt)])
    assert res.returncode == 1
    assert one_line(res) == ("omikeyfs: key file %s: the token holds control characters "
                             "(a NUL byte)" % path)
    assert api.requests() == 0


# ---- 6. text from the API that could rewrite a terminal ----------------------

# CSI (U+009B), another C1 control, right-to-left override and isolate.
HOSTILE = "Quota\u009b2J exceeded\u0085 for \u202euoy\u202c \u2067isolated\u2069 now"
HOSTILE_BYTES = [c.encode() for c in "\u009b\u0085\u202e\u202c\u2067\u2069"]


@pytest.mark.parametrize("status", [429, 503])
def test_terminal_controls_in_the_detail_are_replaced(api, mount, status):
    m = mount(KEYS, ttl=60, expect_stderr=[FAILED % ("HTTP %d" % status)])
    api.raw(json.dumps({"detail": HOSTILE}), status=status)
    m.sighup()
    wait_for(lambda: m.xattr("stale") == "1", what="the failed refresh")
    error = os.getxattr(m.mnt, "user.omikeyfs.last_error")
    assert b"Quota?2J exceeded? for ?uoy? ?isolated? now" in error, error
    with open(m.stderr_path, "rb") as f:
        err = f.read()
    assert b"Quota?2J exceeded? for ?uoy? ?isolated? now" in err, err
    for raw in HOSTILE_BYTES:
        assert raw not in error and raw not in err


# ---- 7. a response header larger than libcurl takes --------------------------

def test_huge_response_header_is_named_as_such(api, mount):
    m = mount(KEYS, ttl=60, expect_stderr=[FAILED % "response header larger than"])
    api.raw(json.dumps([]), status=200, headers={"X-Padding": "a" * (1 << 20)})
    m.sighup()
    wait_for(lambda: m.xattr("stale") == "1", what="the failed refresh")
    error = m.xattr("last_error")
    assert "the API sent a response header larger than libcurl accepts" in error, error
    assert "out of memory" not in error
    assert len(os.listdir(m.mnt)) == len(KEYS)


# ---- 8. one absurdly nested unknown field ------------------------------------

def deep(levels):
    value = 1
    for _ in range(levels):
        value = {"x": value}
    return value


def test_an_entry_nested_too_deep_is_skipped_and_the_rest_served(api, mount):
    m = mount(KEYS, ttl=60, expect_stderr=[
        r"^omikeyfs: skipping key #1: nested deeper than 16 levels$"])
    keys = make_keys(4, seed=43)
    body = list(keys)
    body.insert(1, dict(make_key_like(keys[0]), future_field=deep(20)))
    api.raw(json.dumps(body))
    m.sighup()
    wait_for(lambda: sorted(os.listdir(m.mnt)) == sorted(k["id"] for k in keys),
             timeout=DEADLINE, what="the list without the deep entry")
    assert m.xattr("stale") == "0"


def make_key_like(key):
    return dict(key, id="deep-" + key["id"])


# ---- 9. a list that shrinks at once ------------------------------------------

SHRANK = r"^omikeyfs: the key list shrank from %d to %d keys in one refresh$"


def test_a_list_shrinking_by_more_than_half_is_served_with_a_warning(api, mount):
    keys = make_keys(10, seed=44)
    m = mount(keys, ttl=60, expect_stderr=[SHRANK % (10, 0), SHRANK % (5, 2)])
    # By half: served without a word.
    api.set_keys(keys[:5])
    m.sighup()
    wait_for(lambda: len(os.listdir(m.mnt)) == 5, timeout=DEADLINE, what="5 keys")
    assert "shrank" not in m.stderr()
    api.set_keys(keys[:2])
    m.sighup()
    wait_for(lambda: len(os.listdir(m.mnt)) == 2, timeout=DEADLINE, what="2 keys")
    api.set_keys(keys)
    m.sighup()
    wait_for(lambda: len(os.listdir(m.mnt)) == 10, timeout=DEADLINE, what="10 keys")
    # Every key revoked is real: served, with the counts.
    api.set_keys([])
    m.sighup()
    wait_for(lambda: os.listdir(m.mnt) == [], timeout=DEADLINE, what="the empty list")
    assert m.xattr("stale") == "0"
    lines = m.stderr().splitlines()
    assert [l for l in lines if "shrank" in l] == [
        "omikeyfs: the key list shrank from 5 to 2 keys in one refresh",
        "omikeyfs: the key list shrank from 10 to 0 keys in one refresh"]


# ---- 10. an unmount while another mount namespace holds a copy -----------------

COPY_ENDED = (r"^omikeyfs: unmounted here while a copy of the mount lives on in another "
              r"mount namespace; ending it$")


def test_unmount_ends_the_daemon_though_another_namespace_holds_a_copy(api, mount):
    """A mount namespace made while mounted (unshare -m, a service with
    PrivateTmp=) keeps a copy of the mount, which kept the kernel's
    connection and the daemon alive after fusermount3 -u.  The daemon ends
    all the same, the copy with it, and a new mount made meanwhile on the
    same path is left alone."""
    why = private_namespace_problem()
    if why:
        pytest.skip("no private mount namespace here: " + why)
    m = mount(KEYS, ttl=60, expect_stderr=[COPY_ENDED])
    holder = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sleep", "600"])
    try:
        wait_for(lambda: os.path.exists("/proc/%d/ns/mnt" % holder.pid) and
                 os.readlink("/proc/%d/ns/mnt" % holder.pid) != os.readlink("/proc/self/ns/mnt"),
                 timeout=DEADLINE, what="the namespace holding a copy")
        subprocess.run(["fusermount3", "-u", m.mnt], check=True)
        # Its stderr file is the first daemon's too (named by the path).
        again = Mount(api.url, m.mnt, opts=["ttl=60", "timeout=5"], expect_stderr=[COPY_ENDED])
        try:
            try:
                rc = m.proc.wait(DEADLINE)
            except subprocess.TimeoutExpired:
                m.proc.kill()
                pytest.fail("omikeyfs still runs %d s after its unmount" % DEADLINE)
            finally:
                m.unmounted = True
                m.stderr_file.close()
            assert rc == 0, m.stderr()
            m.check_stderr()
            assert re.search(COPY_ENDED, m.stderr(), re.M)
            # The new mount on the same path is untouched, and answers.
            assert os.path.ismount(m.mnt) and len(os.listdir(m.mnt)) == len(KEYS)
            assert again.xattr("pid") == str(again.pid)
        finally:
            again.unmount()
        # The copy went with the daemon: a dead mount there now.
        r = run("nsenter", "-t", str(holder.pid), "-m", "-r", "-w", "stat", m.mnt)
        assert r.returncode != 0 and "Transport endpoint is not connected" in r.stderr, r
    finally:
        holder.kill()
        holder.wait()


# ---- 11. unmounting while the session renews -----------------------------------

from test_login import env, sign_in  # noqa: E402,F401  (fixtures and the sign-in)

STRESS_ROUNDS = 30
STRESS_BUDGET = 60  # seconds; at least 5 rounds are run whatever it takes
EXIT_DEADLINE = 20


def thread_stacks(pid):
    """Every thread's backtrace of a live process, by gdb."""
    try:
        r = subprocess.run(["gdb", "-p", str(pid), "-batch", "-ex", "thread apply all bt"],
                           capture_output=True, text=True, timeout=120)
        return r.stdout + r.stderr
    except (OSError, subprocess.TimeoutExpired) as e:
        return "gdb failed: %r" % e


def test_unmount_during_renewals_ends_the_daemon(auth_api, env, tmp_path, chromium):
    """ID tokens the API refuses after 1 s and ttl 0.3: walkers make a
    renewal about once a second, and each round unmounts just as one has
    been asked for.  Every daemon must exit 0 within EXIT_DEADLINE; one that
    does not fails the test with all its threads' stacks."""
    import threading
    import time
    auth_api.set_keys(KEYS)
    sign_in(auth_api, env, chromium)
    auth_api.set_token_lifetime(1)
    started = time.monotonic()
    rounds = 0

    def renewals():
        return sum(e["status"] == 401 for e in auth_api.request_log()
                   if e["path"] == "/v1/dev/keys")

    while rounds < STRESS_ROUNDS and (rounds < 5 or time.monotonic() - started < STRESS_BUDGET):
        mnt = str(tmp_path / ("mnt%d" % rounds))
        os.mkdir(mnt)
        # A mount namespace made meanwhile anywhere on the machine holds a
        # copy of the mount; the daemon then says it ends that too.
        m = Mount(auth_api.url, mnt, opts=["ttl=0.3", "timeout=5"], env=env, token=None,
                  expect_stderr=[COPY_ENDED])
        done = threading.Event()

        def walker(read):
            # find (listings and stats) and grep -r (reads too, after which
            # listings have the notifier push file pages to the kernel).
            while not done.is_set():
                try:
                    for d in os.listdir(mnt):
                        for f in os.listdir(os.path.join(mnt, d)):
                            path = os.path.join(mnt, d, f)
                            if read:
                                with open(path, "rb") as fh:
                                    fh.read()
                            else:
                                os.stat(path)
                except OSError:
                    pass

        walkers = [threading.Thread(target=walker, args=(read,)) for read in (False, True)]
        try:
            before = renewals()
            for t in walkers:
                t.start()
            wait_for(lambda: renewals() > before, timeout=30, interval=0.01,
                     what="a renewal in round %d" % rounds)
            # An operation under way keeps the mount busy a moment.
            wait_for(lambda: subprocess.run(["fusermount3", "-u", mnt],
                                            stderr=subprocess.DEVNULL).returncode == 0,
                     timeout=30, interval=0.01, what="the unmount in round %d" % rounds)
            m.unmounted = True
        finally:
            done.set()
            for t in walkers:
                t.join()
        try:
            rc = m.proc.wait(EXIT_DEADLINE)
        except subprocess.TimeoutExpired:
            stacks = thread_stacks(m.pid)
            with open(str(tmp_path / "stacks.txt"), "w") as f:
                f.write(stacks)
            m.kill()
            pytest.fail("round %d: omikeyfs (pid %d) still runs %d s after its unmount; "
                        "its threads:\n%s\nstderr:\n%s"
                        % (rounds, m.pid, EXIT_DEADLINE, stacks, m.stderr()))
        m.stderr_file.close()
        assert rc == 0, "round %d: exit %s: %s" % (rounds, rc, m.stderr())
        m.check_stderr()
        rounds += 1
    print("%d rounds in %.1f s, %d renewals" % (rounds, time.monotonic() - started, renewals()))
