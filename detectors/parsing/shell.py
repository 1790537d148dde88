"""Shell command-line parser for rule matching (not an interpreter).

``parse_shell(text) -> ParsedShell`` turns one raw command line, as an agent sent it, into the
simple commands it would run, so rules match what executes rather than how it was spelt:

- splits ``;`` ``&&`` ``||`` ``&`` newlines and pipes, and parses ``$(...)``, backticks and
  ``<(...)``/``>(...)`` as commands of their own (origin ``subst``);
- undoes quoting and escaping tricks (``r''m``, ``\\rm``, ``"r"m``, ``$'\\x72m'``, ``$@``, ``${IFS}``);
- strips wrappers (sudo, doas, env, nohup, timeout, nice, xargs, stdbuf, setsid, exec, command,
  time, busybox) and parses the inner script of ``sh -c``, ``bash -c``, ``su -c``, ``eval``,
  ``env -S``, ``watch``, ``find -exec``, ``ssh host CMD``, ``kubectl exec -- CMD``, ``docker exec``
  and here-documents/strings fed to a shell; the stripped wrappers are kept in ``wrappers``;
- resolves full paths (``/usr/bin/rm`` -> ``rm``);
- decodes payloads carried in the command itself (``echo <b64> | base64 -d | sh``,
  ``base64 -d <<< <b64>``, ``xxd -r -p``, ``printf '\\x..' | sh``) and parses them (origin
  ``base64``/``hex``/``printf``).

It never raises on any input and its cost and output are bounded: input is clipped to
:data:`MAX_INPUT` characters, at most :data:`MAX_COMMANDS` commands of :data:`MAX_WORDS` words are
produced, nesting stops at :data:`MAX_DEPTH`, decoded payloads are capped at :data:`MAX_DECODED`.
``truncated`` says when a bound was hit.

Only fixed character-class patterns of the standard ``re`` module are used here (linear time, no
nested quantifiers); rule-supplied patterns never reach this module. We do not use bashlex
(GPL-3.0, and it rejects much of the malformed text agents send).
"""

from __future__ import annotations

import base64
import binascii
import re
from functools import lru_cache

from detectors.events import FrozenValue, Value

__all__ = [
    "MAX_COMMANDS",
    "MAX_DEPTH",
    "MAX_INPUT",
    "ParsedShell",
    "Redirect",
    "SimpleCommand",
    "parse_shell",
]

MAX_INPUT = 64 * 1024
MAX_COMMANDS = 256
MAX_WORDS = 512
MAX_DEPTH = 4
MAX_DECODED = 16 * 1024
MAX_TOKENS = 8192
_CACHE_MAX_LEN = 2048  # only short lines are cached: bounded memory (4096 entries x 2 KiB)

SHELLS = frozenset({"sh", "bash", "zsh", "dash", "ksh", "ash", "mksh", "yash", "fish", "rbash"})
#: programs that execute what they read on stdin (decoded payloads piped to them are parsed)
EXECUTORS = SHELLS | frozenset(
    {"eval", "source", "python", "python3", "perl", "ruby", "node", "php"}
)


# The result classes are plain classes with the dataclass's ``==`` and ``repr`` (from
# detectors.events.Value) and, where they replace frozen dataclasses, a hash by value (from
# FrozenValue): a dataclass keeps an interpreted ``__init__`` in the compiled build. Treat them as
# read-only once parsed: parses are cached and shared.


class Redirect(FrozenValue):
    """One redirection: ``op`` is ``>``, ``>>``, ``<``, ``<<``, ``<<<``, ``>&``, ``&>`` ...;
    ``target`` is the file/word (unquoted) or, for here-documents, the body."""

    __slots__ = ("fd", "op", "target")
    _NAMES = ("op", "fd", "target")

    def __init__(self, op: str, fd: str, target: str) -> None:
        self.op = op
        self.fd = fd
        self.target = target


class SimpleCommand(Value):
    """One command that would run.

    ``program`` is the basename of the executable after wrappers were stripped (``""`` for a
    line of bare assignments); ``args`` its arguments, unquoted; ``span`` locates the command in
    the original text (nested commands carry the span of the top-level command they came from);
    ``origin`` says how it was found (``line``, ``subst``, ``shell-c``, ``eval``, ``ssh``,
    ``exec``, ``heredoc``, ``base64``, ``hex``, ``printf``, ``watch``, ``env-S``).
    ``pipe_from``/``pipe_to`` are the programs before/after it in its pipeline.
    """

    __slots__ = ("args", "assignments", "depth", "origin", "pipe_from", "pipe_to", "program", "raw_program",
                 "redirects", "span", "wrappers")
    _NAMES = ("program", "args", "raw_program", "wrappers", "assignments", "redirects", "span", "origin", "depth",
              "pipe_from", "pipe_to")

    def __init__(self, program: str, args: tuple[str, ...], raw_program: str = "", wrappers: tuple[str, ...] = (),
                 assignments: tuple[str, ...] = (), redirects: tuple[Redirect, ...] = (),
                 span: tuple[int, int] = (0, 0), origin: str = "line", depth: int = 0, pipe_from: str = "",
                 pipe_to: str = "") -> None:
        self.program = program
        self.args = args
        self.raw_program = raw_program
        self.wrappers = wrappers
        self.assignments = assignments
        self.redirects = redirects
        self.span = span
        self.origin = origin
        self.depth = depth
        self.pipe_from = pipe_from
        self.pipe_to = pipe_to

    @property
    def text(self) -> str:
        """The command normalised: program and unquoted arguments joined by single spaces."""
        if not self.args:
            return self.program
        return self.program + " " + " ".join(self.args)


