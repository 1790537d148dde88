"""Reading rule directories: YAML documents -> rules, named lists and exception extensions.

A directory is searched recursively for ``*.yml``/``*.yaml`` files (sorted, so loading is
deterministic). Each YAML document in a file is one of:

- a **rule**: a Sigma rule (it has ``detection``), parsed with pySigma; rules for another
  ``logsource.product`` than ``ai_agent`` are skipped with a warning, so a team can point us at
  a mixed Sigma repository;
- a **lists/exceptions document** (no ``detection``): ``lists:`` maps a list name to values
  (referenced from rules as ``field|expand: '%name%'``; a later file appends to an earlier list
  of the same name, or replaces it with ``{replace: true, items: [...]}``) and ``exceptions:``
  extends a rule's structured exceptions without forking the rule (``rule:``, ``name:``,
  ``values:``; ``fields``/``comps`` when the exception is new).

Every problem is reported as ``file:line: message`` with the line of the offending YAML key.
YAML anchors/aliases are refused (no "billion laughs"), files are capped at 512 KiB.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import re2
import yaml
from sigma.exceptions import SigmaError, SigmaRegularExpressionError
from sigma.policy import SigmaPolicy
from sigma.policy.regex_engine import RE2RegexEngine
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaRule

from detectors.rulebook.fields import is_known_field
from detectors.rulebook.mitre import parse_attack_tags
from detectors.rulebook.model import (
    DEFAULT_RISK,
    EXCEPTION_COMPS,
    LEVELS,
    ExceptionSpec,
    Problem,
    Rule,
)

__all__ = [
    "BUILTIN_DIR",
    "Catalog",
    "ExceptionExtension",
    "load_catalog",
    "re2_error_text",
    "rule_files",
]

BUILTIN_DIR = Path(__file__).resolve().parent.parent / "rules"
MAX_FILE_BYTES = 512 * 1024
CATEGORIES = frozenset({"shell", "sql", "tool_call", "http", "file"})
STATUSES = frozenset({"experimental", "test", "stable", "deprecated", "unsupported"})
RULE_KEYS = frozenset(
    {
        # Sigma
        "title", "id", "name", "related", "taxonomy", "status", "description", "license",
        "references", "author", "date", "modified", "tags", "logsource", "detection", "fields",
        "falsepositives", "level", "scope",
        # agentwatch
        "risk_score", "tests", "exceptions", "predicate", "enabled", "reason",
    }
)  # fmt: skip


def re2_error_text(exc: BaseException) -> str:
    """RE2 reports errors as bytes; make them one readable line."""
    arg = exc.args[0] if exc.args else exc
    return arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)


class _QuietRE2(RE2RegexEngine):
    """pySigma's RE2 engine without RE2's own stderr logging of invalid patterns."""

    def compile(self, pattern: str, flags: int = 0):  # type: ignore[no-untyped-def]
        import re

        prefix = "".join(
            v
            for k, v in ((re.IGNORECASE, "i"), (re.MULTILINE, "m"), (re.DOTALL, "s"))
            if int(flags) & int(k)
        )
        return re2.compile(f"(?{prefix}){pattern}" if prefix else pattern, QUIET_RE2)


QUIET_RE2 = re2.Options()
QUIET_RE2.log_errors = False
SIGMA_POLICY = SigmaPolicy(regex_engine=_QuietRE2())


@dataclass(slots=True)
class ExceptionExtension:
    rule: str
    spec: ExceptionSpec


@dataclass(slots=True)
class Catalog:
    """Everything read from the rule directories, before compilation."""

    rules: list[Rule] = field(default_factory=list)
    lists: dict[str, list[str]] = field(default_factory=dict)
    list_lines: dict[str, tuple[str, int]] = field(default_factory=dict)
    extensions: list[ExceptionExtension] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    skipped: int = 0

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]


def rule_files(directories: Iterable[Path]) -> list[Path]:
    """Every rule file under ``directories`` (a file may also be given directly), sorted."""
    out: list[Path] = []
    for d in directories:
        d = Path(d)
        if d.is_file():
            out.append(d)
        elif d.is_dir():
            out.extend(
                sorted(p for p in d.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file())
            )
    return out


def load_catalog(
    directories: Sequence[Path],
    *,
    builtin: bool = True,
    lists: dict[str, list[str]] | None = None,
) -> Catalog:
    """Read the built-in catalog (if ``builtin``) then ``directories``. Never raises: problems
    are collected in ``Catalog.problems``. ``lists`` (from settings) replace same-named lists of
    the built-in catalog and are extended by user files."""
    cat = Catalog()
    sources: list[tuple[Path, bool]] = []
    if builtin:
        sources.extend((p, True) for p in rule_files([BUILTIN_DIR]))
    user_files = rule_files(directories)
    for d in directories:
        if not Path(d).exists():
            cat.problems.append(Problem(str(d), 0, "rule directory does not exist"))
    # built-in lists first, then settings, then user files
    builtin_sources = [s for s in sources if s[1]]
    for path, is_builtin in builtin_sources:
        _load_file(path, is_builtin, cat)
    for name, items in (lists or {}).items():
        cat.lists[name] = list(items)
        cat.list_lines[name] = ("settings", 0)
    for path in user_files:
        _load_file(path, False, cat)
    return cat


# ---------------------------------------------------------------------------------------------


class _YamlProblem(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


def _read_docs(path: Path) -> list[tuple[Any, dict[tuple[Any, ...], int], int]]:
    """(data, key path -> line, first line) for each YAML document of ``path``."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise _YamlProblem(0, f"cannot read rule file: {exc.strerror or exc}") from None
    if size > MAX_FILE_BYTES:
        raise _YamlProblem(0, f"rule file is larger than {MAX_FILE_BYTES // 1024} KiB")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _YamlProblem(0, f"cannot read rule file: {exc}") from None
    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise _YamlProblem(
            mark.line + 1 if mark is not None else 0, f"invalid YAML: {problem}"
        ) from None
    docs = []
    constructor = yaml.SafeLoader("")
    for node in nodes:
        if node is None:
            continue
        lines: dict[tuple[Any, ...], int] = {}
        seen: set[int] = set()
        data = _construct(node, (), lines, seen, constructor)
        docs.append((data, lines, node.start_mark.line + 1))
    return docs


