"""Venue identity: which exchange a piece of data came from.

Everything Mystic keeps (candles, coverage, snapshots, exchangeInfo, the throttle level, its
audit, bans, and every Redis key for the cache and the quota) is keyed by a venue id, so the
built-in sandbox's synthetic market never answers for Binance's, nor one sandbox seed for
another (review C1: the Quickstart's demo wrote 3,576 sandbox candles that were later served
as Binance's "fetched once, ever").

The id comes from the exchange where it says who it is, else from the base URL:

- an exchange that declares itself in the ``X-Sandbox-Venue`` header (the built-in sandbox:
  ``sandbox-s<seed>-<hash of its market>``) is that venue, whatever its address;
- Binance's own spot hosts are ``binance-spot`` (api.binance.com, api1-4, api-gcp, and the
  public-data host data-api.binance.vision serve one market); its testnet is
  ``binance-spot-testnet``;
- anything else is ``binance-compatible@host:port``: a proxy, a test double, another
  exchange speaking Binance's API. Its data stays its own; an operator who knows a proxy
  forwards to Binance sets ``provider.venue = "binance-spot"``.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from mystic_trading.errors import ConfigError

__all__ = [
    "BINANCE_SPOT",
    "LEGACY_VENUE",
    "VENUE_HEADER",
    "declared_venue",
    "is_declared_venue",
    "is_known_exchange",
    "venue_from_url",
    "venue_of",
]

VENUE_HEADER = "X-Sandbox-Venue"
BINANCE_SPOT = "binance-spot"
# The one provider key of stores written before venues existed (migration 0002): its rows
# may be the sandbox's or Binance's, so no venue reads them.
LEGACY_VENUE = "binance"

_BINANCE_SPOT_HOSTS = frozenset(
    {
        "api.binance.com",
        "api1.binance.com",
        "api2.binance.com",
        "api3.binance.com",
        "api4.binance.com",
        "api-gcp.binance.com",
        "data-api.binance.vision",
    }
)
_TESTNET_HOSTS = frozenset({"testnet.binance.vision"})
# What a sandbox may declare: never a real exchange's id, nor the pre-venue key.
_DECLARED = re.compile(r"sandbox-[a-z0-9][a-z0-9-]{0,63}")


def venue_from_url(base_url: str) -> str:
    """The venue a base URL names when the exchange there does not say who it is."""
    parts = urlsplit(base_url)
    host = (parts.hostname or "").lower()
    if host in _BINANCE_SPOT_HOSTS:
        return BINANCE_SPOT
    if host in _TESTNET_HOSTS:
        return "binance-spot-testnet"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"binance-compatible@{host}:{port}"


def venue_of(base_url: str, declared: str | None) -> str:
    """The venue of the exchange at ``base_url`` that declared ``declared`` (or nothing)."""
    return declared if declared else venue_from_url(base_url)


def is_declared_venue(text: str) -> bool:
    """Whether ``text`` is a venue an exchange may declare (``sandbox-s<seed>-<hash>``)."""
    return _DECLARED.fullmatch(text) is not None


def is_known_exchange(base_url: str) -> bool:
    """Whether ``base_url`` is one of Binance's own hosts (which declare nothing)."""
    host = (urlsplit(base_url).hostname or "").lower()
    return host in _BINANCE_SPOT_HOSTS or host in _TESTNET_HOSTS


async def declared_venue(base_url: str, *, timeout_s: float) -> tuple[bool, str | None]:
    """Ask the exchange at ``base_url`` who it is: ``(reached, declared venue or None)``.

    One ``GET /api/v3/time`` (weight 1) outside the throttler, made once when a process
    opens, before anything is keyed; any HTTP answer counts as reached (its headers say).
    """
    import httpx  # here, not at the top: `mystic status` reads venue ids and never asks

    try:
        async with httpx.AsyncClient(timeout=timeout_s, trust_env=True) as client:
            response = await client.get(base_url.rstrip("/") + "/api/v3/time")
    except httpx.HTTPError:
        return False, None
    declared = response.headers.get(VENUE_HEADER) or None
    if declared is None and response.status_code >= 500:
        return False, None  # a proxy's 5xx says nothing of the exchange behind it
    if declared is not None and not is_declared_venue(declared):
        raise ConfigError(
            f"the exchange at {base_url} declares itself {declared[:80]!r} in {VENUE_HEADER}; "
            "only the built-in sandbox declares a venue, as sandbox-s<seed>-<hash>",
            setting="provider.base_url",
            value=base_url,
        )
    return True, declared
