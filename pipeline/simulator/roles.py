"""Agent roles and their benign activity.

A :class:`Role` says how many sessions an agent of that kind runs per hour (in and out of its
working hours), which enforcement point mediates it, which environments it works in, and which
*tasks* it performs. A task is a short coherent sequence of steps (triage a service, answer a
ticket, fix a bug and push), generated from a :class:`~pipeline.simulator.model.Draw`; the
vocabulary in :mod:`pipeline.simulator.pools` gives each role hundreds of distinct commands.

Benign does not mean boring: agents touch sensitive tables through aggregates, email external
customers with invoice attachments, curl internal endpoints, run nightly jobs at 02:00 and now
and then try something their policy denies. That is the background the detectors must not flag.
"""

# The SQL and shell below are text the simulated agents emit, never executed here.
# ruff: noqa: S608

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from pipeline.simulator import pools as P
from pipeline.simulator.model import Draw, Step, call_text

__all__ = ["POOLS", "ROLES", "ROLE_ORDER", "Role", "Task"]

Task = Callable[[Draw], list[Step]]

#: every pool a Draw.pick() may name
POOLS: Mapping[str, tuple[str, ...]] = {
    "service": P.SERVICES,
    "namespace": P.NAMESPACES,
    "unit": P.SYSTEMD_UNITS,
    "bucket": P.BUCKETS,
    "module": P.TERRAFORM_MODULES,
    "database": P.DATABASES,
    "table": P.TABLES,
    "repo": P.REPOS,
    "kb": P.KB_QUERIES,
    "team": P.SUPPORT_TEAMS,
    "topic": P.SEARCH_QUERIES,
}


@dataclass(frozen=True)
class Role:
    """One kind of agent. ``tasks`` are (weight, generator) pairs."""

    name: str
    prefix: str
    description: str
    weight: float
    sessions_per_hour: float
    off_hours_factor: float
    tasks_per_session: tuple[int, int]
    tasks: tuple[tuple[float, Task], ...]
    environments: tuple[tuple[str, float], ...]
    enforcement_points: Mapping[str, str]
    engines: tuple[str, ...]
    focus: Mapping[str, int] = field(default_factory=dict)
    work_hours: tuple[int, int] = (8, 18)
    workdays: frozenset[int] = frozenset(range(5))
    #: (local hour, task) run every day by a scheduler, whatever the working hours
    nightly: tuple[int, Task] | None = None
    delegation_scopes: tuple[str, ...] | None = None


def _approval(d: Draw, step: Step, deny_p: float = 0.08) -> list[Step]:
    """A held action and its human resolution a little later (approved or denied)."""
    held = replace(step, decision="approval_required")
    approved = not d.chance(deny_p)
    resolved = replace(step, decision="approved" if approved else "denied", approver=d.agent.owner,
                       gap_s=d.gap(90, 0.9, 10, 1800))
    return [held, resolved]


def _prod(d: Draw) -> bool:
    return d.agent.environment == "prod"


def _sh(d: Draw, command: str, target: str | None = None, gap: float = 4.0, **kw: object) -> Step:
    tool = command.split(" ", 1)[0]
    if tool == "sudo":
        tool = command.split(" ", 2)[1]
    return Step("shell", tool, command, target, gap_s=d.gap(gap), **kw)  # type: ignore[arg-type]


# ---------------------------------------------------------------- SRE / devops shell agents


def _host(d: Draw, svc: str) -> str:
    return f"{svc}-{d.n(1, 12):02d}.{d.agent.region}.internal"


def sre_triage(d: Draw) -> list[Step]:
    svc, ns = d.pick("service"), d.pick("namespace")
    obj = f"{ns}/{svc}"
    pod = f"{svc}-{d.hex(9)}-{d.hex(5)}"
    steps = [_sh(d, f"kubectl get pods -n {ns} -l app={svc}" + d.one(("", " -o wide", " --show-labels")), obj, 40)]
    if d.chance(0.8):
        grep = d.one(("", " | grep -i error", " | grep -iE 'timeout|refused'", " | tail -n 50"))
        steps.append(_sh(d, f"kubectl logs deploy/{svc} -n {ns} --since={d.one(P.DURATIONS)} --tail={d.one((100, 200, 500, 1000))}{grep}", obj))
    if d.chance(0.5):
        steps.append(_sh(d, f"kubectl describe pod {pod} -n {ns}", obj))
    if d.chance(0.4):
        steps.append(_sh(d, f"kubectl top pods -n {ns} -l app={svc}", obj))
    if d.chance(0.3):
        steps.append(_sh(d, f"kubectl get events -n {ns} --sort-by=.lastTimestamp | tail -n {d.one((20, 30, 50))}", obj))
    if d.chance(0.15):
        restart = _sh(d, f"kubectl rollout restart deploy/{svc} -n {ns}", obj, 20)
        steps.extend(_approval(d, restart) if _prod(d) else [restart])
        steps.append(_sh(d, f"kubectl rollout status deploy/{svc} -n {ns} --timeout=180s", obj, 3))
    if d.chance(0.06):
        kill = _sh(d, f"kubectl delete pod {pod} -n {ns}", obj, 10)
        steps.append(replace(kill, decision="deny") if _prod(d) else kill)
    return steps


