"""The loop class alone: GEVENT_LOOP=bridges.gevent.AsyncioLoop (conformance mode)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from _gevent_helpers import run_script

pytestmark = pytest.mark.timeout(60)

STANDALONE = {"GEVENT_LOOP": "bridges.gevent.AsyncioLoop"}


def test_plain_gevent_code_runs_on_the_asyncio_loop_class_and_raises_loop_exit(
    tmp_path: Path,
) -> None:
    outcome = run_script(
        tmp_path,
        textwrap.dedent(
            """
            import json
            import gevent, gevent.event, gevent.server, gevent.socket

            def echo(sock, _address):
                sock.sendall(sock.recv(100))
                sock.close()

            loop_class = type(gevent.get_hub().loop).__name__
            gevent.sleep(0.01)
            spawned = gevent.spawn(lambda: 5).get()
            server = gevent.server.StreamServer(("127.0.0.1", 0), echo)
            server.start()
            client = gevent.socket.create_connection(("127.0.0.1", server.server_port))
            client.sendall(b"hi")
            echoed = client.recv(10).decode()
            client.close()
            server.stop()
            try:
                gevent.event.Event().wait()
                loop_exit = False
            except gevent.exceptions.LoopExit:
                loop_exit = True
            print(json.dumps([loop_class, spawned, echoed, loop_exit]))
            """
        ),
        env=STANDALONE,
    )
    assert outcome == ["AsyncioLoop", 5, "hi", True]


def test_destroying_a_hub_of_another_thread_unwinds_it_at_once(tmp_path: Path) -> None:
    # HubDestroyed raised inside a callback used to be swallowed by asyncio's
    # run_forever(), leaving the destroyed hub running its loop.
    outcome = run_script(
        tmp_path,
        textwrap.dedent(
            """
            import json, threading
            import gevent

            def in_thread(results):
                hub = gevent.get_hub()
                glet = gevent.spawn(gevent.sleep, 0.01)
                glet.join()
                hub.destroy(destroy_loop=True)
                results.append(hub.dead)

            results = []
            thread = threading.Thread(target=in_thread, args=(results,))
            thread.start()
            thread.join(10)
            print(json.dumps([thread.is_alive(), results]))
            """
        ),
        env=STANDALONE,
    )
    assert outcome == [False, [True]]


def test_a_hub_of_another_thread_refuses_child_watchers_as_libev_does(tmp_path: Path) -> None:
    # gevent.subprocess relies on this TypeError to say it cannot run there.
    outcome = run_script(
        tmp_path,
        textwrap.dedent(
            """
            import json, threading
            import gevent

            seen = []

            def in_thread():
                try:
                    gevent.get_hub().loop.child(1)
                except TypeError as exc:
                    seen.append(str(exc))

            thread = threading.Thread(target=in_thread)
            thread.start()
            thread.join()
            main_watcher = type(gevent.get_hub().loop.child(1)).__name__
            print(json.dumps([seen, main_watcher]))
            """
        ),
        env=STANDALONE,
    )
    assert outcome == [["child watchers are only available on the default loop"], "_Child"]


def test_importing_bridges_gevent_does_not_import_gevent() -> None:
    # gevent imports bridges.gevent.AsyncioLoop while it is itself half imported
    # (GEVENT_LOOP): the package must not import gevent until a name needs it.
    import subprocess
    import sys

    script = (
        "import sys, bridges.gevent as bg\n"
        "before = 'gevent' in sys.modules\n"
        "bg.spawn\n"
        "print(before, 'gevent.hub' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    ).stdout.split()
    assert out == ["False", "True"]
