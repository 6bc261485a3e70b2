"""The sign-in test bench itself, without omikeyfs: the fake API's half of
the loopback + PKCE flow and its ID-token check, against Google's Firebase
Auth Emulator (shared/omi-api/AUTH.md).  If these pass, the pieces that the
omikeyfs sign-in tests stand on fit together the way the real ones do.
"""
import base64
import hashlib
import http.server
import json
import secrets
import threading
import time
import urllib.parse

import pytest

from conftest import api_order, http_call, make_keys

CALLBACK = "http://127.0.0.1:%d/callback"
INVALID = {"detail": "Invalid authentication credentials"}


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(jwt):
    part = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def pkce():
    verifier = secrets.token_urlsafe(48)  # 64 unreserved characters
    return verifier, b64url(hashlib.sha256(verifier.encode()).digest())


def authorize_url(api, challenge, state="st4te", redirect=None, **over):
    params = dict(provider="google", redirect_uri=redirect or CALLBACK % 40123, state=state,
                  code_challenge=challenge, code_challenge_method="S256")
    params.update(over)
    return api.url + "/v1/auth/authorize?" + urllib.parse.urlencode(params)


def authorize(api, challenge, **kw):
    """(status, the loopback query the page sends the browser to, body) of
    the browser's steps up to the backend's callback page; the query is {}
    when the page is no 200 or would not navigate."""
    from conftest import page_target
    status, headers, body = http_call("GET", authorize_url(api, challenge, **kw))
    if status != 307:
        return status, {}, body
    assert headers["location"].startswith(api.url + "/v1/auth/callback/")
    status, headers, body = http_call("GET", headers["location"])
    query = {}
    if status == 200:
        target = page_target(body)
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(target).query))
    return status, query, body


def exchange(api, code, verifier, redirect=None, **over):
    form = dict(grant_type="authorization_code", code=code, redirect_uri=redirect or CALLBACK % 40123,
                use_custom_token="true", code_verifier=verifier)
    form.update(over)
    form = {k: v for k, v in form.items() if v is not None}
    status, _, body = http_call("POST", api.url + "/v1/auth/token",
                                body=urllib.parse.urlencode(form).encode(),
                                headers={"Content-Type": "application/x-www-form-urlencoded"})
    return status, json.loads(body)


def get_code(api):
    verifier, challenge = pkce()
    status, query, body = authorize(api, challenge)
    assert status == 200, body
    assert query["state"] == "st4te"
    return query["code"], verifier


def sign_in(api):
    """The whole flow as a client does it: the session's tokens."""
    code, verifier = get_code(api)
    status, out = exchange(api, code, verifier)
    assert status == 200, out
    status, session = api.firebase.sign_in_with_custom_token(out["custom_token"])
    assert status == 200, session
    return out, session


def list_keys(api, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}
    status, hdrs, body = http_call("GET", api.url + "/v1/dev/keys", headers=headers)
    return status, hdrs, json.loads(body)


