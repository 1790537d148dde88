"""bench.perfshare reads ``perf report``'s per-function sample counts and puts each function in a
group (collector, allocator, dictionaries, kernel page faults, our compiled code, ...)."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.perfshare import GROUPS, group_of, parse_report, summarise

#: the shape of `perf report --stdio --no-children -g none --sort dso,sym -F sample,dso,sym`
REPORT = """\
# To display the perf.data header info, please use --header/--header-only options.
#
# Samples: 3K of event 'cpu-clock:pppH'
#
# Samples  Shared Object                                             Symbol
# .......  ........................................................  ...............................
#
           302  [kernel.kallsyms]                                         [k] clear_page_erms
           196  libpython3.11.so.1.0                                      [.] _Py_dict_lookup
           194  libpython3.11.so.1.0                                      [.] _PyEval_EvalFrameDefault
            88  libpython3.11.so.1.0                                      [.] _PyObject_Malloc
            68  [kernel.kallsyms]                                         [k] _raw_spin_unlock_irqrestore
            49  _re2.cpython-311-x86_64-linux-gnu.so                      [.] re2::DFA::InlinedSearchLoop<false, false, true>
            30  agentwatch_native__mypyc.cpython-311-x86_64-linux-gnu.so  [.] CPyDef_processor___Processor____run
            16  libpython3.11.so.1.0                                      [.] gc_collect_main
            12  libc.so.6                                                 [.] __memmove_avx512_unaligned_erms
             9  libc.so.6                                                 [.] _int_malloc
             7  orjson.cpython-311-x86_64-linux-gnu.so                    [.] 0x0000000000014ae0
             2  libpython3.11.so.1.0                                      [.] _Py_dict_lookup

not a report line
"""


def test_a_report_is_read_per_function_and_grouped() -> None:
    samples = parse_report(REPORT.splitlines())
    assert samples[("libpython3.11.so.1.0", "_Py_dict_lookup")] == 198, "the same function twice is summed"
    assert samples[("_re2.cpython-311-x86_64-linux-gnu.so", "re2::DFA::InlinedSearchLoop<false, false, true>")] == 49
    assert sum(samples.values()) == 973
    expected = {
        "clear_page_erms": "kernel: page faults",
        "_raw_spin_unlock_irqrestore": "kernel: scheduling, system calls, network",
        "_Py_dict_lookup": "dictionaries",
        "_PyEval_EvalFrameDefault": "bytecode loop",
        "_PyObject_Malloc": "allocator",
        "_int_malloc": "allocator",
        "gc_collect_main": "collector (collections, object tracking)",
        "__memmove_avx512_unaligned_erms": "memory copies (libc)",
        "CPyDef_processor___Processor____run": "agentwatch, compiled (mypyc)",
        "0x0000000000014ae0": "orjson",
        "re2::DFA::InlinedSearchLoop<false, false, true>": "RE2",
    }
    for (dso, sym) in samples:
        assert group_of(dso, sym) == expected[sym], sym


def test_the_summary_gives_shares_and_cpu_per_event() -> None:
    samples = parse_report(REPORT.splitlines())
    out = summarise(samples, freq=1000, events=973, top=3)  # one sample (1 ms) per event
    assert out["samples"] == 973 and out["cpu_us_per_event"] == 1000.0
    shares = {g["group"]: g["share"] for g in out["groups"]}
    assert shares["dictionaries"] == round(198 / 973, 4)
    assert shares["kernel: page faults"] == round(302 / 973, 4)
    assert abs(sum(shares.values()) - 1.0) < 1e-3
    assert [f["function"] for f in out["functions"]] == ["clear_page_erms", "_Py_dict_lookup", "_PyEval_EvalFrameDefault"]
    with pytest.raises(ValueError, match="no samples"):
        summarise(Counter(), freq=1000, events=1, top=1)


def test_a_function_of_a_library_nobody_named_is_still_counted() -> None:
    assert group_of("libfoo.so", "bar") == GROUPS[-1][0]
    assert group_of("libpython3.11.so.1.0", "PyLong_FromLong") == "CPython: the rest (objects, calls, strings, ints)"


_dso = st.sampled_from(["[kernel.kallsyms]", "libpython3.11.so.1.0", "libc.so.6", "orjson.so", "x y.so"])
_sym = st.one_of(st.sampled_from(["#define", "[k] x", "a  b", "std::vector<int> (x)"]),
                 st.text(st.characters(codec="ascii", exclude_characters="\n\r"), min_size=1, max_size=40)
                 ).map(str.strip).filter(bool)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 10**6), _dso, st.sampled_from(["[.]", "[k]"]), _sym), max_size=20))
def test_any_report_line_reads_back_as_written(rows: list[tuple[int, str, str, str]]) -> None:
    """Function names hold spaces, brackets and template arguments; binaries may not hold spaces
    (perf prints a path without them), and such a line is skipped rather than misread."""
    text = [f"{n:>12}  {dso:<30}  {kind} {sym}" for n, dso, kind, sym in rows]
    samples = parse_report(text)
    expected: Counter[tuple[str, str]] = Counter()
    for n, dso, _, sym in rows:
        if " " not in dso:
            expected[(dso, sym)] += n
    assert samples == expected
    for dso, sym in samples:
        assert group_of(dso, sym) in {g[0] for g in GROUPS}
