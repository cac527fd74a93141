"""Configuration: validation, key paths in errors, environment overrides, redaction."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from exporter.cli import main
from exporter.config import (
    Settings,
    format_duration,
    load_settings,
    parse_duration,
    redact_dsn,
    redacted,
)
from exporter.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "movers.yaml"
    path.write_text(text)
    return path


def test_example_config_is_valid_and_states_the_defaults() -> None:
    settings = load_settings(REPO / "movers.example.yaml", environ={})
    assert settings == Settings()


def test_defaults_point_at_the_real_venues() -> None:
    venues = Settings().venues
    assert venues.polymarket.gamma_url == "https://gamma-api.polymarket.com"
    assert venues.polymarket.clob_url == "https://clob.polymarket.com"
    assert venues.polymarket.data_url == "https://data-api.polymarket.com"
    assert venues.kalshi.rest_url.endswith("/trade-api/v2")


def test_misspelt_key_names_its_path(tmp_path: Path) -> None:
    path = _write(tmp_path, "database:\n  timescle: auto\nmetrics:\n  port: 70000\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    problems = dict(info.value.problems)
    assert problems["database.timescle"] == "unknown key (did you mean 'timescale'?)"
    assert "metrics.port" in problems


def test_check_config_exits_2_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, "storage:\n  retention:\n    snapshot: 14d\n")
    assert main(["--config", str(path), "check-config"]) == 2
    err = capsys.readouterr().err
    assert "storage.retention.snapshot: unknown key (did you mean 'snapshots'?)" in err


def test_check_config_prints_effective_config_with_secrets_redacted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MOVERS_DATABASE_URL", "postgresql://movers:s3cret-pw@db:5432/movers")
    monkeypatch.setenv("MOVERS_KALSHI_API_KEY_ID", "key-id-123")
    monkeypatch.setenv("MOVERS__STORAGE__HEARTBEAT", "5m")
    path = _write(tmp_path, "metrics:\n  port: 9500\n")
    assert main(["--config", str(path), "check-config"]) == 0
    out = capsys.readouterr().out
    printed = yaml.safe_load(out)
    assert "s3cret-pw" not in out
    assert "key-id-123" not in out
    assert printed["database"]["url"] == "postgresql://movers:***@db:5432/movers"
    assert printed["venues"]["kalshi"]["api_key_id"] == "***"
    assert printed["metrics"]["port"] == 9500
    assert printed["storage"]["heartbeat"] == "5m"


def test_secret_files_are_read(tmp_path: Path) -> None:
    secret = tmp_path / "db-url"
    secret.write_text("postgresql://a:b@h/d\n")
    settings = load_settings(None, environ={"MOVERS_DATABASE_URL_FILE": str(secret)})
    assert settings.database.url.get_secret_value() == "postgresql://a:b@h/d"


def test_a_private_key_in_yaml_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "venues:\n  kalshi:\n    private_key: '-----BEGIN'\n")
    with pytest.raises(ConfigError, match="MOVERS_KALSHI_PRIVATE_KEY"):
        load_settings(path, environ={})


def test_explicit_missing_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_settings(tmp_path / "absent.yaml", environ={})
    with pytest.raises(ConfigError, match="no such file"):
        load_settings(None, environ={"MOVERS_CONFIG": str(tmp_path / "absent.yaml")})


def test_invalid_yaml_says_where(tmp_path: Path) -> None:
    path = _write(tmp_path, "database:\n  url: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(path, environ={})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (90, timedelta(seconds=90)),
        ("15s", timedelta(seconds=15)),
        ("10m", timedelta(minutes=10)),
        ("1h30m", timedelta(minutes=90)),
        ("14d", timedelta(days=14)),
        ("2w", timedelta(days=14)),
        ("250ms", timedelta(milliseconds=250)),
        ("2y", timedelta(days=730)),
    ],
)
def test_durations(text: object, expected: timedelta) -> None:
    assert parse_duration(text) == expected
    assert parse_duration(format_duration(expected)) == expected


@pytest.mark.parametrize("bad", ["", "soon", "10 parsecs", "-5m", True])
def test_bad_durations_name_the_key(tmp_path: Path, bad: object) -> None:
    path = _write(tmp_path, yaml.safe_dump({"storage": {"heartbeat": bad}}))
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    assert [p for p, _ in info.value.problems] == ["storage.heartbeat"]


def test_zero_heartbeat_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "storage:\n  heartbeat: 0s\n")
    with pytest.raises(ConfigError, match=r"storage\.heartbeat: must be longer than zero"):
        load_settings(path, environ={})


def test_refresh_window_reaching_past_retention_is_refused(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "storage:\n  retention:\n    ohlc_1m: 1d\n  refresh:\n"
        "    ohlc_1h: {start_offset: 2d, end_offset: 1h, every: 30m}\n",
    )
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    (path_, why), *_ = info.value.problems
    assert path_ == "storage.refresh.ohlc_1h.start_offset"
    assert "reaches past retention.ohlc_1m (1d)" in why
    assert "delete ohlc_1h rows" in why


def test_write_concurrency_must_fit_the_pool(tmp_path: Path) -> None:
    path = _write(tmp_path, "database:\n  pool_size: 2\n  write_concurrency: 3\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    assert [p for p, _ in info.value.problems] == ["database.write_concurrency"]
    assert "exceeds pool_size (2)" in info.value.problems[0][1]


def test_refresh_window_must_hold_two_buckets(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "storage:\n  refresh:\n    ohlc_1d: {start_offset: 36h, end_offset: 1d, every: 1h}\n",
    )
    with pytest.raises(ConfigError, match="at least two 1d buckets"):
        load_settings(path, environ={})


def test_unlimited_retention_allows_any_refresh_window() -> None:
    from exporter.config import validate_settings

    settings = validate_settings(
        {
            "storage": {
                "retention": {"snapshots": None},
                "refresh": {"ohlc_1m": {"start_offset": "400d", "end_offset": "1m", "every": "1m"}},
            }
        }
    )
    assert settings.storage.refresh.ohlc_1m.start_offset == timedelta(days=400)


@pytest.mark.parametrize(
    ("dsn", "shown"),
    [
        ("postgresql://u:pw@h:5432/d", "postgresql://u:***@h:5432/d"),
        (
            "postgresql://u@h/d?password=pw&sslmode=require",
            "postgresql://u@h/d?password=***&sslmode=require",
        ),
        ("host=h user=u password=pw dbname=d", "host=h user=u password=*** dbname=d"),
        ("host=h password='p w' dbname=d", "host=h password=*** dbname=d"),
    ],
)
def test_redact_dsn(dsn: str, shown: str) -> None:
    assert redact_dsn(dsn) == shown


def test_redacted_never_contains_secret_values() -> None:
    from exporter.config import validate_settings

    settings = validate_settings(
        {
            "database": {"url": "postgresql://u:topsecret@h/d"},
            "venues": {"kalshi": {"api_key_id": "kid", "private_key": "PEM"}},
        }
    )
    text = yaml.safe_dump(redacted(settings))
    assert "topsecret" not in text
    assert "kid" not in text
    assert "PEM" not in text


def test_every_secret_written_in_yaml_is_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "movers.yaml"
    path.write_text(
        "database:\n  password: hunter2\n  grafana_password: hunter3\n"
        "alerts:\n  webhook_token: t0k3n\n"
    )
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    assert {p for p, _ in info.value.problems} == {
        "database.password", "database.grafana_password", "alerts.webhook_token",
    }  # fmt: skip
    assert "hunter" not in str(info.value)


def test_an_environment_typo_is_blamed_on_the_variable_not_the_file(tmp_path: Path) -> None:
    path = tmp_path / "movers.yaml"
    path.write_text("storage:\n  heartbeat: 5m\n")
    env = {"MOVERS__DATABSE__URL": "postgresql://x@h/d", "MOVERS__DATABASE__POOL_SIZE": "many"}
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ=env)
    problems = dict(info.value.problems)
    assert set(problems) == {"MOVERS__DATABSE__URL", "MOVERS__DATABASE__POOL_SIZE"}
    assert "did you mean 'database'" in problems["MOVERS__DATABSE__URL"]
    assert "database.pool_size" in problems["MOVERS__DATABASE__POOL_SIZE"]
    path.write_text("storage:\n  heartbeat: -5m\n")  # the file's own mistakes stay the file's
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    assert [p for p, _ in info.value.problems] == ["storage.heartbeat"]


def test_metrics_listen_on_loopback_unless_asked() -> None:
    """Outside the image, /metrics and the unauthenticated-by-default webhook are not exposed
    on every interface; the image opens them to its own network."""
    assert load_settings(None, environ={}).metrics.host == "127.0.0.1"
    dockerfile = (Path(__file__).resolve().parents[2] / "Dockerfile").read_text()
    assert "MOVERS__METRICS__HOST=0.0.0.0" in dockerfile


def test_the_environment_overlay_reads_scalars_lists_and_null_as_documented() -> None:
    settings = load_settings(
        None,
        environ={
            "MOVERS__DATABASE__TIMESCALE": "off",  # the README's example: a choice, not a bool
            "MOVERS__MOVERS__WINDOWS": "[5m, 2h]",  # a list, written as in YAML
            "movers__storage__heartbeat": "5m",  # names are not case-sensitive
            "MOVERS__VENUES__KALSHI__ENABLED": "false",
            "MOVERS__MOVERS__FILTERS__POLYMARKET__MAX_SPREAD": "null",
            "MOVERS_DATABASE_URL": "postgresql://a@b/c",  # a named variable wins over the file
        },
    )
    assert settings.database.timescale == "off"
    assert settings.movers.windows == (timedelta(minutes=5), timedelta(hours=2))
    assert settings.storage.heartbeat == timedelta(minutes=5)
    assert settings.venues.kalshi.enabled is False
    assert settings.movers.filters.polymarket.max_spread is None
    assert settings.database.url.get_secret_value() == "postgresql://a@b/c"
