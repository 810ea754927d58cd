"""Hostile values and hostile servers: credentials never shown (hostile passwords, a 3-byte
secret, a server echoing the Authorization header), control characters out of messages,
and JSON that is too deep, too big or not UTF-8 giving the documented errors."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any, Dict, Iterator

import pytest

import fleets
from fleets._redact import printable, redact_url
from hostile_server import HAVE_OPENSSL, HostileServer

R = fleets.ResultCode
THING = "thermostat-001"

pytestmark = pytest.mark.skipif(not HAVE_OPENSSL, reason="the openssl command is needed for the test server's certificate")

#: Characters that break naive URL redaction, and control characters.
HOSTILE = ["/", "@", ":", "%", "%41", "%zz", "#", "?", "/@:%#?", "\r", "\n", "\x1b", "\x00", "\x01", "\t", "\x7f", "\x9b"]
#: Every control character: C0, DEL and C1.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostileServer]:
    s = HostileServer(tmp_path_factory.mktemp("hostile-server"))
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def hostile(server: HostileServer) -> HostileServer:
    server.respond(200, b"{}")
    server.requests.clear()
    return server


def client_for(server: HostileServer, key: str = "ak_test", secret: str = "sk-test-secret", **kw: Any) -> fleets.Client:
    kw.setdefault("max_attempts", 1)
    kw.setdefault("timeout", 10)
    return fleets.Client(server.endpoint, key, secret, ca_file=server.ca_file, **kw)


def shown(obj: Any) -> str:
    """What the binding shows of an object: its repr and str (an error's message too)."""
    if isinstance(obj, BaseException):
        return f"{obj}|{obj!r}|{getattr(obj, 'message', '')}"
    return f"{obj!r}|{obj}"


def construct(*args: Any, **kw: Any) -> str:
    """What is shown of a client built with these arguments, or of the error it raised."""
    try:
        with fleets.Client(*args, **kw) as c:
            return shown(c)
    except fleets.FleetsError as e:
        return shown(e)


# ------------------------------------------------------------------ URLs shown without passwords


@pytest.mark.parametrize("ch", HOSTILE, ids=[repr(c) for c in HOSTILE])
def test_proxy_password_never_shown(hostile: HostileServer, ch: str) -> None:
    password = f"Pw1{ch}Pw2"
    text = construct(hostile.endpoint, "ak", "sk-secret", ca_file=hostile.ca_file, proxy=f"http://dev:{password}@127.0.0.1:3128")
    assert "Pw1" not in text and "Pw2" not in text, text
    assert not CONTROL.search(text)


@pytest.mark.parametrize("ch", HOSTILE, ids=[repr(c) for c in HOSTILE])
def test_endpoint_password_never_shown(hostile: HostileServer, ch: str) -> None:
    password = f"Pw1{ch}Pw2"
    text = construct(f"https://ak:{password}@127.0.0.1:{hostile.port}", "ak", "sk-secret", ca_file=hostile.ca_file)
    assert "Pw1" not in text and "Pw2" not in text, text
    assert not CONTROL.search(text)


@pytest.mark.parametrize(
    "url, want",
    [
        ("http://proxy.local:3128", "http://proxy.local:3128"),
        ("http://user@proxy.local:3128", "http://user@proxy.local:3128"),
        ("http://user:pw@proxy.local:3128", "http://user:***@proxy.local:3128"),
        ("http://user:@proxy.local:3128", "http://user:***@proxy.local:3128"),
        ("http://user:p/w@proxy.local:3128", "http://user:***@proxy.local:3128"),
        ("http://user:p@w@proxy.local:3128", "http://user:***@proxy.local:3128"),
        ("http://user:p#w?x@proxy.local:3128/", "http://user:***@proxy.local:3128/"),
        ("http://us/er@proxy.local", "http://***@proxy.local"),
        ("https://fleets.example.com/base", "https://fleets.example.com/base"),
        ("user:pw@proxy.local:3128", "***"),
        ("proxy.local:3128", "proxy.local:3128"),
        ("", ""),
    ],
)
def test_redact_url(url: str, want: str) -> None:
    assert redact_url(url) == want


def test_printable() -> None:
    assert printable("a\x00b\rc\nd\x1be\x7ff\x9bg\th") == "a\\x00b\\x0dc\\x0ad\\x1be\\x7ff\\x9bg\\x09h"
    assert printable("plain – text ✓") == "plain – text ✓"


# ------------------------------------------------------------------ the API secret


@pytest.mark.parametrize("secret", ["q7Z", "s3cr3t/with@every:%#?char", "long-" + "x" * 200])
def test_secret_echoed_by_the_server_is_not_shown(hostile: HostileServer, secret: str) -> None:
    key = "ak_echo"
    basic = base64.b64encode(f"{key}:{secret}".encode()).decode()
    hostile.respond(401, json.dumps({"code": "Unauthorized", "message": f"bad secret {secret}; got Basic {basic}"}).encode())
    with client_for(hostile, key, secret) as c:
        assert secret not in shown(c) + repr(vars(c))
        with pytest.raises(fleets.AuthError) as ei:
            c.shadow_get(THING)
    assert hostile.requests[-1][1]["authorization"] == f"Basic {basic}"
    text = shown(ei.value)
    assert secret not in text and basic not in text and basic.rstrip("=") not in text, text
    # libfleets redacts the secret and base64(key:secret) wherever they appear, whatever their
    # length, in the message and in the error body alike
    assert ei.value.message == "HTTP 401 from server: Unauthorized: bad secret <redacted>; got Basic <redacted>"
    body = ei.value.body or ""
    assert secret not in body and basic not in body
    assert ei.value.body_json == {"code": "Unauthorized", "message": "bad secret <redacted>; got Basic <redacted>"}


def test_short_secret_is_redacted_even_inside_a_word(hostile: HostileServer) -> None:
    # libfleets' rule: every occurrence, whatever its length; hiding a few letters of
    # "Unauthorized" is the price of never showing the secret.
    hostile.respond(401, b'{"code":"Unauthorized","message":"Unauthorized (aut)"}')
    with client_for(hostile, "ak", "aut") as c:
        with pytest.raises(fleets.AuthError) as ei:
            c.shadow_get(THING)
    assert ei.value.message == "HTTP 401 from server: Un<redacted>horized: Un<redacted>horized (<redacted>)"
    assert "aut" not in shown(ei.value) + (ei.value.body or "")


def test_secret_3_bytes_not_in_any_repr(hostile: HostileServer) -> None:
    with client_for(hostile, "ak", "q7Z") as c:
        assert "q7Z" not in shown(c) + repr(vars(c))
        c.shadow_get(THING)
    assert "q7Z" not in shown(c) + repr(vars(c))


# ------------------------------------------------------------------ control characters


def test_server_text_in_messages_has_no_control_characters(hostile: HostileServer) -> None:
    evil = "line1\r\nFAKE: injected\x00\x07\x1b[2J\x1b]0;title\x07\x7f\x9b31m\tend"
    hostile.respond(404, json.dumps({"code": "NotFound\x1b[31m", "message": evil}).encode())
    with client_for(hostile) as c:
        with pytest.raises(fleets.NotFoundError) as ei:
            c.shadow_get(THING)
    text = shown(ei.value)
    assert not CONTROL.search(text), text
    # (the C message ends at the NUL)
    assert "NotFound\\x1b[31m: line1\\x0d\\x0aFAKE: injected" in ei.value.message
    assert ei.value.body_json["message"] == evil  # the body itself is untouched


# ------------------------------------------------------------------ JSON from the server

DEEP = 5000


def nested_arrays(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def nested_objects(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


@pytest.mark.parametrize(
    "body",
    [
        nested_arrays(DEEP),
        nested_objects(DEEP),
        b'{"reported":' + nested_arrays(DEEP) + b"}",
        b'{"version":1' + b"0" * 5000 + b"}",  # an integer of 5,001 digits
        b'{"version":-' + b"9" * 100_000 + b"}",
        b'{"version":1.5}' + b" " * 10 + b"x",  # trailing garbage
        b'{"name":"\xff\xfe"}',  # not UTF-8
        b'{"name":"\xed\xa0\x80"}',  # an encoded surrogate: not UTF-8 either
        b"\xef\xbb\xbf{}",  # a UTF-8 byte-order mark
    ],
    ids=["arrays-5000", "objects-5000", "member-5000", "int-5001-digits", "int-100000-digits", "trailing", "not-utf8", "surrogate", "bom"],
)
@pytest.mark.parametrize("call", ["shadow_get", "shadow_report", "jobs_get_pending"])
def test_bad_2xx_body_is_bad_response(hostile: HostileServer, body: bytes, call: str) -> None:
    hostile.respond(200, body)
    with client_for(hostile) as c:
        with pytest.raises(fleets.BadResponseError) as ei:
            if call == "shadow_report":
                c.shadow_report(THING, {"t": 1})
            else:
                getattr(c, call)(THING)
    e = ei.value
    assert e.code == R.ERR_BAD_RESPONSE and e.code_name == "FLEETS_ERR_BAD_RESPONSE"
    assert e.http_status == 200
    assert len(hostile.requests) == 1
    assert not CONTROL.search(str(e))
    assert len(str(e)) < 2000, "the message must not carry the whole body"


@pytest.mark.parametrize(
    "body, want",
    [
        (b'{"v":1e999999}', {"v": float("inf")}),  # valid JSON: Python's float overflows to inf
        (b'{"v":' + b"9" * 4000 + b"}", {"v": int("9" * 4000)}),
        (nested_arrays(100), json.loads(nested_arrays(100))),
    ],
    ids=["exp-overflow", "int-4000-digits", "arrays-100"],
)
def test_big_but_valid_2xx_body(hostile: HostileServer, body: bytes, want: Dict[str, Any]) -> None:
    hostile.respond(200, body)
    with client_for(hostile) as c:
        assert c.shadow_get(THING) == want


def test_deep_error_body_json_is_none(hostile: HostileServer) -> None:
    hostile.respond(400, nested_objects(DEEP))
    with client_for(hostile) as c:
        with pytest.raises(fleets.BadRequestError) as ei:
            c.shadow_get(THING)
    assert ei.value.body_json is None
    assert ei.value.body is not None and len(ei.value.body) == len(nested_objects(DEEP))


def test_non_utf8_error_body(hostile: HostileServer) -> None:
    hostile.respond(503, b'{"code":"Unavailable","message":"\xff\xfe"}', {"Retry-After": "0"})
    with client_for(hostile) as c:
        with pytest.raises(fleets.ServerError) as ei:
            c.shadow_get(THING)
    assert ei.value.http_status == 503 and ei.value.body == '{"code":"Unavailable","message":"\ufffd\ufffd"}'


# ------------------------------------------------------------------ JSON from the caller


def deep_dict(depth: int) -> Dict[str, Any]:
    d: Dict[str, Any] = {}
    for _ in range(depth):
        d = {"a": d}
    return d


def cyclic() -> Dict[str, Any]:
    d: Dict[str, Any] = {}
    d["self"] = d
    return d


@pytest.mark.parametrize(
    "value",
    [deep_dict(DEEP), {"n": 10**5000}, {"n": float("inf")}, {"n": float("nan")}, cyclic(), {"s": "\ud800"}],
    ids=["depth-5000", "int-5001-digits", "inf", "nan", "cycle", "lone-surrogate"],
)
@pytest.mark.parametrize("call", ["shadow_report", "event_publish", "command_respond", "jobs_start_next", "jobs_update"])
def test_bad_caller_json_is_invalid_argument(hostile: HostileServer, value: Dict[str, Any], call: str) -> None:
    with client_for(hostile) as c:
        calls = {
            "shadow_report": lambda: c.shadow_report(THING, value),
            "event_publish": lambda: c.event_publish(THING, "e", data=value),
            "command_respond": lambda: c.command_respond(THING, "x1", "SUCCEEDED", result=value),
            "jobs_start_next": lambda: c.jobs_start_next(THING, status_details=value),
            "jobs_update": lambda: c.jobs_update(THING, "j1", "SUCCEEDED", status_details=value),
        }
        with pytest.raises(fleets.InvalidArgument) as ei:
            calls[call]()
    assert ei.value.code in (R.ERR_INVALID_JSON, R.ERR_INVALID_ARGUMENT), ei.value
    assert hostile.requests == [], "nothing is sent"


@pytest.mark.parametrize("value", [deep_dict(99), {"n": 10**400}, {"n": -(10**4000)}], ids=["depth-99", "int-401-digits", "int-4001-digits"])
def test_big_but_valid_caller_json_is_sent(hostile: HostileServer, value: Dict[str, Any]) -> None:
    with client_for(hostile) as c:
        assert c.shadow_report(THING, value) == {}
    assert len(hostile.requests) == 1


def test_caller_json_deeper_than_the_core_limit_is_refused(hostile: HostileServer) -> None:
    # The core refuses nesting over 100 levels (the server would reject the body), unsent.
    with client_for(hostile) as c:
        with pytest.raises(fleets.InvalidArgument) as ei:
            c.shadow_report(THING, deep_dict(200))
    assert ei.value.code == R.ERR_INVALID_JSON
    assert hostile.requests == []
