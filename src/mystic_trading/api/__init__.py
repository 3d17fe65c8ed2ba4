"""The HTTP service of ``mystic serve``: one Starlette app over one MarketData.

``create_app(settings)`` builds it; ``serve(settings, host=..., port=..., workers=...)``
runs it under uvicorn (uvloop, httptools). Routes: ``/api/v3/`` (Binance's public market
data, answered through MarketData's layers), ``/livez``, ``/readyz``, ``/metrics``.
Nothing is created at import.
"""

from mystic_trading.api._app import create_app
from mystic_trading.api._serve import check_bind, serve

__all__ = ["check_bind", "create_app", "serve"]
