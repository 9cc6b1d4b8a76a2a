"""The TCP transports of the hub's reactor: Twisted's, with a ``write()`` that sends at once.

``listenTCP`` and ``connectTCP`` on the hub's reactor build :class:`Port` and
:class:`Connector`, whose connections are :class:`Server` and :class:`Client`:
Twisted's own classes with :class:`~bridges.twisted._compat.SendsAtOnce`
mixed in (see there for when a write is sent at once, and why that cannot be
told from Twisted's queued write flushed by the reactor).  Everything else,
``isinstance(transport, tcp.Server)`` included, is Twisted's.
"""

from __future__ import annotations

from twisted.internet import tcp

from ._compat import SendsAtOnce


class Server(SendsAtOnce, tcp.Server):
    """A server-side connection of :class:`Port`."""


class Client(SendsAtOnce, tcp.Client):
    """The connection of a :class:`Connector`."""


class Port(tcp.Port):
    """``reactor.listenTCP``'s listening port on the hub: its connections are :class:`Server`."""

    transport = Server


class Connector(tcp.Connector):
    """``reactor.connectTCP``'s connector on the hub: its connection is a :class:`Client`.

    Overrides ``tcp.Connector._makeTransport`` (Twisted 23.10 - 26.10), which
    builds ``Client(host, port, bindAddress, connector, reactor)``.
    """

    def _makeTransport(self) -> Client:
        return Client(self.host, self.port, self.bindAddress, self, self.reactor)