def sre_host(d: Draw) -> list[Step]:
    svc = d.pick("service")
    host = _host(d, svc)
    unit = d.pick("unit")
    cmds = [
        "uptime", "df -h", f"df -h /var/lib/{d.one(('docker', 'postgresql', 'containerd'))}", "free -m",
        f"systemctl status {unit} --no-pager",
        f'journalctl -u {unit} --since "{d.one((5, 10, 15, 30, 60))} min ago" --no-pager | tail -n {d.one((50, 100, 200))}',
        "top -b -n 1 | head -n 20", "ss -tlnp", f"du -sh /var/log/{svc}",
        f"tail -n {d.one((100, 200, 500))} /var/log/{svc}/error.log",
        f"grep -c ERROR /var/log/{svc}/app.log", "iostat -x 1 3", "vmstat 1 5", "cat /proc/loadavg",
        f"lsof -i :{d.one((80, 443, 5432, 6379, 8080, 9090))} | head -n 20",
        "ps -eo pid,comm,%cpu,%mem --sort=-%cpu | head -n 15", "dmesg -T | tail -n 30",
        f"ls -lh /var/log/{svc}/", "timedatectl status", "ip -brief addr",
    ]
    k = d.n(2, 6)
    steps = [_sh(d, d.one(cmds), host, 60)] + [_sh(d, d.one(cmds), host, 5) for _ in range(k - 1)]
    if d.chance(0.04):
        steps.append(_sh(d, f"sudo systemctl restart {unit}", host, 8, decision="deny"))
    return steps


def sre_endpoint(d: Draw) -> list[Step]:
    svc = d.pick("service")
    host = f"{svc}.{d.agent.region}.internal"
    db = d.pick("database")
    cmds = [
        f'curl -s -o /dev/null -w "%{{http_code}}" https://{host}/healthz',
        f"curl -s https://{host}/metrics | grep {d.one(P.METRICS)}",
        f"curl -sI https://{host}/readyz", f"dig +short {host}", f"nslookup {host}",
        f"nc -zv {db}.{d.agent.region}.internal 5432", f"ping -c 3 {_host(d, svc)}",
        f"openssl s_client -connect {host}:443 -servername {host} </dev/null 2>/dev/null | openssl x509 -noout -dates",
        f"traceroute -n -m 10 {host}",
    ]
    return [_sh(d, d.one(cmds), host, 50)] + [_sh(d, d.one(cmds), host, 3) for _ in range(d.n(1, 4))]


def sre_terraform(d: Draw) -> list[Step]:
    mod = d.pick("module")
    target = f"module.{mod}"
    steps = [
        _sh(d, "terraform init -input=false -no-color", "infra", 60),
        _sh(d, f"terraform plan -target=module.{mod} -no-color -input=false", target, 30),
    ]
    if d.chance(0.5):
        steps.append(_sh(d, f"terraform state list | grep {mod}", target))
    if d.chance(0.4):
        steps.append(_sh(d, d.one(("terraform fmt -check -recursive", "terraform validate -no-color")), "infra"))
    if d.chance(0.1):
        apply = _sh(d, f"terraform apply -target=module.{mod} -input=false -no-color", target, 20)
        steps.extend(_approval(d, apply, 0.2) if _prod(d) else [apply])
    return steps


