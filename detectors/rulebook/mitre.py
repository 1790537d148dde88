"""MITRE ATT&CK (Enterprise) tactics: Sigma tag names and their ids.

Sigma tags a rule with ``attack.<tactic-name>`` (e.g. ``attack.credential-access``, also spelt with
underscores) and ``attack.t<technique>`` (``attack.t1552.001``). Findings carry the ids.
"""

from __future__ import annotations

import re

__all__ = ["TACTICS", "parse_attack_tags"]

TACTICS: dict[str, str] = {
    "reconnaissance": "TA0043",
    "resource-development": "TA0042",
    "initial-access": "TA0001",
    "execution": "TA0002",
    "persistence": "TA0003",
    "privilege-escalation": "TA0004",
    "defense-evasion": "TA0005",
    "credential-access": "TA0006",
    "discovery": "TA0007",
    "lateral-movement": "TA0008",
    "collection": "TA0009",
    "command-and-control": "TA0011",
    "exfiltration": "TA0010",
    "impact": "TA0040",
}

_TECHNIQUE = re.compile(r"t\d{4}(?:\.\d{3})?")


def parse_attack_tags(tags: list[str]) -> tuple[list[str], list[str], list[str]]:
    """Split tags into (tactic ids, technique ids, unknown attack.* tags)."""
    tactics: list[str] = []
    techniques: list[str] = []
    bad: list[str] = []
    for tag in tags:
        ns, _, name = tag.partition(".")
        if ns != "attack":
            continue
        name = name.lower()
        if _TECHNIQUE.fullmatch(name):
            techniques.append(name.upper())
        elif name.replace("_", "-") in TACTICS:
            tactics.append(TACTICS[name.replace("_", "-")])
        elif re.fullmatch(r"(g|s)\d{4}", name):
            continue  # groups and software are valid Sigma tags
        else:
            bad.append(tag)
    return tactics, techniques, bad
