"""`agentwatch baseline fit/show` on a real file; bad input gives one line and exit 2."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

from fleet_sim import Fleet

from detectors.baselines import BaselineDetector
from pipeline.cli import main
from pipeline.settings import BaselineSettings


def _history(path: Path) -> int:
    fleet = Fleet(agents_per_role=1, seed=5)
    events = fleet.benign(3)
    with path.open("w") as fh:
        for e in events:
            d = dict(e.data)
            d["ts"] = (
                datetime.datetime.fromtimestamp(e.ts, datetime.UTC)
                .isoformat()
                .replace("+00:00", "Z")
            )
            fh.write(json.dumps(d) + "\n")
        fh.write("{broken\n")
    return len(events)


def test_fit_writes_a_loadable_state(tmp_path: Path, capsys) -> None:
    events = tmp_path / "h.jsonl"
    n = _history(events)
    out = tmp_path / "state.json"
    assert main(["baseline", "fit", str(events), "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    det = BaselineDetector.load_all(BaselineSettings(), data)
    assert sum(det.maturity(a)["events"] for a in det.agents()) == n
    assert "skipped 1 invalid line" in capsys.readouterr().err
    assert main(["baseline", "show", str(out), "--agent", "support-00"]) == 0
    # continuing from a state is deterministic: same input, same bytes
    out2 = tmp_path / "again.json"
    assert main(["baseline", "fit", str(events), "--out", str(out2)]) == 0
    assert out2.read_bytes() == out.read_bytes()


def test_bad_inputs_are_one_line_errors(tmp_path: Path, capsys) -> None:
    assert (
        main(
            ["baseline", "fit", str(tmp_path / "missing.jsonl"), "--out", str(tmp_path / "s.json")]
        )
        == 2
    )
    junk = tmp_path / "junk.jsonl"
    junk.write_text("nope\n")
    assert main(["baseline", "fit", str(junk), "--out", str(tmp_path / "s.json")]) == 2
    assert main(["baseline", "show", str(junk)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "no valid events" in err
