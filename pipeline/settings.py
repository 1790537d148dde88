"""The one place that reads configuration.

Every setting has a default, can be set in an optional YAML file, and can be overridden by an
environment variable: ``AGENTWATCH_<FIELD>`` for top-level fields and
``AGENTWATCH_<SECTION>__<FIELD>`` for fields of a section (e.g. ``AGENTWATCH_RISK__ALERT_THRESHOLD``).
The YAML file is named by ``--config`` or ``AGENTWATCH_CONFIG``. Precedence, highest first:
explicit overrides passed by the CLI, environment, YAML file, defaults.

No other module reads ``os.environ``: they receive a :class:`Settings` (or one of its sections).
Secrets (signing keys, database passwords) are ``SecretStr`` so they never appear in logs or reprs.

Each section class belongs to the module named in its docstring; add fields to your own section only.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from pipeline.errors import AgentwatchError

__all__ = ["ConfigError", "Settings", "load_settings"]

ENV_PREFIX = "AGENTWATCH_"
CONFIG_ENV = "AGENTWATCH_CONFIG"


# Defaults of dict and list fields as functions with the field's type: a bare lambda would type
# the whole numbers below as ``dict[str, int]`` and the kinds as ``list[str]``. The values are
# those the lambdas made (the numbers stay ints), so nothing serialised changes.
def _default_severity_floor() -> dict[str, float]:
    return {"info": 0, "low": 10, "medium": 30, "high": 60, "critical": 90}


#: what a destination can receive: the enriched topic's records and/or alerts
RecordKind = Literal["enriched", "alerts"]


def _default_kinds() -> list[RecordKind]:
    return ["alerts"]


def _default_ttl_seconds() -> dict[str, float | None]:
    return {"require_approval": 4 * 3600, "step_down": 4 * 3600, "revoke_tokens": 8 * 3600, "isolate": 8 * 3600,
            "release": 3600}


class ConfigError(AgentwatchError):
    """The configuration is malformed; the message is one line a user can act on."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class TopicSettings(_Section):
    """Topic names and layout (pipeline/topics.py). Every name is ``prefix + suffix``."""

    prefix: str = ""
    actions: str = "agent.actions"
    enriched: str = "agent.actions.enriched"
    alerts: str = "agent.alerts"
    enforcement: str = "agent.enforcement"
    acks: str = "agent.enforcement.acks"
    incidents: str = "agent.incidents"
    dlq: str = "agent.actions.dlq"
    #: analyst decisions (release, suppression, incident updates) for the workers; key agent_id
    control: str = "agent.control"
    partitions: int = Field(8, ge=1, le=1024)
    replication_factor: int = Field(1, ge=1, le=16)


class StreamSettings(_Section):
    """Decoding, validation, dedup and event-time policy (pipeline/validation.py, processor.py)."""

    max_message_bytes: int = Field(64 * 1024, ge=1024, le=16 * 1024 * 1024)
    #: events later than this behind the partition's event-time clock are dead-lettered
    max_lateness_seconds: float = Field(7 * 24 * 3600, gt=0)
    #: events stamped further than this ahead of the time the broker received them are dead-lettered
    max_lead_seconds: float = Field(3600, gt=0)
    #: input without broker timestamps (replay): events this far ahead of the watermark are dead-lettered
    max_replay_gap_seconds: float = Field(30 * 24 * 3600, gt=0)
    #: how many recent event ids each agent remembers for dedup
    dedup_ids_per_agent: int = Field(256, ge=16, le=65536)
    #: ...and for how long (event time): publishers retry within seconds, so ids older than
    #: this are forgotten, which keeps idle agents' dedup memory at zero
    dedup_window_seconds: float = Field(3600, gt=0)
    #: agents kept in memory per worker before the least recently seen is evicted to the table
    max_agents_in_memory: int = Field(200_000, ge=100)
    #: how often the changed agents' state is written to the state table (seconds; 0 = after every
    #: fetch). Input offsets are acknowledged only once the state covering them is written, so a
    #: crash replays at most this much more input (Kafka Streams' default commit interval is 30 s).
    #: Each flush writes every agent changed since the last one (~5-10 KB each): with a fleet of
    #: hundreds of agents, flushing every 0.5 s spent more CPU encoding state than detecting
    state_flush_seconds: float = Field(5.0, ge=0, le=60)
    #: ...or sooner, once this many input events wait for it (bounds memory and the replay)
    state_flush_events: int = Field(50_000, ge=100, le=1_000_000)
    batch_max_events: int = Field(2000, ge=1, le=100_000)
    #: the live worker processes an agent with a rule finding (low severity or above) ahead of the rest
    #: of its fetch, so its isolation command leaves first (each agent's events stay in order;
    #: only different agents' interleaving changes). false: strict input order (the same
    #: instructions per event, bench.cost)
    urgent_first: bool = True


