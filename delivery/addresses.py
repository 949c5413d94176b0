"""Email address syntax (RFC 5322 addr-spec, dot-atom form) with RFC 5321 size limits.

Quoted local parts, comments and IP-literal domains are legal but refused: no
mailbox we send to needs them and each is a classic parser-confusion vector.
"""

from __future__ import annotations

import re

from delivery.providers.base import Address

_ATEXT = r"[A-Za-z0-9!#$%&'*+/=^_`{|}~-]"
_LOCAL = re.compile(rf"{_ATEXT}+(?:\.{_ATEXT}+)*")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})+")
_NAMED = re.compile(r"(?P<name>[^<>]*)<(?P<addr>[^<>]+)>")
# RFC 5321: local part <= 64 octets, domain <= 255, the whole path <= 256 with "<>".
MAX_LOCAL = 64
MAX_DOMAIN = 255
MAX_ADDRESS = 254
MAX_NAME = 256
# Every character some mail or header parser treats as the end of a line: CR and LF, and
# also VT, FF, the file/group/record separators, NEL and the Unicode line and paragraph
# separators (what str.splitlines() splits on). One of them in a header value could start
# a new header line somewhere down the chain.
_LINE_BREAK = re.compile("[\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


def has_line_break(value: str) -> bool:
    return _LINE_BREAK.search(value) is not None


class BadAddress(ValueError):
    pass


def parse_address(value: str) -> Address:
    """``ann@example.com`` or ``Ann Lee <ann@example.com>``; raises BadAddress."""
    if has_line_break(value):
        raise BadAddress(
            f"{value!r}: CR and LF (and every other line break) are not allowed in an address"
        )
    named = _NAMED.fullmatch(value.strip())
    name: str | None = None
    addr = value.strip()
    if named is not None:
        name = named["name"].strip().strip('"').strip() or None
        addr = named["addr"].strip()
    if name is not None and len(name) > MAX_NAME:
        raise BadAddress(f"{value!r}: the display name is longer than {MAX_NAME} characters")
    local, at, domain = addr.rpartition("@")
    if not at or not local or not domain:
        raise BadAddress(f"{addr!r} is not an email address")
    if len(addr) > MAX_ADDRESS or len(local) > MAX_LOCAL or len(domain) > MAX_DOMAIN:
        raise BadAddress(f"{addr!r} is too long")
    if not _LOCAL.fullmatch(local):
        raise BadAddress(f"{addr!r}: invalid local part")
    if not _DOMAIN.fullmatch(domain):
        raise BadAddress(f"{addr!r}: invalid domain")
    return Address(addr, name)
