"""An app whose import takes a while, telling the test when it began: to signal a booting worker."""

import os

from gevent import monkey

monkey.patch_all()

with open(os.environ["BOOT_MARKER_DIR"] + f"/{os.getpid()}", "w") as marker:
    marker.write("booting")
monkey.get_original("time", "sleep")(float(os.environ.get("BOOT_SECONDS", "2")))


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/json")])
    return [b'{"pid": %d}' % os.getpid()]
