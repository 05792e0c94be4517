"""URL canonicalisation: property tests (hypothesis) and explicit examples."""

from __future__ import annotations

import re
import string
from urllib.parse import parse_qsl, quote, urlsplit

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from monitor.ingest.urls import (
    TRACKING_PARAMS,
    TRACKING_PREFIXES,
    InvalidURL,
    canonicalize,
    is_tracking_param,
    stable_id,
)

MEANINGFUL_KEYS = ("id", "page", "story", "q", "article", "section", "p", "lang")

# ---------------------------------------------------------------- strategies

_label_chars = st.one_of(
    st.sampled_from(string.ascii_letters + string.digits),
    st.characters(categories=("Ll", "Lu", "Lo")),
)
_label = st.builds(
    lambda head, middle: head + middle,
    _label_chars,
    st.text(alphabet=st.one_of(_label_chars, st.just("-")), max_size=12),
)
hosts = st.one_of(
    st.lists(_label, min_size=1, max_size=4).map(".".join),
    st.lists(_label, min_size=1, max_size=3).map(lambda labels: ".".join(labels) + "."),
    st.sampled_from(["127.0.0.1", "10.0.0.7", "[::1]", "[2001:db8::1]", "EXAMPLE.COM", "xn--caf-dma.com"]),
)
ports = st.one_of(st.none(), st.sampled_from([80, 443, 8080]), st.integers(min_value=1, max_value=65535))
_percent = st.builds(
    lambda a, b, upper: ("%" + a + b).upper() if upper else ("%" + a + b).lower(),
    st.sampled_from("0123456789abcdef"),
    st.sampled_from("0123456789abcdef"),
    st.booleans(),
)
# Any non-surrogate character except the ones that delimit URL parts.
_free_char = st.characters(exclude_categories=("Cs",), exclude_characters="/?#")
_segment = st.lists(st.one_of(_free_char, _percent), max_size=10).map("".join)
paths = st.lists(_segment, max_size=5).map(lambda segs: "".join("/" + s for s in segs))
_qchar = st.characters(exclude_categories=("Cs",), exclude_characters="&=#")
_qtext = st.lists(st.one_of(_qchar, _percent, st.just("+")), max_size=8).map("".join)


def _random_case(draw: st.DrawFn, name: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(name), max_size=len(name)))
    return "".join(c.upper() if f else c for c, f in zip(name, flips, strict=True))


