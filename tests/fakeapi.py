#!/usr/bin/env python3
"""A fake Omi developer API for omikeyfs's tests and demo.

Serves GET /v1/dev/keys the way the real backend does (see
shared/omi-api/NOTES.md): a JSON array of keys, newest created_at first,
ties by id ascending, FastAPI-style {"detail": ...} errors.  A control API
under /_control/ lets tests change the keys, the token, inject faults and
read what was received.  Standard library only (Python 3.11).

    python3 tests/fakeapi.py [--port 0] [--host 127.0.0.1] [--token TOKEN]
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
CONTROL_PREFIX = "/_control/"
DEFAULT_TOKEN = "omi_dev_demo_token"
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
    def __init__(self, token, keys):
        self.lock = threading.Lock()
        self.token = token
        self.etag = False
        self.last_modified = False
        self.gzip = True
        self.raw = None
        self.fault = None
        self.fault_left = None
        self.set_keys(keys)
        self.reset_counters()

    def set_keys(self, keys, do_sort=True):
        self.keys = sort_keys(keys) if do_sort else list(keys)
        self.body = encode_keys(self.keys)
        self.changed_at = time.time()

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
        }

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
        path = urllib.parse.urlsplit(self.path).path
        if path.startswith(CONTROL_PREFIX):
            self.control(path, body)
            return
        self.record(path)
        if path == KEYS_PATH:
            if self.command == "GET":
                self.keys()
            else:
                self.send_json(405, {"detail": "Method Not Allowed"},
                               extra={"Allow": "GET"})
        elif path == KEYS_PATH + "/":
            # Starlette's redirect_slashes
            scheme = "https" if isinstance(self.connection, ssl.SSLSocket) \
                else "http"
            location = "%s://%s%s" % (scheme, self.headers.get("Host", ""),
                                      KEYS_PATH)
            self.send_json(307, None, extra={"Location": location})
        else:
            self.send_json(404, {"detail": "Not Found"})

    def record(self, path):
        has_auth = self.headers.get("Authorization") is not None
        with STATE.lock:
            STATE.paths.append(path)
            STATE.all_headers.append({"path": path, "method": self.command,
                                      "authorization": has_auth})
            STATE.path_counts[path] = STATE.path_counts.get(path, 0) + 1
            if path == KEYS_PATH and self.command == "GET":
                STATE.requests += 1
                headers = {}
                for name, value in self.headers.items():
                    name = name.lower()
                    headers[name] = (headers[name] + ", " + value
                                     if name in headers else value)
                STATE.last_headers = headers
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
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)
        with STATE.lock:
            if self.path_is_keys():
                STATE.last_status = status

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

        # FastAPI HTTPBearer: missing header or wrong scheme, then the token.
        auth = self.headers.get("Authorization")
        if auth is None:
            self.send_json(401, {"detail": "Not authenticated"})
            return
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

    # -- control API --
    def control(self, path, body):
        name = path[len(CONTROL_PREFIX):]
        try:
            if name == "stats":
                if self.command != "GET":
                    raise ControlError(405)
                with STATE.lock:
                    out = STATE.stats()
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


CONTROL = {
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
    p.add_argument("--token", default=DEFAULT_TOKEN,
                   help="bearer token to accept (default %(default)s)")
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
    STATE = State(args.token, keys)

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
