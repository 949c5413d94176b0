"""Where a webhook may go: never to this machine or its private networks, unless allowed.

An admin chooses the URL; without this check the service would be a way into every
address it can reach (metadata services, databases, the admin port). The host is
resolved and every address checked before connecting, and the request then goes to the
address that was checked (not to a second resolution an attacker's DNS could change).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from base.errors import Invalid

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class TargetRefused(Exception):
    """The URL's host is, or resolves to, an address webhooks may not reach."""


@dataclass(frozen=True, slots=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str


def parse(url: str) -> Target:
    """A webhook URL the API accepts: http(s), a host, no credentials (422 otherwise)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise Invalid("url is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid("url must be an http or https URL with a host")
    if parts.username is not None or parts.password is not None:
        raise Invalid("url must not contain credentials")
    if parts.fragment:
        raise Invalid("url must not contain a fragment")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    default = 443 if parts.scheme == "https" else 80
    return Target(parts.scheme, parts.hostname, port or default, path)


def forbidden(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    # is_global is False for private, loopback, link-local, shared (CGNAT), reserved and
    # unspecified ranges; multicast is never a web server.
    return not address.is_global or address.is_multicast


def literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def check_literal(target: Target, allow_private: bool) -> None:
    """At creation: a URL naming a forbidden address outright is refused (422)."""
    address = literal(target.host)
    if address is not None and not allow_private and forbidden(address):
        raise Invalid("url must not point at a private, loopback or link-local address")


async def resolve(target: Target, allow_private: bool) -> IPAddress:
    """The address to connect to, after checking every address the host resolves to."""
    address = literal(target.host)
    if address is not None:
        found = [address]
    else:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise TargetRefused(f"cannot resolve {target.host}: {exc}") from None
        found = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not found:
        raise TargetRefused(f"{target.host} has no address")
    if not allow_private:
        # Every address, not just the first: a host with one public and one private
        # address would otherwise reach the private one on some connections.
        for each in found:
            if forbidden(each):
                raise TargetRefused(f"{target.host} resolves to a private address ({each})")
    return found[0]
