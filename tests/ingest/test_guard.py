"""SSRF guard: schemes, allow lists, literal and resolved addresses, redirects.

Only 127.0.0.0/8 is ever connected to. Every other address reaches the code under
test through a stub resolver or as a URL literal, both refused before a connect; a
socket sentinel records (and refuses) any connect outside loopback, and a second
recorder watches the inner httpcore backend, so "no connection was attempted" is
checked rather than assumed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpcore
import pytest

from monitor.ingest.guard import AddressGuard, BlockedAddress, GuardedBackend
from monitor.ingest.http import PAGE_TYPES, FetchLimits, open_fetcher
from monitor.models import FetchResult, FetchStatus
from tests.servers import FastScriptedServer, LoopbackOnlySockets, ScriptedServer

LIMITS = FetchLimits(connect_timeout_s=1.0, read_timeout_s=1.0, total_timeout_s=2.0, max_redirects=5)
HTML = b"<html><body>secret</body></html>"

PRIVATE_ANSWERS = [
    "169.254.169.254",  # cloud metadata (link-local)
    "10.0.0.1",
    "172.16.0.1",
    "192.168.1.1",
    "100.64.0.1",  # carrier-grade NAT
    "127.0.0.1",
    "0.0.0.0",
    "224.0.0.1",  # multicast
    "255.255.255.255",
    "::1",
    "::",
    "fd00::1",  # unique local
    "fe80::1",
    "fe80::1%eth0",  # link-local with zone id
    "ff02::1",  # IPv6 multicast
    "::ffff:169.254.169.254",  # IPv4-mapped metadata address
    "::ffff:10.0.0.1",
]


class StubResolver:
    """Async resolver answering from a table and recording every question."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        if host not in self.answers:
            raise OSError(f"stub resolver: no answer for {host}")
        return list(self.answers[host])


@pytest.fixture
def scripted_server() -> Iterator[ScriptedServer]:
    """Overrides conftest's fixture with a server whose teardown is fast."""
    with FastScriptedServer() as server:
        yield server


@pytest.fixture
def other_loopback() -> Iterator[ScriptedServer]:
    """A listener on 127.0.0.2, which an allow list of ["127.0.0.1"] must not reach."""
    with FastScriptedServer(host="127.0.0.2") as server:
        server.add("/", 200, HTML, Content_Type="text/html")
        server.add("/secret", 200, HTML, Content_Type="text/html")
        yield server


@pytest.fixture(autouse=True)
def sockets(monkeypatch: pytest.MonkeyPatch) -> LoopbackOnlySockets:
    """Record every socket connect; refuse any outside 127.0.0.0/8."""
    return LoopbackOnlySockets.install(monkeypatch)