class ParsedShell(FrozenValue):
    __slots__ = ("commands", "decoded", "truncated")
    _NAMES = ("commands", "truncated", "decoded")

    def __init__(self, commands: tuple[SimpleCommand, ...], truncated: bool = False,
                 decoded: tuple[str, ...] = ()) -> None:
        self.commands = commands
        self.truncated = truncated
        self.decoded = decoded


    @property
    def programs(self) -> tuple[str, ...]:
        return tuple(c.program for c in self.commands if c.program)


# ---------------------------------------------------------------------------------------------
# Lexer: text -> tokens. Word tokens carry the unquoted text, the raw text and substitutions.

_BLANK = re.compile(r"[ \t\r\f\v]+")
_WORD_RUN = re.compile(r"[^\s'\"\\$`;&|<>()]+")
_DQ_RUN = re.compile(r'[^"\\$`]+')
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_FD_REDIR = re.compile(r"\d{1,4}(?=[<>])")
_PAREN_SPECIAL = re.compile(r"[()'\"\\`]")
_BRACE_SPECIAL = re.compile(r"[{}'\"\\]")
_ASSIGN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\[[^\]]*\])?\+?=")

_OPS = (";;&", ";;", ";&", "&&", "||", "|&", ";", "&", "|", "(", ")")
_REDIRS = ("&>>", "&>", "<<<", "<<-", "<<", "<>", "<&", ">>", ">&", ">|", "<", ">")
_BREAK = object()  # unquoted ${IFS}: splits the word


# _Word and _Tok, one or two per token, are plain classes rather than dataclasses: in the
# compiled build a dataclass keeps the interpreted ``__init__`` that ``dataclasses`` generates,
# where a written one compiles to a field fill (see detectors.events.Value). Nothing compares
# or prints them.


class _Word:
    __slots__ = ("end", "quoted", "raw", "start", "substs", "text")

    def __init__(self, text: str, raw: str, start: int, end: int, quoted: bool,
                 substs: list[tuple[str, int]]) -> None:
        self.text = text
        self.raw = raw
        self.start = start
        self.end = end
        self.quoted = quoted
        self.substs = substs


class _Tok:
    __slots__ = ("body", "end", "fd", "kind", "start", "value", "word")

    def __init__(self, kind: str, value: str, start: int, end: int, word: _Word | None = None,
                 fd: str = "", body: str | None = None) -> None:
        self.kind = kind  # "w" word, "o" operator, "r" redirection
        self.value = value
        self.start = start
        self.end = end
        self.word = word
        self.fd = fd
        self.body = body  # here-document body, filled when the newline is reached


def _match_paren(s: str, i: int, n: int) -> int:
    """Index of the ``)`` closing a ``(`` whose content starts at ``i`` (``n`` if unclosed)."""
    depth = 1
    while i < n:
        m = _PAREN_SPECIAL.search(s, i)
        if m is None:
            return n
        i = m.start()
        c = s[i]
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i
        elif c == "\\":
            i += 1
        elif c == "'":
            j = s.find("'", i + 1)
            i = n if j < 0 else j
        elif c == '"':
            i = _skip_dquote(s, i + 1, n) - 1
        elif c == "`":
            j = _find_backtick(s, i + 1, n)
            i = j
        i += 1
    return n


def _skip_dquote(s: str, i: int, n: int) -> int:
    """Index just after the ``"`` closing a double-quoted string whose content starts at ``i``."""
    while i < n:
        c = s[i]
        if c == "\\":
            i += 2
            continue
        if c == '"':
            return i + 1
        i += 1
    return n


def _find_backtick(s: str, i: int, n: int) -> int:
    while i < n:
        c = s[i]
        if c == "\\":
            i += 2
            continue
        if c == "`":
            return i
        i += 1
    return n


def _match_brace(s: str, i: int, n: int) -> int:
    depth = 1
    while i < n:
        m = _BRACE_SPECIAL.search(s, i)
        if m is None:
            return n
        i = m.start()
        c = s[i]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i
        elif c == "\\":
            i += 1
        elif c == "'":
            j = s.find("'", i + 1)
            i = n if j < 0 else j
        elif c == '"':
            i = _skip_dquote(s, i + 1, n) - 1
        i += 1
    return n


_ANSI_SIMPLE = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "a": "\a",
    "b": "\b",
    "e": "\x1b",
    "E": "\x1b",
    "f": "\f",
    "v": "\v",
    "\\": "\\",
    "'": "'",
    '"': '"',
    "?": "?",
}
_HEX = frozenset("0123456789abcdefABCDEF")
_OCT = frozenset("01234567")