def sre_cloud(d: Draw) -> list[Step]:
    svc, bucket, db = d.pick("service"), d.pick("bucket"), d.pick("database")
    cmds = [
        (f"aws s3 ls s3://{bucket}/{d.one(('2026/11/', 'daily/', 'exports/', 'releases/', ''))}", f"s3://{bucket}"),
        (f"aws logs tail /ecs/{svc} --since {d.one(P.DURATIONS)}", f"/ecs/{svc}"),
        (f'aws ec2 describe-instances --filters "Name=tag:service,Values={svc}" --query "Reservations[].Instances[].State.Name"', svc),
        ("aws cloudwatch describe-alarms --state-value ALARM", "cloudwatch"),
        (f"aws rds describe-db-instances --db-instance-identifier {db}", db),
        (f"aws autoscaling describe-auto-scaling-groups --auto-scaling-group-names {svc}-asg", f"{svc}-asg"),
        (f"aws s3api head-object --bucket {bucket} --key manifests/{d.hex(8)}.json", f"s3://{bucket}"),
        (f"helm list -n {d.pick('namespace')}", "helm"),
        (f"helm history {svc} -n {d.pick('namespace')} --max {d.one((5, 10))}", svc),
        (f"helm get values {svc} -n {d.pick('namespace')}", svc),
        (f"docker ps --filter name={svc}", svc), ("docker stats --no-stream", "docker"),
        (f"docker logs --tail {d.one((50, 100, 200))} {svc}", svc),
    ]
    chosen = [d.one(cmds) for _ in range(d.n(1, 4))]
    return [_sh(d, c, t, 45 if i == 0 else 5) for i, (c, t) in enumerate(chosen)]


# ---------------------------------------------------------------- data-analyst SQL agents


def _sql(d: Draw, query: str, table: str, rows: int, gap: float = 25.0, **kw: object) -> Step:
    return Step("sql", d.agent.engine, query, table, rows=rows, bytes_out=rows * d.n(60, 400),
                gap_s=d.gap(gap, 0.9), **kw)  # type: ignore[arg-type]


def _date(d: Draw) -> str:
    return f"2026-{d.n(8, 11):02d}-{d.n(1, 28):02d}"


def analyst_explore(d: Draw) -> list[Step]:
    t = d.pick("table")
    ts = P.TIME_COLUMNS[t]
    steps = [
        _sql(d, f"SELECT column_name, data_type FROM information_schema.columns WHERE table_name = '{t}' ORDER BY ordinal_position", t, d.n(6, 30), 90),
    ]
    if t not in P.SENSITIVE_TABLES:
        steps.append(_sql(d, f"SELECT * FROM {t} ORDER BY {ts} DESC LIMIT {d.one((10, 20, 50, 100))}", t, d.n(10, 100)))
    steps.append(_sql(d, f"SELECT count(*) FROM {t} WHERE {ts} >= '{_date(d)}'", t, 1))
    if d.chance(0.5):
        dim = d.one(P.DIMENSIONS[t])
        steps.append(_sql(d, f"SELECT {dim}, count(*) AS n FROM {t} GROUP BY {dim} ORDER BY n DESC LIMIT {d.one((10, 20, 25))}", t, d.n(3, 25)))
    return steps


def analyst_report(d: Draw) -> list[Step]:
    t = d.pick("table")
    ts, dim, m = P.TIME_COLUMNS[t], d.one(P.DIMENSIONS[t]), d.one(P.MEASURES[t])
    grain = d.one(("day", "week", "month", "hour"))
    days = d.one((7, 14, 28, 30, 90, 180))
    agg = d.one(("sum", "avg", "max", "min"))
    steps = [
        _sql(d, f"SELECT date_trunc('{grain}', {ts}) AS {grain}, {agg}({m}) AS {agg}_{m} FROM {t} WHERE {ts} >= now() - interval '{days} days' GROUP BY 1 ORDER BY 1", t, d.n(5, 200), 60),
        _sql(d, f"SELECT {dim}, count(*) AS n, {agg}({m}) FROM {t} WHERE {ts} >= now() - interval '{days} days' GROUP BY {dim} ORDER BY n DESC LIMIT {d.one((10, 20, 50))}", t, d.n(3, 50)),
    ]
    if d.chance(0.35):
        steps.append(_sql(d, f"SELECT percentile_cont(0.{d.one((5, 9, 95, 99))}) WITHIN GROUP (ORDER BY {m}) FROM {t} WHERE {ts}::date = '{_date(d)}'", t, 1))
    if d.chance(0.25):
        name = f"tmp_{t}_{d.hex(4)}"
        steps.append(_sql(d, f"CREATE TEMP TABLE {name} AS SELECT {dim}, {m}, {ts} FROM {t} WHERE {ts} >= '{_date(d)}'", t, 0))
        steps.append(_sql(d, f"SELECT {dim}, corr({m}, extract(epoch FROM {ts})) FROM {name} GROUP BY {dim}", name, d.n(3, 30)))
    if d.chance(0.2):
        steps.append(_sql(d, f"EXPLAIN ANALYZE SELECT {dim}, {agg}({m}) FROM {t} WHERE {ts} >= '{_date(d)}' GROUP BY {dim}", t, d.n(8, 40)))
    return steps


