"""bench.throughput's summary of repeated and A/B runs: which run stands for a mode, and ratios
as medians of the pairs' own ratios (the benchmark itself runs in bench/, not in the suite)."""

from __future__ import annotations

from typing import Any

from bench.throughput import summarise


def _run(events_per_s: int, cpu_us: float) -> dict[str, Any]:
    return {"events_per_s": events_per_s, "events_per_cpu_second": round(1e6 / cpu_us),
            "worker_cpu_us_per_event": cpu_us}


def test_one_pair_is_reported_as_it_was() -> None:
    out = summarise({"passthrough": [_run(40000, 20.0)], "full": [_run(10000, 100.0)], "against": []})
    assert out["passthrough"]["events_per_s"] == 40000 and out["full"]["events_per_s"] == 10000
    assert out["ratio_full_to_passthrough"] == 0.25
    assert out["ratio_full_to_passthrough_per_cpu_second"] == 0.2
    assert "repeats" not in out and "against" not in out


def test_repeats_take_the_median_of_the_pairs_ratios_and_keep_the_spread() -> None:
    # pair ratios 0.2, 0.3, 0.25: the median pair ratio is not the ratio of the median runs
    passthrough = [_run(50000, 20.0), _run(30000, 25.0), _run(40000, 22.0)]
    full = [_run(10000, 110.0), _run(9000, 100.0), _run(10000, 105.0)]
    out = summarise({"passthrough": passthrough, "full": full, "against": []})
    assert out["ratio_full_to_passthrough"] == 0.25
    assert out["repeats"]["ratios"] == [0.2, 0.3, 0.25]
    assert out["repeats"]["ratio_range"] == [0.2, 0.3]
    assert out["passthrough"] is passthrough[2]  # the median run by events/s, a real run
    assert out["full"]["events_per_s"] == 10000


def test_against_compares_each_pair_with_its_own_run() -> None:
    full = [_run(10000, 100.0), _run(8000, 120.0)]
    other = [_run(8000, 125.0), _run(10000, 100.0)]
    out = summarise({"passthrough": [_run(40000, 20.0)] * 2, "full": full, "against": other})
    ag = out["against"]
    assert ag["events_ratio"] == round((10000 / 8000 + 8000 / 10000) / 2, 3)
    assert ag["cpu_ratio"] == round((100 / 125 + 120 / 100) / 2, 3)
    assert ag["runs"] == other and ag["full"] is other[0]



def test_pairs_in_both_orders_report_each_orders_ratios_beside_the_overall_median() -> None:
    # this tree did 10% better in each pair it ran first, 10% worse where it ran second: the
    # overall medians mix both, the orders' own medians show the bias
    full = [_run(11000, 90.0), _run(9000, 110.0), _run(11000, 90.0), _run(9000, 110.0)]
    other = [_run(10000, 100.0)] * 4
    out = summarise({"passthrough": [_run(40000, 20.0)] * 4, "full": full, "against": other,
                     "other_first": [False, True, False, True]})
    ag = out["against"]
    assert ag["by_order"]["this_first"] == {"events_ratio": 1.1, "cpu_ratio": 0.9}
    assert ag["by_order"]["other_first"] == {"events_ratio": 0.9, "cpu_ratio": 1.1}
    assert ag["events_ratio"] == 1.0 and ag["cpu_ratio"] == 1.0
    assert ag["other_first"] == [False, True, False, True]


def test_pairs_in_one_order_report_no_split() -> None:
    full = [_run(11000, 90.0), _run(9000, 110.0)]
    other = [_run(10000, 100.0)] * 2
    for other_first in ([False, False], [True, True], None):
        runs = {"passthrough": [_run(40000, 20.0)] * 2, "full": full, "against": other}
        if other_first is not None:
            runs["other_first"] = other_first
        assert "by_order" not in summarise(runs)["against"]

def test_a_warm_up_that_leaves_nothing_to_measure_is_refused_before_anything_starts(capsys: Any) -> None:
    import pytest

    from bench.throughput import main

    for argv in (["--events", "1000", "--warm", "999"], ["--events", "1000", "--warm", "0"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
        assert "--warm must be at least 1" in capsys.readouterr().err


def test_bare_worker_ratio_is_the_median_of_its_own_pairs() -> None:
    # the worker without detectors in each pair: its ratio to that pair's passthrough, median 0.6
    passthrough = [_run(40000, 20.0), _run(50000, 18.0), _run(30000, 25.0)]
    bare = [_run(20000, 40.0), _run(30000, 35.0), _run(21000, 45.0)]
    full = [_run(10000, 100.0)] * 3
    out = summarise({"passthrough": passthrough, "full": full, "against": [], "bare": bare})
    assert out["ratio_bare_to_passthrough"] == 0.6  # pairs 0.5, 0.6, 0.7
    assert out["bare"] is bare[2]  # the median run by events/s (20,000, 21,000, 30,000)
    assert out["repeats"]["bare"] == bare
    assert "bare" not in summarise({"passthrough": passthrough, "full": full, "against": []})