def test_sign_in_then_list_keys(auth_api):
    keys = make_keys(5, seed=71)
    auth_api.set_keys(keys)
    out, session = sign_in(auth_api)

    assert out["token_type"] == "Bearer" and out["expires_in"] == 3600
    assert (out["provider"], out["provider_id"]) == ("google", "google.com")
    head = json.loads(base64.urlsafe_b64decode(out["custom_token"].split(".")[0] + "=="))
    assert head == {"alg": "none", "typ": "JWT"}
    custom = claims(out["custom_token"])
    assert custom["uid"] == "omikeyfs-test-user"
    assert custom["aud"].endswith("google.identity.identitytoolkit.v1.IdentityToolkit")
    assert session["expiresIn"] == "3600"
    id_claims = claims(session["idToken"])
    assert id_claims["iss"] == "https://securetoken.google.com/demo-omikeyfs"
    assert (id_claims["aud"], id_claims["sub"]) == ("demo-omikeyfs", "omikeyfs-test-user")

    status, _, listed = list_keys(auth_api, "Bearer " + session["idToken"])
    assert status == 200
    assert listed == api_order(keys)
    # The provider's own ID token is not a Firebase one.
    assert list_keys(auth_api, "Bearer " + out["id_token"])[:3:2] == (401, INVALID)

    # Which secret reached which route of the API.
    log = auth_api.request_log()
    assert [(e["method"], e["path"], e["status"]) for e in log] == [
        ("GET", "/v1/auth/authorize", 307), ("GET", "/v1/auth/callback/google", 200),
        ("POST", "/v1/auth/token", 200),
        ("GET", "/v1/dev/keys", 200), ("GET", "/v1/dev/keys", 401)]
    text = [json.dumps(e) for e in log]
    assert not any(session["refreshToken"] in t for t in text)
    assert not any(out["custom_token"] in t for t in text)
    assert [e["path"] for e, t in zip(log, text) if session["idToken"] in t] == ["/v1/dev/keys"]
    assert log[3]["headers"]["authorization"] == "Bearer " + session["idToken"]
    assert "code_verifier=" in log[2]["body"]


def test_renewed_id_token_is_accepted(auth_api):
    _, session = sign_in(auth_api)
    status, renewed = auth_api.firebase.refresh(session["refreshToken"])
    assert status == 200, renewed
    assert renewed["expires_in"] == "3600" and renewed["user_id"] == "omikeyfs-test-user"
    status, _, listed = list_keys(auth_api, "Bearer " + renewed["id_token"])
    assert status == 200 and isinstance(listed, list)


def test_token_lifetime_knob_expires_tokens(auth_api):
    _, session = sign_in(auth_api)
    bearer = "Bearer " + session["idToken"]
    auth_api.set_token_lifetime(0)
    status, hdrs, out = list_keys(auth_api, bearer)
    assert (status, out) == (401, INVALID)
    assert hdrs["www-authenticate"] == "Bearer"
    auth_api.set_token_lifetime(3600)
    assert list_keys(auth_api, bearer)[0] == 200
    auth_api.set_token_lifetime(None)
    assert list_keys(auth_api, bearer)[0] == 200


def test_expired_or_foreign_tokens_are_refused(auth_api):
    _, session = sign_in(auth_api)
    head, payload, _ = session["idToken"].split(".")
    good = claims(session["idToken"])

    def forged(**changes):
        c = dict(good, **changes)
        return "Bearer %s.%s." % (head, b64url(json.dumps(c).encode()))

    assert list_keys(auth_api, forged())[0] == 200
    now = int(time.time())
    for bad in (forged(exp=now - 1, iat=now - 3601),
                forged(aud="another-project"),
                forged(iss="https://securetoken.google.com/another-project"),
                forged(sub=""),
                "Bearer " + head + "." + payload,
                "Bearer not.a.jwt"):
        assert list_keys(auth_api, bad)[:3:2] == (401, INVALID), bad


def test_developer_key_and_missing_header(auth_api):
    status, hdrs, out = list_keys(auth_api, "Bearer omi_dev_" + "3fa9" * 8)
    assert (status, out) == (401, INVALID)
    assert list_keys(auth_api, None)[:3:2] == (403, {"detail": "Not authenticated"})
    assert list_keys(auth_api, "Bearer ")[:3:2] == (403, {"detail": "Not authenticated"})
    assert list_keys(auth_api, "Basic dXNlcjpwdw==")[:3:2] == (403, INVALID)


def test_code_works_once(auth_api):
    code, verifier = get_code(auth_api)
    assert exchange(auth_api, code, verifier)[0] == 200
    assert exchange(auth_api, code, verifier) == (400, {"detail": "Invalid or expired code"})


