"""Step 1: the service as it runs today: monkey-patched eventlet, its own hub, ``eventlet.wsgi``.

python step1_eventlet.py [--port 8000]
python step1_eventlet.py --self-test
"""

from __future__ import annotations

import eventlet

eventlet.monkey_patch()

import contextlib  # noqa: E402
import sys  # noqa: E402

import eventlet.wsgi  # noqa: E402
import legacy_service  # noqa: E402
import selftest  # noqa: E402


def main() -> int:
    port, self_test = selftest.options(__doc__)
    listener = eventlet.listen(("127.0.0.1", port))
    port = listener.getsockname()[1]
    app = legacy_service.make_app(legacy_service.legacy_greet)
    print(f"step 1 (eventlet): http://127.0.0.1:{port}/greet?name=ada", flush=True)
    server = eventlet.spawn(eventlet.wsgi.server, listener, app, log_output=False)
    if self_test:
        ok = eventlet.spawn(selftest.check, port, "eventlet", "eventlet").wait()
        server.kill()
        return 0 if ok else 1
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends the service
        server.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
