"""CEF lines: escaping per the CEF specification, and arbitrary text never breaks a line.

The parser below is written from the specification, independently of the encoder: the header
is seven ``|``-separated fields (``\\|`` and ``\\\\`` escaped); the extension is ``key=value``
pairs where a new key starts at a space followed by ``[A-Za-z0-9_]+=`` with an unescaped ``=``.
"""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.outputs import encoder_for
from pipeline.outputs.cef import MAX_VALUE_CHARS, escape_extension, escape_header

from .records import alert, enriched

_KEY = re.compile(r"(?:^| )([A-Za-z0-9_]+)=")
_UNESCAPE_EXT = {"\\": "\\", "=": "=", "n": "\n", "r": "\r"}


def _split_header(line: str) -> tuple[list[str], str]:
    fields, cur, i = [], [], 0
    while len(fields) < 7:
        c = line[i]
        if c == "\\" and line[i + 1] in "\\|":
            cur.append(line[i + 1])
            i += 2
        elif c == "|":
            fields.append("".join(cur))
            cur = []
            i += 1
        else:
            cur.append(c)
            i += 1
    return fields, line[i:]


def _unescape_ext(v: str) -> str:
    return re.sub(r"\\(.)", lambda m: _UNESCAPE_EXT.get(m.group(1), "\\" + m.group(1)), v)


def parse_cef(line: str) -> tuple[list[str], dict[str, str]]:
    assert "\n" not in line and "\r" not in line
    header, ext = _split_header(line)
    starts = [mt for mt in _KEY.finditer(ext)]
    out: dict[str, str] = {}
    for n, mt in enumerate(starts):
        end = starts[n + 1].start() if n + 1 < len(starts) else len(ext)
        key = mt.group(1)
        assert key not in out, f"duplicate key {key}"
        out[key] = _unescape_ext(ext[mt.end() : end])
    return header, out


def _clean(s: str) -> str:
    """What survives by design: unsafe line-breaking characters become U+FFFD."""
    return re.sub("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\x85\u2028\u2029]", "\ufffd", s)


def test_enriched_line() -> None:
    rec = enriched("shell")
    header, ext = parse_cef(encoder_for("enriched", "cef")(rec).decode())
    assert header == [
        "CEF:0", "agentwatch", "agentwatch", "0.1.0", "shell.pipe-to-shell", "Downloads a script and runs it", "8",
    ]  # fmt: skip
    assert ext["suser"] == "alice@example.com"  # the owner is the user
    assert (ext["cs1Label"], ext["cs1"]) == ("agentId", "agent-billing-7")  # the agent
    assert ext["dvchost"] == "mcp-gateway-eu1"  # the enforcement point is the device
    assert ext["msg"] == "rm -rf /var/lib/db"
    assert ext["rt"] == "1772366400123" and ext["externalId"] == rec["event_id"]
    assert (ext["cn1Label"], ext["cn1"]) == ("riskScore", "72")
    assert ext["cs3"] == "rules:shell.pipe-to-shell=60"  # the = survived its escaping
    assert (ext["cs4"], ext["cs5"]) == ("T1059.004", "TA0002")
    assert ext["act"] == "allow" and ext["cat"] == "shell"


def test_alert_line() -> None:
    header, ext = parse_cef(encoder_for("alerts", "cef")(alert()).decode())
    assert header[4] == "exfil.bulk-upload" and header[6] == "10"
    assert ext["cnt"] == "3" and ext["cs2"] == "e1,e2,e3"
    assert ext["cn1"] == "91.0" and ext["cn2"] == "95.0"
    assert (ext["start"], ext["end"]) == ("1772366400000", "1772366700000")
    assert (ext["cs4"], ext["cs5"]) == ("T1567.002", "TA0010")


def test_escaping_rules_of_the_specification() -> None:
    assert escape_header("a|b\\c") == "a\\|b\\\\c"
    assert escape_header("line1\nline2\r") == "line1 line2 "
    assert escape_extension("a=b\\c\nd\re|f") == "a\\=b\\\\c\\nd\\re|f"  # pipes need no escape here
    assert escape_extension("nul\x00 nel\x85 ls\u2028") == "nul\ufffd nel\ufffd ls\ufffd"
    assert len(escape_extension("x" * (MAX_VALUE_CHARS + 50))) == MAX_VALUE_CHARS


_pieces = st.text(alphabet=st.characters(codec="utf-8"), max_size=6) | st.sampled_from(
    [
        "|",
        "\\",
        "=",
        "\n",
        "\r",
        " ",
        "a=b",
        " cs1=",
        "\\=",
        "\\|",
        "\x85",
        "\u2028",
        "\x00",
        "CEF:0|",
    ]
)
nasty = st.lists(_pieces, max_size=12).map("".join)


@settings(max_examples=300, deadline=None)
@given(command=nasty, reason=nasty, fid=nasty, owner=nasty, agent=nasty, target=nasty, ep=nasty)
def test_arbitrary_text_never_breaks_the_line_and_round_trips(
    command: str, reason: str, fid: str, owner: str, agent: str, target: str, ep: str
) -> None:
    rec = enriched("file")
    rec["action"]["command"] = command
    rec["action"]["target"] = target
    rec["owner"], rec["agent_id"], rec["enforcement_point"] = owner, agent, ep
    rec["agentwatch"]["findings"][0].update(id=fid, reason=reason)
    raw = encoder_for("enriched", "cef")(rec)
    line = raw.decode("utf-8")
    assert len(line.splitlines()) == 1  # no \n, \r, NEL, U+2028 ... anywhere
    header, ext = parse_cef(line)
    assert header[4] == _clean(fid).replace("\n", " ").replace("\r", " ")
    assert header[5] == _clean(reason).replace("\n", " ").replace("\r", " ")
    for key, original in (
        ("msg", command),
        ("suser", owner),
        ("cs1", agent),
        ("dvchost", ep),
        ("filePath", target),
    ):
        if original == "":
            assert key not in ext  # empty values are left out
        else:
            assert ext[key] == _clean(original), key
