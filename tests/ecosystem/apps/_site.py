"""A small website served from a thread on 127.0.0.1: 20 pages linked to each other."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PAGES = 20


def links(i: int) -> list[int]:
    return [(i * 2 + 1) % PAGES, (i * 3 + 2) % PAGES]


def reachable() -> list[str]:
    """Titles of the pages a crawl from page 0 must find."""
    seen, todo = {0}, [0]
    while todo:
        for j in links(todo.pop()):
            if j not in seen:
                seen.add(j)
                todo.append(j)
    return sorted(f"Page {i}" for i in seen)


def page(i: int) -> bytes:
    anchors = "".join(f'<a href="/page{j}.html">page {j}</a>' for j in links(i))
    return f"<html><body><h1>Page {i}</h1>{anchors}</body></html>".encode()


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        name = self.path.strip("/")
        if not (name.startswith("page") and name.endswith(".html")):
            self.send_error(404)
            return
        body = page(int(name[4:-5]))
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def serve() -> int:
    """Start the site in a daemon thread; return its port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return int(server.server_address[1])
