"""Ed25519 signing over canonical JSON, keyrings, key files and rotation."""

from __future__ import annotations

import base64
import json
import stat

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.enforcement.keys import (
    KeyFileError,
    generate_key,
    keyring_path_for,
    load_keyring,
    load_signer,
    rotate_key,
)
from pipeline.enforcement.signing import (
    KeyEntry,
    Keyring,
    Signer,
    VerificationError,
    canonical_json,
    dev_signer,
    key_id_for,
)
from pipeline.settings import EnforcementSettings

json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
docs = st.dictionaries(st.text(min_size=1, max_size=10).filter(lambda k: k not in ("signature", "key_id", "alg")),
                       json_values, max_size=6)


def test_canonical_json_is_sorted_compact_utf8_without_signature() -> None:
    assert canonical_json({"b": [1, {"z": 1, "a": None}], "a": "é", "signature": "x"}) == \
        '{"a":"é","b":[1,{"a":null,"z":1}]}'.encode()


def test_canonical_json_refuses_floats() -> None:
    with pytest.raises(ValueError, match="floats"):
        canonical_json({"a": [1.5]})


@settings(max_examples=60, deadline=None)
@given(docs)
def test_any_document_round_trips_and_verifies(doc: dict) -> None:
    signer = dev_signer()
    signed = signer.sign(doc)
    ring = Keyring.of([signer])
    assert ring.verify(signed, now=0) is signed
    # reparsing (another process, another JSON library) keeps it valid
    assert ring.verify(json.loads(json.dumps(signed)), now=0)


@settings(max_examples=60, deadline=None)
@given(docs, st.text(min_size=1, max_size=10), json_scalars)
def test_any_change_breaks_the_signature(doc: dict, key: str, value: object) -> None:
    signer = dev_signer()
    signed = signer.sign(doc)
    tampered = dict(signed)
    if key in ("signature", "key_id", "alg"):
        key = key + "_x"
    if tampered.get(key, object()) == value and type(tampered.get(key)) is type(value):
        return  # not a change
    tampered[key] = value
    with pytest.raises(VerificationError) as err:
        Keyring.of([signer]).verify(tampered, now=0)
    assert err.value.code == "bad_signature"


def test_unknown_key_unsigned_and_wrong_algorithm_are_refused() -> None:
    ours, theirs = Signer(Ed25519PrivateKey.generate()), Signer(Ed25519PrivateKey.generate())
    ring = Keyring.of([ours])
    doc = theirs.sign({"action": "isolate"})
    with pytest.raises(VerificationError) as err:
        ring.verify(doc, now=0)
    assert err.value.code == "unknown_key"
    # a forger who copies our key id still fails on the signature
    forged = dict(doc, key_id=ours.key_id)
    forged["signature"] = theirs.sign(forged)["signature"]
    forged["key_id"] = ours.key_id
    with pytest.raises(VerificationError) as err:
        ring.verify(forged, now=0)
    assert err.value.code == "bad_signature"
    with pytest.raises(VerificationError) as err:
        ring.verify({"action": "isolate"}, now=0)
    assert err.value.code == "unsigned"
    with pytest.raises(VerificationError) as err:
        ring.verify(dict(ours.sign({"a": 1}), alg="HS256"), now=0)
    assert err.value.code == "bad_algorithm"
    with pytest.raises(VerificationError) as err:
        ring.verify(dict(ours.sign({"a": 1}), signature="!!!"), now=0)
    assert err.value.code == "bad_signature"


def test_key_id_must_match_the_public_key() -> None:
    a, b = Signer(Ed25519PrivateKey.generate()), Signer(Ed25519PrivateKey.generate())
    with pytest.raises(ValueError, match="does not match"):
        Keyring([KeyEntry(a.key_id, b.public_key)])
    assert a.key_id == key_id_for(a.public_key) and a.key_id.startswith("k_")
    assert dev_signer().key_id.startswith("dev_") and "Signer(key_id=" in repr(a)


def test_signing_is_deterministic() -> None:
    assert dev_signer().sign({"x": 1}) == dev_signer().sign({"x": 1})


def test_generate_writes_private_key_0600_and_keyring(tmp_path) -> None:
    key = tmp_path / "keys" / "signing.key"
    signer = generate_key(key, now=1000.0)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    ring = load_keyring(keyring_path_for(key))
    assert ring.key_ids() == [signer.key_id]
    loaded = load_signer(EnforcementSettings(signing_key_path=key))
    assert loaded.key_id == signer.key_id
    with pytest.raises(Exception, match="already exists"):
        generate_key(key, now=1000.0)
    assert "PRIVATE" not in keyring_path_for(key).read_text()


def test_rotation_old_key_verifies_during_overlap_then_not(tmp_path) -> None:
    key = tmp_path / "signing.key"
    old = generate_key(key, now=1000.0)
    old_doc = old.sign({"command_id": "c1"})
    old_id, new = rotate_key(key, now=2000.0, overlap_seconds=600)
    assert old_id == old.key_id and new.key_id != old.key_id
    ring = load_keyring(keyring_path_for(key))
    assert set(ring.key_ids()) == {old.key_id, new.key_id}
    assert ring.verify(old_doc, now=2500.0)  # inside the overlap
    with pytest.raises(VerificationError) as err:
        ring.verify(old_doc, now=2601.0)
    assert err.value.code == "key_expired"
    assert ring.verify(new.sign({"command_id": "c2"}), now=10**9)  # the new key has no end
    assert load_signer(EnforcementSettings(signing_key_path=key)).key_id == new.key_id


def test_signer_from_secret_setting_and_errors(tmp_path) -> None:
    seed = base64.b64encode(bytes(range(32))).decode()
    s = load_signer(EnforcementSettings(signing_key=seed, signing_key_path=tmp_path / "none"))
    assert s.key_id.startswith("k_")
    assert "AAEC" not in repr(EnforcementSettings(signing_key=seed))  # SecretStr hides it
    with pytest.raises(KeyFileError, match="keys generate"):
        load_signer(EnforcementSettings(signing_key_path=tmp_path / "none"))
    assert load_signer(EnforcementSettings(signing_key_path=tmp_path / "none", allow_dev_key=True)).is_dev
    with pytest.raises(KeyFileError, match="neither PEM nor base64"):
        load_signer(EnforcementSettings(signing_key="not a key!"))
    bad = tmp_path / "keyring.json"
    bad.write_text('{"keys": [{"key_id": "k_00", "public_key": "AAAA"}]}')
    with pytest.raises(KeyFileError, match="malformed keyring"):
        load_keyring(bad)
