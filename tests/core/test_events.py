"""Event and Finding: what every part relies on, in the pure and the compiled build alike."""

from __future__ import annotations

import copy
import pickle

import pytest

from detectors.base import Event, Finding, Severity


def _event() -> Event:
    return Event({"event_id": "e-1", "agent_id": "a-1", "action": {"kind": "shell", "command": "ls"}}, ts=12.5,
                 derived={"shell": ("parsed",)})


def test_event_reads_its_ids_once_from_data() -> None:
    ev = _event()
    assert (ev.agent_id, ev.event_id, ev.action["kind"]) == ("a-1", "e-1", "shell")
    assert Event({"agent_id": 7}, 0.0).agent_id == "7"
    assert Event({}, 0.0).agent_id == "" and Event({}, 0.0).event_id == ""


@pytest.mark.parametrize("clone", [copy.copy, copy.deepcopy, lambda x: pickle.loads(pickle.dumps(x))])
def test_events_and_findings_copy_and_pickle(clone) -> None:  # type: ignore[no-untyped-def]
    ev = _event()
    got = clone(ev)
    assert type(got) is Event and got == ev and got.agent_id == "a-1" and got.derived == ev.derived
    f = Finding("rules", "x.y", Severity.HIGH, 42.0, "why", technique="T1", field="action.command", span=(1, 3),
                context={"k": [1]})
    g = clone(f)
    assert type(g) is Finding and g == f and g.to_dict() == f.to_dict()


def test_deepcopy_does_not_share_the_event_data() -> None:
    ev = _event()
    got = copy.deepcopy(ev)
    got.data["action"]["command"] = "rm -rf /"
    assert ev.data["action"]["command"] == "ls"
