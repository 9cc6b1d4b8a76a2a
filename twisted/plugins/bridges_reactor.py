"""Twisted reactor plugins: ``twistd --reactor=bridges`` and ``twist --reactor=bridges``.

Twisted's plugin system finds this file in ``twisted/plugins/`` (a directory
without ``__init__.py``, shipped in the wheel beside the ``bridges`` package).
Each ``Reactor`` names a module whose ``install()`` twistd calls before it
loads the service; the service then runs on a bridges hub.
"""

from twisted.application.reactors import Reactor

bridges = Reactor(
    "bridges",
    "bridges.twisted._installer",
    "the bridges hub: asyncio (stdlib loop) with Twisted and the other installed frameworks",
)
bridges_uvloop = Reactor(
    "bridges-uvloop",
    "bridges.twisted._installer_uvloop",
    "the bridges hub on uvloop",
)
