"""Which addresses a webhook may reach: global unicast only, in whatever form it is written.

An internal IPv4 address can hide inside an IPv6 one that looks global to
`ipaddress`: NAT64 (64:ff9b::10.0.0.1, RFC 6052), 6to4 (2002:0a00:0001::,
RFC 3056), Teredo (2001:0::/32, the client's address obfuscated, RFC 4380),
IPv4-mapped (::ffff:10.0.0.1) and the deprecated IPv4-compatible (::10.0.0.1).
Every embedded IPv4 address is extracted and checked too; the local-use NAT64
prefix (64:ff9b:1::/48, RFC 8215), whose embedding its operator chooses, is
internal outright.

A host name is resolved once (`resolve`), every address it resolves to is
checked, and the connection goes to exactly those checked addresses
(notifications.delivery), so a DNS answer that changes between the check and
the connection (DNS rebinding) cannot slip an internal address in.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")
NAT64_LOCAL_USE = ipaddress.IPv6Network("64:ff9b:1::/48")
IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
LOW_32_BITS = 0xFFFFFFFF


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries, by every transition mechanism that embeds one."""
    found = []
    if address.ipv4_mapped is not None:
        found.append(address.ipv4_mapped)
    if address in NAT64_WELL_KNOWN:
        found.append(ipaddress.IPv4Address(int(address) & LOW_32_BITS))
    if address.sixtofour is not None:
        found.append(address.sixtofour)
    if address.teredo is not None:
        found.extend(address.teredo)  # (server, client)
    if address in IPV4_COMPATIBLE and int(address) > 1:  # not :: or ::1
        found.append(ipaddress.IPv4Address(int(address) & LOW_32_BITS))
    return found


def is_internal(address: IPAddress | str) -> bool:
    """True unless the address, and every IPv4 address embedded in it, is global unicast."""
    if isinstance(address, str):
        address = ipaddress.ip_address(address.split("%", 1)[0])  # without an IPv6 zone
    if not address.is_global or address.is_multicast:
        return True
    if isinstance(address, ipaddress.IPv6Address):
        if address in NAT64_LOCAL_USE:
            return True
        return any(is_internal(embedded) for embedded in embedded_ipv4(address))
    return False


def literal_address(host: str) -> IPAddress | None:
    """The address a host written as a number stands for ("10.0.0.1", "::1", "2130706433", "0x7f.1").

    getaddrinfo with AI_NUMERICHOST parses the forms the resolver accepts
    without asking any DNS server; a name gives None.
    """
    try:
        infos = socket.getaddrinfo(host, None, flags=socket.AI_NUMERICHOST)
    except (socket.gaierror, UnicodeError, ValueError):
        return None
    return ipaddress.ip_address(infos[0][4][0].split("%", 1)[0]) if infos else None


@dataclass(frozen=True)
class Target:
    """One address a host resolved to, with what socket.connect needs to reach exactly it."""

    address: IPAddress
    family: int
    sockaddr: tuple


def resolve(host: str, port: int) -> list[Target]:
    """Every address the host resolves to, once, in the resolver's order; raises OSError."""
    targets, seen = [], set()
    for family, _, _, _, sockaddr in socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    ):
        if family not in (socket.AF_INET, socket.AF_INET6) or sockaddr in seen:
            continue
        seen.add(sockaddr)
        targets.append(Target(ipaddress.ip_address(sockaddr[0].split("%", 1)[0]), family, sockaddr))
    if not targets:
        raise OSError(f"{host} resolves to no IPv4 or IPv6 address")
    return targets


def first_internal(targets: list[Target]) -> IPAddress | None:
    return next((target.address for target in targets if is_internal(target.address)), None)
