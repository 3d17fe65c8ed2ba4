"""Exports loaded on first use (PEP 562), for the packages' ``__init__`` modules.

A package lists ``{name: module}`` and takes its ``__getattr__`` and ``__dir__`` from
:func:`lazy_exports`: importing the package imports none of those modules, so a command
such as ``mystic status`` (which must answer within 1 s, interpreter start-up included)
pays only for what it uses. Once loaded, a name is an ordinary attribute of the package.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, lazy: Mapping[str, str]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package`` that load ``lazy[name]`` on first use."""

    def __getattr__(name: str) -> object:
        module = lazy.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *lazy})

    return __getattr__, __dir__
