"""Who a request comes from, as the token throttles, django-axes and the sign-in limit count it."""

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or with NUM_PROXIES trusted proxies, the one they saw.

    X-Forwarded-For is believed only as far as the proxies we run append to it;
    otherwise a client would pick a new address for every guess.
    """
    meta = getattr(request, "META", {})
    remote = meta.get("REMOTE_ADDR", "") or ""
    proxies = settings.NUM_PROXIES
    forwarded = meta.get("HTTP_X_FORWARDED_FOR", "")
    if not proxies or not forwarded:
        return remote
    addresses = [address.strip() for address in forwarded.split(",") if address.strip()]
    return addresses[-min(proxies, len(addresses))] if addresses else remote


def client_network(request: HttpRequest) -> str:
    """The client's address; for IPv6, its /64, which a single machine or household usually holds whole.

    Counting single IPv6 addresses would let one client take a fresh one from
    its /64 for every guess.
    """
    address = client_ip(request)
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address or "unknown"
    if ip.version == 6:
        if ip.ipv4_mapped:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)