def analyst_question(d: Draw) -> list[Step]:
    k = d.one((5, 10, 20, 25, 50))
    day = _date(d)
    options = [
        ("SELECT p.category, sum(oi.price * oi.quantity) AS revenue FROM order_items oi JOIN products p ON p.id = oi.product_id "
         f"WHERE oi.created_at >= '{day}' GROUP BY p.category ORDER BY revenue DESC LIMIT {k}", "order_items"),
        (f"SELECT c.country, count(DISTINCT o.customer_id) AS buyers FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.created_at >= '{day}' GROUP BY c.country ORDER BY buyers DESC LIMIT {k}", "orders"),
        (f"SELECT date_trunc('month', signed_up_at) AS cohort, count(*) FROM customers WHERE signed_up_at >= '{day}' GROUP BY 1 ORDER BY 1", "customers"),
        (f"SELECT r.reason, count(*) AS n, sum(r.amount) FROM refunds r WHERE r.requested_at >= now() - interval '{d.one((7, 30, 90))} days' GROUP BY r.reason ORDER BY n DESC", "refunds"),
        (f"SELECT mc.channel, sum(mc.spend) / nullif(sum(mc.clicks), 0) AS cpc FROM marketing_campaigns mc WHERE mc.launched_at >= '{day}' GROUP BY mc.channel", "marketing_campaigns"),
        (f"SELECT variant, avg(conversion) FROM experiments WHERE experiment_key = 'exp_{d.hex(4)}' GROUP BY variant", "experiments"),
        (f"SELECT method, status, count(*) FROM payments WHERE captured_at::date = '{day}' GROUP BY method, status", "payments"),
        (f"SELECT plan, sum(mrr) FROM subscriptions WHERE canceled_at IS NULL GROUP BY plan ORDER BY 2 DESC LIMIT {k}", "subscriptions"),
        (f"SELECT carrier, avg(transit_days), percentile_cont(0.9) WITHIN GROUP (ORDER BY transit_days) FROM shipments WHERE shipped_at >= '{day}' GROUP BY carrier", "shipments"),
        (f"SELECT team, avg(first_response_min) FROM support_tickets WHERE opened_at >= now() - interval '{d.one((7, 14, 30))} days' GROUP BY team", "support_tickets"),
        (f"SELECT feature, count(DISTINCT account_id) FROM feature_usage WHERE used_at >= '{day}' GROUP BY feature ORDER BY 2 DESC LIMIT {k}", "feature_usage"),
        (f"WITH first_orders AS (SELECT customer_id, min(created_at) AS first_at FROM orders GROUP BY customer_id) SELECT date_trunc('week', first_at), count(*) FROM first_orders WHERE first_at >= '{day}' GROUP BY 1 ORDER BY 1", "orders"),
    ]
    picked = [d.one(options) for _ in range(d.n(1, 3))]
    steps = [_sql(d, q, t, d.n(1, 60), 70 if i == 0 else 30) for i, (q, t) in enumerate(picked)]
    if d.chance(0.05):  # PII columns are denied for the analyst role
        steps.append(_sql(d, f"SELECT email, phone FROM customers WHERE segment = '{d.one(('smb', 'enterprise', 'consumer'))}' LIMIT {k}", "customers", 0, 20, decision="deny"))
    if d.chance(0.03):  # the role is read-only
        steps.append(_sql(d, f"UPDATE orders SET status = 'shipped' WHERE id = {d.n(100000, 999999)}", "orders", 0, 20, decision="deny"))
    return steps


def analyst_nightly(d: Draw) -> list[Step]:
    """The scheduled 02:00 refresh: writes and sanity checks, never raw exports."""
    steps = []
    for mv in d.r.sample(P.MATERIALIZED_VIEWS, d.n(2, 4)):
        steps.append(_sql(d, f"REFRESH MATERIALIZED VIEW CONCURRENTLY {mv}", mv, 0, 40))
        steps.append(_sql(d, f"SELECT count(*) FROM {mv} WHERE day = current_date - 1", mv, 1, 3))
    steps.append(_sql(d, "INSERT INTO reporting.kpi_daily (day, orders, revenue) SELECT current_date - 1, count(*), sum(total_amount) FROM orders WHERE created_at::date = current_date - 1", "reporting.kpi_daily", 1, 5))
    return steps


# ---------------------------------------------------------------- support agents (tool calls)


def _customer(d: Draw) -> str:
    sep = d.one((".", "_", ""))
    num = d.one(("", "", str(d.n(1, 99))))
    return f"{d.one(P.FIRST_NAMES)}{sep}{d.one(P.LAST_NAMES)}{num}@{d.one(P.CUSTOMER_DOMAINS)}"


