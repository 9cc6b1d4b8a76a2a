"""The legacy daemon: an asynchat line service written for ``asyncore.loop()``.  Never edited.

Clients send one command per line: ``ADD <text>`` stores a note, ``LIST``
returns them, ``QUIT`` closes the connection.

    python legacy_daemon.py [--port 7000]      # the old way: asyncore.loop() forever
"""

from __future__ import annotations

import argparse
import asynchat
import asyncore
from typing import Any


class NotesChannel(asynchat.async_chat):
    def __init__(self, sock: Any, server: NotesServer) -> None:
        super().__init__(sock)
        self.server = server
        self.incoming: list[bytes] = []
        self.set_terminator(b"\n")
        server.stats["connections"] += 1
        server.stats["open"] += 1

    def collect_incoming_data(self, data: bytes) -> None:
        self.incoming.append(data)

    def found_terminator(self) -> None:
        line = b"".join(self.incoming).decode(errors="replace").strip()
        self.incoming.clear()
        self.server.stats["commands"] += 1
        command, _, text = line.partition(" ")
        if command == "ADD":
            self.server.notes.append(text)
            self.push(f"OK {len(self.server.notes)}\n".encode())
        elif command == "LIST":
            self.push(("\n".join(self.server.notes) + "\n.\n").encode())
        elif command == "QUIT":
            self.push(b"BYE\n")
            self.close_when_done()
        else:
            self.push(f"ERR unknown command {command!r}\n".encode())

    def handle_close(self) -> None:
        self.server.stats["open"] -= 1
        self.close()


class NotesServer(asyncore.dispatcher):
    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__()
        self.notes: list[str] = []
        self.stats = {"connections": 0, "open": 0, "commands": 0}
        self.create_socket()
        self.set_reuse_addr()
        self.bind(address)
        self.listen(64)

    def handle_accepted(self, sock: Any, addr: Any) -> None:
        NotesChannel(sock, self)


def main() -> None:
    parser = argparse.ArgumentParser(description="the legacy notes daemon")
    parser.add_argument("--port", type=int, default=7000)
    args = parser.parse_args()
    NotesServer(("127.0.0.1", args.port))
    asyncore.loop()


if __name__ == "__main__":
    main()
