"""How the embedded broker delivers as a topic grows: the floor under the latency benchmark.

    python -m bench.broker [--rate 1000] [--seconds 40] [--json PATH]

No agentwatch code runs here: one aiokafka producer writes ``--rate`` small records/s to a
4-partition topic of the embedded broker (Tansu, in-memory), one aiokafka group consumer reads
them (``fetch_max_wait_ms`` 10, as the worker), and each record's time from before ``send`` to
its arrival at the consumer is bucketed by 5 s window of the run, with the broker's CPU per
window. On these machines the delivery time grows with the topic's length (and the broker's
CPU with it): that growth, not the pipeline, is what makes the latency benchmark's long runs
slow down. Apache Kafka finds a fetch offset through its log index and does not slow down
this way, so latency figures from the embedded broker are upper bounds for the broker's share.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

from rich.console import Console
from rich.table import Table

from bench.common import EMBEDDED_BROKER, machine, percentile, process_cpu_seconds, write_json

WINDOW = 5.0


def _pct(values: list[float], q: float) -> float:
    return round(percentile(values, q) or 0.0, 1)  # windows are never empty


async def _measure(bootstrap: str, broker_pid: int | None, rate: int, seconds: float) -> list[dict[str, Any]]:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic("floor", 4, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=2)
    consumer = AIOKafkaConsumer("floor", bootstrap_servers=bootstrap, group_id="floor", fetch_max_wait_ms=10,
                                auto_offset_reset="earliest")
    await producer.start()
    await consumer.start()
    windows: dict[int, list[float]] = {}
    cpu: dict[int, float | None] = {}
    start = time.time()
    total = int(rate * seconds)

    async def consume() -> None:
        seen = 0
        while seen < total:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                now = time.time()
                for r in records:
                    sent = float(r.value)
                    windows.setdefault(int((sent - start) // WINDOW), []).append((now - sent) * 1000)
                seen += len(records)

    reader = asyncio.ensure_future(consume())
    try:
        n = 0
        while n < total:
            elapsed = time.time() - start
            w = int(elapsed // WINDOW)
            if w not in cpu:
                cpu[w] = process_cpu_seconds(broker_pid)
            due = min(total, int(elapsed * rate) + 1)
            while n < due:
                await producer.send("floor", str(time.time()).encode(), key=str(n % 500).encode())
                n += 1
            await asyncio.sleep(0.005)
        end = process_cpu_seconds(broker_pid)
        last = int((time.time() - start) // WINDOW)
        cpu.setdefault(last, end)
        cpu[last + 1] = end
        await asyncio.wait_for(reader, timeout=seconds * 4 + 30)
    finally:
        reader.cancel()
        await producer.stop()
        await consumer.stop()
    rows = []
    for w, values in sorted(windows.items()):
        if w * WINDOW >= seconds:
            continue  # the last few records' partial window
        a, b = cpu.get(w), cpu.get(w + 1)
        rows.append({"from_s": w * WINDOW, "records": len(values), "p50_ms": _pct(values, 0.5),
                     "p99_ms": _pct(values, 0.99), "max_ms": round(max(values), 1),
                     "broker_cpu_cores": None if a is None or b is None else round((b - a) / WINDOW, 2)})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.broker", description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=int, default=1000, help="records/s")
    ap.add_argument("--seconds", type=float, default=40.0, help="how long to produce")
    ap.add_argument("--json", help="write results here")
    args = ap.parse_args(argv)
    from pipeline.broker import EmbeddedBroker

    with EmbeddedBroker() as broker:
        rows = asyncio.run(_measure(broker.bootstrap, broker.pid, args.rate, args.seconds))
    table = Table(title=f"embedded broker: produce -> consume at {args.rate}/s (ms)")
    for col in ("from s", "records", "p50", "p99", "max", "broker cpu"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(f"{r['from_s']:g}", str(r["records"]), str(r["p50_ms"]), str(r["p99_ms"]), str(r["max_ms"]),
                      str(r["broker_cpu_cores"]))
    Console().print(table)
    write_json(args.json, {"benchmark": "broker", "rate": args.rate, "seconds": args.seconds, "windows": rows,
                           "machine": {**machine(), "broker": EMBEDDED_BROKER},
                           "command": "python -m bench.broker " + " ".join(argv if argv is not None else sys.argv[1:])})
    return 0


if __name__ == "__main__":
    sys.exit(main())
