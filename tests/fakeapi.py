#!/usr/bin/env python3
"""A fake Omi developer API for omikeyfs's tests and demo.

Serves GET /v1/dev/keys the way the real backend does (see
shared/omi-api/NOTES.md): a JSON array of keys, newest created_at first,
ties by id ascending, FastAPI-style {"detail": ...} errors; and
DELETE /v1/dev/keys/{id}, which revokes for a signed-in session only.  A control API
under /_control/ lets tests change the keys, the token, inject faults and
read what was received.  Standard library only (Python 3.11).

Two ways to authenticate the key list:
- without --token (or with --firebase-auth), like the real API: only a
  Firebase ID token is accepted, as issued by Google's Firebase Auth
  Emulator for project --firebase-project; the list is the one of the
  token's user (`sub`), behind the backend's account gates (a test may
  set one).  The sign-in routes answer as the backend's do
  (shared/omi-api/AUTH.md): /v1/auth/authorize redirects to the
  provider, played here as a test user consenting at once, whose
  redirect reaches /v1/auth/callback/PROVIDER; that answers 200 with a
  page whose script sends the browser to the loopback (errors are 400s
  in the browser, never a redirect); /v1/auth/token checks in the
  backend's order and hands out an unsigned custom token that the
  emulator's signInWithCustomToken takes.  This server never issues ID
  tokens.  For the refusals the emulator cannot give (a restricted or
  invalid Web API key, an expired refresh token), it also answers
  Firebase's two paths with a refusal a test sets.
- with --token T: one fixed bearer token, T (the demo and most tests).

    python3 tests/fakeapi.py [--port 0] [--host 127.0.0.1]
                             [--token TOKEN] [--firebase-auth]
                             [--firebase-project demo-omikeyfs]
                             [--keys FILE | --generate N [--seed S]]
                             [--port-file PATH] [--verbose]
                             [--tls-cert PATH --tls-key PATH]

It listens on loopback only and prints "listening on http://127.0.0.1:PORT".
With --tls-cert and --tls-key it speaks TLS 1.2+ only, the control API
included, and prints "listening on https://127.0.0.1:PORT"; the port file
holds just the port number either way.  Request headers (which hold the
token) are never printed.
"""

import argparse
import base64
import collections
import datetime
import gzip
import hashlib
import io
import json
import os
import random
import secrets
import signal
import socket
import socketserver
import ssl
import struct
import sys
import threading
import time
import urllib.parse
import uuid
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KEYS_PATH = "/v1/dev/keys"
AUTHORIZE_PATH = "/v1/auth/authorize"
PROVIDER_CALLBACK_PREFIX = "/v1/auth/callback/"
TOKEN_PATH = "/v1/auth/token"
# The fake's stand-in for Firebase Auth's two REST calls, for the refusals
# the Auth Emulator cannot produce (FIREBASE_AUTH_EMULATOR_HOST pointed here).
FIREBASE_PATHS = {
    "/identitytoolkit.googleapis.com/v1/accounts:signInWithCustomToken": "sign_in",
    "/securetoken.googleapis.com/v1/token": "renew",
}
CONTROL_PREFIX = "/_control/"
DEFAULT_TOKEN = "omi_dev_demo_token"
DEFAULT_PROJECT = "demo-omikeyfs"
DEFAULT_UID = "omikeyfs-test-user"
CODE_LIFETIME = 300  # seconds, like the real backend
AUTH_SESSION_LIFETIME = 300  # the backend's auth session in Redis
# What Firebase wants in a custom token's aud, and who signs one (the
# backend's service account; here nobody signs: alg "none").
CUSTOM_TOKEN_AUD = ("https://identitytoolkit.googleapis.com/"
                    "google.identity.identitytoolkit.v1.IdentityToolkit")
SERVICE_ACCOUNT = "firebase-adminsdk-fake@%s.iam.gserviceaccount.com"
PROVIDERS = {"google": "google.com", "apple": "apple.com"}
# What the provider step does: "ok"; "provider_error" (the user cancels
# or the provider fails: the backend's 400 "Auth error: access_denied");
# "session_expired" (the auth session is gone by the provider's callback:
# 400 "Invalid auth session"); "mint_fails" (/v1/auth/token cannot mint
# the custom token: 502).
LOGIN_OUTCOMES = ("ok", "provider_error", "session_expired", "mint_fails")
GATE_STATUSES = (403, 426, 503)
DEFAULT_KEYS = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                            "data", "demo-keys.json")
HISTORY = 1000

SCOPES = [
    "conversations:read", "conversations:write",
    "memories:read", "memories:write",
    "action_items:read", "action_items:write",
    "goals:read", "goals:write",
]


# ---------------------------------------------------------------------------
# keys: ordering and generation