class WorkerSettings(_Section):
    """The faust worker (pipeline/app.py)."""

    app_id: str = "agentwatch"
    metrics_port: int = Field(9465, ge=0, le=65535)
    web_port: int = Field(6066, ge=0, le=65535)
    session_timeout_seconds: float = Field(10.0, gt=0)
    heartbeat_interval_seconds: float = Field(1.0, gt=0)
    commit_interval_seconds: float = Field(0.5, gt=0)
    fetch_max_wait_ms: int = Field(10, ge=0)
    linger_ms: int = Field(5, ge=0)
    #: producer record-batch size per partition (bytes). The producer sends one batch per
    #: partition per request, so small batches turn a state flush of a large fleet (~5 KB per
    #: agent) into dozens of sequential round trips; keep it under the broker's
    #: message.max.bytes (1 MiB by default in Kafka)
    producer_batch_bytes: int = Field(256 * 1024, ge=16 * 1024, le=1024 * 1024)
    data_dir: Path = Path(".agentwatch/worker")
    #: garbage collector policy (pipeline/gcpolicy.py): every this many seconds, what survived is
    #: frozen so that collections stop rescanning long-lived state (0 = Python's defaults)
    gc_freeze_seconds: float = Field(1.0, ge=0)
    #: ...and every this many seconds one full collection of everything (0 = never)
    gc_full_collect_seconds: float = Field(3600.0, ge=0)
    #: ...and what each processing step (32 events) leaves alive is frozen at once, without a
    #: collection: the young collections that scanned it found no garbage (with gc_freeze_seconds 0,
    #: off as well)
    gc_freeze_each_step: bool = True


class ChangeFreeze(BaseModel):
    """A change-freeze window (RulesSettings.change_freezes): destructive actions are policy findings."""

    model_config = ConfigDict(extra="forbid")

    start: datetime  # RFC 3339, with a timezone
    end: datetime
    environments: list[str] = Field(default_factory=lambda: ["prod"])
    name: str = "change freeze"

    @field_validator("end")
    @classmethod
    def _check_order(cls, value: datetime, info: Any) -> datetime:
        start = info.data.get("start")
        if start is not None and value <= start:
            raise ValueError("a change freeze must end after it starts")
        return value


