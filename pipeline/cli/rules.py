"""``agentwatch rules``: test, lint and inspect detection rules (a CI guard for rule repositories).

- ``rules test [DIR...]`` runs every inline ``match`` / ``no_match`` case of the rules in the
  given directories (default: the built-in catalog plus ``rules.directories`` from settings)
  through the whole compiled rule set; exit 1 when a case fails.
- ``rules lint [DIR...]`` reports schema errors, unknown fields, bad ATT&CK tags, duplicate ids,
  ids that do not predict file names and rules without tests as ``file:line: message``; exit 1 on
  any error (``--strict``: on warnings too).
- ``rules list`` prints the loaded rules (id, level, risk, ATT&CK, status).

With DIRs, the built-in catalog is still loaded as context (lists, rules that exception files
extend) but only the given files are reported/tested; ``--no-builtin`` leaves it out.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from pipeline.cli.common import console, err_console, settings_of
from pipeline.errors import InputError


def _dirs(ctx: typer.Context, dirs: list[Path] | None) -> tuple[list[Path], bool]:
    """(directories to load, whether the user named them)."""
    if dirs:
        for d in dirs:
            if not d.exists():
                raise InputError(f"no such rule directory or file: {d}")
        return list(dirs), True
    settings = settings_of(ctx)
    return [Path(p) for p in settings.rules.directories], False


def register(app: typer.Typer) -> None:
    """Add this module's commands to the root app."""
    group = typer.Typer(help="Detection rules: test, lint, list.", no_args_is_help=True)
    app.add_typer(group, name="rules")

    @group.command("test")
    def test_cmd(
        ctx: typer.Context,
        dirs: list[Path] = typer.Argument(
            None, help="Rule directories or files (default: built-in + configured)."
        ),
        builtin: bool = typer.Option(
            True, "--builtin/--no-builtin", help="Load the built-in catalog."
        ),
        verbose: bool = typer.Option(False, "--verbose", "-v", help="List passing cases too."),
    ) -> None:
        """Run every rule's inline match / no_match test cases."""
        from detectors.rulebook import RuleLoadError, load_rules, run_tests
        from detectors.rulebook.lint import _under

        settings = settings_of(ctx)
        paths, named = _dirs(ctx, dirs)
        try:
            ruleset = load_rules(settings.rules, paths, builtin=builtin)
        except RuleLoadError as exc:
            for line in exc.lines():
                err_console.print(line, highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        rules = ruleset.rules
        if named:
            roots = [p.resolve() for p in paths]
            rules = [r for r in rules if _under(Path(r.path), roots)]
        results = run_tests(ruleset, rules)
        failed = [r for r in results if not r.passed]
        if verbose or failed:
            table = Table(title="rule tests" if verbose else "failing rule tests", show_lines=False)
            for col in ("result", "rule", "case", "location", "event"):
                table.add_column(col, overflow="fold")
            for r in results if verbose else failed:
                mark = "[green]pass[/]" if r.passed else f"[red]FAIL[/] ({r.detail})"
                table.add_row(mark, r.rule_id, f"{r.kind}[{r.index}]", r.location, r.summary)
            console.print(table)
        untested = [r.id for r in rules if not r.tests.get("match") or not r.tests.get("no_match")]
        console.print(
            f"{len(rules)} rules, {len(results)} cases: {len(results) - len(failed)} passed, "
            f"{len(failed)} failed"
            + (f"; {len(untested)} rules lack match or no_match cases" if untested else ""),
            highlight=False,
        )
        if failed:
            raise typer.Exit(1)

    @group.command("lint")
    def lint_cmd(
        ctx: typer.Context,
        dirs: list[Path] = typer.Argument(
            None, help="Rule directories or files (default: built-in + configured)."
        ),
        builtin: bool = typer.Option(
            True, "--builtin/--no-builtin", help="Load the built-in catalog."
        ),
        strict: bool = typer.Option(False, "--strict", help="Fail on warnings too."),
    ) -> None:
        """Report schema errors, unknown fields, bad tags, duplicate ids, rules without tests."""
        from detectors.rulebook import lint

        settings = settings_of(ctx)
        paths, named = _dirs(ctx, dirs)
        lists = {
            "internal_domains": list(settings.rules.internal_domains),
            "sensitive_tables": [t.lower() for t in settings.rules.sensitive_tables],
        }
        problems = lint(
            paths,
            builtin=builtin,
            lists=lists,
            internal_domains=settings.rules.internal_domains,
            only=paths if named else None,
        )
        errors = [p for p in problems if p.severity == "error"]
        warnings = [p for p in problems if p.severity != "error"]
        for p in problems:
            style = "red" if p.severity == "error" else "yellow"
            console.print(f"{p} [{style}]({p.severity})[/]", highlight=False, soft_wrap=True)
        console.print(f"{len(errors)} errors, {len(warnings)} warnings", highlight=False)
        if errors or (strict and warnings):
            raise typer.Exit(1)

    @group.command("list")
    def list_cmd(
        ctx: typer.Context,
        dirs: list[Path] = typer.Argument(
            None, help="Rule directories or files (default: built-in + configured)."
        ),
        builtin: bool = typer.Option(
            True, "--builtin/--no-builtin", help="Load the built-in catalog."
        ),
    ) -> None:
        """List the loaded rules."""
        from detectors.rulebook import RuleLoadError, load_rules

        settings = settings_of(ctx)
        paths, _ = _dirs(ctx, dirs)
        try:
            ruleset = load_rules(settings.rules, paths, builtin=builtin)
        except RuleLoadError as exc:
            for line in exc.lines():
                err_console.print(line, highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        table = Table(title=f"{ruleset.rule_count} active rules")
        for col in ("id", "level", "risk", "tactic", "technique", "status", "title"):
            table.add_column(col, overflow="fold")
        for cr in ruleset.matcher.rules:
            r = cr.rule
            table.add_row(
                r.id,
                r.level.label,
                f"{r.risk_score:g}",
                r.tactic or "",
                r.technique or "",
                r.status,
                r.title,
            )
        console.print(table)