def parse_time(value):
    """created_at as seconds since the epoch, or None when unreadable.
    Accepts "Z", an offset, or no zone at all (read as UTC)."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        dt = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.timezone.utc)
    return dt.timestamp()


def sort_keys(keys):
    """Newest created_at first, ties by id ascending, like the backend.
    Entries that are not objects or have no readable created_at keep their
    relative order at the end (the sort never fails on odd input)."""
    def id_key(k):
        v = k.get("id") if isinstance(k, dict) else None
        return (0, v) if isinstance(v, str) else (1, "")

    def time_key(k):
        t = parse_time(k.get("created_at")) if isinstance(k, dict) else None
        return float("-inf") if t is None else t

    out = sorted(keys, key=id_key)
    out.sort(key=time_key, reverse=True)  # stable: ids stay ascending
    return out


def format_time(dt):
    """RFC 3339 in UTC with "Z"; microseconds only when non-zero."""
    s = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if dt.microsecond:
        s += ".%06d" % dt.microsecond
    return s + "Z"


NAME_FIRST = ["Analytics", "Zapier", "Home Assistant", "Notion", "Journal",
              "Backup", "CLI", "Raycast", "Obsidian", "Slack", "Webhook",
              "Shortcuts", "Grafana", "Todoist", "Calendar", "Research"]
NAME_SECOND = ["Dashboard", "Sync", "Export", "Bot", "Script", "Integration",
               "Plugin", "Importer", "Reporter", "Agent", "Widget", "Test"]


def generate_keys(n, seed):
    """n deterministic keys (same seed, same list) around a fixed date."""
    rng = random.Random(seed)
    ref = datetime.datetime(2026, 11, 28, 12, 0, 0,
                            tzinfo=datetime.timezone.utc)
    span = int(3 * 365.25 * 86400)
    keys = []
    for i in range(n):
        kid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        created = ref - datetime.timedelta(seconds=rng.randrange(span))
        micro = 0 if rng.random() < 0.2 else rng.randrange(1, 1000000)
        created = created.replace(microsecond=micro)
        roll = rng.random()
        if roll < 0.06:
            name = "Legacy Developer API key"
            prefix = "omi_dev_legacy"
            scopes = None
        else:
            name = "%s %s" % (rng.choice(NAME_FIRST), rng.choice(NAME_SECOND))
            if rng.random() < 0.3:
                name += " %d" % (i + 1)
            secret = "%032x" % rng.getrandbits(128)
            prefix = "omi_dev_%s...%s" % (secret[:4], secret[-4:])
            if roll < 0.12:
                scopes = []
            elif roll < 0.5:
                scopes = [s for s in SCOPES if s.endswith(":read")
                          and rng.random() < 0.6] or ["memories:read"]
            else:
                scopes = [s for s in SCOPES if rng.random() < 0.5] \
                    or list(SCOPES)
        if rng.random() < 0.25:
            last_used = None
        else:
            age = (ref - created).total_seconds()
            used = created + datetime.timedelta(
                seconds=rng.random() * age)
            micro = 0 if rng.random() < 0.2 else rng.randrange(1, 1000000)
            last_used = format_time(used.replace(microsecond=micro))
        keys.append({
            "id": kid,
            "name": name,
            "key_prefix": prefix,
            "created_at": format_time(created),
            "last_used_at": last_used,
            "scopes": scopes,
        })
    return keys


def encode_keys(keys):
    # What FastAPI's JSONResponse produces: compact, UTF-8, not ASCII-escaped.
    return json.dumps(keys, ensure_ascii=False, allow_nan=False,
                      separators=(",", ":")).encode("utf-8")


# ---------------------------------------------------------------------------
# shared state

class State:
    def __init__(self, token, keys, firebase=False, project=DEFAULT_PROJECT):
        self.lock = threading.Lock()
        self.token = token
        self.firebase = firebase
        self.project = project
        self.etag = False
        self.last_modified = False
        self.gzip = True
        self.raw = None
        self.fault = None
        self.fault_left = None
        # DELETE /v1/dev/keys/{id}: 503 while unavailable; while the gate
        # is closed each DELETE waits (revokes_waiting counts them).
        self.revoke_unavailable = False
        self.revoke_gate = threading.Condition(self.lock)
        self.revoke_gate_open = True
        self.revokes_waiting = 0
        self.set_keys(keys)
        self.reset_counters()
        self.reset_auth()

    def set_keys(self, keys, do_sort=True):
        self.keys = sort_keys(keys) if do_sort else list(keys)
        self.body = encode_keys(self.keys)
        self.changed_at = time.time()

    def reset_auth(self):
        """Sign-in settings back to their defaults; codes, auth sessions,
        per-user lists, the gate and the Firebase refusal forgotten."""
        self.uid = DEFAULT_UID
        self.login_outcome = "ok"
        self.code_lifetime = CODE_LIFETIME
        self.id_token_lifetime = None  # only the token's own exp counts
        self.codes = {}
        self.auth_sessions = {}  # session id -> the authorize request
        self.user_keys = {}  # uid -> (keys, body, changed_at)
        self.gate = None  # (status, detail) of an account gate on the list
        self.gate_left = None
        self.firebase_refusal = None  # {"status", "message", "reason", "call"}

    def auth_settings(self):
        return {
            "mode": "firebase" if self.firebase else "token",
            "project": self.project,
            "uid": self.uid,
            "outcome": self.login_outcome,
            "code_lifetime": self.code_lifetime,
            "id_token_lifetime": self.id_token_lifetime,
            "users": sorted(self.user_keys),
            "gate": None if self.gate is None else
            {"status": self.gate[0], "detail": self.gate[1], "count": self.gate_left},
            "firebase_refusal": self.firebase_refusal,
        }

    def take_gate(self):
        """(status, detail) of the account gate for this request, or None."""
        if self.gate is None:
            return None
        gate = self.gate
        if self.gate_left is not None:
            self.gate_left -= 1
            if self.gate_left <= 0:
                self.gate, self.gate_left = None, None
        return gate

    def list_for(self, uid):
        """(body, changed_at) of uid's key list: its own when set through
        user_keys, the `keys` list for the default user, else empty."""
        if uid in self.user_keys:
            _, body, changed_at = self.user_keys[uid]
            return body, changed_at
        if uid == DEFAULT_UID:
            return self.body, self.changed_at
        return b"[]", self.changed_at

    def reset_counters(self):
        self.requests = 0
        self.last_headers = {}
        self.paths = collections.deque(maxlen=HISTORY)
        self.all_headers = collections.deque(maxlen=HISTORY)
        self.path_counts = {}
        self.last_gzip = False
        self.last_status = None
        self.keys_connections = 0
        self.faults_applied = 0
        self.revokes = []  # ids DELETEd with a live ID token, in order
        self.log = collections.deque(maxlen=HISTORY)

    def stats(self):
        return {
            "requests": self.requests,
            "last_headers": self.last_headers,
            "paths": list(self.paths),
            "all_headers": list(self.all_headers),
            "path_counts": dict(self.path_counts),
            "last_gzip": self.last_gzip,
            "last_status": self.last_status,
            "keys_connections": self.keys_connections,
            "faults_applied": self.faults_applied,
            "keys": len(self.keys),
            "fault_active": self.fault is not None,
            "raw_active": self.raw is not None,
            "revokes": list(self.revokes),
            "revokes_waiting": self.revokes_waiting,
        }

    def revoke(self, uid, key_id):
        """Take key_id out of uid's list, if it is there (the real API
        answers 204 either way)."""
        if uid in self.user_keys:
            keys, _, _ = self.user_keys[uid]
            kept = [k for k in keys if not (isinstance(k, dict) and k.get("id") == key_id)]
            if len(kept) != len(keys):
                self.user_keys[uid] = (kept, encode_keys(kept), time.time())
        elif uid == DEFAULT_UID:
            kept = [k for k in self.keys if not (isinstance(k, dict) and k.get("id") == key_id)]
            if len(kept) != len(self.keys):
                self.set_keys(kept, do_sort=False)

    def take_fault(self):
        """The fault for this keys request (counting it down), or None."""
        if self.fault is None:
            return None
        fault = self.fault
        if self.fault_left is not None:
            self.fault_left -= 1
            if self.fault_left <= 0:
                self.fault = None
                self.fault_left = None
        self.faults_applied += 1
        return fault


STATE = None  # set in main()
VERBOSE = False


class ControlError(Exception):
    pass


def want_gzip(accept_encoding):
    for part in (accept_encoding or "").split(","):
        fields = [f.strip() for f in part.split(";")]
        if fields[0].lower() not in ("gzip", "x-gzip", "*"):
            continue
        q = 1.0
        for f in fields[1:]:
            if f.lower().startswith("q="):
                try:
                    q = float(f[2:])
                except ValueError:
                    q = 0.0
        if q > 0:
            return True
    return False


def etag_matches(header, etag):
    if header is None:
        return False
    if header.strip() == "*":
        return True
    for tag in header.split(","):
        tag = tag.strip()
        if tag.startswith("W/"):
            tag = tag[2:]
        if tag == etag:
            return True
    return False


# ---------------------------------------------------------------------------
# the handler

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "uvicorn"
    timeout = 120  # an idle keep-alive connection is dropped after this

    def setup(self):
        # With TLS the handshake happens here, in the connection's own
        # thread, so a slow or failing client never stalls accept().  A
        # failed handshake ends the connection before any request is read
        # (handle_error stays quiet about it).
        if isinstance(self.request, ssl.SSLSocket):
            self.request.settimeout(self.timeout)
            self.request.do_handshake()
        super().setup()
        self.counted_connection = False

    def version_string(self):
        return self.server_version

    # -- logging: never the headers --
    def log_message(self, format, *args):
        pass

    def log_request(self, code="-", size="-"):
        if VERBOSE:
            path = urllib.parse.urlsplit(self.path).path
            sys.stderr.write("fakeapi: %s %s %s\n" % (self.command, path, code))
            sys.stderr.flush()

    # -- dispatch --
    def do_GET(self):
        self.dispatch()

    def do_POST(self):
        self.dispatch()

    def do_PUT(self):
        self.dispatch()

    def do_DELETE(self):
        self.dispatch()

    def do_PATCH(self):
        self.dispatch()

    def do_OPTIONS(self):
        self.dispatch()

    def do_HEAD(self):
        self.dispatch()

    def read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            data = b""
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline(65537)
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        n = int(length)
        if n < 0 or n > 256 * 1024 * 1024:
            raise ValueError("bad Content-Length")
        return self.rfile.read(n)

    def dispatch(self):
        try:
            body = self.read_body()
        except (ValueError, OSError):
            self.close_connection = True
            self.send_json(400, {"detail": "Bad request body"})
            return
        split = urllib.parse.urlsplit(self.path)
        path = split.path
        if path.startswith(CONTROL_PREFIX):
            self.control(path, body)
            return
        self.record(path, split.query, body)
        if path == KEYS_PATH:
            if self.command == "GET":
                self.keys()
            else:
                self.send_json(405, {"detail": "Method Not Allowed"},
                               extra={"Allow": "GET"})
        elif path == AUTHORIZE_PATH:
            if self.command == "GET":
                self.authorize(split.query)
            else:
                self.send_json(405, {"detail": "Method Not Allowed"},
                               extra={"Allow": "GET"})
        elif path.startswith(PROVIDER_CALLBACK_PREFIX):
            if self.command == "GET":
                self.provider_callback(path[len(PROVIDER_CALLBACK_PREFIX):], split.query)
            else:
                self.send_json(405, {"detail": "Method Not Allowed"},
                               extra={"Allow": "GET"})
        elif path in FIREBASE_PATHS:
            self.firebase(FIREBASE_PATHS[path])
        elif path == TOKEN_PATH:
            if self.command == "POST":
                self.token_exchange(body)
            else:
                self.send_json(405, {"detail": "Method Not Allowed"},
                               extra={"Allow": "POST"})
        elif path.startswith(KEYS_PATH + "/") and "/" not in \
                urllib.parse.unquote(path[len(KEYS_PATH) + 1:]) and \
                path != KEYS_PATH + "/":
            # Starlette matches {key_id} on the decoded path.
            key_id = urllib.parse.unquote(path[len(KEYS_PATH) + 1:])
            if self.command == "DELETE":
                self.revoke(key_id)
            else:
                self.send_json(405, {"detail": "Method Not Allowed"},
                               extra={"Allow": "DELETE"})
        elif path == KEYS_PATH + "/":
            # Starlette's redirect_slashes
            scheme = "https" if isinstance(self.connection, ssl.SSLSocket) \
                else "http"
            location = "%s://%s%s" % (scheme, self.headers.get("Host", ""),
                                      KEYS_PATH)
            self.send_json(307, None, extra={"Location": location})
        else:
            self.send_json(404, {"detail": "Not Found"})

    def header_dict(self):
        """The request's headers by lower-case name, repeats joined."""
        headers = {}
        for name, value in self.headers.items():
            name = name.lower()
            headers[name] = (headers[name] + ", " + value
                             if name in headers else value)
        return headers

    def record(self, path, query, body):
        has_auth = self.headers.get("Authorization") is not None
        # The whole request, secrets included: the log is how tests check
        # which secret reached which route.  Only /_control/log shows it.
        self.log_entry = {
            "method": self.command,
            "path": path,
            "query": query,
            "headers": self.header_dict(),
            "body": body.decode("utf-8", errors="replace"),
            "status": None,
        }
        with STATE.lock:
            STATE.log.append(self.log_entry)
            STATE.paths.append(path)
            STATE.all_headers.append({"path": path, "method": self.command,
                                      "authorization": has_auth})
            STATE.path_counts[path] = STATE.path_counts.get(path, 0) + 1
            if path == KEYS_PATH and self.command == "GET":
                STATE.requests += 1
                STATE.last_headers = dict(self.log_entry["headers"])
                if not self.counted_connection:
                    self.counted_connection = True
                    STATE.keys_connections += 1

    # -- responses --
    def send_raw(self, status, body, content_type="application/json",
                 extra=None, declared_length=None):
        """One response.  body None: no body (and no Content-Length for
        1xx/204/304).  A HEAD gets the headers only."""
        self.send_response(status)
        headers = dict(extra or {})
        lower = {k.lower() for k in headers}
        if body is not None and "content-type" not in lower and content_type:
            self.send_header("Content-Type", content_type)
        for name, value in headers.items():
            self.send_header(name, str(value))
        if body is not None or status not in (204, 304):
            if "content-length" not in lower:
                length = declared_length if declared_length is not None \
                    else len(body or b"")
                self.send_header("Content-Length", str(length))
        # Recorded before it is sent: a client that has its answer finds
        # it in the log.
        with STATE.lock:
            if self.path_is_keys():
                STATE.last_status = status
            entry = getattr(self, "log_entry", None)
            if entry is not None:
                entry["status"] = status
                self.log_entry = None
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def path_is_keys(self):
        return urllib.parse.urlsplit(self.path).path == KEYS_PATH

    def send_json(self, status, obj, extra=None):
        body = None if obj is None else json.dumps(
            obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        if status == 401:
            extra = dict(extra or {})
            extra.setdefault("WWW-Authenticate", "Bearer")
        self.send_raw(status, body if body is not None else b"", extra=extra)

    def abort_with_reset(self):
        """Close at once with an RST and no response."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
        except OSError:
            pass
        for f in (self.rfile, self.wfile):
            try:
                f.close()
            except OSError:
                pass
        try:
            self.connection.close()
        except OSError:
            pass
        # What the request loop touches after this must still work.
        self.rfile = io.BytesIO()
        self.wfile = io.BytesIO()
        with STATE.lock:
            STATE.last_status = None

    def keys(self):
        with STATE.lock:
            fault = STATE.take_fault()
            token = STATE.token
            firebase = STATE.firebase
            project = STATE.project
            lifetime = STATE.id_token_lifetime
            raw = STATE.raw
            body = STATE.body
            use_etag = STATE.etag
            use_lm = STATE.last_modified
            changed_at = STATE.changed_at
            allow_gzip = STATE.gzip
        fault = fault or {}

        if fault.get("delay"):
            time.sleep(float(fault["delay"]))
        if fault.get("reset"):
            self.abort_with_reset()
            return
        if fault.get("redirect"):
            self.send_json(302, {"detail": "Found"},
                           extra={"Location": fault["redirect"]})
            return
        truncate = fault.get("truncate")

        if "status" in fault or "body" in fault or "body_b64" in fault:
            status = int(fault.get("status", 200))
            out = fault_body(fault, status)
            ctype = fault.get("content_type", "application/json")
            self.finish_keys(status, out, ctype, dict(fault.get("headers") or {}),
                             truncate, False, False, None, False)
            return

        auth = self.headers.get("Authorization")
        if firebase:
            uid, refusal = check_id_token(auth, project, lifetime)
            if refusal is not None:
                self.send_json(refusal[0], {"detail": refusal[1]})
                return
            with STATE.lock:
                body, changed_at = STATE.list_for(uid)
                gate = STATE.take_gate()
            # The backend's two account gates, after the token check: a
            # deleted account, and an account migration when enforced.
            if gate is not None:
                self.send_json(gate[0], {"detail": gate[1]})
                return
        # FastAPI HTTPBearer: missing header or wrong scheme, then the token.
        elif auth is None:
            self.send_json(401, {"detail": "Not authenticated"})
            return
        else:
            scheme, _, param = auth.partition(" ")
            if scheme.lower() != "bearer" or param != token:
                self.send_json(401, {"detail": "Invalid authentication credentials"})
                return

        extra = dict(fault.get("headers") or {})
        status, ctype = 200, "application/json"
        if raw is not None:
            status = raw["status"]
            body = raw["body"]
            ctype = raw["content_type"]
            extra = {**raw["headers"], **extra}
        self.finish_keys(status, body, ctype, extra, truncate, use_etag,
                         use_lm, changed_at, allow_gzip)

    def revoke(self, key_id):
        """DELETE /v1/dev/keys/{key_id} as the backend answers it: the
        signed-in session only (a developer key or any other bearer gets
        the list's 401), then 503 while revocation is unavailable, else
        204 for any id, known or not, the user's or not."""
        with STATE.lock:
            project = STATE.project
            lifetime = STATE.id_token_lifetime
        uid, refusal = check_id_token(self.headers.get("Authorization"), project, lifetime)
        if refusal is not None:
            self.send_json(refusal[0], {"detail": refusal[1]})
            return
        with STATE.lock:
            STATE.revokes_waiting += 1
            STATE.revoke_gate.wait_for(lambda: STATE.revoke_gate_open, timeout=120)
            STATE.revokes_waiting -= 1
            unavailable = STATE.revoke_unavailable
            if not unavailable:
                STATE.revokes.append(key_id)
                STATE.revoke(uid, key_id)
        if unavailable:
            self.send_json(503, {"detail": "API key revocation temporarily unavailable"})
            return
        self.send_raw(204, None)

    def finish_keys(self, status, body, ctype, extra, truncate, use_etag,
                    use_lm, changed_at, allow_gzip):
        lower = {k.lower() for k in extra}
        if status == 200 and use_etag:
            etag = '"%s"' % hashlib.sha256(body).hexdigest()[:32]
            extra.setdefault("ETag", etag)
            last_mod = None
            if use_lm:
                last_mod = formatdate(int(changed_at), usegmt=True)
                extra.setdefault("Last-Modified", last_mod)
            inm = self.headers.get("If-None-Match")
            ims = self.headers.get("If-Modified-Since")
            not_modified = False
            if inm is not None:
                not_modified = etag_matches(inm, etag)
            elif ims is not None and last_mod is not None:
                try:
                    not_modified = (parsedate_to_datetime(ims).timestamp()
                                    >= int(changed_at))
                except (TypeError, ValueError):
                    not_modified = False
            if not_modified:
                with STATE.lock:
                    STATE.last_gzip = False
                self.send_raw(304, None, None, extra=extra)
                return
        gzipped = False
        if (status == 200 and allow_gzip and "content-encoding" not in lower
                and want_gzip(self.headers.get("Accept-Encoding"))):
            body = gzip.compress(body, mtime=0)
            extra["Content-Encoding"] = "gzip"
            extra["Vary"] = "Accept-Encoding"
            gzipped = True
        with STATE.lock:
            STATE.last_gzip = gzipped
        if truncate is not None:
            n = max(0, int(truncate))
            sent = body[:n]
            declared = len(body) if n < len(body) else n + 100
            self.close_connection = True
            extra["Connection"] = "close"
            self.send_raw(status, sent, ctype, extra=extra,
                          declared_length=declared)
            return
        self.send_raw(status, body, ctype, extra=extra)

    # -- sign-in: the backend's half of the loopback + PKCE flow --
    def authorize(self, query):
        """Check the request as the backend does, keep an auth session (5
        minutes) and send the browser to the provider, which this fake
        plays as consenting at once: its redirect goes straight to the
        backend's provider callback."""
        params = single_params(query)
        if params is None:
            self.send_json(400, {"detail": "Repeated query parameter"})
            return
        missing = [n for n in ("provider", "redirect_uri") if n not in params]
        if missing:
            self.send_json(422, validation_error("query", missing))
            return
        problem = None
        if params["provider"] not in PROVIDERS:
            problem = "Unsupported provider"
        else:
            problem = (redirect_problem(params["redirect_uri"])
                       or challenge_problem(params.get("code_challenge"),
                                            params.get("code_challenge_method")))
        if problem:
            self.send_json(400, {"detail": problem})
            return
        session_id = str(uuid.uuid4())
        with STATE.lock:
            outcome = STATE.login_outcome
            STATE.auth_sessions[session_id] = {
                "provider": params["provider"],
                "redirect_uri": params["redirect_uri"],
                "state": params.get("state"),
                "challenge": params["code_challenge"],
                "uid": STATE.uid,
                "expires": time.monotonic() + (
                    0 if outcome == "session_expired" else AUTH_SESSION_LIFETIME),
            }
        answer = {"code": "fake-provider-code", "state": session_id}
        if outcome == "provider_error":
            answer = {"error": "access_denied", "state": session_id}
        location = "%s://%s%s%s?%s" % (
            "https" if isinstance(self.connection, ssl.SSLSocket) else "http",
            self.headers.get("Host", ""), PROVIDER_CALLBACK_PREFIX, params["provider"],
            urllib.parse.urlencode(answer))
        self.send_raw(307, b"", None, extra={"Location": location})

    def provider_callback(self, provider, query):
        """The provider sends the browser back here: errors are 400s shown
        in the browser; success is a 200 page whose script moves the
        browser on to redirect_uri?code=...&state=... (never a redirect)."""
        params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        if provider not in PROVIDERS:
            self.send_json(404, {"detail": "Not Found"})
            return
        if params.get("error"):
            self.send_json(400, {"detail": "Auth error: %s" % params["error"]})
            return
        with STATE.lock:
            session = STATE.auth_sessions.get(params.get("state") or "")
            if session is not None and time.monotonic() >= session["expires"]:
                session = None
            if session is None:
                code = None
            else:
                code = str(uuid.uuid4())
                STATE.codes[code] = dict(session, expires=time.monotonic() + STATE.code_lifetime)
        if code is None:
            self.send_json(400, {"detail": "Invalid auth session"})
            return
        page = callback_page(code, session["state"] or "", session["redirect_uri"])
        self.send_raw(200, page, "text/html; charset=utf-8")

    def token_exchange(self, body):
        """The backend's checks, in its order: a code is used up by any
        attempt that gets as far as finding it."""
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip()
        if ctype.lower() != "application/x-www-form-urlencoded":
            self.send_json(422, validation_error(
                "body", ["grant_type", "code", "redirect_uri"]))
            return
        params = single_params(body.decode("utf-8", errors="replace"))
        if params is None:
            self.send_json(400, {"detail": "Repeated form field"})
            return
        missing = [n for n in ("grant_type", "code", "redirect_uri") if n not in params]
        if missing:
            self.send_json(422, validation_error("body", missing))
            return
        if params["grant_type"] != "authorization_code":
            self.send_json(400, {"detail": "Unsupported grant type"})
            return
        with STATE.lock:
            grant = STATE.codes.pop(params["code"], None)
            project = STATE.project
            mint_fails = STATE.login_outcome == "mint_fails"
        if grant is None or time.monotonic() >= grant["expires"]:
            self.send_json(400, {"detail": "Invalid or expired code"})
            return
        if params["redirect_uri"] != grant["redirect_uri"]:
            self.send_json(400, {"detail": "redirect_uri mismatch"})
            return
        verifier = params.get("code_verifier")
        if not verifier:
            self.send_json(400, {"detail": "code_verifier is required"})
            return
        if not valid_verifier(verifier):
            self.send_json(400, {"detail": "code_verifier is malformed"})
            return
        if s256(verifier) != grant["challenge"]:
            self.send_json(400, {"detail": "invalid code_verifier"})
            return
        now = int(time.time())
        provider = grant["provider"]
        # The provider's own tokens, shaped like them but worthless: a
        # client that sends these to the key list gets refused.
        provider_id_token = unsigned_jwt({
            "iss": "https://accounts.%s" % PROVIDERS[provider],
            "aud": "omikeyfs-fake-client", "sub": grant["uid"],
            "iat": now, "exp": now + 3600,
        })
        out = {
            "provider": provider,
            "id_token": provider_id_token,
            "access_token": "fake-%s-access-%s" % (provider, secrets.token_urlsafe(24)),
            "provider_id": PROVIDERS[provider],
            "token_type": "Bearer",
            "expires_in": 3600,
        }
        if params.get("use_custom_token", "").lower() in ("true", "1", "yes", "on"):
            if mint_fails:
                self.send_json(502, {"detail": "Failed to generate authentication token"})
                return
            account = SERVICE_ACCOUNT % project
            out["custom_token"] = unsigned_jwt({
                "iss": account, "sub": account, "aud": CUSTOM_TOKEN_AUD,
                "iat": now, "exp": now + 3600, "uid": grant["uid"],
            })
        self.send_json(200, out)

    def firebase(self, call):
        """Firebase's refusal set by /_control/firebase_refusal, in
        Google's error shape; anything else is a 404 (this is no
        Firebase: the Auth Emulator is)."""
        with STATE.lock:
            refusal = STATE.firebase_refusal
        if self.command != "POST" or refusal is None or refusal.get("call") not in (None, call):
            self.send_json(404, {"error": {"code": 404, "message": "Not Found", "status": "NOT_FOUND"}})
            return
        error = {"code": refusal["status"], "message": refusal["message"],
                 "status": refusal.get("grpc_status", "INVALID_ARGUMENT")}
        if refusal.get("reason"):
            error["details"] = [{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": refusal["reason"], "domain": "googleapis.com"}]
        self.send_json(refusal["status"], {"error": error})

    # -- control API --
    def control(self, path, body):
        name = path[len(CONTROL_PREFIX):]
        try:
            if name in ("stats", "log", "auth"):
                if name == "auth" and self.command == "POST":
                    pass  # changes the settings, below
                elif self.command != "GET":
                    raise ControlError(405)
                else:
                    with STATE.lock:
                        if name == "stats":
                            out = STATE.stats()
                        elif name == "log":
                            out = {"requests": [dict(e) for e in STATE.log]}
                        else:
                            out = STATE.auth_settings()
                    self.send_json(200, out)
                    return
            if self.command != "POST":
                raise ControlError(405)
            arg = json.loads(body.decode("utf-8")) if body.strip() else None
            handler = CONTROL.get(name)
            if handler is None:
                raise ControlError(404)
            result = handler(arg)
            self.send_json(200, result if result is not None else {"ok": True})
        except ControlError as e:
            code = e.args[0] if e.args and isinstance(e.args[0], int) else 400
            detail = {404: "Not Found", 405: "Method Not Allowed"}.get(
                code, e.args[0] if e.args else "bad request")
            self.send_json(code, {"detail": detail})
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            self.send_json(400, {"detail": "bad control request: %s" % e})


# ---------------------------------------------------------------------------
# sign-in helpers

def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def unsigned_jwt(claims):
    header = {"alg": "none", "typ": "JWT"}
    parts = [b64url(json.dumps(p, separators=(",", ":")).encode())
             for p in (header, claims)]
    return ".".join(parts) + "."


def s256(verifier):
    return b64url(hashlib.sha256(verifier.encode("ascii", "replace")).digest())


UNRESERVED = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                 "0123456789-._~")


def valid_verifier(verifier):
    """RFC 7636: 43 to 128 unreserved characters."""
    return 43 <= len(verifier) <= 128 and set(verifier) <= UNRESERVED


FORBIDDEN_SCHEMES = {"https", "javascript", "data", "vbscript", "file", "blob",
                     "filesystem", "about"}


def redirect_problem(uri):
    """The backend's rule for redirect_uri: plain http to a loopback host
    (any port, any path), or a custom app scheme; None when it is fine."""
    if not uri:
        return "redirect_uri is required"
    try:
        u = urllib.parse.urlsplit(uri)
        host = (u.hostname or "").lower()
    except ValueError:
        return "redirect_uri must include a scheme"
    scheme = u.scheme.lower()
    if not scheme:
        return "redirect_uri must include a scheme"
    if scheme == "http":
        if host not in ("localhost", "127.0.0.1", "::1"):
            return "HTTP redirect_uri must point at loopback (localhost, 127.0.0.1, or ::1)"
        return None
    if scheme in FORBIDDEN_SCHEMES:
        return "redirect_uri scheme '%s' is not permitted" % scheme
    return None


def challenge_problem(challenge, method):
    if not challenge:
        return "code_challenge is required"
    if not valid_verifier(challenge):
        return "code_challenge is malformed"
    if (method or "").strip().upper() != "S256":
        return "code_challenge_method must be S256"
    return None


def js_html_escape(text):
    """What the backend's template engine does to a value (HTML escaping),
    though the value lands in a script, where entities are not decoded."""
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&#34;").replace("'", "&#39;"))


def callback_page(code, state, redirect_uri):
    """The shape of the backend's templates/auth_callback.html: the code,
    state and redirect_uri as string constants of a script that sends the
    browser on to redirect_uri?code=...&state=... (state left out when
    empty), with a manual link as the fallback."""
    return ("""<!DOCTYPE html>
<html lang="en">
<head><meta charset="UTF-8"><title>Authentication Successful - Omi</title></head>
<body>
<h1>Authentication Successful</h1>
<p id="message">Redirecting you back to the app...</p>
<a href="#" id="manualLink" style="display:none">Open App Manually</a>
<script>
  const code = "%s";
  const state = "%s";
  const redirectUri = "%s";
  if (code) {
    let target = redirectUri + '?code=' + encodeURIComponent(code);
    if (state) {
      target += '&state=' + encodeURIComponent(state);
    }
    document.getElementById('manualLink').href = target;
    window.location.href = target;
  }
</script>
</body>
</html>
""" % (js_html_escape(code), js_html_escape(state), js_html_escape(redirect_uri))).encode()


def single_params(text):
    """Query or form fields as a dict, None when a name repeats."""
    pairs = urllib.parse.parse_qsl(text, keep_blank_values=True)
    out = dict(pairs)
    return out if len(out) == len(pairs) else None


def validation_error(where, names):
    """FastAPI's 422 for missing fields."""
    return {"detail": [{"type": "missing", "loc": [where, n],
                        "msg": "Field required", "input": None}
                       for n in names]}


def check_id_token(header, project, lifetime):
    """(uid, None) when the Authorization header holds a live Firebase ID
    token of project (as the emulator issues them: unsigned), else
    (None, (status, detail)) with the real API's answer.  lifetime: when
    set, a token older than that many seconds (by iat) counts as expired."""
    # FastAPI's HTTPBearer first, then the backend's check of the token.
    scheme, _, cred = (header or "").partition(" ")
    if not (header and scheme and cred):
        return None, (403, "Not authenticated")
    if scheme.lower() != "bearer":
        return None, (403, "Invalid authentication credentials")
    refused = (None, (401, "Invalid authentication credentials"))
    parts = cred.split(".")
    if len(parts) != 3:
        return refused
    try:
        head = json.loads(b64url_decode(parts[0]))
        claims = json.loads(b64url_decode(parts[1]))
    except (ValueError, UnicodeDecodeError):
        return refused
    if not isinstance(head, dict) or not isinstance(claims, dict):
        return refused
    now = time.time()
    iat, exp, sub = claims.get("iat"), claims.get("exp"), claims.get("sub")
    if (head.get("alg") != "none"
            or claims.get("iss") != "https://securetoken.google.com/" + project
            or claims.get("aud") != project
            or not isinstance(sub, str) or not sub or len(sub) > 128
            or not isinstance(iat, (int, float)) or isinstance(iat, bool)
            or not isinstance(exp, (int, float)) or isinstance(exp, bool)
            or exp <= now or iat > now + 300):
        return refused
    if lifetime is not None and now - iat >= lifetime:
        return refused
    return sub, None


def fault_body(fault, status):
    if "body_b64" in fault:
        return base64.b64decode(fault["body_b64"])
    if "body" in fault:
        b = fault["body"]
        if isinstance(b, str):
            return b.encode("utf-8")
        return json.dumps(b, separators=(",", ":")).encode("utf-8")
    phrase = BaseHTTPRequestHandler.responses.get(status, ("Error",))[0]
    return json.dumps({"detail": phrase}, separators=(",", ":")).encode("utf-8")


def need(cond, why):
    if not cond:
        raise ControlError(why)


def ctl_reset(arg):
    with STATE.lock:
        STATE.reset_counters()


def ctl_keys(arg):
    do_sort = True
    if isinstance(arg, dict):
        do_sort = bool(arg.get("sort", True))
        arg = arg.get("keys")
    need(isinstance(arg, list), "expected a JSON array of keys")
    with STATE.lock:
        STATE.set_keys(arg, do_sort)
        return {"ok": True, "keys": len(STATE.keys)}


def ctl_raw(arg):
    need(isinstance(arg, dict), "expected a JSON object")
    if "body_b64" in arg:
        body = base64.b64decode(arg["body_b64"])
    else:
        need(isinstance(arg.get("body"), str), "expected body (a string)")
        body = arg["body"].encode("utf-8")
    headers = arg.get("headers") or {}
    need(isinstance(headers, dict), "headers must be an object")
    raw = {
        "body": body,
        "status": int(arg.get("status", 200)),
        "headers": {str(k): str(v) for k, v in headers.items()},
        "content_type": arg.get("content_type", "application/json"),
    }
    with STATE.lock:
        STATE.raw = raw


FAULT_FIELDS = {"status", "body", "body_b64", "content_type", "headers",
                "delay", "reset", "truncate", "count", "redirect"}


def ctl_fault(arg):
    need(isinstance(arg, dict), "expected a JSON object")
    unknown = set(arg) - FAULT_FIELDS
    need(not unknown, "unknown fault fields: %s" % ", ".join(sorted(unknown)))
    count = arg.get("count")
    need(count is None or (isinstance(count, int) and count > 0),
         "count must be a positive integer or null")
    if "headers" in arg:
        need(isinstance(arg["headers"], dict), "headers must be an object")
    fault = {k: v for k, v in arg.items() if k != "count"}
    with STATE.lock:
        STATE.fault = fault
        STATE.fault_left = count


def ctl_clear(arg):
    with STATE.lock:
        STATE.fault = None
        STATE.fault_left = None
        STATE.raw = None
        STATE.revoke_unavailable = False
        STATE.revoke_gate_open = True
        STATE.revoke_gate.notify_all()


def ctl_token(arg):
    need(isinstance(arg, dict) and isinstance(arg.get("token"), str),
         "expected {\"token\": \"...\"}")
    with STATE.lock:
        STATE.token = arg["token"]


def ctl_etag(arg):
    need(isinstance(arg, dict), "expected a JSON object")
    with STATE.lock:
        STATE.etag = bool(arg.get("enabled", True))
        STATE.last_modified = bool(arg.get("last_modified", False))


def ctl_gzip(arg):
    need(isinstance(arg, dict), "expected a JSON object")
    with STATE.lock:
        STATE.gzip = bool(arg.get("enabled", True))


def ctl_auth(arg):
    """Sign-in settings: any of uid, outcome, code_lifetime,
    id_token_lifetime (null: none), reset (true: defaults first)."""
    need(isinstance(arg, dict), "expected a JSON object")
    unknown = set(arg) - {"uid", "outcome", "code_lifetime",
                          "id_token_lifetime", "reset"}
    need(not unknown, "unknown auth fields: %s" % ", ".join(sorted(unknown)))
    if "uid" in arg:
        need(isinstance(arg["uid"], str) and 0 < len(arg["uid"]) <= 128,
             "uid must be a string of 1 to 128 characters")
    if "outcome" in arg:
        need(arg["outcome"] in LOGIN_OUTCOMES,
             "outcome must be one of %s" % ", ".join(LOGIN_OUTCOMES))
    for name in ("code_lifetime", "id_token_lifetime"):
        if arg.get(name) is not None:
            need(isinstance(arg[name], (int, float)) and arg[name] >= 0,
                 "%s must be a number of seconds" % name)
    need("code_lifetime" not in arg or arg["code_lifetime"] is not None,
         "code_lifetime must be a number of seconds")
    with STATE.lock:
        if arg.get("reset"):
            STATE.reset_auth()
        if "uid" in arg:
            STATE.uid = arg["uid"]
        if "outcome" in arg:
            STATE.login_outcome = arg["outcome"]
        if "code_lifetime" in arg:
            STATE.code_lifetime = arg["code_lifetime"]
        if "id_token_lifetime" in arg:
            STATE.id_token_lifetime = arg["id_token_lifetime"]
        return STATE.auth_settings()


def ctl_gate(arg):
    """{"status": 403|426|503, "detail": "..." or {"code", "message",
    "retryable"}, "count": N or null}: the account gate the key list
    answers with after the token check (null or {}: none)."""
    with STATE.lock:
        if not arg:
            STATE.gate, STATE.gate_left = None, None
            return {"ok": True}
    need(isinstance(arg, dict) and arg.get("status") in GATE_STATUSES,
         "status must be one of %s" % ", ".join(map(str, GATE_STATUSES)))
    need(isinstance(arg.get("detail"), (str, dict)), "detail must be a string or an object")
    count = arg.get("count")
    need(count is None or (isinstance(count, int) and count > 0),
         "count must be a positive integer or null")
    with STATE.lock:
        STATE.gate, STATE.gate_left = (arg["status"], arg["detail"]), count
        return {"ok": True}


def ctl_firebase_refusal(arg):
    """{"status": N, "message": "...", "reason": "..." or absent,
    "call": "sign_in"|"renew"|null}: what this fake's Firebase paths
    answer (null: nothing, 404)."""
    if not arg:
        with STATE.lock:
            STATE.firebase_refusal = None
        return {"ok": True}
    need(isinstance(arg, dict) and isinstance(arg.get("status"), int)
         and isinstance(arg.get("message"), str), "expected status and message")
    need(arg.get("call") in (None, "sign_in", "renew"), "call must be sign_in or renew")
    with STATE.lock:
        STATE.firebase_refusal = dict(arg)
    return {"ok": True}


def ctl_user_keys(arg):
    """{"uid": U, "keys": [...], "sort": true}: U's own key list."""
    need(isinstance(arg, dict) and isinstance(arg.get("uid"), str),
         "expected {\"uid\": ..., \"keys\": [...]}")
    keys = arg.get("keys")
    need(isinstance(keys, list), "keys must be a JSON array")
    keys = sort_keys(keys) if arg.get("sort", True) else list(keys)
    with STATE.lock:
        STATE.user_keys[arg["uid"]] = (keys, encode_keys(keys), time.time())
        return {"ok": True, "keys": len(keys)}


def ctl_revoke(arg):
    """{"unavailable": bool, "gate": "closed" | "open"}: DELETEs answer
    503 while unavailable; while the gate is closed they wait for it."""
    need(isinstance(arg, dict), "expected a JSON object")
    unknown = set(arg) - {"unavailable", "gate"}
    need(not unknown, "unknown revoke fields: %s" % ", ".join(sorted(unknown)))
    need(arg.get("gate") in (None, "open", "closed"), "gate must be open or closed")
    with STATE.lock:
        if "unavailable" in arg:
            STATE.revoke_unavailable = bool(arg["unavailable"])
        if "gate" in arg:
            STATE.revoke_gate_open = arg["gate"] == "open"
            STATE.revoke_gate.notify_all()
        return {"unavailable": STATE.revoke_unavailable,
                "gate": "open" if STATE.revoke_gate_open else "closed",
                "waiting": STATE.revokes_waiting}


CONTROL = {
    "revoke": ctl_revoke,
    "auth": ctl_auth,
    "gate": ctl_gate,
    "firebase_refusal": ctl_firebase_refusal,
    "user_keys": ctl_user_keys,
    "reset": ctl_reset,
    "keys": ctl_keys,
    "raw": ctl_raw,
    "fault": ctl_fault,
    "clear": ctl_clear,
    "token": ctl_token,
    "etag": ctl_etag,
    "gzip": ctl_gzip,
}


# ---------------------------------------------------------------------------
# server

class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def server_bind(self):
        # HTTPServer.server_bind would look the address up in DNS
        # (getfqdn), which can stall where there is no resolver.
        socketserver.TCPServer.server_bind(self)
        self.server_name = self.server_address[0]
        self.server_port = self.server_address[1]

    def handle_error(self, request, client_address):
        # A client that hangs up mid-response is normal in these tests;
        # never print tracebacks (or anything from a request).
        if VERBOSE:
            exc = sys.exc_info()[1]
            sys.stderr.write("fakeapi: connection error: %s\n"
                             % type(exc).__name__)


class Server6(Server):
    address_family = socket.AF_INET6


def write_port_file(path, port):
    directory = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(directory, ".%s.%d.tmp" % (os.path.basename(path),
                                                  os.getpid()))
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_keys(path):
    with open(path, "rb") as f:
        data = json.loads(f.read().decode("utf-8"))
    if not isinstance(data, list):
        raise ValueError("%s: expected a JSON array" % path)
    return data


def main(argv=None):
    global STATE, VERBOSE
    p = argparse.ArgumentParser(description="Fake Omi developer API.")
    p.add_argument("--port", type=int, default=0,
                   help="TCP port (0: any free port)")
    p.add_argument("--host", default="127.0.0.1",
                   help="loopback address to bind (127.0.0.1 or ::1)")
    p.add_argument("--token",
                   help="accept this one fixed bearer token instead of "
                   "Firebase ID tokens")
    p.add_argument("--firebase-auth", action="store_true",
                   help="accept only Firebase ID tokens, like the real API: "
                   "the default without --token; wins over --token")
    p.add_argument("--firebase-project", default=DEFAULT_PROJECT,
                   help="Firebase project whose ID tokens count "
                   "(default %(default)s)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--keys", metavar="FILE",
                     help="JSON array of keys (default tests/data/demo-keys.json)")
    src.add_argument("--generate", type=int, metavar="N",
                     help="serve N generated keys instead")
    p.add_argument("--seed", default="omikeyfs",
                   help="seed for --generate (default %(default)s)")
    p.add_argument("--port-file", metavar="PATH",
                   help="write the chosen port here (atomically)")
    p.add_argument("--verbose", action="store_true",
                   help="log method, path and status of each request to stderr")
    p.add_argument("--tls-cert", metavar="PATH",
                   help="serve https (TLS 1.2+) with this PEM certificate chain")
    p.add_argument("--tls-key", metavar="PATH",
                   help="the PEM private key for --tls-cert")
    args = p.parse_args(argv)
    VERBOSE = args.verbose

    if bool(args.tls_cert) != bool(args.tls_key):
        p.error("--tls-cert and --tls-key go together")
    tls = None
    if args.tls_cert:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            tls.load_cert_chain(args.tls_cert, args.tls_key)
        except (OSError, ssl.SSLError) as e:
            sys.stderr.write("fakeapi: cannot load TLS certificate: %s\n" % e)
            return 2

    if args.host not in ("127.0.0.1", "::1", "localhost") and \
            not args.host.startswith("127."):
        p.error("--host must be a loopback address")
    if args.generate is not None:
        if args.generate < 0:
            p.error("--generate needs N >= 0")
        keys = generate_keys(args.generate, args.seed)
    else:
        try:
            keys = load_keys(args.keys or DEFAULT_KEYS)
        except (OSError, ValueError) as e:
            sys.stderr.write("fakeapi: %s\n" % e)
            return 2
    firebase = args.firebase_auth or args.token is None
    STATE = State(args.token or DEFAULT_TOKEN, keys,
                  firebase=firebase, project=args.firebase_project)

    cls = Server6 if ":" in args.host else Server
    try:
        server = cls((args.host, args.port), Handler)
    except OSError as e:
        sys.stderr.write("fakeapi: cannot listen on %s port %d: %s\n"
                         % (args.host, args.port, e.strerror or e))
        return 1
    port = server.server_address[1]
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True,
                                        do_handshake_on_connect=False)

    def stop(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)

    if args.port_file:
        write_port_file(args.port_file, port)
    host = "[%s]" % args.host if ":" in args.host else args.host
    sys.stdout.write("listening on %s://%s:%d\n"
                     % ("https" if tls else "http", host, port))
    sys.stdout.flush()
    try:
        server.serve_forever(poll_interval=0.2)
    except SystemExit:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
