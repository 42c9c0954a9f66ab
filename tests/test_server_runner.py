"""The uvicorn runner: TCP_NODELAY on accepted sockets, write coalescing, --uvicorn-opts."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys

import pytest
import uvloop

from tracklog.server.protocol import _CoalescingTransport, set_nodelay
from tracklog.server.runner import parse_uvicorn_opts


@pytest.mark.parametrize("loop_factory", [asyncio.new_event_loop, uvloop.new_event_loop])
def test_nodelay_and_one_send_per_loop_turn(loop_factory):
    """On both event loops uvicorn may use: the accepted socket gets TCP_NODELAY and the
    writes of one loop turn reach the peer as one payload."""
    seen: dict[str, object] = {}

    async def main() -> bytes:
        loop = asyncio.get_running_loop()
        done = loop.create_future()

        class Proto(asyncio.Protocol):
            def connection_made(self, transport):
                seen["set"] = set_nodelay(transport)
                sock = transport.get_extra_info("socket")
                seen["value"] = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
                coalescing = _CoalescingTransport(transport, loop)
                coalescing.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
                coalescing.write(b"{}")
                seen["buffered"] = coalescing._size
                coalescing.close()
                done.set_result(None)

        server = await loop.create_server(Proto, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await done
        data = await reader.read()
        writer.close()
        server.close()
        await server.wait_closed()
        return data

    loop = loop_factory()
    try:
        data = loop.run_until_complete(main())
    finally:
        loop.close()
    assert seen["set"] is True
    assert seen["value"] != 0
    assert seen["buffered"] == len(data)
    assert data.endswith(b"\r\n\r\n{}")


def test_parse_uvicorn_opts():
    assert parse_uvicorn_opts('--timeout-keep-alive 60 --no-access-log --limit-concurrency=50 '
                              '--root-path "/x y"') == {
        "timeout_keep_alive": 60, "access_log": False, "limit_concurrency": 50,
        "root_path": "/x y"}
    assert parse_uvicorn_opts(None) == {}
    with pytest.raises(ValueError, match="expected an option"):
        parse_uvicorn_opts("workers 3")


def test_cli_and_core_import_no_server_stack():
    """`import tracklog` and building the command line (with the server command) stay
    free of FastAPI, Starlette and uvicorn: they load only when the server runs."""
    import subprocess
    import sys

    code = (
        "import sys, tracklog, tracklog.cli, tracklog.validation\n"
        "from tracklog.plugins import load_plugins, pm\n"
        "load_plugins(); pm.hook.register_commands(cli=tracklog.cli.cli)\n"
        "assert 'server' in tracklog.cli.cli.commands\n"
        "print(sorted(m for m in ('fastapi', 'starlette', 'uvicorn') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


_ARENAS_PROBE = """
import ctypes, threading, sys
from tracklog.server.runner import configure
from tracklog.config import ServerConfig
if sys.argv[1] == "configured":
    configure(ServerConfig())
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
barrier = threading.Barrier(8)
def allocate():
    block = libc.malloc(65536)  # a thread's first malloc gets it an arena
    barrier.wait()
    libc.free(block)
threads = [threading.Thread(target=allocate) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
libc.malloc_stats()  # one "Arena N:" block per arena, on stderr
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc arenas")
def test_a_configured_server_process_keeps_two_malloc_arenas():
    """Eight threads allocating at once get eight malloc arenas of their own (where
    freed buffers stay resident) unless the server's configuration capped them at two."""
    def arenas(mode: str) -> int:
        out = subprocess.run([sys.executable, "-c", _ARENAS_PROBE, mode],
                             capture_output=True, text=True, check=True)
        return sum(line.startswith("Arena ") for line in out.stderr.splitlines())

    if "Arena 0:" not in subprocess.run(
            [sys.executable, "-c", "import ctypes; ctypes.CDLL(None).malloc_stats()"],
            capture_output=True, text=True).stderr:
        pytest.skip("not glibc's malloc")
    assert arenas("plain") > 2
    assert arenas("configured") <= 2
