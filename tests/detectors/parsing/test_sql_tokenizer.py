"""The SQL tokenizer against the character-by-character tokenizer it replaced (same tokens,
same truncation, on corpus queries, mutations of them and arbitrary text)."""

from __future__ import annotations

import re
from dataclasses import astuple, dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.parsing.sql import _N, _P, _Q, _S, _W, _tokenize


@dataclass(slots=True)
class _T:
    kind: int
    value: str
    start: int
    end: int
    depth: int


_WORD = re.compile(r"[A-Za-z_\u0080-\uffff][A-Za-z0-9_$\u0080-\uffff]*")
_NUM = re.compile(r"[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?")
_SPACE = re.compile(r"\s+")
_DOLLAR_TAG = re.compile(r"\$[A-Za-z_0-9]*\$")
_OPERATOR = re.compile(r"[<>=!|:~^&+\-/%@#?]+")


def reference_tokenize(s: str, budget: int) -> tuple[list[_T], bool]:
    toks: list[_T] = []
    i = 0
    n = len(s)
    depth = 0
    while i < n:
        if len(toks) >= budget:
            return toks, True
        c = s[i]
        if c.isspace():
            m = _SPACE.match(s, i)
            i = m.end() if m else i + 1
            continue
        if c == "-" and s.startswith("--", i):
            j = s.find("\n", i)
            i = n if j < 0 else j + 1
            continue
        if c == "/" and s.startswith("/*", i):
            j = s.find("*/", i + 2)
            i = n if j < 0 else j + 2
            continue
        if c == "'" or (c in "EeNnBbXx" and i + 1 < n and s[i + 1] == "'"):
            q = i if c == "'" else i + 1
            j = q + 1
            parts = []
            while True:
                k = s.find("'", j)
                if k < 0:
                    parts.append(s[j:])
                    j = n
                    break
                parts.append(s[j:k])
                if k + 1 < n and s[k + 1] == "'":
                    parts.append("'")
                    j = k + 2
                    continue
                j = k + 1
                break
            toks.append(_T(_S, "".join(parts), i, j, depth))
            i = j
            continue
        if c == "$":
            m = _DOLLAR_TAG.match(s, i)
            if m is not None:
                tag = m.group()
                k = s.find(tag, m.end())
                j = n if k < 0 else k + len(tag)
                toks.append(_T(_S, s[m.end() : k if k >= 0 else n], i, j, depth))
                i = j
                continue
        if c == '"' or c == "`" or c == "[":
            close = {'"': '"', "`": "`", "[": "]"}[c]
            k = s.find(close, i + 1)
            j = n if k < 0 else k + 1
            toks.append(_T(_Q, s[i + 1 : k if k >= 0 else n].lower(), i, j, depth))
            i = j
            continue
        m = _WORD.match(s, i)
        if m is not None:
            toks.append(_T(_W, m.group().upper(), i, m.end(), depth))
            i = m.end()
            continue
        if c.isdigit():
            m = _NUM.match(s, i)
            j = m.end() if m else i + 1
            toks.append(_T(_N, s[i:j], i, j, depth))
            i = j
            continue
        if c == "(":
            toks.append(_T(_P, "(", i, i + 1, depth))
            depth += 1
            i += 1
            continue
        if c == ")":
            depth = max(0, depth - 1)
            toks.append(_T(_P, ")", i, i + 1, depth))
            i += 1
            continue
        if c in ";,.*":
            toks.append(_T(_P, c, i, i + 1, depth))
            i += 1
            continue
        m = _OPERATOR.match(s, i)
        j = m.end() if m else i + 1
        toks.append(_T(_P, s[i:j], i, j, depth))
        i = j
    return toks, False


_PIECES = [
    *"abcENBXexnb_$'\"`[]()-/*;,.=<>!|:~^&+%@#?0123456789 \t\n\r\x0b\x0c\\{}",
    *["--", "/*", "*/", "''", "$$", "$a$", "\u00e9", "\u00b2", "\U0001d7ce", "\u0660", "\u3000"],
    *["\x00", "\x85", "\u2028", "1.5e+3", "E'", "SELECT ", " FROM ", " WHERE "],
]
_QUERIES = [
    "SELECT * FROM orders WHERE id = 1",
    'DELETE FROM t WHERE 1=1; DROP TABLE IF EXISTS "x".y',
    "COPY (SELECT 1) TO '/tmp/o.csv' -- c\n WITH CSV",
    "SELECT $tag$ a ' b $tag$, E'x''y', [col], `c` /* unterminated",
    "INSERT INTO a(b) VALUES (1.5e3, -2, x'ff', N'z') RETURNING *",
]


@settings(max_examples=3000, deadline=None)
@given(
    text=st.one_of(
        st.lists(st.sampled_from(_PIECES), max_size=40).map("".join),
        st.text(max_size=60),
        st.tuples(st.sampled_from(_QUERIES), st.integers(0, 80), st.sampled_from(_PIECES)).map(
            lambda t: t[0][: t[1]] + t[2] + t[0][t[1] :]
        ),
    ),
    budget=st.sampled_from([16384, 0, 1, 2, 3, 5, 8]),
)
def test_tokenizer_same_as_reference(text: str, budget: int) -> None:
    toks, cut = _tokenize(text, budget)
    want, want_cut = reference_tokenize(text, budget)
    got = list(zip(toks.kind, toks.value, toks.start, toks.end, toks.depth, strict=True))
    assert len(toks) == len(got)
    assert got == [astuple(t) for t in want]
    assert cut == want_cut
