"""`ecom ui airflow`'s pieces: the standalone service on the chosen port, and a private password."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines import orchestration
from pipelines.config import Settings


def test_standalone_serves_on_the_given_port_and_tells_tasks_where(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(orchestration, "migrate", lambda s: (s.home / "airflow").mkdir(parents=True))
    api, *others = orchestration.standalone(settings, 18080)
    assert api.name == "airflow" and api.args[1:] == ["api-server"] and api.port == 18080
    assert api.env["AIRFLOW__API__HOST"] == "127.0.0.1"
    assert api.env["AIRFLOW__API__PORT"] == "18080"
    # Task processes must reach this API server, not the default localhost:8080.
    assert api.env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:18080/execution/"
    # No log server: it would listen on every interface.
    assert {tuple(s.args[1:]) for s in others} == {
        ("scheduler", "--skip-serve-logs"),
        ("dag-processor",),
        ("triggerer", "--skip-serve-logs"),
    }
    assert all(s.port is None and s.env == api.env for s in others)
    assert {s.umask for s in (api, *others)} == {0o077}
    assert (settings.home / "airflow").stat().st_mode & 0o777 == 0o700


def test_the_generated_password_is_read_and_made_private(settings: Settings) -> None:
    path = settings.home / "airflow" / orchestration.PASSWORDS_FILE
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"admin": "s3cret"}) + "\n")
    path.chmod(0o644)  # as Airflow writes it
    assert orchestration.admin_password(settings, timeout_s=0) == "s3cret"
    assert path.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("content", [None, "", '{"adm'])
def test_no_password_yet_is_none_after_the_timeout(settings: Settings, content: str | None) -> None:
    path: Path = settings.home / "airflow" / orchestration.PASSWORDS_FILE
    path.parent.mkdir(parents=True)
    if content is not None:
        path.write_text(content)  # not written yet, or being written
    assert orchestration.admin_password(settings, timeout_s=0) is None
