"""A WSGI app starting its own Twisted listener from a startup hook, on a socket gunicorn bound."""

import json
import os

from bridges import gunicorn as bgu


@bgu.on_startup
def serve_twisted(worker: bgu.HubWorker) -> None:
    from twisted.internet import reactor
    from twisted.web import resource, server

    class Pid(resource.Resource):
        isLeaf = True

        def render_GET(self, request: object) -> bytes:
            return json.dumps({"server": "twisted", "pid": os.getpid()}).encode()

    sock = worker.claim_listener(os.environ["TWISTED_ADDR"])
    reactor.adoptStreamPort(sock.fileno(), sock.family, server.Site(Pid()))


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({"server": "wsgi", "pid": os.getpid()}).encode()]