class WorkingHours(BaseModel):
    """An owner's working hours (RulesSettings.working_hours); activity outside is a policy finding."""

    model_config = ConfigDict(extra="forbid")

    timezone: str = "UTC"  # IANA name, e.g. Europe/Paris
    start: str = Field("08:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    end: str = Field("19:00", pattern=r"^([01]\d|2[0-4]):[0-5]\d$")
    days: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = Field(
        default_factory=lambda: ["mon", "tue", "wed", "thu", "fri"]  # type: ignore[arg-type]
    )

    @field_validator("timezone")
    @classmethod
    def _check_tz(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError  # local: settings must import cheaply

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r}") from None
        return value


class RulesSettings(_Section):
    """Rule detectors (detectors/rulebook)."""

    enabled: bool = True
    #: load the built-in catalog (detectors/rules); false = only `directories`
    builtin: bool = True
    #: extra rule directories (user rules and exception files) loaded after the built-in catalog
    directories: list[Path] = Field(default_factory=list)
    #: rule ids that are never evaluated (tuning without editing files)
    disabled_rules: list[str] = Field(default_factory=list)
    internal_domains: list[str] = Field(default_factory=lambda: ["internal", "corp", "local"])
    sensitive_tables: list[str] = Field(
        default_factory=lambda: ["users", "customers", "payments", "credentials", "accounts"]
    )
    #: role -> tools that role may use; a tool outside the set is a policy finding
    role_allowed_tools: dict[str, list[str]] = Field(default_factory=dict)
    reload: bool = True
    #: policy: this many denied actions of one agent within the window is a spike
    denied_spike_threshold: int = Field(5, ge=2, le=10_000)
    denied_spike_window_seconds: float = Field(300.0, gt=0)
    #: policy: change-freeze windows (destructive actions in those environments are findings)
    change_freezes: list[ChangeFreeze] = Field(default_factory=list)
    #: policy: owner -> working hours; `default_working_hours` applies to owners not listed (None = off)
    working_hours: dict[str, WorkingHours] = Field(default_factory=dict)
    default_working_hours: WorkingHours | None = None
    #: per-process LRU cache of rule results per command text (repeated commands): entries, MiB
    command_cache_entries: int = Field(20_000, ge=0, le=1_000_000)
    command_cache_mib: float = Field(32.0, ge=0, le=4096)


class BaselineSettings(_Section):
    """Per-agent behavioural baselines (detectors/baselines)."""

    enabled: bool = True
    warmup_events: int = Field(50, ge=0)
    warmup_hours: float = Field(24.0, ge=0)
    #: baselines to switch off, by name (rate, novelty, time, sequence, volume, multivariate, peer)
    disabled: list[str] = Field(default_factory=list)
    #: forgetting: rate, volume and hour profiles lose half their weight in this many days
    half_life_days: float = Field(7.0, gt=0)
    #: an item (tool, host, destination...) unused this long counts as new again
    novelty_memory_days: float = Field(30.0, gt=0)
    #: per-agent caps (12 bytes each; least recently used evicted), bound memory under floods
    max_items_per_agent: int = Field(256, ge=8, le=65536)
    max_transitions_per_agent: int = Field(192, ge=8, le=65536)
    #: distinct roles with their own profile; the rest share one "(other)" profile
    max_roles: int = Field(64, ge=1, le=4096)
    #: a new agent inherits its role's profile with this weight (in events/minutes)
    role_prior_weight: float = Field(10.0, ge=0)
    #: novelty strength (0-1) needed for a finding
    novelty_min_score: float = Field(0.35, ge=0, le=1)
    #: rate: fire above max(mean + rate_z*std, rate_ratio*mean, rate_min_per_minute)
    rate_z: float = Field(4.0, gt=0)
    rate_ratio: float = Field(3.0, ge=1)
    rate_min_per_minute: float = Field(15.0, ge=1)
    #: time: fire when the agent's share of activity near this hour is below this
    time_min_share: float = Field(0.003, gt=0, lt=1)
    #: sequence: fire on an unseen transition with smoothed probability below this
    sequence_max_prob: float = Field(0.02, gt=0, lt=1)
    sequence_min_from: int = Field(150, ge=1)
    sequence_min_score: float = Field(0.4, ge=0, le=1)
    #: volume: z-score (log space), ratio to typical and absolute floors
    volume_z: float = Field(5.0, gt=0)
    volume_min_ratio: float = Field(10.0, ge=1)
    volume_min_bytes: int = Field(1_000_000, ge=0)
    volume_min_rows: int = Field(1_000, ge=0)
    #: multivariate (river HalfSpaceTrees per role): tail probability and minimum raw score
    multivariate_tail: float = Field(0.0003, gt=0, lt=1)
    multivariate_min_raw: float = Field(0.6, ge=0, le=1)
    multivariate_trees: int = Field(5, ge=1, le=50)
    multivariate_height: int = Field(6, ge=1, le=12)
    multivariate_window: int = Field(250, ge=10)
    #: the role model learns from 1 in N learned events of its mature agents (cost; 1 = all)
    multivariate_sample: int = Field(8, ge=1, le=1024)
    seed: int = 42
    #: peer group: role size before peers are compared, z against the role, role hour share
    peer_min_agents: int = Field(5, ge=2)
    peer_z: float = Field(5.0, gt=0)
    peer_min_share: float = Field(0.001, gt=0, lt=1)


class RiskSettings(_Section):
    """Risk scoring and risk-based alerting (pipeline/risk.py)."""

    #: sliding event-time window over which an agent's risk accumulates
    window_seconds: float = Field(3600, gt=0)
    #: weight per finding detector (prefix match, longest wins; "*" is the default weight)
    detector_weights: dict[str, float] = Field(
        default_factory=lambda: {"*": 1.0, "rules": 1.0, "baseline": 0.8}
    )
    #: minimum contribution of a finding by severity (a critical finding scores at least this)
    severity_floor: dict[str, float] = Field(
        default_factory=_default_severity_floor
    )
    #: repeats of the same factor inside the window count this fraction (the first counts fully)
    repeat_weight: float = Field(0.25, ge=0, le=1)
    #: agent risk at or above this raises a risk-based alert (many low signals -> one alert)
    alert_threshold: int = Field(60, ge=1, le=100)
    #: score -> severity label: the highest level whose threshold the score reaches
    levels: dict[str, int] = Field(
        default_factory=lambda: {"low": 15, "medium": 40, "high": 65, "critical": 85}
    )
    #: per-agent cap on remembered scored events (oldest dropped first: bounded memory)
    max_window_events: int = Field(256, ge=8, le=100_000)
    #: factors kept per event and per assessment (the rest are folded into the score only)
    max_factors: int = Field(8, ge=1, le=64)


class AlertSettings(_Section):
    """Alert grouping, suppression and rate limits (pipeline/alerting.py)."""

    #: findings of the same agent and rule within this event-time window form one alert
    group_window_seconds: float = Field(900, gt=0)
    #: group by "rule" (detector + rule id) or by "detector" (family)
    group_by: Literal["rule", "detector"] = "rule"
    #: a finding alerts on its own at or above this severity; lower ones only add risk
    min_severity: Literal["info", "low", "medium", "high", "critical"] = "medium"
    #: an updated group is re-emitted at most this often (event time); severity rises go at once
    update_interval_seconds: float = Field(30, ge=0)
    #: evidence event ids kept per alert (count stays exact)
    max_event_ids: int = Field(50, ge=1, le=10_000)
    #: open groups kept per agent (the oldest is closed and flushed first)
    max_groups_per_agent: int = Field(64, ge=1, le=10_000)
    #: per-agent rate limit on new alerts: token bucket refilled at this rate (event time)...
    rate_limit_per_minute: float = Field(6, gt=0)
    #: ...with this burst; beyond it new alerts fold into one "rate_limited" alert per window
    rate_limit_burst: int = Field(10, ge=1)
    #: active suppressions kept per agent and fleet-wide (the one expiring first is dropped)
    max_suppressions: int = Field(1000, ge=1, le=100_000)
    #: an agent's episode (incident) closes after this long without alerts or commands
    episode_idle_seconds: float = Field(24 * 3600, gt=0)


class RungTrigger(BaseModel):
    """When a rung of the isolation ladder fires: any one condition that is set suffices."""

    model_config = ConfigDict(extra="forbid")

    min_agent_risk: int | None = Field(None, ge=1, le=100)  # accumulated agent risk
    min_event_score: int | None = Field(None, ge=1, le=100)  # this event's score
    min_severity: Literal["info", "low", "medium", "high", "critical"] | None = None  # any finding
    rules: list[str] = Field(default_factory=list)  # "detector:id", "id" or a "prefix*"


def _default_triggers() -> dict[str, RungTrigger]:
    return {
        "require_approval": RungTrigger(min_agent_risk=50, min_severity="high"),
        "step_down": RungTrigger(min_agent_risk=70),
        "revoke_tokens": RungTrigger(min_agent_risk=85),
        "isolate": RungTrigger(min_agent_risk=95, min_severity="critical"),
    }


class EnforcementSettings(_Section):
    """Isolation ladder, safety bundle and signing (pipeline/enforcement)."""

    #: automated commands at all; off = alerts only (releases by a human still go out)
    enabled: bool = True
    #: commands are emitted with "mode": "shadow" (gates ignore them) and counted as would-have
    shadow_mode: bool = False
    signing_key_path: Path = Path(".agentwatch/keys/signing.key")
    signing_key: SecretStr | None = None  # PEM or base64 raw Ed25519 seed; wins over the path
    #: without a key, sign with a fixed, public development key (replay/backtests only)
    allow_dev_key: bool = False
    #: which rung fires when (rungs: require_approval, step_down, revoke_tokens, isolate)
    triggers: dict[str, RungTrigger] = Field(default_factory=_default_triggers)
    #: command lifetime per rung; null = never expires (a lost release then locks the agent)
    ttl_seconds: dict[str, float | None] = Field(
        default_factory=_default_ttl_seconds
    )
    #: the highest rung that findings of other detectors (behavioural baselines) can reach alone;
    #: higher rungs need a finding of a corroborating detector in the agent's risk window
    uncorroborated_max_rung: Literal["require_approval", "step_down", "revoke_tokens", "isolate"] = "require_approval"
    corroborating_detectors: list[str] = Field(default_factory=lambda: ["rules", "policy"])
    #: agents (exact ids or "prefix*") never given automated commands; they get alerts only
    never_isolate: list[str] = Field(default_factory=list)
    #: fleet-wide cap on automated commands at or above blast_radius_min_rung per minute
    max_isolations_per_minute: int = Field(10, ge=0)
    blast_radius_min_rung: Literal["require_approval", "step_down", "revoke_tokens", "isolate"] = "step_down"
    #: an unacknowledged command raises an alert after this long
    ack_timeout_seconds: float = Field(10.0, gt=0)
    #: enforcement points refuse commands issued longer ago than this (replay defence)
    max_command_age_seconds: float = Field(300, gt=0)
    #: key rotation: the previous public key keeps verifying this long after a rotation
    rotation_overlap_seconds: float = Field(24 * 3600, ge=0)

    @field_validator("triggers", "ttl_seconds")
    @classmethod
    def _check_rungs(cls, value: dict[str, Any]) -> dict[str, Any]:
        known = {"require_approval", "step_down", "revoke_tokens", "isolate", "release"}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f"unknown rung {unknown[0]!r}; expected one of {', '.join(sorted(known))}")
        return value