def _construct(
    node: yaml.Node,
    path: tuple[Any, ...],
    lines: dict[tuple[Any, ...], int],
    seen: set[int],
    constructor: yaml.SafeLoader,
) -> Any:
    if id(node) in seen and not isinstance(node, yaml.ScalarNode):
        raise _YamlProblem(
            node.start_mark.line + 1, "YAML anchors and aliases are not allowed in rule files"
        )
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for knode, vnode in node.value:
            if not isinstance(knode, yaml.ScalarNode):
                raise _YamlProblem(knode.start_mark.line + 1, "mapping keys must be plain scalars")
            key = constructor.construct_object(knode)
            if key in out:
                raise _YamlProblem(knode.start_mark.line + 1, f"duplicate key {key!r}")
            if knode.tag == "tag:yaml.org,2002:merge":
                raise _YamlProblem(
                    knode.start_mark.line + 1, "YAML merge keys are not allowed in rule files"
                )
            lines[(*path, key)] = knode.start_mark.line + 1
            out[key] = _construct(vnode, (*path, key), lines, seen, constructor)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for i, item in enumerate(node.value):
            lines[(*path, i)] = item.start_mark.line + 1
            items.append(_construct(item, (*path, i), lines, seen, constructor))
        return items
    return constructor.construct_object(node)


def _load_file(path: Path, is_builtin: bool, cat: Catalog) -> None:
    cat.files.append(path)
    spath = str(path)
    try:
        docs = _read_docs(path)
    except _YamlProblem as exc:
        cat.problems.append(Problem(spath, exc.line, str(exc)))
        return
    for data, lines, first_line in docs:
        if not isinstance(data, dict):
            cat.problems.append(
                Problem(spath, first_line, "a rule file document must be a mapping")
            )
            continue
        if "detection" in data:
            rule = _parse_rule(data, lines, first_line, path, is_builtin, cat)
            if rule is not None:
                cat.rules.append(rule)
            continue
        if "lists" not in data and "exceptions" not in data:
            cat.problems.append(
                Problem(
                    spath, first_line, "not a rule (no 'detection') nor a lists/exceptions document"
                )
            )
            continue
        for key in data:
            if key not in ("lists", "exceptions", "description", "title"):
                cat.problems.append(
                    Problem(spath, lines.get((key,), first_line), f"unknown key {key!r}")
                )
        _parse_lists(data.get("lists"), lines, first_line, spath, cat)
        _parse_extensions(data.get("exceptions"), lines, first_line, spath, cat)