def _decode_escapes(body: str, octal_needs_zero: bool = False) -> str:
    """Decode C-style escapes (``$'...'`` bodies and printf/echo -e formats)."""
    out: list[str] = []
    i = 0
    n = len(body)
    while i < n:
        j = body.find("\\", i)
        if j < 0:
            out.append(body[i:])
            break
        out.append(body[i:j])
        i = j + 1
        if i >= n:
            out.append("\\")
            break
        c = body[i]
        if c in _ANSI_SIMPLE:
            out.append(_ANSI_SIMPLE[c])
            i += 1
        elif c in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[c]
            k = i + 1
            while k < n and k < i + 1 + width and body[k] in _HEX:
                k += 1
            if k == i + 1:
                out.append("\\" + c)
            else:
                code = int(body[i + 1 : k], 16)
                out.append(chr(code) if code < 0x110000 and not 0xD800 <= code < 0xE000 else "?")
            i = k
        elif c in _OCT:
            k = i
            if octal_needs_zero and c == "0":
                k += 1
            start = k
            while k < n and k < start + 3 and body[k] in _OCT:
                k += 1
            out.append(chr(int(body[start:k], 8) & 0xFF) if k > start else "\0")
            i = k
        elif c == "c" and i + 1 < n:
            out.append(chr(ord(body[i + 1]) & 0x1F))
            i += 2
        else:
            out.append("\\" + c)
            i += 1
    return "".join(out)


def _ansi_c_end(s: str, i: int, n: int) -> int:
    """Index of the ``'`` closing a ``$'...'`` body starting at ``i``."""
    while i < n:
        c = s[i]
        if c == "\\":
            i += 2
            continue
        if c == "'":
            return i
        i += 1
    return n


def _dollar(
    s: str,
    i: int,
    n: int,
    parts: list[object],
    substs: list[tuple[str, int]],
    base: int,
    in_dq: bool,
) -> int:
    """Handle ``$`` at ``i``; append to ``parts``; return the next index."""
    nxt = s[i + 1] if i + 1 < n else ""
    if nxt == "(":
        if i + 2 < n and s[i + 2] == "(":  # $(( arithmetic )): literal
            j = _match_paren(s, i + 2, n)  # from the second "(": depth covers both
            end = min(j + 1, n)
            parts.append(s[i:end])
            return end
        j = _match_paren(s, i + 2, n)
        substs.append((s[i + 2 : j], base + i + 2))
        end = min(j + 1, n)
        parts.append(s[i:end])
        return end
    if nxt == "{":
        j = _match_brace(s, i + 2, n)
        inner = s[i + 2 : j]
        end = min(j + 1, n)
        if inner in ("@", "*") or (inner[:1] in "@*" and inner[1:2] in ":-+=?%#"):
            return end
        if inner == "IFS" or (
            inner.startswith("IFS") and not (inner[3].isalnum() or inner[3] == "_")
        ):
            parts.append(" " if in_dq else _BREAK)
            return end
        parts.append(s[i:end])
        return end
    if nxt == "'" and not in_dq:
        j = _ansi_c_end(s, i + 2, n)
        parts.append(_decode_escapes(s[i + 2 : j]))
        return min(j + 1, n)
    if nxt == '"' and not in_dq:
        return _dquote(s, i + 2, n, parts, substs, base)
    if nxt in ("@", "*"):
        return i + 2
    m = _NAME.match(s, i + 1)
    if m is not None:
        if m.group() == "IFS":
            parts.append(" " if in_dq else _BREAK)
        else:
            parts.append(s[i : m.end()])
        return m.end()
    parts.append("$")
    return i + 1


def _dquote(
    s: str, i: int, n: int, parts: list[object], substs: list[tuple[str, int]], base: int
) -> int:
    """Parse a double-quoted body starting at ``i``; return the index after the closing quote."""
    while i < n:
        m = _DQ_RUN.match(s, i)
        if m is not None:
            parts.append(m.group())
            i = m.end()
            continue
        c = s[i]
        if c == '"':
            return i + 1
        if c == "\\":
            if i + 1 < n:
                e = s[i + 1]
                if e == "\n":
                    pass
                elif e in '$`"\\':
                    parts.append(e)
                else:
                    parts.append("\\" + e)
                i += 2
            else:
                parts.append("\\")
                i += 1
        elif c == "$":
            i = _dollar(s, i, n, parts, substs, base, True)
        else:  # backtick
            j = _find_backtick(s, i + 1, n)
            substs.append((s[i + 1 : j], base + i + 1))
            parts.append(s[i : j + 1])
            i = min(j + 1, n)
    return n


def _word(s: str, i: int, n: int, base: int, out: list[_Tok]) -> int:
    """Scan one word starting at ``i``; append word token(s) to ``out``; return the next index."""
    start = i
    parts: list[object] = []
    substs: list[tuple[str, int]] = []
    quoted = False
    while i < n:
        m = _WORD_RUN.match(s, i)
        if m is not None:
            parts.append(m.group())
            i = m.end()
            continue
        c = s[i]
        if c == "'":
            j = s.find("'", i + 1)
            j = n if j < 0 else j
            parts.append(s[i + 1 : j])
            quoted = True
            i = min(j + 1, n)
        elif c == '"':
            quoted = True
            i = _dquote(s, i + 1, n, parts, substs, base)
        elif c == "\\":
            if i + 1 < n:
                if s[i + 1] != "\n":
                    parts.append(s[i + 1])
                i += 2
            else:
                i += 1
        elif c == "$":
            i = _dollar(s, i, n, parts, substs, base, False)
        elif c == "`":
            j = _find_backtick(s, i + 1, n)
            substs.append((s[i + 1 : j], base + i + 1))
            parts.append(s[i : j + 1])
            i = min(j + 1, n)
        elif c in "<>" and i + 1 < n and s[i + 1] == "(" and i == start:
            j = _match_paren(s, i + 2, n)
            substs.append((s[i + 2 : j], base + i + 2))
            parts.append(s[i : j + 1])
            i = min(j + 1, n)
        else:
            break
    raw = s[start:i]
    end = base + i
    if _BREAK in parts:
        chunk: list[str] = []
        for p in [*parts, _BREAK]:
            if p is _BREAK:
                if chunk:
                    text = "".join(chunk)
                    out.append(
                        _Tok(
                            "w",
                            text,
                            base + start,
                            end,
                            _Word(text, raw, base + start, end, quoted, substs),
                        )
                    )
                    substs = []
                chunk = []
            else:
                chunk.append(p)  # type: ignore[arg-type]
    else:
        text = "".join(parts)  # type: ignore[arg-type]
        out.append(
            _Tok("w", text, base + start, end, _Word(text, raw, base + start, end, quoted, substs))
        )
    return max(i, start + 1)


