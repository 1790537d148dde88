"""The incident store: tamper-evident, idempotent, SQLite or PostgreSQL through one code path.

``open_store("sqlite:///path.db")`` (one file, WAL journal) or
``open_store("postgresql://user@host/db?schema=name")`` returns an :class:`IncidentStore`. Both go
through :class:`_Database`, a small DB-API adapter that only differs in placeholders, column types,
how a writer takes the lock and how a reader gets a snapshot; every query is the same text.

What it keeps (tables ``aw_*``):

- ``aw_chain``: the hash chain (:mod:`pipeline.incidents.chain`) — every incident header version,
  timeline entry, alert version and analyst action, in append order. This is the evidence.
- ``aw_incidents``, ``aw_timeline``, ``aw_alerts``: projections for queries, each row pointing at
  the chain entry it came from; :meth:`IncidentStore.verify` checks them against the chain too.
- ``aw_head``: the last entry's position, id and hash (catches a deleted tail).
- ``aw_stats``: run figures per day (events processed, dead letters, ...) for the evidence export.

Writes are idempotent: timeline entries are keyed by their deterministic ``entry_id``, alert
versions by their content, and incident headers are merged (:func:`tracker.merge_headers`, order
independent) and only appended when the merge changes something. So replayed or duplicated
inputs, or the worker and an analyst's CLI writing the same decision, never duplicate anything.
Writers serialise on the head row (``BEGIN IMMEDIATE`` on SQLite, ``SELECT ... FOR UPDATE`` on
PostgreSQL), so the chain never forks. Nothing here reads the wall clock.

One store object may be used from several threads (the worker writes incidents and run figures
from worker threads): its connection is shared, so each transaction and each statement outside
one holds the store's lock. Without it two threads' transactions interleaved on the connection
("cannot start a transaction within a transaction"), which stopped a worker under load.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson

from detectors.base import Severity
from pipeline.errors import AgentwatchError
from pipeline.incidents.chain import (
    GENESIS_HASH,
    ChainRow,
    VerifyResult,
    canonical,
    make_entry,
    verify_chain,
)
from pipeline.incidents.tracker import (
    STATUS_RANK,
    TERMINAL,
    alert_risk,
    analyst_update,
    merge_headers,
    parse_time,
)
from pipeline.incidents.tracker import make_entry as make_timeline_entry
from pipeline.records import Output, deterministic_id

__all__ = ["IncidentStore", "StoreError", "open_store"]

_SCHEMA_VERSION = "1"
_PAGE = 2000


class StoreError(AgentwatchError):
    """The store cannot be opened or used; the message is one line."""


def _sev_rank(label: Any) -> int:
    try:
        return int(Severity.parse(label))
    except (ValueError, TypeError):
        return 0


def _loads(text: str | None) -> Any:
    return orjson.loads(text) if text else None


# -- the adapter --------------------------------------------------------------------------------


class _Database:
    """The few things SQLite and PostgreSQL do differently; SQL is written once with ``?``."""

    def __init__(self, url: str, schema: str | None = None) -> None:
        self._lock = threading.RLock()
        parts = urlsplit(url)
        scheme = parts.scheme.split("+")[0]
        self.url_for_humans = url.split("@")[-1] if "@" in url else url
        if scheme == "sqlite":
            self.dialect = "sqlite"
            path = url[len(parts.scheme) + 3 :] if url.startswith(parts.scheme + "://") else parts.path
            if path.startswith("/") and not path.startswith("//"):
                path = path[1:]  # sqlite:///rel.db -> rel.db ; sqlite:////abs.db -> /abs.db
            elif path.startswith("//"):
                path = path[1:]
            path = path.split("?")[0]
            if not path:
                raise StoreError(f"store URL {url!r} names no file (expected sqlite:///path.db)")
            if path != ":memory:":
                try:
                    Path(path).parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise StoreError(f"cannot create the directory for {path}: {exc.strerror}") from None
            try:
                conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot open the incident store {path}: {exc}") from None
            self.conn: Any = conn
            self.schema = None
        elif scheme in ("postgresql", "postgres"):
            self.dialect = "postgresql"
            query = dict(parse_qsl(parts.query))
            schema = schema or query.pop("schema", None)
            dsn = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))
            try:
                import psycopg

                self.conn = psycopg.connect(dsn.replace("postgresql+psycopg", "postgresql"), autocommit=True,
                                            connect_timeout=10)
            except Exception as exc:  # psycopg raises several types; the user needs one line
                raise StoreError(f"cannot connect to PostgreSQL at {self.url_for_humans}: {str(exc).strip().splitlines()[0]}") from None
            self.schema = schema
            if schema:
                if not (schema.replace("_", "a").isalnum() and schema.isascii() and len(schema) <= 63):
                    raise StoreError(f"invalid schema name {schema!r} (letters, digits and _ only)")
                self.conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
                self.conn.execute(f'SET search_path TO "{schema}"')
        else:
            raise StoreError(f"unsupported store URL {url!r}; use sqlite:///path.db or postgresql://...")

    # types and clauses
    @property
    def real(self) -> str:
        return "DOUBLE PRECISION" if self.dialect == "postgresql" else "REAL"

    @property
    def for_update(self) -> str:
        return " FOR UPDATE" if self.dialect == "postgresql" else ""

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.dialect == "postgresql" else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        with self._lock:
            return self.conn.execute(self._sql(sql), tuple(params))

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return list(self.execute(sql, params).fetchall())

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        with self._lock:
            return self.execute(sql, params).fetchone()  # type: ignore[no-any-return]

    @contextlib.contextmanager
    def write(self) -> Iterator[None]:
        """A write transaction holding the store's single writer lock (and, within this process,
        the connection's lock for its whole length)."""
        with self._lock:
            self.execute("BEGIN IMMEDIATE" if self.dialect == "sqlite" else "BEGIN")
            try:
                yield
            except BaseException:
                self.execute("ROLLBACK")
                raise
            self.execute("COMMIT")

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """A read transaction that sees one consistent state."""
        with self._lock:
            self.execute("BEGIN" if self.dialect == "sqlite" else "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                yield
            finally:
                self.execute("COMMIT")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.close()


def _ddl(db: _Database) -> list[str]:
    real = db.real
    return [
        """CREATE TABLE IF NOT EXISTS aw_head (id INTEGER PRIMARY KEY, seq BIGINT NOT NULL,
            entry_id TEXT, hash TEXT NOT NULL, schema_version TEXT NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS aw_chain (seq BIGINT PRIMARY KEY, entry_id TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL, incident_id TEXT, text TEXT NOT NULL, hash TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS aw_chain_kind ON aw_chain (kind, incident_id)",
        f"""CREATE TABLE IF NOT EXISTS aw_incidents (incident_id TEXT PRIMARY KEY, agent_id TEXT NOT NULL,
            owner TEXT, status TEXT NOT NULL, severity TEXT NOT NULL, severity_rank INTEGER NOT NULL,
            peak_risk {real} NOT NULL, assignee TEXT, opened_ts {real}, updated_ts {real},
            revision INTEGER NOT NULL, record TEXT NOT NULL, chain_seq BIGINT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS aw_incidents_agent ON aw_incidents (agent_id, opened_ts)",
        "CREATE INDEX IF NOT EXISTS aw_incidents_opened ON aw_incidents (opened_ts)",
        f"""CREATE TABLE IF NOT EXISTS aw_timeline (entry_id TEXT PRIMARY KEY, incident_id TEXT NOT NULL,
            ts_num {real}, type TEXT NOT NULL, entry TEXT NOT NULL, chain_seq BIGINT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS aw_timeline_incident ON aw_timeline (incident_id, ts_num)",
        f"""CREATE TABLE IF NOT EXISTS aw_alerts (alert_id TEXT PRIMARY KEY, agent_id TEXT NOT NULL,
            owner TEXT, severity TEXT NOT NULL, severity_rank INTEGER NOT NULL, risk {real} NOT NULL,
            first_ts {real}, last_ts {real}, incident_id TEXT, status TEXT NOT NULL,
            record TEXT NOT NULL, chain_seq BIGINT NOT NULL, ack TEXT, ack_seq BIGINT)""",
        "CREATE INDEX IF NOT EXISTS aw_alerts_agent ON aw_alerts (agent_id, last_ts)",
        "CREATE INDEX IF NOT EXISTS aw_alerts_last ON aw_alerts (last_ts)",
        """CREATE TABLE IF NOT EXISTS aw_stats (day TEXT NOT NULL, source TEXT NOT NULL,
            events BIGINT NOT NULL, dead_letters BIGINT NOT NULL, extra TEXT NOT NULL,
            PRIMARY KEY (day, source))""",
    ]


# -- projections: the columns derive from the record, so verify can recompute them ------------


def _incident_columns(record: dict[str, Any]) -> tuple[Any, ...]:
    return (
        str(record.get("agent_id") or ""),
        record.get("owner"),
        str(record.get("status") or "open"),
        str(record.get("severity") or "info"),
        _sev_rank(record.get("severity")),
        float(record.get("peak_risk") or 0),
        record.get("assignee"),
        parse_time(record.get("opened_at")),
        parse_time(record.get("updated_at")),
    )


def _alert_columns(alert: dict[str, Any]) -> tuple[Any, ...]:
    first = parse_time(alert.get("first_seen") or alert.get("created_at") or alert.get("ts"))
    last = parse_time(alert.get("last_seen") or alert.get("created_at") or alert.get("ts"))
    return (
        str(alert.get("agent_id") or ""),
        alert.get("owner"),
        str(Severity.parse(alert["severity"]).label if alert.get("severity") else "info"),
        _sev_rank(alert.get("severity")),
        alert_risk(alert),
        first,
        last if last is not None else first,
        alert.get("incident_id"),
    )


def _alert_is_older(new: dict[str, Any], old: dict[str, Any]) -> bool:
    """A grouped alert grows over time; an older version arriving late must not win."""
    def key(a: dict[str, Any]) -> tuple[int, float, int]:
        version, count = a.get("version"), a.get("count")
        return (version if isinstance(version, int) else 0, parse_time(a.get("last_seen")) or 0.0,
                count if isinstance(count, int) else 0)

    return key(new) < key(old)


@dataclass(slots=True)
class _Head:
    seq: int
    entry_id: str | None
    hash: str


# -- the store ----------------------------------------------------------------------------------


class IncidentStore:
    """Incidents, their timelines, alerts and run figures behind a hash chain. See module doc."""

    def __init__(self, db: _Database) -> None:
        self._db = db
        with db.write():
            for stmt in _ddl(db):
                db.execute(stmt)
            if db.one("SELECT seq FROM aw_head WHERE id = 1") is None:
                db.execute("INSERT INTO aw_head (id, seq, entry_id, hash, schema_version) VALUES (1, 0, NULL, ?, ?)",
                           (GENESIS_HASH, _SCHEMA_VERSION))
        self._head: _Head | None = None

    @property
    def dialect(self) -> str:
        return self._db.dialect

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> IncidentStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- chain plumbing (inside a write transaction) -------------------------------------------

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        db = self._db
        with db.write():
            row = db.one("SELECT seq, entry_id, hash FROM aw_head WHERE id = 1" + db.for_update)  # noqa: S608 (constant)
            assert row is not None
            self._head = _Head(int(row[0]), row[1], str(row[2]))
            start = self._head.seq
            yield
            head = self._head
            if head.seq != start:
                db.execute("UPDATE aw_head SET seq = ?, entry_id = ?, hash = ? WHERE id = 1",
                           (head.seq, head.entry_id, head.hash))
        self._head = None

    def _append(self, kind: str, entry_id: str, incident_id: str | None, body: dict[str, Any]) -> int:
        head = self._head
        assert head is not None, "chain appends happen inside _writing()"
        seq = head.seq + 1
        text, digest = make_entry(seq=seq, entry_id=entry_id, kind=kind, incident_id=incident_id,
                                  prev_id=head.entry_id, prev_hash=head.hash, body=body)
        self._db.execute("INSERT INTO aw_chain (seq, entry_id, kind, incident_id, text, hash) VALUES (?, ?, ?, ?, ?, ?)",
                         (seq, entry_id, kind, incident_id, text, digest))
        self._head = _Head(seq, entry_id, digest)
        return seq

    def _chain_has(self, entry_id: str) -> bool:
        return self._db.one("SELECT 1 FROM aw_chain WHERE entry_id = ?", (entry_id,)) is not None

    # -- writes -----------------------------------------------------------------------------

    def apply(self, output_value: dict[str, Any]) -> None:
        """Store one incident record version (header + new timeline entries). Idempotent."""
        with self._writing():
            self._apply_incident(output_value)

    def apply_alert(self, alert: dict[str, Any]) -> None:
        """Store one alert version (a grouped alert is re-emitted as it grows). Idempotent."""
        with self._writing():
            self._apply_alert(alert)

    def apply_outputs(self, outputs: Iterable[Output]) -> int:
        """Store every ``incidents`` and ``alerts`` Output of a batch in one transaction;
        other kinds are ignored. Returns how many records were considered."""
        n = 0
        with self._writing():
            for out in outputs:
                if out.kind == "incidents":
                    self._apply_incident(out.value)
                    n += 1
                elif out.kind == "alerts":
                    self._apply_alert(out.value)
                    n += 1
        return n

    def _apply_incident(self, record: dict[str, Any]) -> None:
        db = self._db
        inc_id = str(record.get("incident_id") or "")
        if not inc_id:
            raise StoreError("incident record without incident_id")
        entries = [e for e in record.get("timeline") or () if isinstance(e, dict) and e.get("entry_id")]
        header = {k: v for k, v in record.items() if k != "timeline"}
        if entries:
            ids = [str(e["entry_id"]) for e in entries]
            known: set[str] = set()
            for i in range(0, len(ids), 500):
                chunk = ids[i : i + 500]
                marks = ",".join("?" * len(chunk))
                # the chain is the authority on what is stored (one query per 500 entries)
                known.update(r[0] for r in db.rows(f"SELECT entry_id FROM aw_chain WHERE entry_id IN ({marks})", chunk))  # noqa: S608 (placeholders only)
            for entry in entries:
                eid = str(entry["entry_id"])
                if eid in known:
                    continue
                known.add(eid)
                self._add_timeline(inc_id, entry)
        self._merge_header(inc_id, header)

    def _add_timeline(self, inc_id: str, entry: dict[str, Any]) -> None:
        seq = self._append("timeline", str(entry["entry_id"]), inc_id, entry)
        self._db.execute("INSERT INTO aw_timeline (entry_id, incident_id, ts_num, type, entry, chain_seq) VALUES (?, ?, ?, ?, ?, ?)",
                         (str(entry["entry_id"]), inc_id, parse_time(entry.get("ts")), str(entry.get("type") or ""),
                          canonical(entry), seq))

    def _merge_header(self, inc_id: str, header: dict[str, Any]) -> dict[str, Any]:
        db = self._db
        row = db.one("SELECT record, revision FROM aw_incidents WHERE incident_id = ?", (inc_id,))
        if row is None:
            merged, revision = dict(header), 0
        else:
            stored = _loads(row[0])
            revision = int(row[1])
            merged = merge_headers(stored, header)
            merged["revision"] = stored.get("revision", revision)
            if canonical(merged) == canonical(stored):
                return stored  # nothing new: replays and duplicates end here
        merged["revision"] = revision + 1
        seq = self._append("incident", f"{inc_id}#r{revision + 1}", inc_id, merged)
        cols = _incident_columns(merged)
        text = canonical(merged)
        if row is None:
            db.execute("""INSERT INTO aw_incidents (incident_id, agent_id, owner, status, severity, severity_rank,
                          peak_risk, assignee, opened_ts, updated_ts, revision, record, chain_seq)
                          VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""", (inc_id, *cols, revision + 1, text, seq))
        else:
            db.execute("""UPDATE aw_incidents SET agent_id = ?, owner = ?, status = ?, severity = ?, severity_rank = ?,
                          peak_risk = ?, assignee = ?, opened_ts = ?, updated_ts = ?, revision = ?, record = ?,
                          chain_seq = ? WHERE incident_id = ?""", (*cols, revision + 1, text, seq, inc_id))
        return merged

    def _apply_alert(self, alert: dict[str, Any]) -> None:
        db = self._db
        alert_id = str(alert.get("alert_id") or "")
        if not alert_id:
            raise StoreError("alert without alert_id")
        text = canonical(alert)
        row = db.one("SELECT record FROM aw_alerts WHERE alert_id = ?", (alert_id,))
        if row is not None and (row[0] == text or _alert_is_older(alert, _loads(row[0]))):
            return
        entry_id = deterministic_id("alv_", alert_id, text)
        if self._chain_has(entry_id):
            return  # this exact version was stored before and superseded
        seq = self._append("alert", entry_id, alert.get("incident_id"), alert)
        cols = _alert_columns(alert)
        if row is None:
            db.execute("""INSERT INTO aw_alerts (alert_id, agent_id, owner, severity, severity_rank, risk, first_ts,
                          last_ts, incident_id, status, record, chain_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, ?)""",
                       (alert_id, *cols, text, seq))
        else:
            db.execute("""UPDATE aw_alerts SET agent_id = ?, owner = ?, severity = ?, severity_rank = ?, risk = ?,
                          first_ts = ?, last_ts = ?, incident_id = ?, record = ?, chain_seq = ? WHERE alert_id = ?""",
                       (*cols, text, seq, alert_id))

    def ack_alert(self, alert_id: str, *, by: str, ts: str, comment: str | None = None) -> dict[str, Any]:
        """An analyst acknowledges an alert (chained). Returns the alert with its ack."""
        db = self._db
        with self._writing():
            row = db.one("SELECT record, ack FROM aw_alerts WHERE alert_id = ?", (alert_id,))
            if row is None:
                raise StoreError(f"no alert {alert_id}")
            ack = {"alert_id": alert_id, "by": by, "ts": ts, "comment": comment}
            entry_id = deterministic_id("aak_", alert_id, by, ts)
            if not self._chain_has(entry_id):
                seq = self._append("alert_ack", entry_id, _loads(row[0]).get("incident_id"), ack)
                db.execute("UPDATE aw_alerts SET status = 'acked', ack = ?, ack_seq = ? WHERE alert_id = ?",
                           (canonical(ack), seq, alert_id))
        return self.get_alert(alert_id) or {}

    def analyst_action(
        self,
        incident_id: str,
        *,
        by: str,
        ts: str,
        control_id: str,
        status: str | None = None,
        assignee: str | None = None,
        disposition: str | None = None,
        comment: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> tuple[dict[str, Any], list[str]]:
        """Record an analyst's decision on an incident: a chained timeline entry (the same
        entry id the worker derives from ``control_id``) and the updated header.
        Returns ``(header, notes)``."""
        with self._writing():
            row = self._db.one("SELECT record FROM aw_incidents WHERE incident_id = ?", (incident_id,))
            if row is None:
                raise StoreError(f"no incident {incident_id}")
            stored = _loads(row[0])
            header, notes = analyst_update(stored, by=by, ts=ts, status=status, assignee=assignee,
                                           disposition=disposition)
            data: dict[str, Any] = {"action": "incident_update", "by": by, "comment": comment, "notes": notes}
            for key, value in (("status", status), ("assignee", assignee), ("disposition", disposition)):
                if value is not None:
                    data[key] = value
            data.update(extra or {})
            summary = f"{by}: {'; '.join(notes) or 'comment'}" + (f" — {comment}" if comment else "")
            entry = make_timeline_entry(incident_id, "analyst", control_id, ts, by, summary, data)
            if not self._chain_has(entry["entry_id"]):
                self._add_timeline(incident_id, entry)
                header["counts"] = dict(header.get("counts") or {})
                header["counts"]["analyst_actions"] = int(header["counts"].get("analyst_actions", 0)) + 1
                header["timeline_total"] = int(header.get("timeline_total", 0)) + 1
            merged = self._merge_header(incident_id, header)
        return merged, notes

    def record_stats(self, day: str, events: int, dead_letters: int, *, source: str = "pipeline",
                     mode: str = "set", **extra: int) -> None:
        """Run figures for one UTC day (``YYYY-MM-DD``) from one source (a worker, a replay).

        ``mode="set"`` stores the source's running totals for the day (calling again with the
        same figures changes nothing); ``mode="add"`` adds increments. ``extra`` holds more
        counters (``alerts=``, ``commands=``...). The export sums the sources per day.
        """
        if mode not in ("set", "add"):
            raise ValueError("mode must be 'set' or 'add'")
        db = self._db
        with db.write():
            row = db.one("SELECT events, dead_letters, extra FROM aw_stats WHERE day = ? AND source = ?", (day, source))
            if row is None:
                db.execute("INSERT INTO aw_stats (day, source, events, dead_letters, extra) VALUES (?, ?, ?, ?, ?)",
                           (day, source, int(events), int(dead_letters), canonical({k: int(v) for k, v in extra.items()})))
                return
            old_extra = _loads(row[2]) or {}
            if mode == "add":
                events, dead_letters = int(row[0]) + int(events), int(row[1]) + int(dead_letters)
                extra = {k: int(old_extra.get(k, 0)) + int(v) for k, v in extra.items()}
            merged_extra = {**old_extra, **{k: int(v) for k, v in extra.items()}}
            db.execute("UPDATE aw_stats SET events = ?, dead_letters = ?, extra = ? WHERE day = ? AND source = ?",
                       (int(events), int(dead_letters), canonical(merged_extra), day, source))

    # -- reads ------------------------------------------------------------------------------

    def get_incident(self, incident_id: str, *, timeline: bool = True) -> dict[str, Any] | None:
        """The incident's current header and (by default) its whole timeline in time order."""
        row = self._db.one("SELECT record FROM aw_incidents WHERE incident_id = ?", (incident_id,))
        if row is None:
            return None
        record: dict[str, Any] = _loads(row[0])
        if timeline:
            record["timeline"] = self.timeline(incident_id)
        return record

    def find_incident(self, prefix: str) -> str | None:
        """The full id of the one incident whose id starts with ``prefix`` (None if 0 or 2+)."""
        rows = self._db.rows("SELECT incident_id FROM aw_incidents WHERE incident_id LIKE ? LIMIT 2", (prefix + "%",))
        return str(rows[0][0]) if len(rows) == 1 else None

    def find_alert(self, prefix: str) -> str | None:
        rows = self._db.rows("SELECT alert_id FROM aw_alerts WHERE alert_id LIKE ? LIMIT 2", (prefix + "%",))
        return str(rows[0][0]) if len(rows) == 1 else None

    def timeline(self, incident_id: str) -> list[dict[str, Any]]:
        rows = self._db.rows("SELECT entry FROM aw_timeline WHERE incident_id = ? ORDER BY ts_num, chain_seq", (incident_id,))
        return [_loads(r[0]) for r in rows]

    def list_incidents(
        self,
        *,
        status: Sequence[str] = (),
        min_severity: str | None = None,
        agents: Sequence[str] = (),
        owners: Sequence[str] = (),
        since: float | None = None,
        until: float | None = None,
        min_risk: float | None = None,
        assignee: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Incident headers matching every filter given, newest first. Times are epoch seconds
        on ``opened_at``; ``status`` accepts ``open`` / ``closed`` as groups too."""
        where: list[str] = []
        params: list[Any] = []
        statuses: list[str] = []
        for s in status:
            if s == "closed":
                statuses += sorted(TERMINAL)
            elif s == "active":
                statuses += [k for k in STATUS_RANK if k not in TERMINAL]
            else:
                statuses.append(s)
        _common_filters(where, params, statuses=statuses, min_severity=min_severity, agents=agents,
                        owners=owners, time_column="opened_ts", since=since, until=until,
                        risk_column="peak_risk", min_risk=min_risk)
        if assignee:
            where.append("assignee = ?")
            params.append(assignee)
        sql = _select("SELECT record FROM aw_incidents", where, "opened_ts DESC, incident_id", limit)
        return [_loads(r[0]) for r in self._db.rows(sql, params)]

    def get_alert(self, alert_id: str) -> dict[str, Any] | None:
        row = self._db.one("SELECT record, status, ack FROM aw_alerts WHERE alert_id = ?", (alert_id,))
        if row is None:
            return None
        alert: dict[str, Any] = _loads(row[0])
        alert["triage_status"] = row[1]
        alert["ack"] = _loads(row[2])
        return alert

    def list_alerts(
        self,
        *,
        status: Sequence[str] = (),
        min_severity: str | None = None,
        agents: Sequence[str] = (),
        owners: Sequence[str] = (),
        since: float | None = None,
        until: float | None = None,
        min_risk: float | None = None,
        incident_id: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Alerts matching every filter given, newest (by last seen) first. ``status`` is the
        triage status: ``open`` or ``acked``; times filter on last seen."""
        where: list[str] = []
        params: list[Any] = []
        _common_filters(where, params, statuses=list(status), min_severity=min_severity, agents=agents,
                        owners=owners, time_column="last_ts", since=since, until=until,
                        risk_column="risk", min_risk=min_risk)
        if incident_id:
            where.append("incident_id = ?")
            params.append(incident_id)
        sql = _select("SELECT record, status, ack FROM aw_alerts", where, "last_ts DESC, alert_id", limit)
        out = []
        for rec, st, ack in self._db.rows(sql, params):
            alert = _loads(rec)
            alert["triage_status"] = st
            alert["ack"] = _loads(ack)
            out.append(alert)
        return out

    def stats(self, since_day: str | None = None, until_day: str | None = None) -> dict[str, dict[str, int]]:
        """``{day: {"events": n, "dead_letters": n, ...}}`` summed over sources, days inclusive."""
        where: list[str] = []
        params: list[Any] = []
        if since_day:
            where.append("day >= ?")
            params.append(since_day)
        if until_day:
            where.append("day <= ?")
            params.append(until_day)
        sql = "SELECT day, events, dead_letters, extra FROM aw_stats"
        if where:
            sql += " WHERE " + " AND ".join(where)
        out: dict[str, dict[str, int]] = {}
        for day, events, dls, extra in self._db.rows(sql + " ORDER BY day, source", params):
            d = out.setdefault(str(day), {"events": 0, "dead_letters": 0})
            d["events"] += int(events)
            d["dead_letters"] += int(dls)
            for k, v in (_loads(extra) or {}).items():
                d[k] = d.get(k, 0) + int(v)
        return out

    def counts(self) -> dict[str, int]:
        """How many incidents, timeline entries, alerts and chain entries are stored."""
        db = self._db
        return {
            "incidents": int(db.one("SELECT COUNT(*) FROM aw_incidents")[0]),  # type: ignore[index]
            "timeline_entries": int(db.one("SELECT COUNT(*) FROM aw_timeline")[0]),  # type: ignore[index]
            "alerts": int(db.one("SELECT COUNT(*) FROM aw_alerts")[0]),  # type: ignore[index]
            "chain_entries": int(db.one("SELECT COUNT(*) FROM aw_chain")[0]),  # type: ignore[index]
        }

    # -- verification -----------------------------------------------------------------------

    def _chain_rows(self) -> Iterator[ChainRow]:
        last = None
        while True:
            if last is None:
                rows = self._db.rows(f"SELECT seq, entry_id, text, hash FROM aw_chain ORDER BY seq LIMIT {_PAGE}")  # noqa: S608
            else:
                rows = self._db.rows(f"SELECT seq, entry_id, text, hash FROM aw_chain WHERE seq > ? ORDER BY seq LIMIT {_PAGE}", (last,))  # noqa: S608
            if not rows:
                return
            for seq, entry_id, text, digest in rows:
                yield ChainRow(int(seq), str(entry_id), str(text), str(digest))
            last = rows[-1][0]

    def verify(self) -> VerifyResult:
        """Check the whole chain, then that every projection row matches the chain entry it
        came from and that no chained record lost its row. Reads one consistent snapshot."""
        db = self._db
        with db.snapshot():
            head_row = db.one("SELECT seq, entry_id, hash FROM aw_head WHERE id = 1")
            head = (int(head_row[0]), str(head_row[1]), str(head_row[2])) if head_row else None
            result = verify_chain(self._chain_rows(), head=head)
            if not result.ok:
                return result
            problem = self._verify_projections()
        if problem is None:
            return result
        first_bad, how, detail = problem
        return VerifyResult(False, result.checked, first_bad, how, None, detail, result.head_hash)  # type: ignore[arg-type]

    def _verify_projections(self) -> tuple[str, str, str] | None:
        db = self._db

        def body_of(text: str | None) -> Any:
            return (_loads(text) or {}).get("body") if text else None

        for entry_id, entry, inc_id, ts_num, typ, text in db.rows(
            """SELECT t.entry_id, t.entry, t.incident_id, t.ts_num, t.type, c.text FROM aw_timeline t
               LEFT JOIN aw_chain c ON c.seq = t.chain_seq ORDER BY t.chain_seq"""
        ):
            body = body_of(text)
            if body is None or body.get("entry_id") != entry_id or canonical(body) != entry \
                    or (_loads(text) or {}).get("incident_id") != inc_id or parse_time(body.get("ts")) != ts_num \
                    or str(body.get("type") or "") != typ:
                return entry_id, "modified", "the timeline entry differs from its chained original"
        row = db.one("""SELECT c.entry_id FROM aw_chain c LEFT JOIN aw_timeline t ON t.entry_id = c.entry_id
                        WHERE c.kind = 'timeline' AND t.entry_id IS NULL ORDER BY c.seq LIMIT 1""")
        if row is not None:
            return str(row[0]), "deleted", "a chained timeline entry has no row in the timeline table"
        latest = {str(i): int(s) for i, s in db.rows(
            "SELECT incident_id, MAX(seq) FROM aw_chain WHERE kind = 'incident' GROUP BY incident_id")}
        seen = set()
        for inc_id, agent_id, owner, status, severity, sev_rank, peak, assignee, opened, updated, revision, record, chain_seq, text in db.rows(
            """SELECT i.incident_id, i.agent_id, i.owner, i.status, i.severity, i.severity_rank, i.peak_risk,
                      i.assignee, i.opened_ts, i.updated_ts, i.revision, i.record, i.chain_seq, c.text
               FROM aw_incidents i LEFT JOIN aw_chain c ON c.seq = i.chain_seq ORDER BY i.chain_seq"""
        ):
            seen.add(inc_id)
            body = body_of(text)
            if body is None or canonical(body) != record or latest.get(inc_id) != int(chain_seq) \
                    or int(revision) != body.get("revision") \
                    or (agent_id, owner, status, severity, sev_rank, float(peak), assignee, opened, updated) != _incident_columns(body):
                return f"{inc_id}#r{revision}", "modified", f"incident {inc_id} differs from its latest chained version"
        for inc_id in latest:
            if inc_id not in seen:
                return inc_id, "deleted", f"incident {inc_id} is chained but has no row"
        alerts = {}
        for alert_id, agent_id, owner, severity, sev_rank, risk, first, last, inc, record, ack, ack_seq, chain_seq, text, ack_text in db.rows(
            """SELECT a.alert_id, a.agent_id, a.owner, a.severity, a.severity_rank, a.risk, a.first_ts, a.last_ts,
                      a.incident_id, a.record, a.ack, a.ack_seq, a.chain_seq, c.text, k.text FROM aw_alerts a
               LEFT JOIN aw_chain c ON c.seq = a.chain_seq LEFT JOIN aw_chain k ON k.seq = a.ack_seq"""
        ):
            alerts[alert_id] = int(chain_seq)
            body = body_of(text)
            if body is None or canonical(body) != record or body.get("alert_id") != alert_id \
                    or (agent_id, owner, severity, sev_rank, float(risk), first, last, inc) != _alert_columns(body):
                return str(alert_id), "modified", "the alert differs from its chained version"
            if (ack is None) != (ack_seq is None) or (ack is not None and canonical(body_of(ack_text)) != ack):
                return str(alert_id), "modified", "the alert's acknowledgement differs from its chained record"
        latest_alert: dict[str, int] = {}
        for seq, text in db.rows("SELECT seq, text FROM aw_chain WHERE kind = 'alert' ORDER BY seq"):
            latest_alert[str((body_of(text) or {}).get("alert_id"))] = int(seq)
        for alert_id, seq in latest_alert.items():
            if alert_id not in alerts:
                return alert_id, "deleted", f"alert {alert_id} is chained but has no row"
            if alerts[alert_id] != seq:
                return alert_id, "modified", "the alert row is not its latest chained version"
        return None


def _common_filters(where: list[str], params: list[Any], *, statuses: Sequence[str], min_severity: str | None,
                    agents: Sequence[str], owners: Sequence[str], time_column: str, since: float | None,
                    until: float | None, risk_column: str, min_risk: float | None) -> None:
    """The filters incident and alert listings share, appended as SQL conditions and parameters
    (column names are ours, never user input; values are always parameters)."""
    for column, values in (("status", statuses), ("agent_id", agents), ("owner", owners)):
        if values:
            where.append(f"{column} IN ({','.join('?' * len(values))})")
            params += list(values)
    if min_severity:
        where.append("severity_rank >= ?")
        params.append(_sev_rank(min_severity))
    if since is not None:
        where.append(f"{time_column} >= ?")
        params.append(since)
    if until is not None:
        where.append(f"{time_column} < ?")
        params.append(until)
    if min_risk is not None:
        where.append(f"{risk_column} >= ?")
        params.append(float(min_risk))


def _select(base: str, where: list[str], order: str, limit: int | None) -> str:
    sql = base
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY {order}"
    if limit:
        sql += f" LIMIT {int(limit)}"
    return sql


def open_store(url: str, *, schema: str | None = None) -> IncidentStore:
    """Open (creating if needed) the store at ``url``: ``sqlite:///path.db`` or
    ``postgresql://user@host:port/db`` (``?schema=name`` or ``schema=`` puts the tables in that
    PostgreSQL schema). Raises :class:`StoreError` with a one-line message."""
    db = _Database(url, schema)
    try:
        return IncidentStore(db)
    except (sqlite3.Error, OSError) as exc:
        db.close()
        raise StoreError(f"cannot use the incident store {db.url_for_humans}: {exc}") from None
    except Exception as exc:
        db.close()
        if type(exc).__module__.startswith("psycopg"):
            raise StoreError(f"cannot use the incident store {db.url_for_humans}: {str(exc).strip().splitlines()[0]}") from None
        raise