def _parse_lists(
    raw: Any, lines: dict[tuple[Any, ...], int], first: int, spath: str, cat: Catalog
) -> None:
    if raw is None:
        return
    if not isinstance(raw, dict):
        cat.problems.append(
            Problem(spath, lines.get(("lists",), first), "'lists' must map names to lists")
        )
        return
    for name, value in raw.items():
        line = lines.get(("lists", name), first)
        replace = False
        if isinstance(value, dict):
            replace = bool(value.get("replace", False))
            value = value.get("items")
        if (
            not isinstance(name, str)
            or not isinstance(value, list)
            or not all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value)
        ):
            cat.problems.append(Problem(spath, line, f"list {name!r} must be a list of strings"))
            continue
        items = [str(v) for v in value]
        if replace or name not in cat.lists:
            cat.lists[name] = items
        else:
            cat.lists[name] = cat.lists[name] + [v for v in items if v not in cat.lists[name]]
        cat.list_lines[name] = (spath, line)


def _parse_extensions(
    raw: Any, lines: dict[tuple[Any, ...], int], first: int, spath: str, cat: Catalog
) -> None:
    if raw is None:
        return
    if not isinstance(raw, list):
        cat.problems.append(
            Problem(spath, lines.get(("exceptions",), first), "'exceptions' must be a list")
        )
        return
    for i, item in enumerate(raw):
        line = lines.get(("exceptions", i), first)
        if not isinstance(item, dict) or not isinstance(item.get("rule"), str):
            cat.problems.append(
                Problem(spath, line, "an exception extension needs 'rule' (the rule id)")
            )
            continue
        spec = _exception_spec(
            {k: v for k, v in item.items() if k != "rule"},
            ("exceptions", i),
            lines,
            line,
            spath,
            cat,
            extension=True,
        )
        if spec is not None:
            cat.extensions.append(ExceptionExtension(item["rule"], spec))


def _exception_spec(
    item: Any,
    path: tuple[Any, ...],
    lines: dict[tuple[Any, ...], int],
    line: int,
    spath: str,
    cat: Catalog,
    extension: bool = False,
) -> ExceptionSpec | None:
    def bad(msg: str, *sub: Any) -> None:
        cat.problems.append(Problem(spath, lines.get((*path, *sub), line), msg))

    if not isinstance(item, dict):
        bad("an exception must be a mapping with name, fields, comps, values")
        return None
    for key in item:
        if key not in ("name", "fields", "comps", "values", "description"):
            bad(f"unknown exception key {key!r}", key)
            return None
    name = item.get("name")
    if not isinstance(name, str) or not name:
        bad("an exception needs a 'name'", "name")
        return None
    fields = item.get("fields")
    if fields is None and extension:
        fields = []  # extends an existing exception: fields come from the rule
    if isinstance(fields, str):
        fields = [fields]
    if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
        bad(f"exception {name!r}: 'fields' must be a list of field names", "fields")
        return None
    for f in fields:
        if not is_known_field(f):
            bad(f"exception {name!r}: unknown field {f!r}", "fields")
            return None
    comps = item.get("comps")
    if comps is None:
        comps = ["equals"] * len(fields)
    if isinstance(comps, str):
        comps = [comps]
    if not isinstance(comps, list) or (fields and len(comps) != len(fields)):
        bad(f"exception {name!r}: 'comps' must have one comparison per field", "comps")
        return None
    for c in comps:
        if c not in EXCEPTION_COMPS:
            bad(
                f"exception {name!r}: unknown comparison {c!r} (one of {', '.join(EXCEPTION_COMPS)})",
                "comps",
            )
            return None
    values = item.get("values", [])
    if not isinstance(values, list):
        bad(f"exception {name!r}: 'values' must be a list", "values")
        return None
    norm: list[list[Any]] = []
    for j, v in enumerate(values):
        row = v if isinstance(v, list) else [v]
        if fields and len(row) != len(fields):
            bad(
                f"exception {name!r}: value {j + 1} has {len(row)} items for {len(fields)} fields",
                "values",
                j,
            )
            return None
        norm.append(row)
    return ExceptionSpec(
        name, list(fields), list(comps), norm, spath, lines.get((*path, "name"), line)
    )


