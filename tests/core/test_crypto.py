"""Key ring (AES-GCM with key ids) and keyed hashes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.core.crypto import Hasher, KeyRing
from bridge.core.errors import ConfigurationError, CryptoError

RING = KeyRing.generate(development=True)


class TestKeyRing:
    def test_round_trip_and_key_id_inside_value(self) -> None:
        blob = RING.encrypt(b"Adaeze Okonkwo", b"Patient/1/1")
        assert b"Adaeze" not in blob
        assert KeyRing.key_id_of(blob) == RING.active
        assert RING.decrypt(blob, b"Patient/1/1") == b"Adaeze Okonkwo"

    def test_same_plaintext_encrypts_differently(self) -> None:
        assert RING.encrypt(b"x", b"a") != RING.encrypt(b"x", b"a")

    def test_value_moved_to_another_row_fails(self) -> None:
        blob = RING.encrypt(b"secret", b"Patient/1/1")
        with pytest.raises(CryptoError, match="tampered or misplaced"):
            RING.decrypt(blob, b"Patient/2/1")

    def test_tampered_value_fails(self) -> None:
        blob = bytearray(RING.encrypt(b"secret", b"aad"))
        blob[-1] ^= 1
        with pytest.raises(CryptoError):
            RING.decrypt(bytes(blob), b"aad")

    def test_rotation_keeps_old_values_readable(self) -> None:
        old_blob = RING.encrypt(b"before", b"aad")
        rotated = RING.with_new_active_key()
        assert rotated.active != RING.active
        assert rotated.decrypt(old_blob, b"aad") == b"before"
        new_blob = rotated.encrypt(b"after", b"aad")
        assert KeyRing.key_id_of(new_blob) == rotated.active
        with pytest.raises(CryptoError, match="not in the ring"):
            RING.decrypt(new_blob, b"aad")

    def test_unknown_format_fails(self) -> None:
        with pytest.raises(CryptoError, match="unknown encryption format"):
            RING.decrypt(b"\x07abc", b"aad")

    def test_save_and_load_are_private_and_faithful(self, tmp_path: Path) -> None:
        path = tmp_path / "keys" / "ring.json"
        RING.save(path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        loaded = KeyRing.load(path)
        assert loaded.active == RING.active
        assert loaded.development
        assert loaded.decrypt(RING.encrypt(b"x", b"y"), b"y") == b"x"

    def test_load_errors_are_clear(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigurationError, match="does not exist"):
            KeyRing.load(tmp_path / "missing.json")
        bad = tmp_path / "bad.json"
        bad.write_text('{"keys": {}}')
        with pytest.raises(ConfigurationError, match="not a valid key ring"):
            KeyRing.load(bad)

    def test_load_or_create_only_when_allowed(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigurationError):
            KeyRing.load_or_create(tmp_path / "r.json", allow_create=False)
        ring = KeyRing.load_or_create(tmp_path / "r.json", allow_create=True)
        assert ring.development
        assert KeyRing.load_or_create(tmp_path / "r.json", allow_create=False).active == ring.active

    @given(st.binary(max_size=2048), st.binary(max_size=64))
    def test_round_trip_property(self, data: bytes, aad: bytes) -> None:
        assert RING.decrypt(RING.encrypt(data, aad), aad) == data


class TestHasher:
    def test_tokens_are_keyed_and_stable(self) -> None:
        a, b = Hasher(os.urandom(32)), Hasher(os.urandom(32))
        assert a.index_token("s", "9990000018") == a.index_token("s", " 9990000018 ")
        assert a.index_token("s", "9990000018") != b.index_token("s", "9990000018")
        assert a.index_token("s", "9990000018") != a.index_token("t", "9990000018")
        assert a.content_hash(b"x") != a.index_token("", "x")

    def test_short_key_refused(self) -> None:
        with pytest.raises(ConfigurationError):
            Hasher(b"short")

    def test_file_round_trip(self, tmp_path: Path) -> None:
        path = tmp_path / "index.key"
        with pytest.raises(ConfigurationError):
            Hasher.load_or_create(path, allow_create=False)
        first = Hasher.load_or_create(path, allow_create=True)
        assert first.development
        again = Hasher.load_or_create(path, allow_create=False)
        assert first.index_token("s", "v") == again.index_token("s", "v")
        Hasher.write_new(tmp_path / "prod.key", development=False)
        assert not Hasher.load_or_create(tmp_path / "prod.key", allow_create=False).development


class TestFirstRunRace:
    def test_processes_starting_together_share_one_ring_and_index_key(self, tmp_path: Path) -> None:
        import threading

        ring_path, index_path = tmp_path / "ring.json", tmp_path / "index.key"
        rings: list[KeyRing] = []
        hashers: list[Hasher] = []
        barrier = threading.Barrier(8)

        def start() -> None:
            barrier.wait()
            rings.append(KeyRing.load_or_create(ring_path, allow_create=True))
            hashers.append(Hasher.load_or_create(index_path, allow_create=True))

        threads = [threading.Thread(target=start) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len({r.active for r in rings}) == 1
        assert len({h.index_token("s", "v") for h in hashers}) == 1
        assert sorted(p.name for p in tmp_path.iterdir()) == ["index.key", "ring.json"]

    def test_write_new_refuses_to_overwrite(self, tmp_path: Path) -> None:
        Hasher.write_new(tmp_path / "k", development=False)
        before = (tmp_path / "k").read_bytes()
        with pytest.raises(ConfigurationError, match="refusing to overwrite"):
            Hasher.write_new(tmp_path / "k", development=False)
        assert (tmp_path / "k").read_bytes() == before