@pytest.fixture(autouse=True)
def inner_connects(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Record every (host, port) the guarded backend hands to the real network backend."""
    calls: list[tuple[str, int]] = []
    real = httpcore.AnyIOBackend.connect_tcp

    async def connect_tcp(self: httpcore.AnyIOBackend, host: str, port: int, **kwargs: Any) -> Any:
        calls.append((host, port))
        return await real(self, host, port, **kwargs)

    monkeypatch.setattr(httpcore.AnyIOBackend, "connect_tcp", connect_tcp)
    return calls


def fetch_with(guard: AddressGuard, url: str) -> FetchResult:
    """GET ``url`` through a fetcher using ``guard``; asserts the call is bounded."""

    async def go() -> FetchResult:
        async with open_fetcher(LIMITS, guard, "test-agent") as fetcher:
            return await fetcher.get(url, accept_types=PAGE_TYPES)

    started = time.monotonic()
    result = asyncio.run(go())
    elapsed = time.monotonic() - started
    assert elapsed < LIMITS.total_timeout_s + 1.0, f"took {elapsed:.2f} s"
    return result


def assert_refused(result: FetchResult, *fragments: str) -> None:
    assert result.status is FetchStatus.PERMANENT, result
    assert result.error is not None
    assert result.error.startswith("refused"), result.error
    for fragment in fragments:
        assert fragment in result.error, result.error


def resolve(guard: AddressGuard, host: str, port: int = 80) -> list[str]:
    return asyncio.run(guard.resolve(host, port))


# --- allow list on loopback ------------------------------------------------------


def test_unlisted_loopback_address_is_refused(
    other_loopback: ScriptedServer, sockets: LoopbackOnlySockets, inner_connects: list[tuple[str, int]]
) -> None:
    guard = AddressGuard(["127.0.0.1"], resolver=StubResolver({}))
    result = fetch_with(guard, other_loopback.base + "/")
    assert_refused(result, "127.0.0.2")
    assert other_loopback.requests == []
    assert inner_connects == []
    assert sockets.calls == []


def test_redirect_to_unlisted_address_is_refused(
    scripted_server: ScriptedServer,
    other_loopback: ScriptedServer,
    inner_connects: list[tuple[str, int]],
) -> None:
    start = scripted_server.add("/hop", 302, b"", Location=other_loopback.base + "/secret")
    result = fetch_with(AddressGuard(["127.0.0.1"], resolver=StubResolver({})), start)
    assert_refused(result, "127.0.0.2")
    assert result.final_url == other_loopback.base + "/secret"
    assert scripted_server.requests == ["/hop"]
    assert other_loopback.requests == []
    assert inner_connects == [("127.0.0.1", scripted_server.port)]


def test_redirect_to_name_resolving_to_metadata_is_refused(
    scripted_server: ScriptedServer, inner_connects: list[tuple[str, int]], sockets: LoopbackOnlySockets
) -> None:
    stub = StubResolver({"evil.test": ["169.254.169.254"]})
    start = scripted_server.add("/hop", 301, b"", Location="http://evil.test/latest/meta-data")
    result = fetch_with(AddressGuard(["127.0.0.1"], resolver=stub), start)
    assert_refused(result, "169.254.169.254")
    assert stub.calls == [("evil.test", 80)]
    assert inner_connects == [("127.0.0.1", scripted_server.port)]
    assert sockets.refused == []


def test_cidr_allow_list_permits_other_loopback(
    other_loopback: ScriptedServer, inner_connects: list[tuple[str, int]]
) -> None:
    guard = AddressGuard(["127.0.0.0/8"], resolver=StubResolver({}))
    assert resolve(guard, "127.0.0.2") == ["127.0.0.2"]
    result = fetch_with(guard, other_loopback.base + "/secret")
    assert result.status is FetchStatus.OK, result.error
    assert result.body == HTML
    assert other_loopback.requests == ["/secret"]
    assert inner_connects == [("127.0.0.2", other_loopback.port)]


def test_host_name_allow_list_permits_stubbed_localhost(
    scripted_server: ScriptedServer, sockets: LoopbackOnlySockets
) -> None:
    stub = StubResolver({"localhost": ["127.0.0.1"]})
    guard = AddressGuard(["localhost"], resolver=stub)
    scripted_server.add("/page", 200, HTML, Content_Type="text/html")
    result = fetch_with(guard, f"http://localhost:{scripted_server.port}/page")
    assert result.status is FetchStatus.OK, result.error
    assert result.body == HTML
    assert stub.calls == [("localhost", scripted_server.port)]
    assert scripted_server.request_headers[0]["host"] == f"localhost:{scripted_server.port}"
    assert ("127.0.0.1", scripted_server.port) in sockets.calls
    # Allowing the name does not allow its address when used as a literal.
    with pytest.raises(BlockedAddress):
        resolve(guard, "127.0.0.1")


def test_stub_answer_on_allowed_loopback_connects(
    scripted_server: ScriptedServer, sockets: LoopbackOnlySockets, inner_connects: list[tuple[str, int]]
) -> None:
    """Control: the recorders do see a connection when the guard lets one through."""
    stub = StubResolver({"evil.test": ["127.0.0.1"]})
    scripted_server.add("/", 200, HTML, Content_Type="text/html")
    result = fetch_with(
        AddressGuard(["127.0.0.1"], resolver=stub), f"http://evil.test:{scripted_server.port}/"
    )
    assert result.status is FetchStatus.OK, result.error
    assert stub.calls == [("evil.test", scripted_server.port)]
    assert inner_connects == [("127.0.0.1", scripted_server.port)]
    assert ("127.0.0.1", scripted_server.port) in sockets.calls


def test_allow_list_entries_are_normalised() -> None:
    guard = AddressGuard([" 127.0.0.1 ", "", "LocalHost.", "10.1.0.0/16", "::1"])
    assert guard.allowed_hosts == {"localhost"}
    assert [str(n) for n in guard.allowed_networks] == ["127.0.0.1/32", "10.1.0.0/16", "::1/128"]
    assert resolve(guard, "10.1.2.3") == ["10.1.2.3"]
    assert resolve(guard, "[::1]") == ["::1"]
    with pytest.raises(BlockedAddress):
        resolve(guard, "10.2.0.1")


# --- stub resolvers: names answering with non-public addresses ---------------------


@pytest.mark.parametrize("address", PRIVATE_ANSWERS)
def test_resolve_refuses_non_public_answer(address: str) -> None:
    stub = StubResolver({"evil.test": [address]})
    guard = AddressGuard(allow=[], resolver=stub)
    with pytest.raises(BlockedAddress, match="non-public address"):
        resolve(guard, "evil.test")
    assert stub.calls == [("evil.test", 80)]


@pytest.mark.parametrize("address", PRIVATE_ANSWERS)
def test_fetch_of_name_with_non_public_answer_never_connects(
    address: str, sockets: LoopbackOnlySockets, inner_connects: list[tuple[str, int]]
) -> None:
    stub = StubResolver({"evil.test": [address]})
    result = fetch_with(AddressGuard(allow=[], resolver=stub), "http://evil.test/")
    assert_refused(result, "evil.test", "non-public")
    assert result.url == "http://evil.test/"
    assert stub.calls == [("evil.test", 80)]
    assert inner_connects == []
    assert sockets.calls == []


def test_mixed_public_and_private_answer_is_refused_as_a_whole() -> None:
    # Resolve only: no public address is ever connected to.
    mixed = StubResolver({"evil.test": ["93.184.216.34", "10.0.0.1"]})
    with pytest.raises(BlockedAddress, match=r"10\.0\.0\.1"):
        resolve(AddressGuard(resolver=mixed), "evil.test")

    reversed_order = StubResolver({"evil.test": ["10.0.0.1", "93.184.216.34"]})
    with pytest.raises(BlockedAddress, match=r"10\.0\.0\.1"):
        resolve(AddressGuard(resolver=reversed_order), "evil.test")

    public_only = StubResolver({"news.test": ["93.184.216.34"]})
    assert resolve(AddressGuard(resolver=public_only), "news.test") == ["93.184.216.34"]


def test_allowed_network_does_not_cover_other_private_answers() -> None:
    stub = StubResolver({"evil.test": ["127.0.0.1", "169.254.169.254"]})
    with pytest.raises(BlockedAddress, match=r"169\.254\.169\.254"):
        resolve(AddressGuard(["127.0.0.1"], resolver=stub), "evil.test")


@pytest.mark.parametrize(
    ("answers", "message"),
    [({}, "cannot resolve"), ({"evil.test": []}, "no address")],
    ids=["resolver-error", "empty-answer"],
)
def test_unresolvable_name_is_refused(
    answers: dict[str, list[str]], message: str, inner_connects: list[tuple[str, int]]
) -> None:
    guard = AddressGuard(resolver=StubResolver(answers))
    with pytest.raises(BlockedAddress, match=message):
        resolve(guard, "evil.test")
    result = fetch_with(guard, "http://evil.test/")
    assert_refused(result, message)
    assert inner_connects == []


def test_host_name_is_normalised_before_resolving() -> None:
    stub = StubResolver({"evil.test": ["10.0.0.1"]})
    with pytest.raises(BlockedAddress):
        resolve(AddressGuard(resolver=stub), "EVIL.test.")
    assert stub.calls == [("evil.test", 80)]


# --- literal addresses in URLs ------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "port"),
    [
        ("169.254.169.254", 80),
        ("[::1]", 1),
        ("::1", 1),
        ("10.0.0.1", 80),
        ("[::ffff:169.254.169.254]", 80),
        ("0.0.0.0", 80),
    ],
)
def test_literal_address_is_checked_without_the_resolver(host: str, port: int) -> None:
    stub = StubResolver({})
    with pytest.raises(BlockedAddress, match="non-public address"):
        resolve(AddressGuard(resolver=stub), host, port)
    assert stub.calls == []


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://169.254.169.254/latest/meta-data", "169.254.169.254"),
        ("http://[::1]:1/", "::1"),
        ("http://10.0.0.1:8080/admin", "10.0.0.1"),
        ("http://[::ffff:a9fe:a9fe]/latest/meta-data", "::ffff:"),
        ("http://0.0.0.0:1/", "0.0.0.0"),
    ],
)
def test_literal_address_url_is_refused_without_connecting(
    url: str, shown: str, sockets: LoopbackOnlySockets, inner_connects: list[tuple[str, int]]
) -> None:
    stub = StubResolver({})
    result = fetch_with(AddressGuard(["127.0.0.1"], resolver=stub), url)
    assert_refused(result, shown)
    assert stub.calls == []
    assert inner_connects == []
    assert sockets.calls == []


# --- URL schemes and shapes -----------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "file://localhost/etc/passwd",
        "ftp://127.0.0.1/x",
        "data:text/html,<script>alert(1)</script>",
        "javascript:alert(1)",
        "gopher://127.0.0.1:70/_",
        "ws://127.0.0.1/",
        "http:///no-host",
        "https://",
        "http:/one-slash",
        "//127.0.0.1/scheme-relative",
        "/relative/path",
        "",
    ],
)
def test_check_url_refuses_non_http_and_hostless_urls(url: str) -> None:
    with pytest.raises(BlockedAddress):
        AddressGuard(["127.0.0.1"]).check_url(url)


@pytest.mark.parametrize("url", ["http://[::1", "http://127.0.0.1:99999/", "http://127.0.0.1/\x00"])
def test_check_url_refuses_malformed_urls(url: str) -> None:
    """A URL that cannot be parsed or connected to is refused as such, not with a parser error."""
    with pytest.raises(BlockedAddress):
        AddressGuard(["127.0.0.1"]).check_url(url)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1/", "https://news.test/a?b=c", "HTTP://News.Test:8080/x", "http://[::1]:8/"]
)
def test_check_url_accepts_http_urls_with_a_host(url: str) -> None:
    AddressGuard().check_url(url)  # no exception: addresses are checked at connect time


def test_unix_sockets_are_refused() -> None:
    backend = GuardedBackend(AddressGuard(["127.0.0.1"]))
    with pytest.raises(BlockedAddress):
        asyncio.run(backend.connect_unix_socket("/var/run/docker.sock"))
