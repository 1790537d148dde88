"""bench.profile splits py-spy's raw samples of the worker's main thread: running (inclusive per
function), waiting for the interpreter lock, idle in the event loop."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.profile import parse_raw

MAIN = "_run_module_as_main (<frozen runpy>:198);run_worker (bench/throughput.py:149);BaseEventLoop._run_once (asyncio/base_events.py:1922)"
RAW = f"""\
{MAIN};CPyDef_processor___Processor____run (__native_agentwatch_native.c:10);CPyDef_compiler___Matcher___match (__native_agentwatch_native.c:20) 7
{MAIN};CPyDef_processor___Processor____run (__native_agentwatch_native.c:10);CPyDef_records___Output (x.c:5);__create_fn__.<locals>.__init__ (<string>:2);pthread_cond_wait (libc.so.6);0x7f7d256a3f16 (libc.so.6) 3
{MAIN};EpollSelector.select (selectors.py:468);0x7f00 (libc.so.6) 2
{MAIN};CPyDef_processor___Processor____run (__native_agentwatch_native.c:10) 1
Thread._bootstrap (threading.py:1002);EpollSelector.select (selectors.py:468) 50
not a sample line
"""


def test_samples_of_the_main_thread_are_split_by_what_it_did() -> None:
    prof = parse_raw(RAW.splitlines())
    assert (prof.running, prof.lock_wait, prof.idle) == (8, 3, 2), "the other thread's 50 samples are not counted"
    assert prof.inclusive["CPyDef_processor___Processor____run"] == 8
    assert prof.inclusive["CPyDef_compiler___Matcher___match"] == 7
    assert prof.share("CPyDef_compiler___Matcher___match") == 7 / 8
    assert "CPyDef_records___Output" not in prof.inclusive, "a lock wait is not running time"
    assert prof.lock_wait_in == {"__create_fn__.<locals>.__init__": 3}
    d = prof.to_dict(5)
    assert d["samples"] == 13 and d["waiting_for_interpreter_lock"] == 3


FRAMES = ["a.f (x.py:1)", "CPyDef_b (c.c:2)", "pthread_cond_wait (libc)", "EpollSelector.select (s.py:1)",
          "run_worker (t.py:1)", "0x1"]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.lists(st.sampled_from(FRAMES), min_size=1, max_size=6), st.integers(1, 1000)),
                max_size=12))
def test_every_main_thread_sample_lands_in_exactly_one_bucket(stacks: list[tuple[list[str], int]]) -> None:
    lines = [";".join(frames) + f" {n}" for frames, n in stacks]
    prof = parse_raw(lines)
    main = sum(n for frames, n in stacks if "run_worker (t.py:1)" in frames)
    assert prof.running + prof.lock_wait + prof.idle == main
    assert all(v <= prof.running for v in prof.inclusive.values())
