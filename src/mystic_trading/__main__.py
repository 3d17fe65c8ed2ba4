"""``python -m mystic_trading`` is the ``mystic`` command."""

from mystic_trading.cli import main

main()