def test_token_checks_in_the_backends_order(auth_api):
    """Each failure has its own words, and the code is used up as soon as
    it is found, whatever fails after."""
    cases = [
        (dict(redirect=CALLBACK % 40124), "redirect_uri mismatch"),
        (dict(code_verifier=None), "code_verifier is required"),
        (dict(code_verifier="short"), "code_verifier is malformed"),
        (dict(code_verifier=pkce()[0]), "invalid code_verifier"),
    ]
    for over, detail in cases:
        code, verifier = get_code(auth_api)
        kw = dict(over)
        assert exchange(auth_api, code, kw.pop("code_verifier", verifier), **kw) == \
            (400, {"detail": detail}), detail
        # Used up by the failed try.
        assert exchange(auth_api, code, verifier) == (400, {"detail": "Invalid or expired code"})
    code, verifier = get_code(auth_api)
    assert exchange(auth_api, code, verifier, grant_type="refresh_token") == \
        (400, {"detail": "Unsupported grant type"})
    assert exchange(auth_api, code, verifier)[0] == 200  # not used up by that
    assert exchange(auth_api, "no-such-code", verifier) == \
        (400, {"detail": "Invalid or expired code"})


def test_custom_token_only_when_asked_and_its_502(auth_api):
    code, verifier = get_code(auth_api)
    status, out = exchange(auth_api, code, verifier, use_custom_token="false")
    assert status == 200 and "custom_token" not in out and out["provider_id"] == "google.com"
    auth_api.set_login_outcome("mint_fails")
    code, verifier = get_code(auth_api)
    assert exchange(auth_api, code, verifier) == \
        (502, {"detail": "Failed to generate authentication token"})


def test_code_lifetime_knob(auth_api):
    auth_api.set_code_lifetime(0)
    code, verifier = get_code(auth_api)
    assert exchange(auth_api, code, verifier) == (400, {"detail": "Invalid or expired code"})


def test_disabled_user_cannot_renew(auth_api):
    _, session = sign_in(auth_api)
    auth_api.firebase.disable_user("omikeyfs-test-user")
    status, out = auth_api.firebase.refresh(session["refreshToken"])
    assert status == 400
    assert out["error"]["message"] == "USER_DISABLED"


@pytest.mark.parametrize("over, detail", [
    (dict(redirect="http://example.com:40123/callback"),
     "HTTP redirect_uri must point at loopback (localhost, 127.0.0.1, or ::1)"),
    (dict(redirect="https://127.0.0.1:40123/callback"),
     "redirect_uri scheme 'https' is not permitted"),
    (dict(redirect="javascript:alert(1)"), "redirect_uri scheme 'javascript' is not permitted"),
    (dict(code_challenge_method="plain"), "code_challenge_method must be S256"),
    (dict(code_challenge="x"), "code_challenge is malformed"),
    (dict(code_challenge=""), "code_challenge is required"),
    (dict(provider="github"), "Unsupported provider"),
])
def test_authorize_refuses_bad_requests(auth_api, over, detail):
    _, challenge = pkce()
    status, query, body = authorize(auth_api, challenge, **over)
    assert (status, json.loads(body), query) == (400, {"detail": detail}, {})


@pytest.mark.parametrize("redirect", ["http://127.0.0.1:40123/elsewhere", "http://127.0.0.1/callback",
                                      "http://localhost:5999/callback", "http://[::1]:5999/cb",
                                      "omi://auth/callback"])
def test_authorize_takes_what_the_backend_takes(auth_api, redirect):
    _, challenge = pkce()
    status, query, _ = authorize(auth_api, challenge, redirect=redirect)
    assert status == 200 and query["state"] == "st4te" and query["code"]


