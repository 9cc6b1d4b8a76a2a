# A Twisted service as twistd runs it, now on the bridges hub.
#
#     twistd -n --reactor=bridges -y service.tac      # foreground, Ctrl-C or SIGTERM stops it
#     twistd --reactor=bridges -y service.tac         # daemonized, with twistd.pid and twistd.log
#
# Without --reactor=bridges this is plain Twisted; with it, the same file runs
# on an asyncio loop, and the parts marked "new" are asyncio code added to the
# old service. Set INVENTORY_PORT to choose the port (default 8010; 0 = any free one).
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from twisted.application import service, strports  # noqa: E402

import inventory  # noqa: E402

application = service.Application("inventory")
stock = inventory.Stock()
inventory.Restocker(stock).setServiceParent(application)  # new: an asyncio coroutine
port = os.environ.get("INVENTORY_PORT", "8010")
strports.service(f"tcp:{port}:interface=127.0.0.1", inventory.site(stock)).setServiceParent(
    application
)
