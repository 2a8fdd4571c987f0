"""Configuration: params.yaml, environment overrides, one root for every written path."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.config import ConfigError, load_settings


def test_defaults_come_from_the_repo_params_and_paths_from_ecom_home(tmp_path: Path) -> None:
    s = load_settings({"ECOM_HOME": str(tmp_path)})
    assert s.generate.scale == "small" and s.rollout.stage == "core"
    for path in (s.raw_dir, s.quarantine_dir, s.warehouse_path, s.mlruns_dir, s.reports_dir, s.truth_dir):
        assert path.is_relative_to(tmp_path)


def test_two_homes_never_share_a_path(tmp_path: Path) -> None:
    a = load_settings({"ECOM_HOME": str(tmp_path / "a")})
    b = load_settings({"ECOM_HOME": str(tmp_path / "b")})
    names = ("raw_dir", "quarantine_dir", "warehouse_path", "mlruns_dir", "reports_dir", "generated_dir")
    assert not {getattr(a, n) for n in names} & {getattr(b, n) for n in names}


def test_environment_overrides_a_single_value(tmp_path: Path) -> None:
    s = load_settings(
        {"ECOM_HOME": str(tmp_path), "ECOM_GENERATE__SEED": "7", "ECOM_GENERATE__SCALE": "tiny"}
    )
    assert (s.generate.seed, s.generate.scale) == (7, "tiny")
    assert s.generate.start_date.isoformat() == "2024-01-01"  # untouched values keep the file's


def test_a_params_file_in_ecom_home_wins_over_the_repo_one(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("generate:\n  scale: medium\n")
    assert load_settings({"ECOM_HOME": str(tmp_path)}).generate.scale == "medium"


def test_relative_paths_resolve_under_home(tmp_path: Path) -> None:
    s = load_settings({"ECOM_HOME": str(tmp_path)})
    assert s.resolve("data/x") == tmp_path / "data" / "x"
    assert s.resolve("/abs/x") == Path("/abs/x")


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"ECOM_GENERATE__SCALE": "huge"}, "scale"),
        ({"ECOM_GENERATE__SEED": "seven"}, "seed"),
        ({"ECOM_GENERATE__SEEDS": "1"}, "seeds"),
        ({"ECOM_NOPE__X": "1"}, "unknown configuration section"),
        ({"ECOM_PARAMS": "/does/not/exist.yaml"}, "not a file"),
    ],
)
def test_bad_configuration_is_named(tmp_path: Path, environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings({"ECOM_HOME": str(tmp_path), **environ})


def test_unknown_section_in_the_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("genrate:\n  scale: tiny\n")
    with pytest.raises(ConfigError, match="genrate"):
        load_settings({"ECOM_HOME": str(tmp_path)})


def test_each_rollout_stage_includes_the_ones_before_it(tmp_path: Path) -> None:
    def enabled(stage: str) -> list[str]:
        rollout = load_settings({"ECOM_HOME": str(tmp_path), "ECOM_ROLLOUT__STAGE": stage}).rollout
        return [s for s in ("foundation", "core", "innovation") if rollout.enabled(s)]

    assert enabled("foundation") == ["foundation"]
    assert enabled("core") == ["foundation", "core"]
    assert enabled("innovation") == ["foundation", "core", "innovation"]


def test_backtest_budget_defaults_to_the_final_fits_and_can_be_cheaper(tmp_path: Path) -> None:
    forecast = load_settings({"ECOM_HOME": str(tmp_path)}).forecast
    same = forecast.for_backtest()
    assert (same.epochs, same.max_train_windows) == (forecast.epochs, forecast.max_train_windows)
    cheaper = load_settings(
        {
            "ECOM_HOME": str(tmp_path),
            "ECOM_FORECAST__BACKTEST_EPOCHS": "1",
            "ECOM_FORECAST__BACKTEST_MAX_TRAIN_WINDOWS": "5000",
        }
    ).forecast
    assert (cheaper.for_backtest().epochs, cheaper.for_backtest().max_train_windows) == (1, 5000)
    assert (cheaper.epochs, cheaper.max_train_windows) == (forecast.epochs, forecast.max_train_windows)


def test_warehouse_connections_are_capped_like_dbt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pipelines.warehouse import connect_warehouse

    def cap() -> str:
        with connect_warehouse(tmp_path / "w.duckdb") as con:
            return con.execute("select current_setting('memory_limit')").fetchall()[0][0]

    monkeypatch.delenv("ECOM_DUCKDB_MEMORY_LIMIT", raising=False)
    assert cap() == "7.4 GiB"  # the profile's default, 8GB
    monkeypatch.setenv("ECOM_DUCKDB_MEMORY_LIMIT", "2GiB")
    assert cap() == "2.0 GiB"
