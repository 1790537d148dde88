"""Incidents and SOC 2 CC7 evidence: tracking, the tamper-evident store, triage and export.

- :class:`IncidentTracker` (pure logic, per-agent state): alerts, enforcement commands, acks and
  analyst control messages in, incident record versions out (``tracker.py``);
- :func:`open_store` / :class:`IncidentStore`: SQLite or PostgreSQL, idempotent writes, every
  record on a SHA-256 hash chain (``store.py``, ``chain.py``); :func:`verify_chain` checks one;
- ``evidence.py``: the auditor export (JSON, CSV, self-contained HTML);
- ``triage.py``: analysts' decisions as store writes plus control messages for the workers.
"""

from pipeline.incidents.chain import VerifyResult, verify_chain
from pipeline.incidents.store import IncidentStore, StoreError, open_store
from pipeline.incidents.tracker import IncidentTracker

__all__ = ["IncidentStore", "IncidentTracker", "StoreError", "VerifyResult", "open_store", "verify_chain"]
