"""Step 1: the service as it was -- plain Twisted, with its own ``reactor.run()``.

python step1_twisted.py [--port 8000]
python step1_twisted.py --self-test
"""

from __future__ import annotations

import sys
from typing import Any

import selftest


def make_site() -> Any:
    import legacy_service

    return legacy_service.make_site()


if __name__ == "__main__":
    sys.exit(selftest.serve(__doc__, make_site, [("greet", "twisted", "twisted")]))