@st.composite
def tracking_keys(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        name = draw(st.sampled_from(sorted(TRACKING_PARAMS)))
    else:
        name = draw(st.sampled_from(TRACKING_PREFIXES)) + draw(
            st.text(alphabet=string.ascii_lowercase + "_", max_size=8)
        )
    return _random_case(draw, name)


@st.composite
def queries(draw: st.DrawFn) -> str:
    pairs = draw(
        st.lists(
            st.tuples(st.one_of(_qtext, tracking_keys(), st.sampled_from(MEANINGFUL_KEYS)), _qtext),
            max_size=6,
        )
    )
    parts = [f"{k}={v}" if draw(st.booleans()) else k for k, v in pairs]
    return "&".join(parts)


@st.composite
def http_urls(draw: st.DrawFn) -> str:
    scheme = _random_case(draw, draw(st.sampled_from(["http", "https"])))
    host = draw(hosts)
    port = draw(ports)
    netloc = host if port is None else f"{host}:{port}"
    url = f"{scheme}://{netloc}{draw(paths)}"
    query = draw(st.one_of(st.none(), queries()))
    if query is not None:
        url += "?" + query
    fragment = draw(st.one_of(st.none(), st.text(max_size=10)))
    if fragment is not None:
        url += "#" + fragment
    return url


# ------------------------------------------------------------ properties


@settings(max_examples=300, deadline=None)
@given(http_urls())
@example("HTTP://Example.COM:80/a/../%7euser/caf%C3%A9?b=2&a=1&utm_source=x#top")
@example("https://xn--caf-dma.com./%2F%25?q=a+b&q=c")
def test_canonicalize_is_idempotent(url: str) -> None:
    once = canonicalize(url)
    assert canonicalize(once) == once


@settings(max_examples=200, deadline=None)
@given(http_urls())
def test_canonical_form_shape(url: str) -> None:
    canonical = canonicalize(url)
    parts = urlsplit(canonical)
    assert parts.scheme in {"http", "https"}
    assert parts.scheme == urlsplit(url.strip()).scheme.lower()
    assert "#" not in canonical
    assert parts.fragment == ""
    assert parts.netloc == parts.netloc.lower()
    assert parts.path.startswith("/")
    # default ports are dropped, other ports kept
    default = {"http": 80, "https": 443}[parts.scheme]
    assert parts.port != default
    # nothing but ASCII in path and query (unicode is percent-encoded)
    assert (parts.path + parts.query).isascii()
    # no tracking parameter survives
    assert not any(is_tracking_param(k) for k, _ in parse_qsl(parts.query, keep_blank_values=True))


@settings(max_examples=200, deadline=None)
@given(
    host=st.sampled_from(["news.example.com", "Example.ORG", "127.0.0.1:8080"]),
    keep=st.lists(
        st.tuples(st.sampled_from(MEANINGFUL_KEYS), st.text(st.characters(exclude_categories=("Cs",)))),
        max_size=5,
    ),
    drop=st.lists(st.tuples(tracking_keys(), st.text(string.ascii_letters + string.digits)), max_size=5),
    data=st.data(),
)
def test_tracking_params_removed_meaningful_params_kept(
    host: str, keep: list[tuple[str, str]], drop: list[tuple[str, str]], data: st.DataObject
) -> None:
    pairs = data.draw(st.permutations(keep + drop))
    query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs)
    canonical = canonicalize(f"https://{host}/story/1?{query}")
    got = parse_qsl(urlsplit(canonical).query, keep_blank_values=True)
    assert sorted(got) == sorted(keep)
    lowered = {k.lower() for k, _ in got}
    assert not lowered & TRACKING_PARAMS
    assert not any(k.startswith(TRACKING_PREFIXES) for k in lowered)


@settings(max_examples=100, deadline=None)
@given(
    scheme=st.one_of(
        st.sampled_from(["ftp", "file", "mailto", "javascript", "data", "ws", "wss", "gopher", "httpx"]),
        st.text(string.ascii_lowercase, min_size=1, max_size=8).filter(lambda s: s not in {"http", "https"}),
    ),
    rest=st.text(string.ascii_lowercase + "/.", max_size=20),
)
def test_non_http_schemes_raise(scheme: str, rest: str) -> None:
    with pytest.raises(InvalidURL):
        canonicalize(f"{scheme}://example.com/{rest}")


@settings(max_examples=100, deadline=None)
@given(st.text())
def test_stable_id_is_deterministic_hex(value: str) -> None:
    first = stable_id(value)
    assert first == stable_id(value)
    assert re.fullmatch(r"[0-9a-f]{16}", first)


