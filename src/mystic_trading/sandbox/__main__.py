"""``python -m mystic_trading.sandbox``: run the sandbox exchange; flags mirror SandboxConfig."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from mystic_trading.errors import ConfigError
from mystic_trading.sandbox._config import SandboxConfig
from mystic_trading.sandbox._exchange import SandboxExchange
from mystic_trading.sandbox._server import run

__all__ = ["main", "parse_config"]


def parse_config(argv: Sequence[str] | None = None) -> SandboxConfig:
    """A :class:`SandboxConfig` from command-line flags."""
    d = SandboxConfig()
    p = argparse.ArgumentParser(
        prog="python -m mystic_trading.sandbox",
        description="Binance-compatible local exchange for public market data (loopback only).",
    )
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--host", default=d.host)
    p.add_argument("--port", type=int, default=d.port, help="0 picks a free port")
    p.add_argument("--weight-limit", type=int, default=d.weight_limit)
    p.add_argument("--window-s", type=int, default=d.window_s)
    p.add_argument("--raw-requests-limit", type=int, default=d.raw_requests_limit)
    p.add_argument("--ban-after", type=int, default=d.ban_after)
    p.add_argument("--ban-base-s", type=float, default=d.ban_base_s)
    p.add_argument("--ban-max-s", type=float, default=d.ban_max_s)
    p.add_argument("--latency-ms", type=float, default=d.latency_ms)
    p.add_argument("--jitter-ms", type=float, default=d.jitter_ms)
    p.add_argument("--error-rate", type=float, default=d.error_rate)
    p.add_argument(
        "--clock-skew-ms", type=int, default=d.clock_skew_ms, help="the exchange's clock offset"
    )
    p.add_argument(
        "--aggregation-lag-ms",
        type=int,
        default=d.aggregation_lag_ms,
        help="candles and tickers show trades only up to this long before the clock",
    )
    p.add_argument("--admin-token", default=None, help="generated when omitted")
    p.add_argument("--trust-forwarded-for", action="store_true")
    p.add_argument("--allow-remote", action="store_true", help="allow a non-loopback --host")
    p.add_argument("--log-level", default=d.log_level)
    a = p.parse_args(argv)
    return SandboxConfig(
        seed=a.seed,
        host=a.host,
        port=a.port,
        weight_limit=a.weight_limit,
        window_s=a.window_s,
        raw_requests_limit=a.raw_requests_limit,
        ban_after=a.ban_after,
        ban_base_s=a.ban_base_s,
        ban_max_s=a.ban_max_s,
        latency_ms=a.latency_ms,
        jitter_ms=a.jitter_ms,
        error_rate=a.error_rate,
        clock_skew_ms=a.clock_skew_ms,
        aggregation_lag_ms=a.aggregation_lag_ms,
        admin_token=a.admin_token,
        trust_forwarded_for=a.trust_forwarded_for,
        allow_remote=a.allow_remote,
        log_level=a.log_level,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until interrupted. The URL, admin token and venue go to stderr as one log line;
    a port in use is one error line and exit status 2."""
    try:
        config = parse_config(argv)
    except ConfigError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2
    logging.basicConfig(level=config.log_level.upper(), format="%(message)s")
    log = logging.getLogger("mystic_trading.sandbox")

    exchange = SandboxExchange(config)

    def ready(url: str, token: str) -> None:
        log.warning("sandbox ready url=%s admin_token=%s venue=%s", url, token, exchange.venue)

    try:
        run(exchange=exchange, on_ready=ready)
    except KeyboardInterrupt:
        return 0
    except ConfigError as exc:
        hint = "; choose another with --port (0 picks a free one)" if exc.setting == "port" else ""
        sys.stderr.write(f"error: {exc}{hint}\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
