"""What ``python -m bridges demo`` needs installed, checked before the demo is imported.

The demo imports every framework at module level.  After a partial install
(``.[twisted]``) that import would fail half-way, deep inside, with an error
such as ``No module named 'asynchat'``; this check names the extras instead.
"""

from __future__ import annotations

from ._adapter import _importable as importable

__all__ = ["DEMO_MODULES", "missing_message"]

DEMO_MODULES = {
    "asyncore": ("asyncore", "asynchat"),
    "gevent": ("gevent",),
    "tornado": ("tornado",),
    "twisted": ("twisted",),
}
"""The demo's frameworks, each with the modules it imports (its asyncore service is asynchat)."""


def missing_message() -> str | None:
    """One line naming the extras to install, or None when the demo can run."""
    missing = [
        f"tulip-bridges[{name}]"
        for name, modules in DEMO_MODULES.items()
        if not all(importable(module) for module in modules)
    ]
    if not missing:
        return None
    return (
        f"bridges demo: it needs {', '.join(missing)}, not installed here. Install every "
        "framework with: python -m pip install 'tulip-bridges[all]' (from a clone: "
        "python -m pip install '.[all]')"
    )