# ------------------------------------------------------------ examples


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("HTTP://WWW.Example.COM/News", "http://www.example.com/News"),
        ("https://example.com", "https://example.com/"),
        ("https://example.com:443/a", "https://example.com/a"),
        ("http://example.com:80/a", "http://example.com/a"),
        ("http://example.com:443/a", "http://example.com:443/a"),
        ("https://example.com:8443/a", "https://example.com:8443/a"),
        ("https://example.com/a#comments", "https://example.com/a"),
        ("https://example.com./a", "https://example.com/a"),
        ("  https://example.com/a  ", "https://example.com/a"),
        ("https://user:secret@example.com/a", "https://example.com/a"),
        ("https://example.com/%7Euser/a%20b", "https://example.com/~user/a%20b"),
        ("https://example.com/~user/a b", "https://example.com/~user/a%20b"),
        ("https://example.com/caf%c3%a9", "https://example.com/caf%C3%A9"),
        ("https://example.com/café", "https://example.com/caf%C3%A9"),
        ("https://CAFÉ.example/x", "https://xn--caf-dma.example/x"),
        ("https://[2001:DB8::1]:443/x", "https://[2001:db8::1]/x"),
        ("https://example.com/s?b=2&a=1", "https://example.com/s?a=1&b=2"),
        ("https://example.com/s?q=a+b", "https://example.com/s?q=a%20b"),
        (
            "https://example.com/story?id=42&utm_source=rss&UTM_Medium=feed&fbclid=abc&gclid=x"
            "&mc_cid=1&mc_eid=2&ocid=3&CMPID=4&_ga=5&pk_campaign=6&page=2#frag",
            "https://example.com/story?id=42&page=2",
        ),
        ("https://example.com/s?utm_source=x", "https://example.com/s"),
        (
            "https://example.com/s?story=7&xtor=RSS-1&article=a%26b",
            "https://example.com/s?article=a%26b&story=7",
        ),
        ("https://example.com/s?flag", "https://example.com/s?flag="),
    ],
)
def test_canonicalize_examples(url: str, expected: str) -> None:
    assert canonicalize(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/file",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "mailto:editor@example.com",
        "data:text/html,hi",
        "//example.com/no-scheme",
        "/relative/path",
        "",
        "http:///no-host",
        "https://example.com:99999/",
        "https://example.com:port/",
    ],
)
def test_invalid_urls_raise(url: str) -> None:
    with pytest.raises(InvalidURL):
        canonicalize(url)


@pytest.mark.parametrize("url", ["http://[oops/", "https://[::1x]/", "https://a\uff03b.example/"])
def test_malformed_netloc_raises_invalid_url(url: str) -> None:
    # InvalidURL is a ValueError; callers (load_feeds, entries_from) only catch InvalidURL.
    with pytest.raises(InvalidURL):
        canonicalize(url)


@pytest.mark.parametrize("dot", ["\u3002", "\uff0e", "\uff61"])
def test_idempotent_with_trailing_ideographic_dot(dot: str) -> None:
    once = canonicalize(f"https://example.com{dot}/story")
    assert once == "https://example.com/story"
    assert canonicalize(once) == once


@pytest.mark.parametrize(
    "name", ["utm_source", "UTM_CAMPAIGN", "Fbclid", "gclid", "mc_cid", "OCID", "cmpid", "_hsenc"]
)
def test_is_tracking_param_true(name: str) -> None:
    assert is_tracking_param(name)


@pytest.mark.parametrize("name", ["id", "page", "story", "q", "article", "utm", "source", "ref"])
def test_is_tracking_param_false(name: str) -> None:
    assert not is_tracking_param(name)


def test_stable_id_examples() -> None:
    a = stable_id("https://example.com/a")
    assert a == stable_id(canonicalize("HTTPS://EXAMPLE.com:443/a?utm_source=x#f"))
    assert a != stable_id("https://example.com/b")
    assert len(a) == 16
    assert int(a, 16) >= 0


@pytest.mark.parametrize(
    ("wrapped", "target"),
    [
        ("https://www.google.com/url?sa=t&q=https%3A%2F%2Fwww.bbc.co.uk%2Fnews%2Fa%3Futm_source%3Dx&ved=1",
         "https://www.bbc.co.uk/news/a"),
        ("https://l.facebook.com/l.php?u=https%3A%2F%2Fexample.org%2Fa%3Fid%3D2&h=AT", "https://example.org/a?id=2"),
        ("https://out.reddit.com/t3_x?url=http%3A%2F%2Fnews.example.com%2Fs&token=1", "http://news.example.com/s"),
    ],
)  # fmt: skip
def test_redirect_wrappers_are_undone_offline(wrapped: str, target: str) -> None:
    assert canonicalize(wrapped) == target


def test_wrappers_never_unwrap_to_other_schemes() -> None:
    assert canonicalize("https://www.google.com/url?q=javascript:alert(1)").startswith(
        "https://www.google.com/url"
    )
