"""gevent.monkey.patch_all() before bridges.run: each test in its own process."""

from __future__ import annotations

from pathlib import Path

import pytest
from _gevent_helpers import run_patched

pytestmark = pytest.mark.timeout(90)


def test_time_sleep_in_greenlets_runs_beside_asyncio_sleeps_after_patch_all(
    tmp_path: Path,
) -> None:
    outcome = run_patched(
        tmp_path,
        """
        import asyncio, time
        import gevent, bridges

        async def main():
            glets = [gevent.spawn(lambda i=i: (time.sleep(0.2), i)[1]) for i in range(20)]
            tasks = [asyncio.sleep(0.2, result=i) for i in range(20)]
            # one after another, 40 sleeps of 0.2 s would take 8 s
            results = await asyncio.wait_for(
                asyncio.gather(*(bridges.awaitable(g) for g in glets), *tasks), 4
            )
            return sum(results)

        print(json.dumps(bridges.run(main, frameworks=["gevent"])))
        """,
    )
    assert outcome == 2 * sum(range(20))


def test_asyncio_to_thread_and_getaddrinfo_use_real_os_threads_after_patch_all(
    tmp_path: Path,
) -> None:
    outcome = run_patched(
        tmp_path,
        """
        import asyncio
        import bridges
        from gevent.monkey import get_original

        native_id = get_original("_thread", "get_native_id")

        async def main():
            loop = asyncio.get_running_loop()
            worker = await asyncio.to_thread(native_id)
            infos = await loop.getaddrinfo("127.0.0.1", 80)
            return [worker != native_id(), infos[0][4][0]]

        print(json.dumps(bridges.run(main, frameworks=["gevent"])))
        """,
    )
    assert outcome == [True, "127.0.0.1"]


def test_patched_sockets_in_greenlets_talk_to_asyncio_servers_and_back(tmp_path: Path) -> None:
    outcome = run_patched(
        tmp_path,
        """
        import asyncio, socket
        import gevent, gevent.server, bridges

        async def upper(reader, writer):
            writer.write((await reader.readline()).upper())
            await writer.drain()
            writer.close()

        def greenlet_client(port):
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.sendall(b"from a greenlet\\n")
                return sock.makefile("rb").readline().decode()

        def echo(sock, _address):
            data = sock.recv(1024)
            sock.sendall(data)
            sock.close()

        async def main():
            server = await asyncio.start_server(upper, "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            first = await bridges.awaitable(gevent.spawn(greenlet_client, port))
            server.close()
            await server.wait_closed()
            gserver = gevent.server.StreamServer(("127.0.0.1", 0), echo)
            gserver.start()
            reader, writer = await asyncio.open_connection("127.0.0.1", gserver.server_port)
            writer.write(b"from a task")
            second = (await reader.read(100)).decode()
            writer.close()
            gserver.stop()
            return [first, second]

        print(json.dumps([bridges.run(main, frameworks=["gevent"]) for _ in range(2)]))
        """,
    )
    assert outcome == [["FROM A GREENLET\n", "from a task"]] * 2


def test_patch_all_works_with_uvloop_once_uvloop_knows_the_main_thread(tmp_path: Path) -> None:
    pytest.importorskip("uvloop")
    outcome = run_patched(
        tmp_path,
        before_patch="""
        # uvloop learns the main thread's id from threading on first use; after
        # patch_all that id is a greenlet's, and uvloop then refuses signal
        # handlers. One use before patching fixes the id (see docs/gevent.md).
        import signal, uvloop
        primer = uvloop.new_event_loop()
        primer.add_signal_handler(signal.SIGUSR2, lambda: None)
        primer.close()
        """,
        body="""
        import asyncio, time
        import gevent, bridges
        from bridges import gevent as bg

        def in_greenlet():
            time.sleep(0.01)
            return bg.wait(asyncio.sleep(0.01, result="uv"))

        async def main():
            return await bridges.awaitable(gevent.spawn(in_greenlet))

        print(json.dumps(bridges.run(main, frameworks=["gevent"], loop_factory="uvloop")))
        """,
    )
    assert outcome == "uv"


