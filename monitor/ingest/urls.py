"""URL canonicalisation and stable ids.

An article is identified by its canonical URL, so everything that decides
"have we seen this before" goes through :func:`canonicalize`.
"""

from __future__ import annotations

import contextlib
import hashlib
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

# Query parameters that only identify the click, never the document.
# Kept in one place so that canonicalisation and its tests agree.
TRACKING_PARAMS: frozenset[str] = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "yclid",
        "mc_cid",
        "mc_eid",
        "ocid",
        "cmpid",
        "icid",
        "ito",
        "ns_mchannel",
        "ns_source",
        "ns_campaign",
        "ns_linkname",
        "ns_fee",
        "at_medium",
        "at_campaign",
        "at_custom1",
        "at_custom2",
        "at_custom3",
        "at_custom4",
        "taid",
        "_ga",
        "_gl",
        "igshid",
        "smid",
        "smtyp",
        "ref_src",
        "xtor",
    }
)
TRACKING_PREFIXES: tuple[str, ...] = ("utm_", "pk_", "mtm_", "hsa_", "_hs")

# Redirect wrappers that carry their target in a query parameter, so they can be undone
# without a request: (host suffix, path prefix, parameter).
WRAPPERS: tuple[tuple[str, str, str], ...] = (
    ("google.com", "/url", "q"),
    ("google.com", "/url", "url"),
    ("facebook.com", "/l.php", "u"),
    ("l.messenger.com", "/l.php", "u"),
    ("out.reddit.com", "/", "url"),
    ("news.url.google.com", "/url", "url"),
    ("feedproxy.feedburner.com", "/", "url"),
    ("t.umblr.com", "/redirect", "z"),
    ("r.search.yahoo.com", "/", "RU"),
    ("safelinks.protection.outlook.com", "/", "url"),
)

DEFAULT_PORTS = {"http": 80, "https": 443}
ALLOWED_SCHEMES = frozenset({"http", "https"})


class InvalidURL(ValueError):
    """Raised when a string is not an absolute http(s) URL."""


def is_tracking_param(name: str) -> bool:
    """Tell whether a query parameter name only tracks the click.

    Args:
        name: the parameter name as it appears in the query string.

    Returns:
        True when the parameter is dropped by :func:`canonicalize`.
    """
    lowered = name.lower()
    return lowered in TRACKING_PARAMS or lowered.startswith(TRACKING_PREFIXES)


def unwrap(url: str, depth: int = 3) -> str:
    """Undo redirect wrappers whose target is in the URL itself (see ``WRAPPERS``).

    Args:
        url: a URL, possibly a wrapper such as ``https://www.google.com/url?q=...``.
        depth: how many nested wrappers to undo at most.

    Returns:
        The wrapped http(s) URL, or ``url`` unchanged.
    """
    for _ in range(depth):
        try:
            parts = urlsplit(url)
            host = (parts.hostname or "").lower()
        except ValueError:
            return url
        params = dict(parse_qsl(parts.query))
        for suffix, prefix, name in WRAPPERS:
            target = params.get(name, "")
            on_host = host == suffix or host.endswith("." + suffix)
            if on_host and parts.path.startswith(prefix) and _is_http(target):
                url = target
                break
        else:
            return url
    return url


def _is_http(value: str) -> bool:
    try:
        return urlsplit(value).scheme.lower() in ALLOWED_SCHEMES
    except ValueError:
        return False


def canonicalize(url: str) -> str:
    """Return the canonical form of an article or feed URL.

    Undoes redirect wrappers that carry their target (``unwrap``), lower-cases scheme
    and host, drops the fragment, default ports and tracking parameters, sorts the
    remaining query and normalises percent-escapes.
    Applying it twice gives the same result as applying it once.

    Args:
        url: an absolute http or https URL.

    Returns:
        The canonical URL.

    Raises:
        InvalidURL: the URL is not absolute http(s) or has no host.
    """
    try:
        parts = urlsplit(unwrap(url.strip()))
        hostname = parts.hostname
    except ValueError as exc:  # unbalanced brackets, bad IPv6 literal, invalid characters
        raise InvalidURL(f"malformed URL {url!r}: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise InvalidURL(f"not an http(s) URL: {url!r}")
    host = (hostname or "").rstrip(".")
    if not host:
        raise InvalidURL(f"URL has no host: {url!r}")
    with contextlib.suppress(UnicodeError):  # keep a host IDNA cannot encode as it is
        host = host.encode("idna").decode("ascii")
    # IDNA maps ideographic full stops to "."; strip again so canonicalising twice is stable.
    host = host.lower().rstrip(".")
    if not host:
        raise InvalidURL(f"URL has no host: {url!r}")
    try:
        port = parts.port
    except ValueError as exc:
        raise InvalidURL(f"bad port in URL: {url!r}") from exc
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None or port == DEFAULT_PORTS[scheme] else f"{host}:{port}"
    path = _normalise_path(parts.path)
    query_pairs = [
        (k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not is_tracking_param(k)
    ]
    query = urlencode(sorted(query_pairs), doseq=True, quote_via=quote)
    return urlunsplit((scheme, netloc, path, query, ""))


def _normalise_path(path: str) -> str:
    # Re-quote so that "%7E" and "~" or "a b" and "a%20b" compare equal.
    path = quote(unquote(path), safe="/:@!$&'()*+,;=~-._")
    return path or "/"


def stable_id(canonical_url: str) -> str:
    """Derive a short stable id from a canonical URL.

    Args:
        canonical_url: output of :func:`canonicalize` (or a feed URL).

    Returns:
        16 hex characters of the URL's SHA-256.
    """
    return hashlib.sha256(canonical_url.encode("utf-8")).hexdigest()[:16]
