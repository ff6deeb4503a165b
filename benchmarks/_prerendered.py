"""A server of pre-rendered simulator answers: the latency benchmark's near-zero-CPU server.

Run as ``python -m benchmarks._prerendered --clients N --devices D --latency S
--history-days H [--seed X]``: it renders, with the simulator, every answer an
audit of that fleet asks for (``list_clients``, each client's listings, each
``mob=1`` device's sessions), then serves them on 127.0.0.1 from memory, each
``latency`` seconds after its request arrived, and prints its URL. Bodies are
the simulator's, byte for byte (the ``created`` stamp is the render time).

Why: on a 2-core machine the simulator spends about 0.4 ms of CPU per call
(rendering, aiohttp), so at the ideal 2,000 calls a second it takes most of
a core from the client it is measuring. Against this server (about 0.1 ms per
call) the same audit shows what the client does with the machine to itself,
which tells the client's own cost apart from the contention. The target is
judged against the simulator, not this.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from urllib.parse import parse_qsl, urlsplit

from nsight_async.testing import SIMULATOR_API_KEY, SimulatedFleet, Simulator

_KEYS = ("clientid", "devicetype", "deviceid")


async def _render(fleet: SimulatedFleet) -> dict[tuple[str, ...], bytes]:
    sim = Simulator(fleet)

    async def body(**query: str) -> bytes:
        answer = await sim.handle(
            method="GET", path="/api/", query={"apikey": SIMULATOR_API_KEY, **query}
        )
        data = b"".join(answer.chunks)
        head = f"HTTP/1.1 {answer.status} OK\r\nContent-Type: text/xml; charset=utf-8\r\n"
        return f"{head}Content-Length: {len(data)}\r\n\r\n".encode() + data

    answers = {("list_clients",): await body(service="list_clients")}
    for client in fleet.clients:
        for kind in ("server", "workstation"):
            answers["list_devices_at_client", str(client.client_id), kind] = await body(
                service="list_devices_at_client", clientid=str(client.client_id), devicetype=kind
            )
    for device in fleet.iter_devices():
        if device.mob:
            answers["list_mob_sessions", str(device.device_id)] = await body(
                service="list_mob_sessions", deviceid=str(device.device_id)
            )
    return answers


class _Answering(asyncio.Protocol):
    def __init__(self, answers: dict[tuple[str, ...], bytes], latency: float) -> None:
        self._answers = answers
        self._latency = latency
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while b"\r\n\r\n" in self._buffer:
            head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
            target = head.split(b" ", 2)[1].decode("ascii")
            query = dict(parse_qsl(urlsplit(target).query))
            key = (query.get("service", ""), *(query[k] for k in _KEYS if k in query))
            answer = self._answers.get(key, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
            assert self._transport is not None
            asyncio.get_running_loop().call_later(self._latency, self._send, answer)

    def _send(self, answer: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(answer)


async def _serve(args: argparse.Namespace) -> None:
    fleet = SimulatedFleet(
        seed=args.seed, clients=args.clients, devices=args.devices, history_days=args.history_days
    )
    answers = await _render(fleet)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _Answering(answers, args.latency), "127.0.0.1", 0, backlog=1024
    )
    print(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--devices", type=int, required=True)
    parser.add_argument("--latency", type=float, required=True)
    parser.add_argument("--history-days", type=int, required=True)
    parser.add_argument("--seed", default="bench")
    args = parser.parse_args()
    runner = asyncio.run
    with contextlib.suppress(ImportError):
        import uvloop  # the simulator's own serve_forever uses it too

        runner = uvloop.run
    runner(_serve(args))


if __name__ == "__main__":
    main()
