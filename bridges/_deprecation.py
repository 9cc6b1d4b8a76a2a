"""Old names kept for one release: a module ``__getattr__`` that warns and names the new one."""

from __future__ import annotations

import warnings
from typing import Any, Callable, Mapping, Optional

__all__ = ["renamed_getattr"]


def renamed_getattr(
    module: str,
    renamed: Mapping[str, str],
    resolve: Callable[[str], Any],
    fallback: Optional[Callable[[str], Any]] = None,
) -> Callable[[str], Any]:
    """A module ``__getattr__`` for the names in ``renamed`` (``{old: new}``).

    An old name warns with a ``DeprecationWarning`` that names the new one and
    returns ``resolve(new)``; any other name goes to ``fallback``, or is an
    ``AttributeError``.
    """

    def __getattr__(name: str) -> Any:
        new = renamed.get(name)
        if new is None:
            if fallback is not None:
                return fallback(name)
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        warnings.warn(
            f"{module}.{name} is deprecated; use {module}.{new}.",
            DeprecationWarning,
            stacklevel=2,
        )
        return resolve(new)

    return __getattr__