class IncidentSettings(_Section):
    """Incident tracking, the incident store, triage and evidence export (pipeline/incidents)."""

    #: sqlite:///path.db (default, one WAL file) or postgresql://user@host/db[?schema=name]
    store_url: str = "sqlite:///.agentwatch/incidents.db"
    #: an acknowledged-as-applied command with one of these actions marks the incident contained
    containment_actions: list[str] = Field(default_factory=lambda: ["isolate"])
    #: open incidents kept in a worker's memory per agent (older ones stay open in the store)
    max_open_per_agent: int = Field(4, ge=1, le=64)
    #: evidence events / findings kept per incident (more are counted, not kept)
    max_evidence_events: int = Field(50, ge=1, le=10_000)
    max_findings: int = Field(200, ge=1, le=100_000)
    #: timeline entries per incident beyond which evidence events and findings are only counted
    max_timeline_entries: int = Field(2000, ge=10, le=1_000_000)
    #: an evidence event larger than this (JSON bytes) keeps its fields but long strings are cut
    evidence_event_max_bytes: int = Field(4096, ge=512, le=1024 * 1024)
    #: the analyst name CLI actions are recorded under when --by is not given
    analyst: str | None = None
    #: lifetime of the suppression created when an incident is marked false_positive
    false_positive_suppression_seconds: float = Field(30 * 24 * 3600, gt=0)