def _tool(d: Draw, tool: str, args: dict[str, object], target: str | None, gap: float = 8.0, **kw: object) -> Step:
    return Step("tool_call", tool, call_text(tool, args), target, args=args, gap_s=d.gap(gap), **kw)  # type: ignore[arg-type]


def support_ticket(d: Draw) -> list[Step]:
    ticket = f"T-{d.n(100000, 999999)}"
    account = f"acct_{d.hex(8)}"
    order = f"A-{d.n(10000, 99999)}"
    email = _customer(d)
    steps = [
        _tool(d, "get_ticket", {"ticket_id": ticket}, ticket, 60),
        _tool(d, "lookup_customer", {"account_id": account}, account, 4),
    ]
    if d.chance(0.7):
        steps.append(_tool(d, "lookup_order", {"order_id": order, "account_id": account}, order, 4))
    if d.chance(0.6):
        steps.append(_tool(d, "search_kb", {"query": d.pick("kb"), "limit": d.one((3, 5, 10))}, None, 5))
    if d.chance(0.25):
        amount = round(d.r.lognormvariate(3.8, 0.9), 2)
        refund = _tool(d, "refund", {"account_id": account, "order_id": order, "amount": amount,
                                     "currency": d.one(("EUR", "USD", "GBP")),
                                     "reason": d.one(("damaged", "late_delivery", "duplicate_charge", "not_received", "goodwill"))}, account, 10)
        if amount > 1500:
            steps.append(replace(refund, decision="deny"))
        elif amount > 250:
            steps.extend(_approval(d, refund, 0.15))
        else:
            steps.append(refund)
    mail_args: dict[str, object] = {"to": email, "subject": f"Re: {d.one(P.TICKET_SUBJECTS)} [{ticket}]",
                                    "template": d.one(P.EMAIL_TEMPLATES)}
    size = d.n(2_000, 12_000)
    if d.chance(0.15):
        mail_args["attachments"] = [f"invoice_INV-{d.n(100000, 999999)}.pdf"]
        size += d.n(40_000, 180_000)
    steps.append(Step("tool_call", "send_email", call_text("send_email", mail_args), email, args=mail_args,
                      bytes_out=size, gap_s=d.gap(12)))
    if d.chance(0.2):
        steps.append(_tool(d, "create_ticket", {"subject": f"Escalation: {d.one(P.TICKET_SUBJECTS)}",
                                                 "account_id": account, "team": d.pick("team"),
                                                 "priority": d.one(("low", "normal", "high"))}, account, 6))
    steps.append(_tool(d, "update_ticket", {"ticket_id": ticket, "status": d.one(("pending", "solved", "solved", "on_hold")),
                                             "note": d.one(("customer informed", "refund issued", "waiting for carrier", "escalated", "resolved via KB article"))},
                       ticket, 4))
    if d.chance(0.03):  # bulk lookups are outside the support policy
        steps.append(_tool(d, "export_customers", {"segment": "all", "format": "csv"}, "customers", 5, decision="deny"))
    return steps


def support_queue(d: Draw) -> list[Step]:
    return [
        _tool(d, "list_tickets", {"status": "open", "team": d.pick("team"), "limit": d.one((10, 25, 50))}, None, 40),
        _tool(d, "search_kb", {"query": d.pick("kb"), "limit": 5}, None, 6),
    ]


# ---------------------------------------------------------------- coding agents


def _path(d: Draw, repo: str) -> str:
    if repo in ("web-frontend", "design-system", "mobile-app"):
        return f"src/components/{d.one(P.TS_COMPONENTS)}.tsx"
    if repo == "infra-modules":
        return f"modules/{d.one(P.TERRAFORM_MODULES)}/{d.one(('main.tf', 'variables.tf', 'outputs.tf'))}"
    return f"src/{repo.replace('-', '_')}/{d.one(P.PY_MODULES)}/{d.one(P.PY_FILES)}"


def _file(d: Draw, tool: str, path: str, gap: float = 5.0) -> Step:
    args: dict[str, object] = {"path": path}
    if tool == "edit_file":
        args["lines_changed"] = d.n(1, 60)
    return Step("file", tool, f"{tool} {path}", path, args=args,
                bytes_out=d.n(200, 9000) if tool != "read_file" else None, gap_s=d.gap(gap))