def _lex(s: str, base: int, ctx: _Ctx) -> list[_Tok]:
    toks: list[_Tok] = []
    n = len(s)
    i = 0
    budget = MAX_TOKENS - ctx.tokens
    pending: list[tuple[_Tok, bool]] = []  # here-documents waiting for the end of the line
    expect_delim: tuple[_Tok, bool] | None = None
    while i < n:
        if len(toks) >= budget:
            ctx.truncated = ctx.stopped = True
            break
        c = s[i]
        if c in " \t\r\f\v":
            m = _BLANK.match(s, i)
            i = m.end() if m else i + 1
            continue
        if c == "\n":
            toks.append(_Tok("o", "\n", base + i, base + i + 1))
            i += 1
            for tok, strip in pending:
                i = _read_heredoc(s, i, n, tok, strip)
            pending.clear()
            continue
        if c == "#":
            j = s.find("\n", i)
            i = n if j < 0 else j
            continue
        if c in "<>" and not (i + 1 < n and s[i + 1] == "("):
            i = _redirect(s, i, n, base, "", toks)
            if toks[-1].value in ("<<", "<<-"):
                expect_delim = (toks[-1], toks[-1].value == "<<-")
            continue
        if c in ";&|()":
            if c == "&" and s.startswith("&>", i):
                i = _redirect(s, i, n, base, "", toks)
                continue
            for op in _OPS:
                if s.startswith(op, i):
                    toks.append(_Tok("o", op, base + i, base + i + len(op)))
                    i += len(op)
                    break
            continue
        if c.isdigit():
            m = _FD_REDIR.match(s, i)
            if m is not None:
                i = _redirect(s, m.end(), n, base, m.group(), toks)
                if toks[-1].value in ("<<", "<<-"):
                    expect_delim = (toks[-1], toks[-1].value == "<<-")
                continue
        before = len(toks)
        i = _word(s, i, n, base, toks)
        if expect_delim is not None and len(toks) > before:
            tok, strip = expect_delim
            tok.body = ""
            tok.word = toks[-1].word  # the delimiter; the body is read at the next newline
            pending.append((tok, strip))
            expect_delim = None
    for tok, _strip in pending:  # unterminated line: nothing follows
        tok.body = ""
    ctx.tokens += len(toks)
    return toks


def _redirect(s: str, i: int, n: int, base: int, fd: str, toks: list[_Tok]) -> int:
    for op in _REDIRS:
        if s.startswith(op, i):
            toks.append(_Tok("r", op, base + i - len(fd), base + i + len(op), fd=fd))
            return i + len(op)
    toks.append(_Tok("r", s[i], base + i, base + i + 1, fd=fd))  # pragma: no cover - defensive
    return i + 1


def _read_heredoc(s: str, i: int, n: int, tok: _Tok, strip: bool) -> int:
    delim = tok.word.text if tok.word is not None else ""
    lines: list[str] = []
    while i < n:
        j = s.find("\n", i)
        line = s[i:] if j < 0 else s[i:j]
        i = n if j < 0 else j + 1
        check = line.lstrip("\t") if strip else line
        if check == delim:
            break
        lines.append(check)
    tok.body = "\n".join(lines)
    return i


# ---------------------------------------------------------------------------------------------
# Wrappers: each returns how to continue with the argument vector.


def _skip_options(
    argv: list[str], i: int, short_arg: str = "", long_arg: frozenset[str] = frozenset()
) -> int:
    """Index of the first operand at or after ``i``, skipping options (and their arguments)."""
    n = len(argv)
    while i < n:
        a = argv[i]
        if a == "--":
            return i + 1
        if a.startswith("--") and len(a) > 2:
            i += 1
            if "=" not in a and a[2:] in long_arg:
                i += 1
            continue
        if a.startswith("-") and len(a) > 1:
            i += 1
            for k, ch in enumerate(a[1:], 1):
                if ch in short_arg:
                    if k == len(a) - 1:
                        i += 1  # the option's argument is the next word
                    break
            continue
        return i
    return n


