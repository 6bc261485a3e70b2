"""omikeyfs over https: certificates are verified, and -o cafile= is honoured.

The fake API serves TLS 1.2+ here (tests/fakeapi.py --tls-cert/--tls-key)
with certificates made by the openssl CLI for this module: a test CA, a
server certificate for 127.0.0.1 and localhost signed by it, one signed by
it for another name only, and a self-signed one.  Every mount goes through
the real binary, so what is checked is what a user pointing omikeyfs at a
private or test API gets: a mount when the chain and the name verify, and
otherwise exit 3 with one clear line, nothing mounted, and no request (so no
token) ever sent to the server that failed verification.
"""
import os
import ssl
import time
from types import SimpleNamespace

import pytest

from conftest import (TOKEN, FakeAPI, Mount, expected_files, make_keys, unmount_all,
                      run, tree, wait_for)

KEYS_PATH = "/v1/dev/keys"


# ---- certificates --------------------------------------------------------------

def openssl(*args, cwd):
    result = run("openssl", *args, cwd=cwd)
    assert result.returncode == 0, "openssl %s: %s" % (" ".join(args), result.stderr)


NEW_KEY = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")


def signed_cert(d, name, san):
    """d/name.pem and d/name.key: a server certificate signed by d/ca.pem."""
    with open(os.path.join(d, name + ".ext"), "w") as f:
        f.write("subjectAltName=%s\nbasicConstraints=CA:FALSE\n"
                "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n" % san)
    openssl("req", *NEW_KEY, "-keyout", name + ".key", "-out", name + ".csr",
            "-subj", "/CN=omikeyfs test server", cwd=d)
    openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", name + ".ext", "-out", name + ".pem",
            cwd=d)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = str(tmp_path_factory.mktemp("pki"))
    openssl("req", "-x509", *NEW_KEY, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=omikeyfs test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    signed_cert(d, "server", "IP:127.0.0.1,DNS:localhost")
    signed_cert(d, "other", "DNS:other.example")
    openssl("req", "-x509", *NEW_KEY, "-keyout", "self.key", "-out", "self.pem", "-days", "2",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            cwd=d)
    with open(os.path.join(d, "garbage.pem"), "w") as f:
        f.write("this is not a certificate\n")
    return SimpleNamespace(dir=d, ca=os.path.join(d, "ca.pem"),
                           self_signed=os.path.join(d, "self.pem"),
                           garbage=os.path.join(d, "garbage.pem"))


# ---- the fake API over TLS -----------------------------------------------------

class TLSFakeAPI(FakeAPI):
    """tests/fakeapi.py serving https with pki's certificate `cert`.

    Its /_control/ endpoints are https too.  That channel is test plumbing:
    it trusts the test CA and the self-signed certificate but does not check
    the host name, so it reaches every server here, the misnamed one
    included.  Host names are what omikeyfs is tested on, not the harness."""

    def __init__(self, pki, cert, port=0):
        ctx = ssl.create_default_context(cafile=pki.ca)
        ctx.load_verify_locations(pki.self_signed)
        ctx.check_hostname = False
        super().__init__(port=port, scheme="https", ssl_context=ctx, extra=[
            "--tls-cert", os.path.join(pki.dir, cert + ".pem"),
            "--tls-key", os.path.join(pki.dir, cert + ".key")])


@pytest.fixture(scope="module")
def servers(pki):
    """One TLS fake API per certificate, shared by the module."""
    started = {}

    def get(cert):
        if cert not in started:
            started[cert] = TLSFakeAPI(pki, cert)
        server = started[cert]
        server.reset()
        return server

    yield get
    for server in started.values():
        server.stop()


@pytest.fixture
def mounts(tmp_path):
    """mounts(url, opts=()) -> a Mount (ttl 60, timeout 2 unless given),
    unmounted and checked (exit 0, clean stderr) after the test."""
    made = []

    def start(url, opts=()):
        mnt = str(tmp_path / ("mnt%d" % len(made)))
        os.mkdir(mnt)
        m = Mount(url, mnt, opts=["ttl=60", "timeout=2"] + list(opts))
        made.append(m)
        return m

    yield start
    unmount_all(made)


def attempt(tmp_path, url, opts=()):
    """Run omikeyfs where it must fail before mounting: (status, the one
    stderr line).  A mount that happens anyway is undone and fails the test;
    the token must not be printed."""
    mnt = str(tmp_path / "mnt")
    os.mkdir(mnt)
    m = Mount(url, mnt, opts=["timeout=2"] + list(opts), wait=False)
    deadline = time.monotonic() + 30
    while m.proc.poll() is None and not os.path.ismount(mnt):
        if time.monotonic() > deadline:
            m.kill()
            raise AssertionError("omikeyfs neither mounted nor exited")
        time.sleep(0.02)
    if os.path.ismount(mnt):
        m.kill()
        raise AssertionError("omikeyfs mounted %s but should have failed: %s"
                             % (url, m.stderr()))
    m.stderr_file.close()
    err = m.stderr()
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("omikeyfs: "), err
    assert TOKEN not in err
    return m.proc.returncode, lines[0]


def expected_tree(keys):
    return {k["id"]: expected_files(k) for k in keys}


def assert_untouched(server):
    """The server saw no HTTP request at all: the TLS handshake failed before
    the Authorization header could be sent."""
    stats = server.stats()
    assert (stats["requests"], stats["paths"], stats["all_headers"]) == (0, [], [])


# ---- tests -----------------------------------------------------------------------

def test_fake_api_speaks_https(servers):
    server = servers("server")
    assert server.banner == "listening on https://127.0.0.1:%d" % server.port
    assert server.stats()["requests"] == 0


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_https_with_cafile_mounts(servers, pki, mounts, host):
    server = servers("server")
    keys = make_keys(3, seed=71)
    server.set_keys(keys)
    m = mounts("https://%s:%d" % (host, server.port), ["cafile=" + pki.ca])
    assert tree(m.mnt) == expected_tree(keys)
    stats = server.stats()
    assert stats["paths"] == [KEYS_PATH]
    assert stats["last_headers"]["authorization"] == "Bearer " + TOKEN
    assert m.xattr("stale") == "0" and m.xattr("last_error") == ""

    # A forced refresh reuses the verified connection: one handshake, two requests.
    m.sighup()
    wait_for(lambda: server.stats()["requests"] == 2, what="the SIGHUP refresh")
    assert server.stats()["keys_connections"] == 1


def test_self_signed_cert_trusted_when_it_is_the_cafile(servers, pki, mounts):
    server = servers("self")
    keys = make_keys(2, seed=72)
    server.set_keys(keys)
    m = mounts(server.url, ["cafile=" + pki.self_signed])
    assert tree(m.mnt) == expected_tree(keys)


def test_unknown_ca_without_cafile_fails(servers, tmp_path):
    server = servers("server")
    rc, line = attempt(tmp_path, server.url)
    assert rc == 3, line
    assert line.startswith("omikeyfs: cannot fetch the key list from %s: TLS: " % server.url)
    assert "certificate" in line
    assert_untouched(server)


def test_wrong_host_name_fails(servers, pki, tmp_path):
    server = servers("other")
    rc, line = attempt(tmp_path, server.url, ["cafile=" + pki.ca])
    assert rc == 3, line
    assert line.startswith("omikeyfs: cannot fetch the key list from %s: TLS: " % server.url)
    assert "127.0.0.1" in line and "name" in line
    assert_untouched(server)


def test_self_signed_cert_not_in_cafile_fails(servers, pki, tmp_path):
    server = servers("self")
    rc, line = attempt(tmp_path, server.url, ["cafile=" + pki.ca])
    assert rc == 3, line
    assert line.startswith("omikeyfs: cannot fetch the key list from %s: TLS: " % server.url)
    assert "certificate" in line
    assert_untouched(server)


def test_missing_cafile_is_a_usage_error(servers, tmp_path):
    server = servers("server")
    assert not os.path.exists("/nonexistent")
    rc, line = attempt(tmp_path, server.url, ["cafile=/nonexistent"])
    assert rc == 1, line
    assert line == "omikeyfs: cafile /nonexistent: No such file or directory"
    assert_untouched(server)


def test_cafile_that_is_not_pem_fails(servers, pki, tmp_path):
    server = servers("server")
    rc, line = attempt(tmp_path, server.url, ["cafile=" + pki.garbage])
    assert rc == 3, line
    assert line.startswith("omikeyfs: cannot fetch the key list from %s: TLS: " % server.url)
    assert pki.garbage in line
    assert_untouched(server)


def test_plain_http_to_tls_port_fails(servers, pki, tmp_path):
    server = servers("server")
    url = "http://localhost:%d" % server.port
    rc, line = attempt(tmp_path, url, ["cafile=" + pki.ca])
    assert rc == 3, line
    assert line.startswith("omikeyfs: cannot fetch the key list from %s: " % url)
    assert_untouched(server)  # and it still answers over https


def test_refresh_failing_verification_keeps_last_list(pki, mounts):
    """The API's address starts answering with a certificate omikeyfs does
    not trust: the last good list stays, the failure is reported as TLS, the
    impostor never gets a request (nor the token), and the trusted server's
    return is picked up."""
    good = TLSFakeAPI(pki, "server")
    impostor = None
    try:
        port = good.port
        keys = make_keys(3, seed=73)
        good.set_keys(keys)
        m = mounts(good.url, ["cafile=" + pki.ca])
        m.expect_stderr(r"^omikeyfs: fetching the key list failed: TLS: .*; serving the last "
                        r"good list$",
                        r"^omikeyfs: fetching the key list works again after 1 failed tries$")
        assert tree(m.mnt) == expected_tree(keys)

        good.stop()
        impostor = TLSFakeAPI(pki, "self", port=port)
        impostor.set_keys(make_keys(1, seed=74))
        m.sighup()
        wait_for(lambda: m.xattr("stale") == "1", what="stale=1")
        error = m.xattr("last_error")
        assert error.startswith("TLS: ") and "certificate" in error, error
        assert tree(m.mnt) == expected_tree(keys)
        assert_untouched(impostor)

        impostor.stop()
        impostor = None
        good = TLSFakeAPI(pki, "server", port=port)
        new_keys = make_keys(2, seed=75)
        good.set_keys(new_keys)
        m.sighup()
        wait_for(lambda: m.xattr("stale") == "0" and tree(m.mnt) == expected_tree(new_keys),
                 timeout=15, what="the refresh after the trusted server came back")
        assert m.xattr("last_error") == ""
    finally:
        good.stop()
        if impostor:
            impostor.stop()