def coding_change(d: Draw) -> list[Step]:
    repo = d.pick("repo")
    js = repo in ("web-frontend", "design-system", "mobile-app")
    branch = f"{d.one(('fix', 'feat', 'chore', 'refactor'))}/{d.hex(6)}"
    steps = [
        _sh(d, "git status", repo, 60),
        _sh(d, d.one(("git pull --rebase origin main", "git fetch origin", "git pull")), repo, 3),
        _sh(d, f"git checkout -b {branch}", repo, 2),
    ]
    for _ in range(d.n(1, 4)):
        steps.append(_file(d, "read_file", _path(d, repo)))
    if d.chance(0.4):
        steps.append(_sh(d, f'grep -rn "{d.one(P.PY_MODULES)}" {"src/" if not js else "src/components/"} | head -n 40', repo))
    edits = [_path(d, repo) for _ in range(d.n(1, 3))]
    steps.extend(_file(d, "edit_file", p, 12) for p in edits)
    if js:
        steps.append(_sh(d, d.one(("npm test -- --run", "npx vitest run", f"npm test -- {edits[0]}")), repo, 5))
        steps.append(_sh(d, d.one(("npm run lint", "npx tsc --noEmit")), repo, 20))
    elif repo == "infra-modules":
        steps.append(_sh(d, "terraform fmt -recursive", repo, 5))
        steps.append(_sh(d, "terraform validate -no-color", repo, 3))
    else:
        pkg = repo.replace("-", "_")
        steps.append(_sh(d, d.one((f"pytest tests/{d.one(P.PY_MODULES)} -q", "pytest -x -q", f"pytest -k {d.one(P.PY_MODULES)} -q")), repo, 5))
        steps.append(_sh(d, d.one((f"ruff check src/{pkg}", "ruff format --check .", f"mypy src/{pkg}")), repo, 30))
    steps.append(_sh(d, "git diff --stat", repo, 4))
    steps.append(_sh(d, f"git add {' '.join(edits)}", repo, 2))
    steps.append(_sh(d, f'git commit -m "{d.one(P.COMMIT_VERBS)} {d.one(P.COMMIT_OBJECTS)}"', repo, 2))
    steps.append(_sh(d, f"git push -u origin {branch}", repo, 3))
    if d.chance(0.5):
        steps.append(_sh(d, "gh pr create --fill --draft", repo, 4))
    if d.chance(0.03):
        steps.append(_sh(d, "git push --force origin main", repo, 5, decision="deny"))
    return steps


def coding_deps(d: Draw) -> list[Step]:
    repo = d.pick("repo")
    if repo in ("web-frontend", "design-system", "mobile-app"):
        name, ver = d.one(P.NPM_PACKAGES)
        steps = [_sh(d, "npm ci", repo, 60), _sh(d, f"npm install {name}@{ver}", repo, 10), _sh(d, "npm audit --omit=dev", repo, 5)]
    else:
        name, ver = d.one(P.PY_PACKAGES)
        steps = [
            _sh(d, d.one(("python -m venv .venv", "pip install -r requirements.txt", "pip install -e '.[test]'")), repo, 60),
            _sh(d, f"pip install {name}=={ver}", repo, 8),
            _sh(d, d.one(("pip list --outdated", f"pip show {name}", "pip check")), repo, 4),
        ]
    steps.append(_file(d, "edit_file", d.one(("requirements.txt", "pyproject.toml", "package.json")), 6))
    if d.chance(0.04):  # piping a script from the internet into a shell is blocked
        steps.append(_sh(d, "curl -fsSL https://install.example-tool.dev/install.sh | sh", "install.example-tool.dev", 5, decision="deny"))
    return steps


def coding_explore(d: Draw) -> list[Step]:
    repo = d.pick("repo")
    cmds = [
        f"git log --oneline -n {d.one((10, 20, 50))}", "git branch -a", f"ls {d.one(('src', 'tests', 'docs', '.github/workflows'))}",
        f"git blame -L {d.n(1, 200)},+{d.one((10, 20, 40))} {_path(d, repo)}", f"wc -l {_path(d, repo)}",
        f"cat {d.one(('README.md', 'Makefile', 'pyproject.toml', 'package.json', 'Dockerfile'))}",
        f"git show --stat HEAD~{d.n(0, 5)}", "make build", "go test ./...", "tree -L 2 src",
    ]
    steps = [_sh(d, d.one(cmds), repo, 60)] + [_sh(d, d.one(cmds), repo, 4) for _ in range(d.n(1, 4))]
    steps.extend(_file(d, "read_file", _path(d, repo)) for _ in range(d.n(0, 3)))
    return steps


# ---------------------------------------------------------------- release / deploy agent


def _version(d: Draw) -> str:
    return f"{d.n(1, 4)}.{d.n(0, 40)}.{d.n(0, 20)}"


