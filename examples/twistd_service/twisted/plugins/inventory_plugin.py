"""The inventory service as a twist plugin: ``twist --reactor=bridges inventory``.

Twisted finds plugins in ``twisted/plugins/`` directories on the path (no
``__init__.py`` here), so run it from this directory with ``PYTHONPATH=.``.
"""

from __future__ import annotations

from typing import ClassVar

from twisted.application import service, strports
from twisted.application.service import ServiceMaker
from twisted.python import usage


class Options(usage.Options):
    optParameters: ClassVar[list[list[str]]] = [
        ["port", "p", "8010", "the TCP port to serve on (0: any free one)"]
    ]


def makeService(options: Options) -> service.IService:
    import inventory

    stock = inventory.Stock()
    top = service.MultiService()
    inventory.Restocker(stock).setServiceParent(top)
    endpoint = f"tcp:{options['port']}:interface=127.0.0.1"
    strports.service(endpoint, inventory.site(stock)).setServiceParent(top)
    return top


# twist finds this object; it looks Options and makeService up in this module.
inventory = ServiceMaker(
    "inventory", "twisted.plugins.inventory_plugin", "the inventory example service", "inventory"
)