_SUDO_ARG = "ughpCDRTUrt"
_SUDO_LONG = frozenset(
    {
        "user",
        "group",
        "host",
        "prompt",
        "close-from",
        "chdir",
        "chroot",
        "command-timeout",
        "other-user",
        "role",
        "type",
    }
)
_TIMEOUT_LONG = frozenset({"signal", "kill-after"})
_XARGS_ARG = "adEILnPs"
_XARGS_LONG = frozenset(
    {
        "arg-file",
        "delimiter",
        "eof",
        "replace",
        "max-lines",
        "max-args",
        "max-procs",
        "max-chars",
        "process-slot-var",
    }
)
_SSH_ARG = "BbcDEeFIiJLlmOopQRSWw"
_DOCKER_EXEC_ARG = "euw"
_DOCKER_EXEC_LONG = frozenset({"env", "env-file", "user", "workdir", "detach-keys"})
_SIMPLE_WRAPPERS = {
    # name: (short options taking an argument, long options taking an argument, positional args to skip)
    "nohup": ("", frozenset(), 0),
    "builtin": ("", frozenset(), 0),
    "unbuffer": ("", frozenset(), 0),
    "setsid": ("", frozenset(), 0),
    "nice": ("n", frozenset({"adjustment"}), 0),
    "ionice": ("cnp", frozenset({"class", "classdata", "pid"}), 0),
    "stdbuf": ("ioe", frozenset({"input", "output", "error"}), 0),
    "time": ("fo", frozenset({"format", "output"}), 0),
    "exec": ("a", frozenset(), 0),
    "doas": ("uC", frozenset(), 0),
    "timeout": ("sk", _TIMEOUT_LONG, 1),
    "taskset": ("", frozenset(), 1),
    "chrt": ("", frozenset(), 1),
    "flock": ("wEc", frozenset({"timeout", "conflict-exit-code"}), 1),
    "busybox": ("", frozenset(), 0),
    "sudo": (_SUDO_ARG, _SUDO_LONG, 0),
    "xargs": (_XARGS_ARG, _XARGS_LONG, 0),
}


def _basename(word: str) -> str:
    """``/usr/bin/rm`` -> ``rm``."""
    if "/" not in word:
        return word
    base = word.rstrip("/").rsplit("/", 1)[-1]
    return base or word


def _shell_script(argv: list[str]) -> str | None:
    """The ``-c`` script of a shell invocation, or None if it reads a file/stdin."""
    i = 1
    n = len(argv)
    found_c = False
    while i < n:
        a = argv[i]
        if a == "--":
            i += 1
            break
        if a in ("-o", "+o", "-O", "+O", "--rcfile", "--init-file"):
            i += 2
            continue
        if a.startswith("--"):
            i += 1
            continue
        if (a.startswith("-") or a.startswith("+")) and len(a) > 1:
            if "c" in a[1:]:
                found_c = True
            i += 1
            continue
        break
    if found_c:
        return argv[i] if i < n else ""
    return None


class _Ctx:
    """Budgets shared by one parse, nested scripts included."""

    __slots__ = ("count", "decoded", "stopped", "tokens", "truncated")

    def __init__(self) -> None:
        self.count = 0  # commands emitted
        self.tokens = 0  # tokens lexed
        self.truncated = False  # a bound was hit somewhere
        self.stopped = False  # a global bound was hit: stop everything
        self.decoded: list[str] = []


def _parse_into(
    text: str,
    base: int,
    depth: int,
    origin: str,
    out: list[SimpleCommand],
    ctx: _Ctx,
    inherited_span: tuple[int, int] | None = None,
    inherited_wrappers: tuple[str, ...] = (),
) -> None:
    if depth > MAX_DEPTH:
        ctx.truncated = True
        return
    if ctx.stopped:
        return
    if _PLAIN_LINE.fullmatch(text) is not None:
        _parse_plain(text, base, depth, origin, out, ctx, inherited_span, inherited_wrappers)
        return
    toks = _lex(text, base, ctx)
    # group tokens into simple commands; pipelines are runs joined by | or |&
    pipeline: list[SimpleCommand] = []
    words: list[_Word] = []
    redirs: list[tuple[_Tok, _Word | None]] = []
    want_target: _Tok | None = None
    started = False

    def finish(end_pipeline: bool) -> None:
        nonlocal words, redirs, started
        if words or redirs:
            start = words[0].start if words else redirs[0][0].start
            end = max(words[-1].end if words else 0, redirs[-1][0].end if redirs else 0)
            span = inherited_span or (start, end)
            cmd = _command(words, redirs, span, depth, origin, out, ctx, inherited_wrappers)
            if cmd is not None:
                pipeline.append(cmd)
        words, redirs, started = [], [], False
        if end_pipeline:
            _link_pipeline(pipeline, depth, out, ctx, inherited_span)
            pipeline.clear()

    for tok in toks:
        if ctx.stopped:
            return
        if tok.kind == "w":
            w = tok.word
            assert w is not None
            if want_target is _SKIP_ONE:  # the here-doc delimiter the lexer already attached
                want_target = None
                continue
            if want_target is not None:
                redirs.append((want_target, w))
                want_target = None
                continue
            if not started and not w.quoted and w.text in _KEYWORDS:
                continue
            if len(words) < MAX_WORDS:
                words.append(w)
            else:
                ctx.truncated = True
            started = True
        elif tok.kind == "r":
            if tok.value in ("<<", "<<-") and tok.word is not None:
                redirs.append((tok, tok.word))
                want_target = _SKIP_ONE  # the next word is the delimiter the lexer attached
            else:
                want_target = tok
        else:  # operator
            want_target = None
            finish(tok.value not in ("|", "|&"))
    finish(True)


