"""verify_chain on its own: every way of tampering with a chain is caught and classified."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.incidents.chain import GENESIS_HASH, ChainRow, canonical, make_entry, verify_chain


def build(n: int) -> list[ChainRow]:
    rows, prev_id, prev_hash = [], None, GENESIS_HASH
    for seq in range(1, n + 1):
        eid = f"e{seq}"
        text, digest = make_entry(seq=seq, entry_id=eid, kind="timeline", incident_id="inc_1", prev_id=prev_id,
                                  prev_hash=prev_hash, body={"n": seq, "note": "ü"})
        rows.append(ChainRow(seq, eid, text, digest))
        prev_id, prev_hash = eid, digest
    return rows


def head(rows: list[ChainRow]) -> tuple[int, str, str]:
    return rows[-1].seq, rows[-1].entry_id, rows[-1].hash


def test_canonical_is_key_order_independent() -> None:
    assert canonical({"b": 1, "a": {"y": 2, "x": 1}}) == canonical({"a": {"x": 1, "y": 2}, "b": 1})


def test_intact_chain_verifies() -> None:
    rows = build(10)
    res = verify_chain(rows, head=head(rows))
    assert res.ok and res.checked == 10 and res.head_hash == rows[-1].hash
    assert verify_chain([]).ok


def test_modified_in_place() -> None:
    rows = build(6)
    r = rows[2]
    rows[2] = ChainRow(r.seq, r.entry_id, r.text.replace('"n":3', '"n":4'), r.hash)
    res = verify_chain(rows, head=head(rows))
    assert (res.ok, res.first_bad, res.how, res.seq) == (False, "e3", "modified", 3)


def test_modified_and_rehashed_is_caught_by_the_successor() -> None:
    rows = build(6)
    r = rows[2]
    text = r.text.replace('"n":3', '"n":4')
    from pipeline.incidents.chain import entry_hash

    rows[2] = ChainRow(r.seq, r.entry_id, text, entry_hash(text))
    res = verify_chain(rows, head=head(rows))
    assert (res.first_bad, res.how) == ("e3", "modified")


def test_deleted_middle_first_and_tail() -> None:
    rows = build(6)
    res = verify_chain(rows[:3] + rows[4:], head=head(rows))
    assert (res.first_bad, res.how) == ("e4", "deleted")
    res = verify_chain(rows[1:], head=head(rows))
    assert (res.first_bad, res.how) == ("e1", "deleted")
    res = verify_chain(rows[:-1], head=head(rows))
    assert (res.first_bad, res.how) == ("e6", "deleted")


def test_reordered_rows() -> None:
    rows = build(6)
    # swap the contents of positions 3 and 4 (what swapping seq values in SQL amounts to)
    swapped = [*rows[:2], ChainRow(3, rows[3].entry_id, rows[3].text, rows[3].hash), ChainRow(4, rows[2].entry_id, rows[2].text, rows[2].hash), *rows[4:]]
    res = verify_chain(swapped, head=head(rows))
    assert (res.first_bad, res.how, res.seq) == ("e4", "reordered", 3)


@settings(max_examples=150, deadline=None)
@given(n=st.integers(2, 30), data=st.data())
def test_any_single_tamper_is_detected(n: int, data: st.DataObject) -> None:
    rows = build(n)
    op = data.draw(st.sampled_from(["modify", "delete", "swap"]))
    i = data.draw(st.integers(0, n - 1))
    if op == "modify":
        r = rows[i]
        rows[i] = ChainRow(r.seq, r.entry_id, r.text.replace('"note":"ü"', '"note":"x"'), r.hash)
        expect = ("modified", f"e{i + 1}")
    elif op == "delete":
        original = rows[:]
        del rows[i]
        expect = ("deleted", f"e{i + 1}")
        rows_head = head(original)
    else:
        j = data.draw(st.integers(0, n - 1).filter(lambda j: j != i))
        a, b = sorted((i, j))
        ra, rb = rows[a], rows[b]
        rows[a] = ChainRow(ra.seq, rb.entry_id, rb.text, rb.hash)
        rows[b] = ChainRow(rb.seq, ra.entry_id, ra.text, ra.hash)
        expect = ("reordered", f"e{b + 1}")
    res = verify_chain(rows, head=rows_head if op == "delete" else head(build(n)))
    assert not res.ok
    assert (res.how, res.first_bad) == expect
