"""SSRF guard: refuse non-http(s) URLs and connections to non-public addresses.

The check runs inside the HTTP client's network backend, on the address that is
actually connected to, so it covers every redirect hop and DNS rebinding alike.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import anyio
import httpcore
import httpx

from monitor.ingest.urls import ALLOWED_SCHEMES

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class BlockedAddress(Exception):
    """Raised when a URL or the address it resolves to is refused by the guard."""


async def system_resolver(host: str, port: int) -> list[str]:
    """Resolve a host name with the operating system's resolver.

    Args:
        host: host name or literal address.
        port: port, passed through to getaddrinfo.

    Returns:
        The distinct addresses, in resolver order.
    """
    infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: list[str] = []
    for info in infos:
        addr = str(info[4][0])
        if addr not in seen:
            seen.append(addr)
    return seen


class AddressGuard:
    """Decide which URLs and addresses may be fetched.

    Args:
        allow: host names or CIDR ranges that are exempt from the address check
            (e.g. ``["127.0.0.1"]`` for tests and the demo).
        resolver: async ``(host, port) -> [address, ...]``; injectable for tests.
    """

    def __init__(self, allow: Iterable[str] = (), resolver: Resolver = system_resolver) -> None:
        self.allowed_hosts: set[str] = set()
        self.allowed_networks: list[IPNetwork] = []
        for item in allow:
            item = item.strip().lower()
            if not item:
                continue
            try:
                self.allowed_networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                self.allowed_hosts.add(item.rstrip("."))
        self.resolver = resolver

    def check_url(self, url: str) -> None:
        """Refuse URLs whose scheme is not http(s) or that carry no host.

        Raises:
            BlockedAddress: the URL may not be fetched.
        """
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL as exc:
            raise BlockedAddress(f"invalid URL {url!r}: {exc}") from exc
        if parsed.scheme not in ALLOWED_SCHEMES:
            raise BlockedAddress(f"scheme {parsed.scheme or '(none)'!r} is not allowed: {url}")
        if not parsed.host:
            raise BlockedAddress(f"URL has no host: {url}")
        if parsed.port is not None and not 0 < parsed.port < 65536:
            raise BlockedAddress(f"port {parsed.port} is out of range: {url}")

    def is_public(self, address: IPAddress) -> bool:
        """Tell whether an address is globally routable unicast.

        IPv6 forms that wrap an IPv4 address (mapped, NAT64, 6to4) are judged by
        the IPv4 address inside, so 64:ff9b::a9fe:a9fe is as private as 169.254.169.254.
        """
        if isinstance(address, ipaddress.IPv6Address):
            embedded = address.ipv4_mapped or address.sixtofour
            if embedded is None and address in NAT64:
                embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
            if embedded is not None:
                address = embedded
        return address.is_global and not address.is_multicast

    def address_allowed(self, address: IPAddress) -> bool:
        """Tell whether a resolved address may be connected to."""
        return self.is_public(address) or any(address in net for net in self.allowed_networks)

    async def resolve(self, host: str, port: int) -> list[str]:
        """Resolve a host and return only addresses that pass the guard.

        Raises:
            BlockedAddress: the host resolves to no address, or to a refused one.
        """
        name = host.strip("[]").rstrip(".").lower()
        try:
            literal: IPAddress | None = ipaddress.ip_address(name)
        except ValueError:
            literal = None
        if literal is not None:
            addresses = [str(literal)]
        else:
            try:
                addresses = await self.resolver(name, port)
            except OSError as exc:
                raise BlockedAddress(f"cannot resolve {name}: {exc}") from exc
        if not addresses:
            raise BlockedAddress(f"{name} resolves to no address")
        host_allowed = name in self.allowed_hosts
        for addr in addresses:
            ip = ipaddress.ip_address(addr.split("%", 1)[0])
            if not host_allowed and not self.address_allowed(ip):
                # One bad address refuses the host: a resolver answering with a
                # mix of public and private records is a classic rebinding trick.
                raise BlockedAddress(f"{name} resolves to non-public address {ip}")
        return addresses


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore network backend that connects only to addresses the guard accepts."""

    def __init__(self, guard: AddressGuard) -> None:
        self.guard = guard
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self.guard.resolve(host, port)
        last_error: Exception | None = None
        for addr in addresses:
            try:
                return await self._inner.connect_tcp(
                    addr, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc
        assert last_error is not None
        raise last_error

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise BlockedAddress("unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def guarded_transport(guard: AddressGuard, max_connections: int = 100) -> httpx.AsyncHTTPTransport:
    """Build an httpx transport whose every connection goes through the guard.

    Args:
        guard: the address policy.
        max_connections: size of the connection pool.

    Returns:
        A transport for ``httpx.AsyncClient(transport=...)``.
    """
    transport = httpx.AsyncHTTPTransport(trust_env=False, retries=0)
    # httpx exposes no parameter for the network backend; the pool is rebuilt with the
    # same defaults plus ours. httpx is pinned, so this private attribute is stable.
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(trust_env=False),
        max_connections=max_connections,
        max_keepalive_connections=20,
        keepalive_expiry=5.0,
        network_backend=GuardedBackend(guard),
    )
    return transport
