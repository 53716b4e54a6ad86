"""Package attributes imported on first use (PEP 562), so that importing a light submodule
(``hwmodels.errors`` at the CLI's start-up) does not load every heavy one the package exports."""

from __future__ import annotations

import sys
from importlib import import_module


def lazy_exports(package: str, exports: dict[str, str]):
    """``(__getattr__, __dir__)`` for ``package``, whose public names ``exports`` maps to the
    submodule defining each; a name is imported when first read and then kept on the package."""

    def __getattr__(name: str):
        if name not in exports:
            raise AttributeError(f"module '{package}' has no attribute '{name}'")
        value = getattr(import_module(f"{package}.{exports[name]}"), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *exports})

    return __getattr__, __dir__