OutputFormat = Literal["json", "ocsf", "ecs", "cef"]


class _DestinationBase(_Section):
    """What every extra output destination has (pipeline/outputs/registry.py)."""

    #: unique name, used in logs and metrics labels
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    enabled: bool = True
    #: which records go there: the enriched topic's records and/or alerts
    kinds: list[RecordKind] = Field(default_factory=_default_kinds, min_length=1)
    format: OutputFormat = "json"
    #: records below this severity are not sent (info < low < medium < high < critical)
    min_severity: Literal["info", "low", "medium", "high", "critical"] = "info"
    #: records held between flushes; past it the oldest are dropped and counted
    max_buffer: int = Field(10_000, ge=1, le=10_000_000)


class FileDestination(_DestinationBase):
    """Append one record per line to a file (pipeline/outputs/destinations/file.py)."""

    type: Literal["file"] = "file"
    #: ``{kind}`` in the path is replaced by enriched/alerts, so each kind can get its own file
    path: Path


class SyslogDestination(_DestinationBase):
    """Syslog (RFC 5424) over UDP or TCP (pipeline/outputs/destinations/syslog.py)."""

    type: Literal["syslog"] = "syslog"
    format: OutputFormat = "cef"
    host: str = "127.0.0.1"
    port: int = Field(514, ge=1, le=65535)
    protocol: Literal["udp", "tcp"] = "udp"
    #: TCP framing (RFC 6587): octet counting or one message per line
    framing: Literal["octet-counting", "newline"] = "octet-counting"
    facility: int = Field(10, ge=0, le=23)  # 10 = authpriv: security/authorization messages
    app_name: str = Field("agentwatch", pattern=r"^[!-~]{1,48}$")
    #: UDP datagrams longer than this are truncated (syslog receivers commonly cap at 8 KiB)
    max_datagram_bytes: int = Field(8192, ge=480, le=65507)
    connect_timeout_seconds: float = Field(2.0, gt=0)


class StdoutDestination(_DestinationBase):
    """Write records to standard output (pipeline/outputs/destinations/stdout.py)."""

    type: Literal["stdout"] = "stdout"


