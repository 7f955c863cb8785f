"""A TCP proxy on 127.0.0.1 that delays every chunk by a fixed time in each direction.

The sandbox's API server is on loopback, where a round trip costs nothing and its own CPU dominates;
a cluster in a cloud region is tens of milliseconds away. Through this proxy (TLS passes through
untouched) the benchmarks also measure what concurrency buys against a realistic round trip.

Run it as its own process (`spawn`), so the proxy's event loop never waits for the measured
client's GIL: in the same process, six writer threads delayed its deliveries by tens of ms.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading


class LatencyProxy:
    def __init__(self, target_port: int, one_way_ms: float) -> None:
        self.target_port = target_port
        self.delay = one_way_ms / 1000
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Each chunk keeps its order and arrives `delay` after it was read, like a long wire: chunks
        # in flight do not wait for each other.
        queue: asyncio.Queue = asyncio.Queue()
        loop = asyncio.get_running_loop()

        async def deliver() -> None:
            while (item := await queue.get()) is not None:
                due, data = item
                await asyncio.sleep(max(0.0, due - loop.time()))
                writer.write(data)
                await writer.drain()
            writer.close()

        sender = asyncio.ensure_future(deliver())
        try:
            while data := await reader.read(65536):
                queue.put_nowait((loop.time() + self.delay, data))
        except ConnectionError:
            pass
        finally:
            queue.put_nowait(None)
            await sender

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    def start(self) -> LatencyProxy:
        self._thread.start()
        self._ready.wait(5)
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)


def spawn(target_port: int, one_way_ms: float) -> tuple[subprocess.Popen, int]:
    """Start the proxy in a child process; return it and the port it listens on."""
    proc = subprocess.Popen([sys.executable, __file__, str(target_port), str(one_way_ms)],
                            stdout=subprocess.PIPE, text=True)
    return proc, int(proc.stdout.readline())


if __name__ == "__main__":
    proxy = LatencyProxy(int(sys.argv[1]), float(sys.argv[2])).start()
    print(proxy.port, flush=True)
    proxy._thread.join()
