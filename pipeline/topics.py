"""The topics agentwatch reads and writes, and ``agentwatch topics create``.

Every input topic and the state table's changelog have the same partition count
(``topics.partitions``) and are keyed by ``agent_id``, so an agent's actions, acknowledgements,
analyst decisions and baseline state all live on the same partition number and move together on a
rebalance. The partition count bounds how many workers share the load: scale workers up to it.

=========================  =========  ==========  =================================================
topic                      key        cleanup     retention / why
=========================  =========  ==========  =================================================
agent.actions              agent_id   delete      7 days: input, replayable for a week
agent.actions.enriched     agent_id   delete      7 days: SIEMs consume it
agent.alerts               agent_id   delete      30 days: analysts' queue (also in the store)
agent.enforcement          enf. point delete      1 day: commands carry a TTL anyway
agent.enforcement.acks     agent_id   delete      7 days
agent.incidents            incident   compact     latest version of each incident is state
agent.actions.dlq          agent_id   delete      14 days: time to fix and re-publish
agent.control              agent_id   delete      30 days: analyst decisions to the workers
<app>-agent-state-changelog agent_id  compact     the per-agent state table (faust)
=========================  =========  ==========  =================================================

Creation is idempotent: existing topics are left as they are (a differing partition count is
reported, never changed).
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.errors import AgentwatchError
from pipeline.kafka import bootstrap_servers, check_reachable
from pipeline.settings import Settings

__all__ = ["STATE_TABLE", "TopicSpec", "create_topics", "topic_specs"]

DAY_MS = 24 * 3600 * 1000
STATE_TABLE = "agent-state"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    cleanup: str
    retention_ms: int | None

    def config(self) -> dict[str, str]:
        cfg = {"cleanup.policy": self.cleanup}
        if self.retention_ms is not None:
            cfg["retention.ms"] = str(self.retention_ms)
        return cfg


def changelog_topic(settings: Settings) -> str:
    """faust names a table's changelog ``<app id>-<table>-changelog``."""
    return f"{settings.worker.app_id}-{STATE_TABLE}-changelog"


def topic_specs(settings: Settings) -> list[TopicSpec]:
    n = settings.topics.partitions
    t = settings.topic
    return [
        TopicSpec(t("actions"), n, "delete", 7 * DAY_MS),
        TopicSpec(t("enriched"), n, "delete", 7 * DAY_MS),
        TopicSpec(t("alerts"), n, "delete", 30 * DAY_MS),
        TopicSpec(t("enforcement"), n, "delete", 1 * DAY_MS),
        TopicSpec(t("acks"), n, "delete", 7 * DAY_MS),
        TopicSpec(t("incidents"), n, "compact", None),
        TopicSpec(t("dlq"), n, "delete", 14 * DAY_MS),
        TopicSpec(t("control"), n, "delete", 30 * DAY_MS),
        TopicSpec(changelog_topic(settings), n, "compact", None),
    ]


@dataclass
class CreateResult:
    created: list[str]
    existing: list[str]
    warnings: list[str]


def create_topics(settings: Settings, timeout: float = 15.0) -> CreateResult:
    """Create every topic that does not exist yet. Safe to run any number of times."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    check_reachable(settings.broker)
    specs = topic_specs(settings)
    try:
        admin = KafkaAdminClient(
            bootstrap_servers=bootstrap_servers(settings.broker),
            client_id="agentwatch-topics",
            request_timeout_ms=int(timeout * 1000),
        )
    except KafkaError as exc:
        raise AgentwatchError(f"cannot connect to Kafka at {settings.broker}: {exc}") from None
    try:
        existing_names = set(admin.list_topics())
        result = CreateResult([], [], [])
        missing = [s for s in specs if s.name not in existing_names]
        for spec in specs:
            if spec.name in existing_names:
                result.existing.append(spec.name)
        for spec in missing:
            try:
                admin.create_topics(
                    [NewTopic(spec.name, spec.partitions, settings.topics.replication_factor,
                              topic_configs=spec.config())],
                    timeout_ms=int(timeout * 1000),
                )
                result.created.append(spec.name)
            except TopicAlreadyExistsError:
                result.existing.append(spec.name)
            except KafkaError as exc:
                raise AgentwatchError(f"cannot create topic {spec.name}: {exc}") from None
        if result.existing:
            try:
                described = admin.describe_topics([s.name for s in specs if s.name in result.existing])
            except KafkaError:
                described = []
            want = {s.name: s.partitions for s in specs}
            for topic in described:
                name = topic.get("topic")
                count = len(topic.get("partitions") or [])
                if name in want and count and count != want[name]:
                    result.warnings.append(
                        f"{name} has {count} partitions, settings say {want[name]} (left unchanged)"
                    )
        return result
    finally:
        admin.close()