# A line without quotes, escapes, expansions, redirections, comments or grouping needs no lexer:
# split it on operators and whitespace (most agent commands take this path).
_PLAIN_LINE = re.compile(r"[^'\"\\$`<>()#\n{}]*")
_PLAIN_SPLIT = re.compile(r"(\|\||&&|\|&|[|;&])")


def _parse_plain(
    text: str,
    base: int,
    depth: int,
    origin: str,
    out: list[SimpleCommand],
    ctx: _Ctx,
    inherited_span: tuple[int, int] | None,
    inherited_wrappers: tuple[str, ...],
) -> None:
    pipeline: list[SimpleCommand] = []
    pos = 0
    pieces = _PLAIN_SPLIT.split(text) if ("|" in text or ";" in text or "&" in text) else [text]
    for k, piece in enumerate(pieces):
        if ctx.stopped:
            return
        if k % 2 == 1:  # an operator
            if piece not in ("|", "|&"):
                _link_pipeline(pipeline, depth, out, ctx, inherited_span)
                pipeline.clear()
            pos += len(piece)
            continue
        argv = piece.split()
        if argv:
            lead = len(piece) - len(piece.lstrip())
            span = inherited_span or (base + pos + lead, base + pos + len(piece.rstrip()))
            if len(argv) > MAX_WORDS:
                argv = argv[:MAX_WORDS]
                ctx.truncated = True
            ctx.tokens += len(argv)
            if ctx.tokens > MAX_TOKENS:
                ctx.truncated = ctx.stopped = True
                return
            while argv and argv[0] in _KEYWORDS:
                argv = argv[1:]
            i = 0
            while i < len(argv) and _ASSIGN.match(argv[i]):
                i += 1
            cmd = _run_argv(
                argv[i:], argv[:i], [], None, span, depth, origin, inherited_wrappers, out, ctx
            )
            if cmd is not None:
                pipeline.append(cmd)
        pos += len(piece)
    _link_pipeline(pipeline, depth, out, ctx, inherited_span)


_SKIP_ONE: _Tok = _Tok("r", "", 0, 0)  # marker: the next word was a here-doc delimiter

_KEYWORDS = frozenset(
    {"if", "then", "else", "elif", "do", "while", "until", "!", "{", "}", "fi", "done", "esac"}
)


def _command(
    words: list[_Word],
    redirs: list[tuple[_Tok, _Word | None]],
    span: tuple[int, int],
    depth: int,
    origin: str,
    out: list[SimpleCommand],
    ctx: _Ctx,
    wrappers_in: tuple[str, ...],
) -> SimpleCommand | None:
    """Turn one simple command's words into SimpleCommand(s) appended to ``out``.

    Returns the command that takes part in the pipeline (the innermost for ``sh -c``) or None.
    """
    # command and process substitutions run first, as commands of their own
    for w in words:
        for inner, at in w.substs:
            _parse_into(
                inner, at, depth + 1, "subst", out, ctx, None if depth == 0 else span, wrappers_in
            )
    redirects: list[Redirect] = []
    heredoc: str | None = None
    herestring: str | None = None
    for tok, target in redirs:
        if target is not None:
            for inner, at in target.substs:
                _parse_into(
                    inner,
                    at,
                    depth + 1,
                    "subst",
                    out,
                    ctx,
                    None if depth == 0 else span,
                    wrappers_in,
                )
        if tok.value in ("<<", "<<-"):
            heredoc = tok.body or ""
            redirects.append(Redirect(tok.value, tok.fd, heredoc[:4096]))
        elif target is not None:
            if tok.value == "<<<":
                herestring = target.text
            redirects.append(Redirect(tok.value, tok.fd, target.text))
    i = 0
    assigns: list[str] = []
    while i < len(words) and _ASSIGN.match(words[i].raw):
        assigns.append(words[i].text)
        i += 1
    argv = [w.text for w in words[i:]]
    stdin_script = heredoc if heredoc is not None else herestring
    return _run_argv(
        argv, assigns, redirects, stdin_script, span, depth, origin, wrappers_in, out, ctx
    )