_SIGMA_KEY_OF_ERROR = {
    "SigmaIdentifierError": "id",
    "SigmaLevelError": "level",
    "SigmaStatusError": "status",
    "SigmaLogsourceError": "logsource",
    "SigmaDateError": "date",
    "SigmaModifiedError": "modified",
    "SigmaTagError": "tags",
    "SigmaTitleError": "title",
    "SigmaDescriptionError": "description",
    "SigmaReferencesError": "references",
    "SigmaFalsePositivesError": "falsepositives",
    "SigmaAuthorError": "author",
    "SigmaFieldsError": "fields",
    "SigmaRelatedError": "related",
    "SigmaConditionError": "condition",
}


def _locate_detection_error(detection: Any, lines: dict[tuple[Any, ...], int]) -> int | None:
    """Find the detection item pySigma rejects by parsing each one on its own."""
    if not isinstance(detection, dict):
        return lines.get(("detection",))
    for name, block in detection.items():
        if name == "condition":
            continue
        try:
            SigmaDetection.from_definition(block)
        except (SigmaError, TypeError, ValueError, AttributeError):
            items = block if isinstance(block, list) else [block]
            for i, item in enumerate(items):
                if isinstance(item, dict):
                    for key, val in item.items():
                        try:
                            SigmaDetectionItem.from_mapping(key, val)
                        except (SigmaError, TypeError, ValueError, AttributeError):
                            sub = (
                                ("detection", name, key)
                                if not isinstance(block, list)
                                else ("detection", name, i, key)
                            )
                            return lines.get(sub) or lines.get(("detection", name))
            return lines.get(("detection", name))
    return None


