"""What ``twistd --reactor=bridges-uvloop`` installs: the hub's reactor, run on uvloop.

Importing uvloop here makes ``twistd --help-reactors`` list this reactor as not
available when uvloop is not installed.
"""

from __future__ import annotations

import uvloop  # noqa: F401 - the plugin is available only with uvloop installed

from ._installer import install as _install
from ._reactor import HubReactor


def install() -> HubReactor:
    """``bridges.twisted.install(loop_factory="uvloop")``."""
    return _install(loop_factory="uvloop")