def test_an_unhandled_greenlet_error_is_reported_once_after_patch_all(tmp_path: Path) -> None:
    outcome = run_patched(
        tmp_path,
        """
        import asyncio
        import gevent, bridges

        class Boom(Exception):
            pass

        def fails():
            raise Boom("unhandled")

        async def main():
            reports = []
            asyncio.get_running_loop().set_exception_handler(lambda l, c: reports.append(c))
            gevent.spawn(fails)
            await asyncio.sleep(0.05)
            return [type(r.get("exception")).__name__ for r in reports]

        print(json.dumps(bridges.run(main, frameworks=["gevent"])))
        """,
    )
    assert outcome == ["Boom"]


def test_a_gevent_subprocess_that_exits_later_is_reaped_after_patch_all(tmp_path: Path) -> None:
    # gevent's patched signal.signal() keeps SIGCHLD handlers to itself: the
    # loop must still be woken when the child exits after wait() began.
    outcome = run_patched(
        tmp_path,
        """
        import gevent, gevent.subprocess, bridges

        def scenario():
            child = gevent.subprocess.Popen(
                [sys.executable, "-c", "import sys, time; time.sleep(0.3); sys.exit(6)"]
            )
            with gevent.Timeout(10):
                return child.wait()

        async def main():
            return await bridges.awaitable(gevent.spawn(scenario))

        print(json.dumps(bridges.run(main, frameworks=["gevent"])))
        """,
    )
    assert outcome == 6


def test_an_application_sigchld_handler_still_runs_after_gevent_reaped_a_child(
    tmp_path: Path,
) -> None:
    # The loop's own SIGCHLD registration must not reset, through gevent's
    # patched signal.signal(), the handler the application installed.
    outcome = run_patched(
        tmp_path,
        """
        import os, signal
        import gevent, bridges

        calls = []

        def scenario():
            signal.signal(signal.SIGCHLD, lambda signum, frame: calls.append(signum))
            child = gevent.subprocess.Popen([sys.executable, "-c", "pass"])
            child.wait()
            with gevent.Timeout(10):
                while not calls:
                    gevent.sleep(0.01)
            return calls[0] == signal.SIGCHLD

        async def main():
            return await bridges.awaitable(gevent.spawn(scenario))

        import gevent.subprocess
        print(json.dumps(bridges.run(main, frameworks=["gevent"])))
        """,
    )
    assert outcome is True


def test_the_blocking_detector_names_a_busy_greenlet_after_patch_all(tmp_path: Path) -> None:
    outcome = run_patched(
        tmp_path,
        """
        import asyncio, time
        import gevent, bridges

        def crunch():
            # CPU-bound: no gevent call, so no other greenlet (nor the loop) runs
            until = time.perf_counter() + 0.5
            while time.perf_counter() < until:
                pass

        async def main():
            reports = []
            bridges.current_hub().watchdog.listeners.append(reports.append)
            await bridges.awaitable(gevent.spawn(crunch))
            return [(r.framework, r.function.rsplit(".", 1)[-1]) for r in reports]

        print(json.dumps(bridges.run(main, frameworks=["gevent"], slow_callback=0.1)))
        """,
    )
    assert outcome == [["gevent", "crunch"]]


@pytest.mark.parametrize("accounting", ["on", "exact"])
def test_asyncio_busy_time_is_measured_on_a_loop_made_after_patch_all(
    tmp_path: Path, accounting: str
) -> None:
    outcome = run_patched(
        tmp_path,
        f"""
        import asyncio, time
        import gevent, bridges

        async def main():
            until = time.thread_time() + 0.2
            while time.thread_time() < until:  # asyncio's own work, on the loop
                pass
            await asyncio.sleep(0)
            stats = bridges.current_hub().stats()
            return stats["frameworks"]["asyncio"]["seconds"], stats["loop_passes"]

        print(json.dumps(bridges.run(main, frameworks=["gevent"], accounting="{accounting}")))
        """,
    )
    seconds, passes = outcome
    assert seconds >= 0.2
    if accounting == "exact":  # the patched loop's select is timed and counted
        assert passes >= 1
    else:  # busy time is the loop thread's CPU time: no passes counted
        assert passes is None
