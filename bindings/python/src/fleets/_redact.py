"""What the binding shows never carries a credential or a terminal control character:
URLs are shown without their password, and error messages (which may quote server text)
are scrubbed of the client's credentials and have their control characters escaped."""

from __future__ import annotations

import base64
import re
import urllib.parse
from typing import Iterable, List, NoReturn, Optional, Tuple

#: C0 controls, DEL and C1 controls: what can rewrite a terminal or forge a log line.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_URL_DELIMITERS = "/?#@"
MASK = "***"
#: Secrets shorter than this are masked only where they stand alone (see Credentials).
SHORT_SECRET = 8


def printable(text: str) -> str:
    """``text`` with every control character (C0, DEL, C1) replaced by a visible ``\\xNN``."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _split_userinfo(url: str) -> Optional[Tuple[str, str, str]]:
    """(scheme, userinfo, rest) when ``url`` has an ``@`` after ``scheme://``; the userinfo
    runs to the LAST ``@``, so that a password holding ``/ ? # @`` stays inside it."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return None
    userinfo, _, after = rest.rpartition("@")
    return scheme, userinfo, after


def redact_url(url: str) -> str:
    """``url`` for display: its password replaced by ``***``.

    ``scheme://user:password@host...`` shows as ``scheme://user:***@host...``. Whatever
    precedes the last ``@`` is taken as credentials, so a password containing ``/``, ``?``,
    ``#``, ``@``, ``:`` or ``%`` is hidden whole; a user name that itself holds one of those
    is hidden too. Text with an ``@`` but no ``scheme://`` shows as ``***``.
    """
    if "@" not in url:
        return url
    parts = _split_userinfo(url)
    if parts is None:
        return MASK
    scheme, userinfo, after = parts
    user, colon, _ = userinfo.partition(":")
    if any(c in user for c in _URL_DELIMITERS):
        shown = MASK
    else:
        shown = f"{user}:{MASK}" if colon else user
    return f"{scheme}://{shown}@{after}"


def _rust_debug(text: str) -> str:
    """``text`` as Rust's ``{:?}`` writes it between the quotes (how libfleets quotes a value
    it echoes, e.g. an endpoint URL)."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\0":
            out.append("\\0")
        elif _CONTROL.match(ch):
            out.append(f"\\u{{{ord(ch):x}}}")
        else:
            out.append(ch)
    return "".join(out)


def _basic_forms(user: str, password: str) -> List[str]:
    """The ways ``user:password`` appears base64-encoded (an echoed Authorization header)."""
    raw = f"{user}:{password}".encode("utf-8", "surrogatepass")
    forms = []
    for enc in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        text = enc.decode("ascii")
        forms += [text, text.rstrip("=")]
    return forms


class Credentials:
    """The credentials one client was configured with, to scrub from its error messages.

    It holds references to the caller's own strings (no copies), derives what to look for
    only while scrubbing an error, and never shows its content: ``repr`` is a placeholder
    and it cannot be pickled.
    """

    __slots__ = ("_key", "_secret", "_urls")

    def __init__(self, api_key: Optional[str], api_secret: Optional[str], urls: Iterable[Optional[str]]) -> None:
        self._key = api_key if isinstance(api_key, str) else ""
        self._secret = api_secret if isinstance(api_secret, str) else ""
        self._urls = tuple(u for u in urls if isinstance(u, str) and u)

    def __repr__(self) -> str:
        return "<fleets credentials (not shown)>"

    def __reduce__(self) -> NoReturn:
        raise TypeError("fleets credentials cannot be pickled")

    def _replacements(self) -> List[Tuple[str, str, bool]]:
        """(text to find, replacement, only as a whole word), longest first."""
        pairs: List[Tuple[str, str, bool]] = []

        def secret(value: str) -> None:
            # A short secret is replaced only where it stands alone: inside a word it is more
            # likely a coincidence, and masking it there would tell the reader the secret
            # ("Un***horized" for the secret "aut").
            short = len(value) < SHORT_SECRET
            pairs.extend((form, MASK, short) for form in (value, _rust_debug(value)))

        for url in self._urls:
            shown = redact_url(url)
            pairs.extend((form, shown, False) for form in (url, _rust_debug(url)))
            parts = _split_userinfo(url)
            if parts is not None:
                user, colon, password = parts[1].partition(":")
                if colon and password:
                    secret(password)
                    secret(urllib.parse.unquote(password))
                    for u, p in ((user, password), (urllib.parse.unquote(user), urllib.parse.unquote(password))):
                        pairs.extend((form, MASK, False) for form in _basic_forms(u, p))
        if self._secret:
            secret(self._secret)
            pairs.extend((form, MASK, False) for form in _basic_forms(self._key, self._secret))
        pairs = [p for p in pairs if p[0] and p[0] != p[1]]
        pairs.sort(key=lambda p: len(p[0]), reverse=True)
        return pairs

    def scrub(self, text: str) -> str:
        """``text`` without any of these credentials (in plain, quoted or base64 form) and
        with its control characters escaped."""
        for find, repl, whole_word in self._replacements():
            if whole_word:
                text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(find)}(?![A-Za-z0-9])", lambda _: repl, text)
            else:
                text = text.replace(find, repl)
        return printable(text)