def test_callback_page_and_its_errors(auth_api):
    """Success is a page whose script navigates (no Location); a failed
    provider step or an auth session gone stale is a 400 in the browser,
    and nothing reaches the loopback."""
    from conftest import backend_page
    _, challenge = pkce()
    status, headers, page, _ = backend_page(authorize_url(auth_api, challenge), auth_api.url)
    assert status == 200 and "location" not in headers
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert b"window.location.href" in page and b'const state = "st4te";' in page
    # No state: the page leaves it out of the loopback address.
    status, query, _ = authorize(auth_api, challenge, state="")
    assert status == 200 and set(query) == {"code"}

    for outcome, detail in (("provider_error", "Auth error: access_denied"),
                            ("session_expired", "Invalid auth session")):
        auth_api.set_login_outcome(outcome)
        status, headers, body, _ = backend_page(authorize_url(auth_api, challenge), auth_api.url)
        assert (status, json.loads(body)) == (400, {"detail": detail})
        assert "location" not in headers
    # A made-up auth session, as a stale bookmark would bring.
    status, _, body = http_call("GET", auth_api.url + "/v1/auth/callback/google?code=x&state=nope")
    assert (status, json.loads(body)) == (400, {"detail": "Invalid auth session"})


@pytest.mark.parametrize("status, detail", [
    (403, "This account has been deleted"),
    (403, {"code": "migration_blocked", "message": "Account migration in progress",
           "retryable": False}),
    (426, {"code": "migration_client_upgrade_required", "message": "Update the app",
           "retryable": False}),
    (503, {"code": "migration_maintenance", "message": "Down for a moment", "retryable": True}),
])
def test_account_gates_follow_the_token_check(auth_api, status, detail):
    _, session = sign_in(auth_api)
    bearer = "Bearer " + session["idToken"]
    auth_api.gate(status, detail, count=1)
    # A bad token is refused before any gate, which stays set.
    assert list_keys(auth_api, "Bearer not.a.jwt")[:3:2] == (401, INVALID)
    assert list_keys(auth_api, bearer)[:3:2] == (status, {"detail": detail})
    assert list_keys(auth_api, bearer)[0] == 200  # count=1: once


def test_firebase_refusal_stand_in(auth_api):
    """Google's error shape on Firebase's paths; nothing when unset."""
    path = "/securetoken.googleapis.com/v1/token?key=K"
    assert http_call("POST", auth_api.url + path, body=b"")[0] == 404
    auth_api.firebase_refusal(403, "Requests from referer <empty> are blocked.",
                              "API_KEY_HTTP_REFERRER_BLOCKED", call="renew")
    status, _, body = http_call("POST", auth_api.url + path, body=b"")
    error = json.loads(body)["error"]
    assert status == 403 and error["code"] == 403
    assert error["details"][0]["reason"] == "API_KEY_HTTP_REFERRER_BLOCKED"
    sign = "/identitytoolkit.googleapis.com/v1/accounts:signInWithCustomToken?key=K"
    assert http_call("POST", auth_api.url + sign, body=b"{}")[0] == 404


def test_lists_are_per_user(auth_api):
    default, alice = make_keys(3, seed=5), make_keys(2, seed=6)
    auth_api.set_keys(default)
    auth_api.set_user_keys("alice", alice)
    auth_api.set_user("alice")
    _, session = sign_in(auth_api)
    assert claims(session["idToken"])["sub"] == "alice"
    assert list_keys(auth_api, "Bearer " + session["idToken"])[2] == api_order(alice)
    auth_api.set_user("bob")
    _, session = sign_in(auth_api)
    assert list_keys(auth_api, "Bearer " + session["idToken"])[2] == []


def test_faults_still_apply(auth_api):
    _, session = sign_in(auth_api)
    auth_api.fault(status=503, count=1)
    assert list_keys(auth_api, "Bearer " + session["idToken"])[0] == 503
    assert list_keys(auth_api, "Bearer " + session["idToken"])[0] == 200


def test_browser_login_helper(auth_api):
    """browser_login plays the browser up to the client's callback."""
    seen = []

    class Callback(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.path)
            body = b"signed in"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Callback)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        _, challenge = pkce()
        url = authorize_url(auth_api, challenge, redirect=CALLBACK % server.server_port)
        status, _, body = answer = auth_api.browser_login(url)
    finally:
        server.shutdown()
        server.server_close()
    assert (status, body) == (200, b"signed in")
    assert answer.location.startswith(CALLBACK % server.server_port + "?code=")
    assert len(seen) == 1 and seen[0].startswith("/callback?code=")
