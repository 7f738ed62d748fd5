"""Secrets never leave the URL they came in: a store URL's password, and tokens in its query,
are shown as `***` in every param, tag, artifact, console line, report and error message.

`remember(url)` notes a URL's secrets, so that they are masked wherever they appear, e.g. in a
database driver's error message; `mask_secrets(text)` masks them, and any URL's password, in any
text; `masked_url(url)` is a URL as it may be shown. A URL given back with its password masked
(`user:***@host`) connects without one: PostgreSQL then takes it from `PGPASSWORD` or
`~/.pgpass` (`connectable`).
"""

from __future__ import annotations

import re
from urllib.parse import unquote

MASK = "***"
_USERINFO = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*:)([^@\s/]+)(@)")
_QUERY = re.compile(
    r"([?&;](?:password|passwd|pwd|token|access_token|api_key|apikey|secret|sslpassword)=)"
    r"([^&\s#'\"]+)",
    re.IGNORECASE,
)
_known: set[str] = set()
SHORTEST = 4  # a shorter "secret" would mask ordinary words


def remember(url: str | None) -> None:
    """Note the secrets in `url` (its password, secret query values), raw and decoded."""
    if not url:
        return
    found = [m.group(2) for m in _USERINFO.finditer(url)]
    found += [m.group(2) for m in _QUERY.finditer(url)]
    for secret in found:
        if secret != MASK:
            _known.update(s for s in (secret, unquote(secret)) if len(s) >= SHORTEST)


def mask_secrets(text: str) -> str:
    """`text` with every URL's password, secret query values and remembered secret masked."""
    if not text:
        return text
    text = _USERINFO.sub(lambda m: f"{m.group(1)}{MASK}{m.group(3)}", text)
    text = _QUERY.sub(lambda m: f"{m.group(1)}{MASK}", text)
    for secret in sorted(_known, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def masked_url(url: str | None) -> str:
    """`url` as it may be shown or stored."""
    remember(url)
    return mask_secrets(url or "")


def connectable(url: str) -> str:
    """A URL whose password was masked, without it (the driver finds it in its own places,
    e.g. `PGPASSWORD`); any other URL as it is."""
    return url.replace(f":{MASK}@", "@")


class MaskingStream:
    """A text stream that masks secrets in what is written to it (the console)."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(mask_secrets(text))
        return len(text)

    def __getattr__(self, name):
        return getattr(self._stream, name)


def guard_console(args: list[str]) -> None:
    """A command's first step: the secrets in the values it was given (`key=value`: a store
    URL's password) are masked in everything the process prints from now on."""
    mask_console()
    for arg in args:
        remember(arg.partition("=")[2])


def mask_console() -> None:
    """Mask secrets in everything this process prints through `sys.stdout` and `sys.stderr`."""
    import sys

    if not isinstance(sys.stdout, MaskingStream):
        sys.stdout = MaskingStream(sys.stdout)
    if not isinstance(sys.stderr, MaskingStream):
        sys.stderr = MaskingStream(sys.stderr)