Destination = Annotated[
    FileDestination | SyslogDestination | StdoutDestination, Field(discriminator="type")
]


class OutputSettings(_Section):
    """SIEM output formats (pipeline/outputs)."""

    #: format of the enriched topic's records
    enriched_format: OutputFormat = "json"
    #: format of the alert topic's records
    alerts_format: OutputFormat = "json"
    #: extra destinations besides the Kafka topics (files, syslog); each with its own format and
    #: minimum severity. From the environment: a JSON list in AGENTWATCH_OUTPUTS__DESTINATIONS
    destinations: list[Destination] = Field(default_factory=list)

    @field_validator("destinations")
    @classmethod
    def _unique_names(cls, value: list[Any]) -> list[Any]:
        names = [d.name for d in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate destination name(s): {', '.join(dupes)}")
        return value


class SimulatorSettings(_Section):
    """Defaults of `agentwatch simulate` (pipeline/simulator, pipeline/cli/simulate.py)."""

    #: same seed + same parameters -> byte-identical event stream
    seed: int = Field(7, ge=0, le=2**63 - 1)
    #: size of the simulated fleet (roles are spread over it)
    agents: int = Field(40, ge=1, le=100_000)
    #: simulated time span of one run
    hours: float = Field(24.0, gt=0, le=24 * 366)
    #: event time of the run's start (RFC 3339), or "now" to follow the wall clock
    start: str = "2026-11-02T08:00:00Z"
    #: multiplies every agent's session rate (2.0 = twice the events)
    activity: float = Field(1.0, gt=0, le=1000)
    #: pace of publishing in events per second of wall time; None = as fast as possible
    rate: float | None = Field(None, gt=0)
    #: injected attack scenarios: "all", "none" or comma-separated names
    scenarios: str = "all"
    #: the tenant every simulated agent belongs to
    tenant: str = Field("acme", min_length=1, max_length=64)


class Settings(BaseSettings):
    """All of agentwatch's configuration."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    broker: str = "127.0.0.1:9092"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    topics: TopicSettings = Field(default_factory=TopicSettings)
    stream: StreamSettings = Field(default_factory=StreamSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    rules: RulesSettings = Field(default_factory=RulesSettings)
    baselines: BaselineSettings = Field(default_factory=BaselineSettings)
    risk: RiskSettings = Field(default_factory=RiskSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    enforcement: EnforcementSettings = Field(default_factory=EnforcementSettings)
    incidents: IncidentSettings = Field(default_factory=IncidentSettings)
    outputs: OutputSettings = Field(default_factory=OutputSettings)
    simulator: SimulatorSettings = Field(default_factory=SimulatorSettings)  # agentwatch simulate

    @field_validator("broker")
    @classmethod
    def _check_broker(cls, value: str) -> str:
        from pipeline.kafka import parse_bootstrap  # local: settings must import cheaply

        parse_bootstrap(value)
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Highest priority first: explicit CLI overrides, environment, YAML file, defaults.
        return (init_settings, env_settings, _YamlSource(settings_cls))

    def topic(self, name: str) -> str:
        """Full topic name for a logical name (``actions``, ``enriched``, ...)."""
        return self.topics.prefix + str(getattr(self.topics, name))


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"malformed config file {path}{where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"malformed config file {path}: the top level must be a mapping")
    return data


class _YamlSource(PydanticBaseSettingsSource):
    """Values from the YAML file named by :data:`_yaml_path` (set by :func:`load_settings`)."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ returns the whole mapping

    def __call__(self) -> dict[str, Any]:
        return _yaml_data.get("data", {})


_yaml_data: dict[str, Any] = {}


def _format_validation_error(exc: ValidationError, source: str) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"invalid setting {loc} ({source}): {msg}{more}"


def load_settings(config: Path | str | None = None, **overrides: Any) -> Settings:
    """Build the settings: defaults < YAML file < environment < ``overrides``.

    ``overrides`` are top-level fields given explicitly (e.g. the CLI's ``--broker``); ``None``
    values are ignored. Raises :class:`ConfigError` with a one-line message on any problem.
    """
    path = config if config is not None else os.environ.get(CONFIG_ENV)
    data = _read_yaml(Path(path)) if path else {}
    source = f"config {path} or environment" if path else "environment"
    _yaml_data["data"] = data
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, source)) from None
    finally:
        _yaml_data.pop("data", None)
