"""Cost of incident tracking and the tamper-evident store.

    python -m bench.incidents [--incidents N] [--postgres DSN] [--json PATH]

Measures, median of 3 runs: the tracker (µs per alert handled, pure logic); the store's
``apply_outputs`` on SQLite (and PostgreSQL when ``--postgres`` is given) in records/s and chain
entries/s, writing batches the way the worker does (one transaction per batch); a replay of the
same outputs (everything already stored: the idempotent path); ``verify()`` in chain entries/s;
and an HTML evidence export of the whole store.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
import uuid
from typing import Any

from rich.console import Console
from rich.table import Table

from detectors.base import Event
from pipeline.incidents import IncidentTracker, open_store
from pipeline.incidents.evidence import ExportFilter, build_report, render_html
from pipeline.records import Output, deterministic_id, incident_id_for, iso_time
from pipeline.settings import IncidentSettings

T0 = 1_790_000_000.0


def _event(agent: str, n: int, ts: float) -> Event:
    data = {"schema_version": "1", "event_id": f"{agent}-{n}", "ts": iso_time(ts), "agent_id": agent,
            "owner": "alice@example.com", "session_id": "s", "environment": "prod", "enforcement_point": "gate-1",
            "action": {"kind": "shell", "tool": "bash", "command": f"cat /etc/shadow # {n}"}, "decision": "allow"}
    return Event(data=data, ts=ts)


def _alert(ev: Event, inc: str, n: int) -> Output:
    return Output("alerts", ev.agent_id, {
        "schema_version": "1", "alert_id": deterministic_id("alr_", ev.agent_id, n), "version": 1, "status": "open",
        "kind": "detection", "severity": ("medium", "high", "critical")[n % 3], "title": "credential access",
        "reason": "reads /etc/shadow", "agent_id": ev.agent_id, "owner": "alice@example.com",
        "enforcement_point": "gate-1", "detector": "rules", "rule_id": f"r{n % 5}", "count": 1,
        "first_seen": ev.data["ts"], "last_seen": ev.data["ts"], "event_ids": [ev.event_id],
        "risk": {"score": 40 + n % 60, "agent_risk": 40 + n % 60, "factors": []}, "incident_id": inc,
        "created_at": ev.data["ts"], "updated_at": ev.data["ts"]})


def workload(incidents: int, alerts_per: int = 5) -> tuple[list[Output], float]:
    """Tracker outputs for ``incidents`` agents with ``alerts_per`` alerts each, plus the tracker's
    µs per handled alert."""
    tr = IncidentTracker(IncidentSettings(), lambda: T0)
    outs: list[Output] = []
    t = time.perf_counter()
    for a in range(incidents):
        agent = f"agent-{a:05d}"
        first = _event(agent, 0, T0 + a)
        inc = incident_id_for(agent, first.event_id)
        for n in range(alerts_per):
            ev = first if n == 0 else _event(agent, n, T0 + a + n)
            al = _alert(ev, inc, n)
            outs.append(al)
            outs += tr.on_outputs(ev, [al])
    per_alert_us = (time.perf_counter() - t) / (incidents * alerts_per) * 1e6
    return outs, per_alert_us


def _median(values: list[float]) -> float:
    return statistics.median(values)


def bench_store(url_for: Any, outs: list[Output], batch: int = 500) -> dict[str, float]:
    apply_s, replay_s, verify_s, export_s, entries = [], [], [], [], 0
    for _ in range(3):
        url, cleanup = url_for()
        try:
            with open_store(url) as store:
                t = time.perf_counter()
                for i in range(0, len(outs), batch):
                    store.apply_outputs(outs[i : i + batch])
                apply_s.append(time.perf_counter() - t)
                t = time.perf_counter()
                for i in range(0, len(outs), batch):
                    store.apply_outputs(outs[i : i + batch])
                replay_s.append(time.perf_counter() - t)
                t = time.perf_counter()
                res = store.verify()
                verify_s.append(time.perf_counter() - t)
                assert res.ok
                entries = res.checked
                t = time.perf_counter()
                render_html(build_report(store, ExportFilter(), generated_at=T0))
                export_s.append(time.perf_counter() - t)
        finally:
            cleanup()
    return {
        "records": len(outs),
        "chain_entries": entries,
        "apply_records_per_s": round(len(outs) / _median(apply_s)),
        "apply_chain_entries_per_s": round(entries / _median(apply_s)),
        "replay_records_per_s": round(len(outs) / _median(replay_s)),
        "verify_entries_per_s": round(entries / _median(verify_s)),
        "html_export_s": round(_median(export_s), 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--incidents", type=int, default=500)
    ap.add_argument("--postgres", default=None, help="a PostgreSQL DSN to measure too")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    outs, tracker_us = workload(args.incidents)
    results: dict[str, Any] = {"tracker_us_per_alert": round(tracker_us, 2), "backends": {}}
    tmp = tempfile.mkdtemp(prefix="aw-bench-")

    def sqlite_url() -> tuple[str, Any]:
        path = os.path.join(tmp, f"{uuid.uuid4().hex}.db")
        return f"sqlite:///{path}", lambda: None

    results["backends"]["sqlite"] = bench_store(sqlite_url, outs)
    if args.postgres:
        import psycopg

        def pg_url() -> tuple[str, Any]:
            schema = f"aw_bench_{uuid.uuid4().hex[:10]}"

            def drop() -> None:
                with psycopg.connect(args.postgres, autocommit=True) as conn:
                    conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

            sep = "&" if "?" in args.postgres else "?"
            return f"{args.postgres}{sep}schema={schema}", drop

        results["backends"]["postgresql"] = bench_store(pg_url, outs)
    results["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "processor": platform.processor() or platform.machine(), "system": platform.platform()}
    results["workload"] = {"incidents": args.incidents, "alerts_per_incident": 5}
    table = Table(title=f"incidents ({results['machine']['cpus']} CPUs, Python {results['machine']['python']}), "
                        f"{args.incidents} incidents x 5 alerts")
    table.add_column("backend")
    for col in ("records", "chain entries", "apply rec/s", "apply entries/s", "replay rec/s", "verify entries/s", "HTML export s"):
        table.add_column(col, justify="right")
    for name, r in results["backends"].items():
        table.add_row(name, str(r["records"]), str(r["chain_entries"]), str(r["apply_records_per_s"]),
                      str(r["apply_chain_entries_per_s"]), str(r["replay_records_per_s"]),
                      str(r["verify_entries_per_s"]), str(r["html_export_s"]))
    Console().print(table)
    Console().print(f"tracker: {results['tracker_us_per_alert']} µs per alert handled")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
