"""bench.cost reads callgrind_annotate's table of functions, and nothing after it."""

from __future__ import annotations

from bench.cost import native_split, parse_annotate

ANNOTATE = """\
--------------------------------------------------------------------------------
Profile data file 'callgrind.out' (creator: callgrind-3.19.0)
--------------------------------------------------------------------------------
Events shown:     Ir
Auto-annotation:  on

--------------------------------------------------------------------------------
Ir
--------------------------------------------------------------------------------
{total} (100.0%)  PROGRAM TOTALS

--------------------------------------------------------------------------------
Ir                      file:function
--------------------------------------------------------------------------------
{ceval} (60.00%)  Python-3.11.7/Python/ceval.c:_PyEval_EvalFrameDefault [/usr/lib/libpython3.11.so]
{native} (30.00%)  build/__native_agentwatch_native.c:CPyDef_processor___Processor____admit [/x.so]
{dict} (10.00%)  Python-3.11.7/Objects/dictobject.c:_Py_dict_lookup [/usr/lib/libpython3.11.so]

--------------------------------------------------------------------------------
-- Auto-annotated source: build/__native_agentwatch_native.c
--------------------------------------------------------------------------------
Ir

{native} ( 0.01%)  static PyObject *CPyDef_processor___Processor____admit(PyObject *self) {{
   900 ( 0.00%)  => Python-3.11.7/Objects/dictobject.c:_Py_dict_lookup (9x)
"""


def _page(ceval: int, native: int, dct: int) -> str:
    return ANNOTATE.format(total=f"{ceval + native + dct:,}", ceval=f"{ceval:,}", native=f"{native:,}", dict=f"{dct:,}")


def test_only_the_table_of_functions_is_read() -> None:
    got = parse_annotate(_page(6_000_000, 3_000_000, 1_000_000))
    assert got == {
        "Python-3.11.7/Python/ceval.c:_PyEval_EvalFrameDefault": 6_000_000,
        "build/__native_agentwatch_native.c:CPyDef_processor___Processor____admit": 3_000_000,
        "Python-3.11.7/Objects/dictobject.c:_Py_dict_lookup": 1_000_000,
    }
    assert parse_annotate("no table here") == {}


def test_the_split_per_event_adds_up_to_the_difference_of_the_runs() -> None:
    short = parse_annotate(_page(6_000_000, 3_000_000, 1_000_000))
    long = parse_annotate(_page(9_000_000, 5_000_000, 2_000_000))
    split = native_split(short, long, 1000)
    assert split == {"interpreter": 3.0, "our code compiled by mypyc": 2.0, "dictionaries": 1.0}
    assert sum(split.values()) == (16_000_000 - 10_000_000) / 1000 / 1000