def _run_argv(
    argv: list[str],
    assigns: list[str],
    redirects: list[Redirect],
    stdin_script: str | None,
    span: tuple[int, int],
    depth: int,
    origin: str,
    wrappers_in: tuple[str, ...],
    out: list[SimpleCommand],
    ctx: _Ctx,
) -> SimpleCommand | None:
    """Strip wrappers from an argument vector, parse inner scripts, emit the command.

    Returns the command that takes part in a pipeline, or None when a wrapper (``sh -c``,
    ``eval``, ...) was replaced by the commands of its script.
    """
    wrappers = list(wrappers_in)
    for _ in range(12):  # wrapper chains are short; the bound keeps crafted input cheap
        if not argv:
            break
        prog = _basename(argv[0])
        if prog not in _UNWRAPPABLE:
            break
        nested = _unwrap(prog, argv)
        if nested is None:
            break
        kind, payload, script_origin = nested
        if kind == "script" and depth + 1 > MAX_DEPTH:
            ctx.truncated = True
            break  # too deep: keep the wrapper itself as the command
        if kind == "argv":
            wrappers.append(prog)
            argv = list(payload)  # type: ignore[call-overload]
            # sudo/doas/env accept NAME=value before the command
            while len(argv) > 1 and _ASSIGN.match(argv[0]):
                assigns = [*assigns, argv.pop(0)]
            continue
        inner_wrappers = (*wrappers, prog)
        if isinstance(payload, list):  # an argument vector run by this command (exec -- CMD)
            if depth < MAX_DEPTH:
                _run_argv(
                    payload,
                    [],
                    [],
                    None,
                    span,
                    depth + 1,
                    str(script_origin),
                    inner_wrappers,
                    out,
                    ctx,
                )
        else:
            _parse_into(
                str(payload), 0, depth + 1, str(script_origin), out, ctx, span, inner_wrappers
            )
        if script_origin in _REPLACING:
            return None  # the wrapper itself is not interesting once its script is parsed
        break
    if not argv and not assigns and not redirects:
        return None
    raw_prog = argv[0] if argv else ""
    prog = _basename(raw_prog)[:256] if argv else ""
    cmd = SimpleCommand(
        program=prog,
        args=tuple(argv[1:]),
        raw_program=raw_prog,
        wrappers=tuple(wrappers),
        assignments=tuple(assigns),
        redirects=tuple(redirects),
        span=span,
        origin=origin,
        depth=depth,
    )
    _emit(cmd, out, ctx)
    # a shell reading its script from a here-document or here-string
    if stdin_script and prog in SHELLS and len(argv) == 1:
        _parse_into(stdin_script, 0, depth + 1, "heredoc", out, ctx, span, (*wrappers, prog))
    if prog == "find" and depth < MAX_DEPTH:
        _find_exec(cmd, span, depth, out, ctx)
    return cmd


_REPLACING = frozenset({"shell-c", "eval", "env-S", "su"})
_UNWRAPPABLE = (
    frozenset({"command", "env", "su", "eval", "watch", "ssh", "kubectl", "oc", "docker", "podman"})
    | SHELLS
    | frozenset(_SIMPLE_WRAPPERS)
)


def _emit(cmd: SimpleCommand, out: list[SimpleCommand], ctx: _Ctx) -> None:
    if ctx.count >= MAX_COMMANDS:
        ctx.truncated = ctx.stopped = True
        return
    ctx.count += 1
    out.append(cmd)


def _find_exec(
    cmd: SimpleCommand, span: tuple[int, int], depth: int, out: list[SimpleCommand], ctx: _Ctx
) -> None:
    args = cmd.args
    i = 0
    while i < len(args):
        if args[i] in ("-exec", "-execdir", "-ok", "-okdir"):
            j = i + 1
            while j < len(args) and args[j] not in (";", "+"):
                j += 1
            inner = list(args[i + 1 : j])
            if inner:
                _run_argv(
                    inner, [], [], None, span, depth + 1, "exec", (*cmd.wrappers, "find"), out, ctx
                )
            i = j
        i += 1


def _unwrap(prog: str, argv: list[str]) -> tuple[str, object, object] | None:
    """How to see through ``prog``: ("argv", new_argv, None), ("script", text|argv, origin) or None."""
    spec = _SIMPLE_WRAPPERS.get(prog)
    if spec is not None:
        short_arg, long_arg, positional = spec
        j = _skip_options(argv, 1, short_arg, long_arg)
        j += positional
        if j >= len(argv):
            return None
        return ("argv", argv[j:], None)
    if prog == "command":
        if len(argv) > 1 and argv[1] in ("-v", "-V"):
            return None
        j = _skip_options(argv, 1)
        return ("argv", argv[j:], None) if j < len(argv) else None
    if prog == "env":
        return _unwrap_env(argv)
    if prog in SHELLS:
        script = _shell_script(argv)
        if script is None:
            return None
        return ("script", script, "shell-c")
    if prog == "su":
        for k, a in enumerate(argv[1:], 1):
            if a in ("-c", "--command") and k + 1 < len(argv):
                return ("script", argv[k + 1], "su")
            if a.startswith("--command="):
                return ("script", a.split("=", 1)[1], "su")
        return None
    if prog == "eval":
        return ("script", " ".join(argv[1:]), "eval") if len(argv) > 1 else None
    if prog == "watch":
        j = _skip_options(argv, 1, "nd", frozenset({"interval", "differences"}))
        return ("script", " ".join(argv[j:]), "watch") if j < len(argv) else None
    if prog == "ssh":
        j = _skip_options(argv, 1, _SSH_ARG)
        if j + 1 < len(argv):
            return ("script", " ".join(argv[j + 1 :]), "ssh")
        return None
    if prog in ("kubectl", "oc") and len(argv) > 2 and "exec" in argv[1:3] and "--" in argv:
        k = argv.index("--")
        return ("script", argv[k + 1 :], "exec") if k + 1 < len(argv) else None
    if prog in ("docker", "podman") and len(argv) > 2 and argv[1] == "exec":
        j = _skip_options(argv, 2, _DOCKER_EXEC_ARG, _DOCKER_EXEC_LONG)
        if j + 1 < len(argv):
            return ("script", argv[j + 1 :], "exec")
        return None
    return None