def _parse_rule(
    data: dict[str, Any],
    lines: dict[tuple[Any, ...], int],
    first_line: int,
    path: Path,
    is_builtin: bool,
    cat: Catalog,
) -> Rule | None:
    spath = str(path)

    def problem(msg: str, *key: Any, severity: str = "error", rid: str | None = None) -> None:
        line = first_line
        p = tuple(key)
        while p:
            if p in lines:
                line = lines[p]
                break
            p = p[:-1]
        cat.problems.append(Problem(spath, line, msg, severity, rid))

    logsource = data.get("logsource")
    product = logsource.get("product") if isinstance(logsource, dict) else None
    if product != "ai_agent":
        cat.skipped += 1
        problem(
            f"skipped: logsource.product is {product!r}, not 'ai_agent'",
            "logsource",
            severity="warning",
        )
        return None
    rid = data.get("name")
    if rid is not None and (not isinstance(rid, str) or not rid.strip()):
        problem("'name' (the rule id) must be a non-empty string", "name")
        return None
    sigma_id = data.get("id")
    if rid is None:
        rid = str(sigma_id) if sigma_id is not None else path.stem
    for key in data:
        if key not in RULE_KEYS:
            problem(f"unknown rule field {key!r}", key, rid=rid)
    # hand the Sigma part to pySigma; it ignores our custom fields (custom_attributes)
    try:
        sigma = SigmaRule.from_dict(data, collect_errors=True, policy=SIGMA_POLICY)
    except (SigmaError, TypeError, ValueError, AttributeError, KeyError) as exc:
        problem(f"invalid Sigma rule: {exc}", "detection", rid=rid)
        return None
    errors = list(sigma.errors)
    cond_tree = None
    if not errors:
        try:
            cond_tree = [c.parsed for c in sigma.detection.parsed_condition]
        except (SigmaError, TypeError, ValueError, AttributeError, KeyError) as exc:
            errors.append(exc)  # type: ignore[arg-type]
    if errors:
        for err in errors:
            name = type(err).__name__
            msg: str = str(err.args[0]) if getattr(err, "args", None) else str(err)
            if isinstance(err, SigmaRegularExpressionError):
                cause = err.__cause__
                detail = re2_error_text(cause) if cause is not None else str(msg)
                msg = f"regular expression is not valid RE2 syntax (linear time: no backreferences or lookaround): {detail}"
            err_key = _SIGMA_KEY_OF_ERROR.get(name)
            if err_key == "condition":
                problem(f"invalid condition: {msg}", "detection", "condition", rid=rid)
            elif err_key is not None:
                problem(f"{msg}", err_key, rid=rid)
            else:
                line = _locate_detection_error(data.get("detection"), lines)
                cat.problems.append(
                    Problem(
                        spath, line or lines.get(("detection",), first_line), f"{msg}", "error", rid
                    )
                )
        return None
    assert cond_tree is not None
    level_name = str(data.get("level") or "medium").lower()
    level = LEVELS.get(level_name)
    if level is None:
        problem(f"unknown level {level_name!r}", "level", rid=rid)
        return None
    status = str(data.get("status") or "experimental").lower()
    if status not in STATUSES:
        problem(f"unknown status {status!r}", "status", rid=rid)
        return None
    category = logsource.get("category") if isinstance(logsource, dict) else None
    if category is not None and category not in CATEGORIES:
        problem(
            f"unknown logsource.category {category!r} (one of {', '.join(sorted(CATEGORIES))})",
            "logsource",
            "category",
            rid=rid,
        )
        return None
    tags = [str(t) for t in (data.get("tags") or [])]
    tactics, techniques, bad_tags = parse_attack_tags(tags)
    for t in bad_tags:
        problem(f"unknown ATT&CK tag {t!r}", "tags", rid=rid)
    risk = data.get("risk_score", DEFAULT_RISK[level])
    if isinstance(risk, bool) or not isinstance(risk, (int, float)) or not 0 <= risk <= 100:
        problem("'risk_score' must be a number from 0 to 100", "risk_score", rid=rid)
        return None
    enabled = data.get("enabled", True)
    if not isinstance(enabled, bool):
        problem("'enabled' must be true or false", "enabled", rid=rid)
        return None
    exceptions: list[ExceptionSpec] = []
    raw_exc = data.get("exceptions") or []
    if not isinstance(raw_exc, list):
        problem("'exceptions' must be a list", "exceptions", rid=rid)
        return None
    names: set[str] = set()
    for i, item in enumerate(raw_exc):
        spec = _exception_spec(
            item, ("exceptions", i), lines, lines.get(("exceptions", i), first_line), spath, cat
        )
        if spec is None:
            return None
        if spec.name in names:
            problem(f"duplicate exception name {spec.name!r}", "exceptions", i, rid=rid)
            return None
        names.add(spec.name)
        exceptions.append(spec)
    tests = data.get("tests") or {}
    if not isinstance(tests, dict) or any(k not in ("match", "no_match") for k in tests):
        problem("'tests' must be a mapping with 'match' and 'no_match' lists", "tests", rid=rid)
        return None
    for k, v in tests.items():
        if not isinstance(v, list):
            problem(f"tests.{k} must be a list of events", "tests", k, rid=rid)
            return None
    predicate = data.get("predicate")
    if predicate is not None and not isinstance(predicate, str):
        problem("'predicate' must be the name of a registered predicate", "predicate", rid=rid)
        return None
    reason = data.get("reason")
    if reason is not None and not isinstance(reason, str):
        problem("'reason' must be a string", "reason", rid=rid)
        return None
    family = (
        path.parent.name
        if is_builtin
        else (rid.split(".", 1)[0] if "." in rid else path.parent.name)
    )
    rule = Rule(
        id=rid,
        title=str(data.get("title") or rid),
        path=spath,
        line=first_line,
        sigma=sigma,
        description=str(data.get("description") or ""),
        status=status,
        level=level,
        risk_score=float(risk),
        tactics=tactics,
        techniques=techniques,
        tags=tags,
        category=category,
        family=family,
        builtin=is_builtin,
        enabled=enabled,
        exceptions=exceptions,
        tests={k: list(v) for k, v in tests.items()},
        predicate=predicate,
        reason=reason,
        sigma_id=str(sigma.id) if isinstance(sigma.id, uuid.UUID) else None,
        raw=data,
        condition=list(cond_tree),
        lines=lines,
    )
    return rule