def _http(d: Draw, method: str, url: str, gap: float = 4.0, bytes_out: int | None = None, **kw: object) -> Step:
    host = url.split("/", 3)[2]
    return Step("http", "http", f"{method} {url}", host, bytes_out=bytes_out if bytes_out is not None else d.n(200, 900),
                gap_s=d.gap(gap), **kw)  # type: ignore[arg-type]


def release_deploy(d: Draw) -> list[Step]:
    svc, ver = d.pick("service"), _version(d)
    ns = d.agent.environment if d.agent.environment in ("prod", "staging") else "staging"
    image = f"registry.{d.agent.region}.internal/{svc}:{ver}"
    steps = [
        _sh(d, f"git tag v{ver}", svc, 60),
        _sh(d, f"docker build -t {image} .", image, 3),
        _sh(d, f"docker push {image}", image, 90),
    ]
    upgrade = _sh(d, f"helm upgrade --install {svc} charts/{svc} -n {ns} --set image.tag={ver} --atomic --timeout 5m", f"{ns}/{svc}", 10)
    steps.extend(_approval(d, upgrade, 0.05) if _prod(d) else [upgrade])
    steps.append(_sh(d, f"kubectl rollout status deploy/{svc} -n {ns} --timeout=300s", f"{ns}/{svc}", 20))
    steps.append(_http(d, "POST", f"https://api.github.com/repos/{d.agent.tenant}/{svc}/deployments"))
    if d.chance(0.6):
        steps.append(_http(d, "POST", "https://slack.com/api/chat.postMessage", 2))
    if d.chance(0.08):
        undo = _sh(d, f"kubectl rollout undo deploy/{svc} -n {ns}", f"{ns}/{svc}", 120)
        steps.extend(_approval(d, undo, 0.02) if _prod(d) else [undo])
    return steps


def release_gitops(d: Draw) -> list[Step]:
    svc = d.pick("service")
    app = f"{svc}-{d.agent.environment}"
    steps = [
        _sh(d, f"argocd app diff {app}", app, 60),
        _sh(d, f"argocd app sync {app}", app, 5),
        _sh(d, f"argocd app wait {app} --health --timeout 300", app, 5),
    ]
    if d.chance(0.4):
        ver = _version(d)
        steps.append(_sh(d, f"gh release create v{ver} --generate-notes --repo {d.agent.tenant}/{svc}", svc, 10))
    if d.chance(0.3):
        steps.append(_http(d, "GET", f"https://{svc}.{d.agent.region}.internal/version", 5))
    return steps


def release_verify(d: Draw) -> list[Step]:
    svc, ver = d.pick("service"), _version(d)
    ns = d.agent.environment if d.agent.environment in ("prod", "staging") else "staging"
    image = f"registry.{d.agent.region}.internal/{svc}:{ver}"
    cmds = [
        (f"trivy image --severity HIGH,CRITICAL --exit-code 1 {image}", image),
        (f"cosign sign --yes --key k8s://release/cosign {image}", image),
        (f"cosign verify --key k8s://release/cosign {image}", image),
        (f"syft {image} -o spdx-json > sbom-{svc}-{ver}.json", image),
        (f"kubectl get deploy {svc} -n {ns} -o jsonpath='{{.spec.template.spec.containers[0].image}}'", f"{ns}/{svc}"),
        (f"helm diff upgrade {svc} charts/{svc} -n {ns} --set image.tag={ver}", f"{ns}/{svc}"),
        (f"git log v{_version(d)}..HEAD --oneline", svc),
        (f"curl -sf https://{svc}.{d.agent.region}.internal/healthz", f"{svc}.{d.agent.region}.internal"),
        (f"kubectl get hpa {svc} -n {ns}", f"{ns}/{svc}"),
        (f"argocd app history {svc}-{d.agent.environment}", f"{svc}-{d.agent.environment}"),
    ]
    return [_sh(d, c, t, 60 if i == 0 else 6) for i, (c, t) in enumerate(d.r.sample(cmds, d.n(2, 4)))]


# ---------------------------------------------------------------- research agents (web)