def _unwrap_env(argv: list[str]) -> tuple[str, object, object] | None:
    i = 1
    n = len(argv)
    while i < n:
        a = argv[i]
        if a in ("-S", "--split-string") and i + 1 < n:
            return ("script", " ".join(argv[i + 1 :]), "env-S")
        if a.startswith("-S") and len(a) > 2:
            return ("script", " ".join([a[2:], *argv[i + 1 :]]), "env-S")
        if a in ("-u", "--unset", "-C", "--chdir", "-P"):
            i += 2
            continue
        if a == "--":
            i += 1
            break
        if a.startswith("-") or _ASSIGN.match(a):
            i += 1
            continue
        break
    if i >= n:
        return None  # bare `env` prints the environment: keep it as the program
    return ("argv", argv[i:], None)


# ---------------------------------------------------------------------------------------------
# Pipelines: neighbours and payload decoding.

_B64_CLEAN = re.compile(r"[\s]+")
_DECODE_FLAGS = frozenset({"-d", "--decode", "-D", "-di", "-id"})


def _link_pipeline(
    pipeline: list[SimpleCommand],
    depth: int,
    out: list[SimpleCommand],
    ctx: _Ctx,
    inherited_span: tuple[int, int] | None,
) -> None:
    for k, cmd in enumerate(pipeline):
        if k > 0:
            cmd.pipe_from = pipeline[k - 1].program
        if k + 1 < len(pipeline):
            cmd.pipe_to = pipeline[k + 1].program
    for k, cmd in enumerate(pipeline):
        decoded: str | None = None
        kind = ""
        prev = pipeline[k - 1] if k > 0 else None
        if _is_b64_decoder(cmd):
            payload = _payload(cmd, prev)
            if payload:
                decoded = _b64(payload)
                kind = "base64"
        elif cmd.program == "xxd" and "-r" in cmd.args:
            payload = _payload(cmd, prev)
            if payload:
                decoded = _hex(payload)
                kind = "hex"
        elif (
            cmd.program in ("printf", "echo")
            and cmd.pipe_to in SHELLS
            and "\\" in " ".join(cmd.args)
        ):
            body = " ".join(a for a in cmd.args if a not in ("-e", "-n", "-en", "-ne"))
            decoded = _decode_escapes(body, octal_needs_zero=cmd.program == "echo")
            kind = "printf"
        if decoded:
            ctx.decoded.append(decoded[:MAX_DECODED])
            # parse it as commands only when it is executed: a shell/interpreter reads it later in
            # the pipeline, or it is a command substitution ($(... | base64 -d) run by a wrapper)
            runs = any(c.program in EXECUTORS for c in pipeline[k + 1 :]) or cmd.origin == "subst"
            if runs:
                span = inherited_span or cmd.span
                _parse_into(decoded[:MAX_DECODED], 0, depth + 1, kind, out, ctx, span, cmd.wrappers)


def _is_b64_decoder(cmd: SimpleCommand) -> bool:
    if cmd.program == "base64" or cmd.program == "base32":
        return any(a in _DECODE_FLAGS for a in cmd.args)
    if cmd.program == "openssl":
        return "base64" in cmd.args and "-d" in cmd.args
    return False


def _payload(cmd: SimpleCommand, prev: SimpleCommand | None) -> str:
    for r in cmd.redirects:
        if r.op == "<<<":
            return r.target
        if r.op in ("<<", "<<-"):
            return r.target
    if prev is not None and prev.program in ("echo", "printf"):
        return " ".join(a for a in prev.args if not (a.startswith("-") and len(a) <= 3))
    return ""


def _b64(payload: str) -> str | None:
    data = _B64_CLEAN.sub("", payload)
    if len(data) < 4 or len(data) > MAX_DECODED * 2:
        return None
    data += "=" * (-len(data) % 4)
    try:
        raw = base64.b64decode(
            data, altchars=b"-_" if ("-" in data or "_" in data) else None, validate=True
        )
    except (binascii.Error, ValueError):
        return None
    return _printable(raw)


def _hex(payload: str) -> str | None:
    data = _B64_CLEAN.sub("", payload)
    if len(data) < 2 or len(data) > MAX_DECODED * 2 or len(data) % 2:
        return None
    try:
        raw = bytes.fromhex(data)
    except ValueError:
        return None
    return _printable(raw)


def _printable(raw: bytes) -> str | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not text:
        return None
    good = sum(1 for ch in text if ch.isprintable() or ch in "\n\t\r")
    return text if good >= 0.9 * len(text) else None


# ---------------------------------------------------------------------------------------------


def parse_shell(text: str) -> ParsedShell:
    """Parse one command line. Never raises; bounded time and output (see module docstring)."""
    if not isinstance(text, str):
        text = str(text)
    if len(text) <= _CACHE_MAX_LEN:
        return _parse_cached(text)
    return _parse(text[:MAX_INPUT], len(text) > MAX_INPUT)


@lru_cache(maxsize=4096)
def _parse_cached(text: str) -> ParsedShell:
    return _parse(text, False)


def _parse(text: str, clipped: bool) -> ParsedShell:
    out: list[SimpleCommand] = []
    ctx = _Ctx()
    try:
        _parse_into(text, 0, 0, "line", out, ctx)
    except RecursionError:  # pragma: no cover - depth is bounded; belt and braces
        ctx.truncated = True
    return ParsedShell(tuple(out), ctx.truncated or clipped, tuple(ctx.decoded))
