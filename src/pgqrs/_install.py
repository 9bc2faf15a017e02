"""Refusing a mixed install: this package (distribution `pgqrs-py`) and the Rust project's wheel
(distribution `pgqrs`) both install the import package `pgqrs`, so whichever was installed last
overwrites files of the other and neither works reliably (README, "Install")."""

from __future__ import annotations

import importlib.metadata

FIX = "pip uninstall -y pgqrs pgqrs-py && pip install pgqrs-py"


def refuse_mixed_install() -> None:
    """Raise ImportError, saying what to run, when a distribution named `pgqrs` is installed."""
    try:
        other = importlib.metadata.distribution("pgqrs")
    except importlib.metadata.PackageNotFoundError:
        return
    raise ImportError(
        f"pgqrs {other.version} (the Rust project's wheel) is installed beside pgqrs-py; both "
        f"provide the import name `pgqrs` and cannot be installed together. Keep pgqrs-py: {FIX}"
    )


def refuse_foreign_package(found: object, ours: object) -> None:
    """Raise ImportError when `pgqrs/__init__.py` is not ours (`found`, the package's
    `connect_with`, is not `ours`, the one in pgqrs.client): another wheel overwrote or
    removed it, so the submodules this package imports from it are missing."""
    if found is not ours:
        raise ImportError(
            "the package `pgqrs` on sys.path is not (all) pgqrs-py's: its __init__.py was "
            f"overwritten or removed by another wheel named pgqrs. Reinstall: {FIX}"
        )


refuse_mixed_install()