def research_browse(d: Draw) -> list[Step]:
    search = {"query": d.pick("topic")}
    steps = [Step("tool_call", "web_search", call_text("web_search", search), None, args=search, gap_s=d.gap(60))]
    for _ in range(d.n(1, 5)):
        org, proj = d.one(P.GITHUB_PROJECTS)
        pkg = d.one(P.PY_PACKAGES)[0]
        url = d.one(P.DOC_URLS).format(
            py=d.one(P.PY_STDLIB), pkg=pkg, org=org, proj=proj, wiki=d.one(P.WIKI_TOPICS),
            m=d.n(1, 12), n=d.n(1, 20000), so=d.n(10_000_000, 79_000_000), k8s=d.one(P.K8S_TOPICS),
            npm=d.one(P.NPM_PACKAGES)[0], pg=d.one(P.PG_TOPICS),
            status=d.one((400, 401, 403, 404, 409, 422, 429, 500, 502, 503, 504)),
            rfc=d.one((3339, 5424, 6749, 7231, 7519, 8259, 9110, 9457)),
        )
        steps.append(_http(d, "GET", url, 15))
    if d.chance(0.04):
        steps.append(_http(d, "GET", d.one(P.BLOCKED_SITES).format(hex=d.hex(8)), 10, decision="deny"))
    return steps


# ---------------------------------------------------------------- the roles

ROLES: Mapping[str, Role] = {
    r.name: r
    for r in (
        Role(
            name="sre", prefix="sre", weight=0.2,
            description="devops/SRE agent running shell commands on clusters and hosts",
            sessions_per_hour=1.6, off_hours_factor=0.12, tasks_per_session=(1, 4),
            tasks=((4, sre_triage), (3, sre_host), (2, sre_endpoint), (1, sre_terraform), (2, sre_cloud)),
            environments=(("prod", 0.6), ("staging", 0.4)),
            enforcement_points={"eu": "cmd-proxy-eu-1", "us": "cmd-proxy-us-1"},
            engines=("bash",), focus={"service": 4, "namespace": 2, "unit": 3, "bucket": 2, "module": 3, "database": 2},
            workdays=frozenset(range(7)),
        ),
        Role(
            name="data-analyst", prefix="analyst", weight=0.2,
            description="data-analyst agent querying the warehouse in SQL",
            sessions_per_hour=1.2, off_hours_factor=0.02, tasks_per_session=(1, 4),
            tasks=((3, analyst_explore), (4, analyst_report), (4, analyst_question)),
            environments=(("prod", 0.8), ("staging", 0.2)),
            enforcement_points={"eu": "sql-proxy-1", "us": "sql-proxy-2"},
            engines=("postgres", "snowflake"), focus={"table": 5},
            nightly=(2, analyst_nightly),
        ),
        Role(
            name="support", prefix="support", weight=0.25,
            description="customer-support agent calling ticket, email and refund tools",
            sessions_per_hour=3.0, off_hours_factor=0.03, tasks_per_session=(1, 3),
            tasks=((6, support_ticket), (1, support_queue)),
            environments=(("prod", 1.0),),
            enforcement_points={"eu": "mcp-gateway-1", "us": "mcp-gateway-2"},
            engines=("mcp",), focus={"team": 2, "kb": 6},
            work_hours=(7, 21), workdays=frozenset(range(6)),
            delegation_scopes=("tickets:write", "email:send", "refunds:create", "orders:read", "customers:read"),
        ),
        Role(
            name="coding", prefix="coder", weight=0.2,
            description="coding agent editing files, running tests and pushing branches",
            sessions_per_hour=1.0, off_hours_factor=0.05, tasks_per_session=(1, 3),
            tasks=((5, coding_change), (2, coding_deps), (3, coding_explore)),
            environments=(("dev", 1.0),),
            enforcement_points={"eu": "cmd-proxy-dev-1", "us": "cmd-proxy-dev-2"},
            engines=("bash",), focus={"repo": 2},
        ),
        Role(
            name="release", prefix="release", weight=0.075,
            description="release agent building, pushing and deploying services",
            sessions_per_hour=1.2, off_hours_factor=0.1, tasks_per_session=(1, 3),
            tasks=((3, release_deploy), (2, release_gitops), (2, release_verify)),
            environments=(("prod", 0.7), ("staging", 0.3)),
            enforcement_points={"eu": "cmd-proxy-eu-1", "us": "cmd-proxy-us-1"},
            engines=("bash",), focus={"service": 6},
            delegation_scopes=("deploy:write", "registry:push", "repo:read"),
        ),
        Role(
            name="research", prefix="research", weight=0.075,
            description="research agent searching the web and reading documentation",
            sessions_per_hour=1.5, off_hours_factor=0.05, tasks_per_session=(1, 3),
            tasks=((1, research_browse),),
            environments=(("dev", 1.0),),
            enforcement_points={"eu": "egress-proxy-1", "us": "egress-proxy-2"},
            engines=("http",), focus={"topic": 4},
        ),
    )
}

#: the first agents of a fleet take one role each in this order, so even a small fleet has
#: the SRE and analyst agents that every attack scenario needs
ROLE_ORDER = ("sre", "data-analyst", "support", "coding", "release", "research")
