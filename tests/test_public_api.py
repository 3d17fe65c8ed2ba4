"""The package's public surface is what we mean it to be."""

from __future__ import annotations

import subprocess
import sys

import mystic_trading
from mystic_trading import errors


def test_exports_are_sorted_and_resolve() -> None:
    """__all__ is sorted and every name in it exists."""
    names = mystic_trading.__all__
    assert names == sorted(names)
    for name in names:
        assert hasattr(mystic_trading, name), name


def test_every_error_is_exported_and_under_mystic_error() -> None:
    """Each error class of errors.py is public and descends from MysticError."""
    classes = [getattr(errors, name) for name in errors.__all__]
    for cls in classes:
        assert issubclass(cls, errors.MysticError)
        assert cls.__name__ in mystic_trading.__all__


def test_error_tree_is_drawn_in_the_docstring() -> None:
    """The docstring's tree names every error class, so it cannot drift silently."""
    doc = errors.__doc__ or ""
    for name in errors.__all__:
        assert name in doc, name


def test_errors_carry_their_facts_as_attributes() -> None:
    """Retry and ban facts are attributes, not only words in the message."""
    assert errors.RateLimited("x", retry_after=3.0).retry_after == 3.0
    assert errors.Banned("x", until=123).until == 123
    assert errors.QueueFull("x", capacity=9).capacity == 9
    assert errors.UnknownSymbol("x", symbol="FOO/BAR").symbol == "FOO/BAR"
    assert isinstance(errors.InvalidRange("x"), ValueError)


def test_import_creates_nothing() -> None:
    """Importing the package opens no sockets, threads or settings."""
    code = (
        "import threading, sys; import mystic_trading; "
        "assert threading.active_count() == 1, threading.enumerate(); "
        "assert 'sqlalchemy' not in sys.modules and 'httpx' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
