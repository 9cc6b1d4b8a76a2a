"""Step 2: the same service, unchanged, on the hub: one line, ``bridges.twisted.install()``.

python step2_on_hub.py [--port 8000]
python step2_on_hub.py --self-test
"""

from __future__ import annotations

import sys
from typing import Any

import selftest

from bridges import twisted as bt


def make_site() -> Any:
    import legacy_service

    return legacy_service.make_site()


if __name__ == "__main__":
    bt.install()  # before anything imports twisted.internet.reactor: reactor.run() runs a hub
    sys.exit(selftest.serve(__doc__, make_site, [("greet", "twisted", "twisted")]))
