"""The Kalshi client's request signing: what the simulator's (and Kalshi's) check accepts."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from exporter.config import validate_settings
from exporter.errors import ConfigError
from exporter.sim.streams import verify_kalshi_signature
from exporter.venues.kalshi.client import KalshiClient, load_signer


def _key_file(tmp_path: Path) -> tuple[Path, rsa.RSAPublicKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "kalshi.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path, key.public_key()


async def test_requests_are_signed_when_a_key_is_configured(tmp_path: Path) -> None:
    path, public = _key_file(tmp_path)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"series": []})

    settings = validate_settings({"venues": {"kalshi": {
        "rest_url": "http://kalshi.test/trade-api/v2", "api_key_id": "key-1",
        "private_key_file": str(path)}}})  # fmt: skip
    assert settings.venues.kalshi.budget == 15.0  # a key raises the default budget
    client = KalshiClient(settings.venues.kalshi, transport=httpx.MockTransport(handler))
    await client.series()
    await client.aclose()
    (request,) = seen
    assert request.url.path == "/trade-api/v2/series"
    assert verify_kalshi_signature(request.headers, {"key-1": public}, path=request.url.path)
    assert not verify_kalshi_signature(request.headers, {"key-1": public}, path="/other")


def test_a_key_id_without_a_usable_private_key_fails_naming_the_setting(tmp_path: Path) -> None:
    broken = tmp_path / "broken.pem"
    broken.write_text("-----BEGIN PRIVATE KEY-----\nnot really\n-----END PRIVATE KEY-----\n")
    for kalshi, key in (
        ({"api_key_id": "k"}, "venues.kalshi.private_key_file"),
        ({"api_key_id": "k", "private_key_file": str(tmp_path / "missing.pem")},
         "venues.kalshi.private_key_file"),
        ({"api_key_id": "k", "private_key_file": str(broken)}, "venues.kalshi.private_key"),
    ):  # fmt: skip
        settings = validate_settings({"venues": {"kalshi": kalshi}})
        with pytest.raises(ConfigError) as info:
            load_signer(settings.venues.kalshi)
        assert info.value.problems[0][0] == key
        assert "not really" not in str(info.value)
