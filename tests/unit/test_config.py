"""Configuration: params.yaml, environment overrides, one root for every written path."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.config import REPO_ROOT, ConfigError, load_settings


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


def test_warehouse_connections_take_the_configured_cap(tmp_path: Path) -> None:
    from pipelines.warehouse import connect_warehouse

    def cap(*limit: str) -> str:
        with connect_warehouse(tmp_path / "w.duckdb", *limit) as con:
            return con.execute("select current_setting('memory_limit')").fetchall()[0][0]

    assert cap() == "7.4 GiB"  # the default, 8GB, as in params.yaml and the dbt profile
    s = load_settings({"ECOM_HOME": str(tmp_path), "ECOM_WAREHOUSE__MEMORY_LIMIT": "2GiB"})
    assert cap(s.warehouse.memory_limit) == "2.0 GiB"


def test_dbt_gets_the_warehouse_cap_under_the_name_its_profile_reads(tmp_path: Path) -> None:
    from pipelines.transform import MEMORY_LIMIT_ENV, dbt_env

    s = load_settings({"ECOM_HOME": str(tmp_path), "ECOM_WAREHOUSE__MEMORY_LIMIT": "3GB"})
    assert dbt_env(s)[MEMORY_LIMIT_ENV] == "3GB"
    assert "ECOM_DUCKDB_MEMORY_LIMIT" in (REPO_ROOT / "dbt" / "profiles.yml").read_text()


def test_the_old_memory_cap_variable_still_works_and_the_new_one_wins(tmp_path: Path) -> None:
    home = {"ECOM_HOME": str(tmp_path)}
    assert load_settings({**home, "ECOM_DUCKDB_MEMORY_LIMIT": "4GB"}).warehouse.memory_limit == "4GB"
    both = {**home, "ECOM_DUCKDB_MEMORY_LIMIT": "4GB", "ECOM_WAREHOUSE__MEMORY_LIMIT": "5GB"}
    assert load_settings(both).warehouse.memory_limit == "5GB"
    with pytest.raises(
        ConfigError, match=r"warehouse\.memory_limit \(from ECOM_DUCKDB_MEMORY_LIMIT='lots'\)"
    ):
        load_settings({**home, "ECOM_DUCKDB_MEMORY_LIMIT": "lots"})


@pytest.mark.parametrize("value", ["[32, 16]", "32,16", " 32 , 16 "])
def test_a_tuple_is_overridden_as_json_or_comma_separated(tmp_path: Path, value: str) -> None:
    s = load_settings({"ECOM_HOME": str(tmp_path), "ECOM_FORECAST__HIDDEN_SIZES": value})
    assert s.forecast.hidden_sizes == (32, 16)


def test_lists_of_floats_and_strings_and_null_for_an_optional_value(tmp_path: Path) -> None:
    s = load_settings(
        {
            "ECOM_HOME": str(tmp_path),
            "ECOM_FORECAST__QUANTILES": "0.05,0.5,0.95",
            "ECOM_QUALITY__CHANNELS": '["app", "web", "store"]',
            "ECOM_FORECAST__BACKTEST_EPOCHS": "null",
            "ECOM_DBT__EXECUTABLE": "/opt/dbt/bin/dbt",
        }
    )
    assert s.forecast.quantiles == (0.05, 0.5, 0.95)
    assert s.quality.channels == ("app", "web", "store")
    assert s.forecast.backtest_epochs is None
    assert s.dbt.executable == "/opt/dbt/bin/dbt"


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "ECOM_FORECAST__HIDDEN_SIZES",
            "[32, 16",
            r"ECOM_FORECAST__HIDDEN_SIZES='\[32, 16' is not a JSON list",
        ),
        ("ECOM_FORECAST__HIDDEN_SIZES", '{"a": 1}', "from ECOM_FORECAST__HIDDEN_SIZES='{\"a\": 1}'"),
        (
            "ECOM_FORECAST__HIDDEN_SIZES",
            "32",
            r"forecast\.hidden_sizes.* \(from ECOM_FORECAST__HIDDEN_SIZES='32'\)",
        ),
        ("ECOM_FORECAST__HIDDEN_SIZES", "a,b", r"from ECOM_FORECAST__HIDDEN_SIZES='a,b'"),
        ("ECOM_QUALITY__CHANNELS", "[]", r"quality\.channels \(from ECOM_QUALITY__CHANNELS='\[\]'\)"),
        ("ECOM_WAREHOUSE__MEMORY_LIMIT", "80%", "expected a size such as 8GB"),
        (
            "ECOM_AIRFLOW__TASK_RETRIES",
            "-1",
            r"airflow\.task_retries \(from ECOM_AIRFLOW__TASK_RETRIES='-1'\)",
        ),
    ],
)
def test_an_invalid_override_names_its_variable(
    tmp_path: Path, variable: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings({"ECOM_HOME": str(tmp_path), variable: value})


def test_an_invalid_value_in_the_file_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("quality:\n  min_grid_coverage: 1.5\n")
    with pytest.raises(ConfigError, match=rf"quality\.min_grid_coverage \(from {tmp_path}/params\.yaml\)"):
        load_settings({"ECOM_HOME": str(tmp_path)})


def test_every_section_and_key_of_the_settings_is_in_the_repo_params_file() -> None:
    """params.yaml documents every knob: a key added to the settings gets an entry there too."""
    import yaml

    from pipelines.config import Settings

    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    for section, info in Settings.model_fields.items():
        if section == "home":
            continue
        derived = {"week_start"} if section == "forecast" else set()  # copied from land.week_start
        assert set(params[section]) == set(info.annotation.model_fields) - derived, section


def test_the_repo_params_file_matches_the_defaults_in_code(tmp_path: Path) -> None:
    from pipelines.config import Settings

    assert load_settings({"ECOM_HOME": str(tmp_path)}) == Settings(home=tmp_path.resolve())


def test_weeks_start_on_the_land_setting_everywhere_and_weekly_sales_need_weekly_forecasts() -> None:
    settings = load_settings(
        {"ECOM_LAND__GRAIN": "weekly", "ECOM_LAND__WEEK_START": "thursday", "ECOM_FORECAST__GRAIN": "weekly"}
    )
    assert settings.land.week_start_index == settings.forecast.week_start == 3
    with pytest.raises(ConfigError, match=r"land\.grain is weekly but forecast\.grain is daily"):
        load_settings({"ECOM_LAND__GRAIN": "weekly"})
    with pytest.raises(ConfigError, match=r"set land\.week_start"):
        load_settings({"ECOM_FORECAST__WEEK_START": "3"})
    with pytest.raises(ConfigError, match=r"land\.currency"):
        load_settings({"ECOM_LAND__CURRENCY": "yuan"})
