"""Train -> register -> promote -> score -> plan, against a small warehouse built here.

The warehouse holds contract-shaped published marts (``mart_demand_features``, ``dim_products``,
``dim_dates``, ``fct_inventory_daily``, ``fct_prices_daily``, ``mart_demand_plans``),
``raw.purchase_orders`` and ``raw.inventory_snapshots``, written directly (not by the generator or
dbt), with weekly seasonality and promotions the LSTM can learn.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import numpy as np
import polars as pl
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

START = dt.date(2024, 1, 1)
DAYS = 150
RUN_DATE = START + dt.timedelta(days=DAYS - 1)
N_SKUS = 10
WEEKLY = np.array([0.6, 0.7, 0.8, 0.9, 1.1, 1.7, 1.9])


def _tables(seed: int = 0) -> dict[str, pl.DataFrame]:
    rng = np.random.default_rng(seed)
    all_dates = [START + dt.timedelta(days=i) for i in range(DAYS + 60)]
    dow = np.array([d.weekday() for d in all_dates])
    features, prices, inventory, orders = [], [], [], []
    for sku in range(1, N_SKUS + 1):
        base, list_price = rng.uniform(4, 15), round(float(rng.uniform(20, 200)), 2)
        promo = rng.random(len(all_dates)) < 0.1
        discount = np.where(promo, 20.0, 0.0)
        effective = list_price * (1 - discount / 100)
        units = rng.poisson(base * WEEKLY[dow] * np.where(promo, 2.5, 1.0)).astype(float)
        stockout = rng.random(len(all_dates)) < 0.03
        on_hand = rng.integers(0, 60, len(all_dates))
        prices.append(
            pl.DataFrame(
                {
                    "date": all_dates,
                    "sku_id": sku,
                    "shelf_price": list_price,
                    "effective_price": effective,
                    "is_promo": promo,
                    "discount_pct": discount,
                    "promo_day_number": pl.Series([1 if p else None for p in promo], dtype=pl.Int64),
                    "competitor_gap_pct": 0.0,
                }
            )
        )
        past = slice(0, DAYS)
        features.append(
            pl.DataFrame(
                {
                    "date": all_dates[past],
                    "sku_id": sku,
                    "category_l1": "toys" if sku % 2 else "home",
                    "list_price": list_price,
                    "days_since_launch": np.arange(DAYS) + 300,
                    "units": units[past],
                    "stockout": stockout[past],
                    "shelf_price": list_price,
                    "effective_price": effective[past],
                    "is_promo": promo[past],
                    "discount_pct": discount[past],
                    "competitor_gap_pct": 0.0,
                    "day_of_week": dow[past] + 1,
                    "is_public_holiday": False,
                    "on_hand_units": on_hand[past],
                    "on_order_units": 0,
                }
            )
        )
        inventory.append(
            pl.DataFrame(
                {
                    "date": all_dates[past],
                    "sku_id": sku,
                    "warehouse_id": 1,
                    "on_hand_units": on_hand[past],
                    "on_order_units": 0,
                }
            )
        )
        for k in range(5):
            ordered = START + dt.timedelta(days=10 * k + sku)
            orders.append(
                {
                    "po_id": sku * 100 + k,
                    "sku_id": sku,
                    "order_date": ordered,
                    "received_date": ordered + dt.timedelta(days=int(rng.integers(3, 9))),
                    "_batch_date": RUN_DATE,
                }
            )
    dates = pl.DataFrame({"date": all_dates}).with_columns(
        pl.lit(None, pl.String).alias("shopping_event"),
        pl.lit(None, pl.String).alias("event_phase"),
        pl.lit(None, pl.Int64).alias("days_to_event_peak"),
        pl.lit(False).alias("is_public_holiday"),
        pl.lit(100, pl.Int64).alias("days_to_spring_festival"),
        pl.lit(100, pl.Int64).alias("days_from_spring_festival"),
    )
    products = pl.DataFrame(
        {"sku_id": list(range(1, N_SKUS + 1)), "unit_cost": 10.0, "mean_lead_time_days": 6.0}
    )
    return {
        "marts.mart_demand_features": pl.concat(features),
        "marts.fct_prices_daily": pl.concat(prices),
        # the known future: prices and promotions planned for the days after the run date
        "marts.mart_demand_plans": pl.concat(prices)
        .filter(pl.col("date") > RUN_DATE)
        .drop("competitor_gap_pct")
        .with_columns(pl.when(pl.col("is_promo")).then(pl.lit("discount")).alias("promo_type")),
        "marts.fct_inventory_daily": pl.concat(inventory),
        "marts.dim_dates": dates,
        "marts.dim_products": products,
        "raw.purchase_orders": pl.DataFrame(orders),
        # what switches the inventory capability (and so the replenishment plan) on
        "raw.inventory_snapshots": pl.concat(inventory).select(
            "date", "sku_id", "warehouse_id", "on_hand_units"
        ),
    }


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory):
    """Settings over a fresh warehouse, and the result of one training run on it."""
    from pipelines.config import load_settings
    from pipelines.forecast.family import FORECAST
    from pipelines.ml.lifecycle import train_family

    home = tmp_path_factory.mktemp("forecast_pipeline")
    settings = load_settings({"ECOM_HOME": str(home)})
    settings = settings.model_copy(
        update={
            "forecast": settings.forecast.model_copy(
                update={
                    "lookback": 14,
                    "horizon": 7,
                    "holdout_days": 7,
                    "backtest_folds": 1,
                    "epochs": 1,
                    "batch_size": 64,
                    "max_train_windows": 1000,
                    "learning_rate": 5e-3,
                }
            )
        }
    )
    settings.data_dir.mkdir(parents=True)
    con = duckdb.connect(str(settings.warehouse_path))
    for name, frame in _tables().items():
        schema = name.split(".")[0]
        con.execute(f"create schema if not exists {schema}")
        con.register("_frame", frame.to_arrow())
        con.execute(f"create table {name} as select * from _frame")
        con.unregister("_frame")
    con.close()
    return settings, train_family(FORECAST, settings, RUN_DATE)


def test_training_registers_and_promotes_the_better_candidate(trained) -> None:
    from pipelines.ml.registry import CHAMPION, tracking

    settings, out = trained
    assert out.model_name == "demand_forecaster" and out.model_version == 1
    wape = {
        m: out.evaluation.metric(m, "wape") for m in ("lstm", "xgboost", "seasonal_naive", "moving_average")
    }
    assert out.model_kind == min(("lstm", "xgboost"), key=wape.__getitem__)
    assert wape[out.model_kind] < min(wape["seasonal_naive"], wape["moving_average"]) == out.decision.baseline
    assert out.promoted, out.reason
    client = tracking(settings)
    champion = client.get_model_version_by_alias("demand_forecaster", CHAMPION)
    assert int(champion.version) == 1 and champion.tags["ecom.model_kind"] == out.model_kind
    assert {row["policy"] for row in out.evaluation.tables["replenishment_simulation"].to_dicts()} >= {
        "lstm_quantile",
        "traditional",
    }


def test_the_run_logs_nested_folds_with_the_same_metrics_tables_and_figures(trained) -> None:
    from pipelines.ml.registry import experiment, tracking

    settings, out = trained
    client = tracking(settings)
    parent = client.get_run(out.run_id)
    for name in (
        "wape",
        "mase",
        "bias",
        "promo_accuracy",
        "pinball_p50",
        "wape_seasonal_naive",
        "wape_xgboost",
    ):
        assert name in parent.data.metrics, name
    assert parent.data.params["forecast.horizon"] == "7"
    children = client.search_runs(
        [experiment(settings, "forecast")], f"tags.mlflow.parentRunId = '{out.run_id}'"
    )
    kinds = {c.data.tags["model_kind"] for c in children}
    assert kinds == {"lstm", "seasonal_naive", "moving_average", "xgboost"}
    folds = [c for c in children if c.data.tags.get("fold")]
    assert len({frozenset(k for k in c.data.metrics if k in ("wape", "mase", "bias")) for c in folds}) == 1
    artifacts = {a.path for a in client.list_artifacts(out.run_id, "tables")}
    artifacts |= {a.path for a in client.list_artifacts(out.run_id, "figures")}
    for path in (
        "tables/comparison.csv",
        "tables/per_category.csv",
        "figures/forecast_vs_actual.png",
        "figures/error_by_category.png",
        "figures/quantile_calibration.png",
    ):
        assert path in artifacts, path


def test_the_champion_loads_as_pyfunc_and_forecasts_from_a_features_frame(trained) -> None:
    import mlflow

    from pipelines.ml.registry import tracking

    settings, _ = trained
    tracking(settings)
    con = duckdb.connect(str(settings.warehouse_path))
    frame = con.sql("select * from marts.mart_demand_features where date > date '2024-04-30'").pl()
    con.close()
    model = mlflow.pyfunc.load_model("models:/demand_forecaster@champion")
    out = model.predict(frame.to_pandas(), params={"origin": "2024-05-20", "horizon": 5})
    assert set(out.columns) >= {"sku_id", "target_date", "p10", "p50", "p90", "mean"}
    assert len(out) == N_SKUS * 5
    assert (out["p10"] <= out["p50"]).all() and (out["p50"] <= out["p90"]).all()


def test_scoring_writes_every_active_sku_and_is_idempotent(trained, caplog) -> None:
    from pipelines.forecast.family import FORECAST
    from pipelines.ml.scoring import score_family

    settings, _ = trained
    with caplog.at_level("INFO", logger="pipelines.forecast.score"):
        first = score_family(FORECAST, settings, RUN_DATE)
    assert f"from marts.mart_demand_plans for {N_SKUS} of {N_SKUS} SKUs" in caplog.text
    assert f"planned prices and promotions from marts.mart_demand_plans: {N_SKUS} SKUs" in first.summary()
    assert first.rows == N_SKUS * 7 and first.entities == N_SKUS and first.model_version == "1"
    con = duckdb.connect(str(settings.warehouse_path))
    cols = "run_date, sku_id, target_date, p10, p50, p90, mean, model_version"
    before = con.sql(f"select {cols} from forecasts.demand_forecast order by sku_id, target_date").fetchall()
    con.close()
    score_family(FORECAST, settings, RUN_DATE)
    con = duckdb.connect(str(settings.warehouse_path))
    after = con.sql(f"select {cols} from forecasts.demand_forecast order by sku_id, target_date").fetchall()
    dates = con.sql("select min(target_date), max(target_date) from forecasts.demand_forecast").fetchall()[0]
    con.close()
    assert after == before and len(after) == N_SKUS * 7
    assert dates == (RUN_DATE + dt.timedelta(days=1), RUN_DATE + dt.timedelta(days=7))


def test_replenishment_plan_follows_the_forecast_and_is_idempotent(trained) -> None:
    from pipelines.forecast.family import FORECAST
    from pipelines.ml.scoring import score_family
    from pipelines.replenishment import plan_replenishment

    settings, _ = trained
    score_family(FORECAST, settings, RUN_DATE)
    first = plan_replenishment(settings, RUN_DATE)
    second = plan_replenishment(settings, RUN_DATE)
    assert first.skus == second.skus == N_SKUS and first.units_ordered == second.units_ordered
    con = duckdb.connect(str(settings.warehouse_path))
    plan = con.sql("select * from forecasts.replenishment_plan").pl()
    con.close()
    assert plan.height == N_SKUS
    assert (plan["reorder_point"] >= plan["expected_demand"]).all()
    assert (plan["order_up_to"] >= plan["reorder_point"]).all()
    ordered = plan.filter(pl.col("order_quantity") > 0)
    assert (ordered["inventory_position"] < ordered["reorder_point"]).all()
    assert plan["lead_time_days"].is_between(3, 8).all()


def test_scoring_and_planning_explain_what_is_missing(settings) -> None:
    from pipelines.forecast.family import FORECAST
    from pipelines.ml.registry import NoChampionError
    from pipelines.ml.scoring import ScoringError, score_family
    from pipelines.replenishment import ReplenishmentError, plan_replenishment

    with pytest.raises(ScoringError, match="no warehouse at"):
        score_family(FORECAST, settings, RUN_DATE)
    settings.data_dir.mkdir(parents=True)
    duckdb.connect(str(settings.warehouse_path)).close()
    with pytest.raises(NoChampionError, match="has no @champion version"):
        score_family(FORECAST, settings, RUN_DATE)
    with pytest.raises(ReplenishmentError, match="run the scoring step"):
        plan_replenishment(settings, RUN_DATE)


def test_a_short_weekly_history_is_a_one_line_error_naming_the_settings(tmp_path, monkeypatch) -> None:
    """`ecom train forecast` on 12 Thursday weeks: the backtest rule and what to lower, no traceback."""
    from typer.testing import CliRunner

    from pipelines.cli import app

    monkeypatch.setenv("ECOM_HOME", str(tmp_path))
    monkeypatch.setenv("ECOM_LAND__GRAIN", "weekly")
    monkeypatch.setenv("ECOM_LAND__WEEK_START", "thursday")
    monkeypatch.setenv("ECOM_FORECAST__GRAIN", "weekly")
    (tmp_path / "data").mkdir()
    weeks = [dt.date(2024, 1, 4) + dt.timedelta(weeks=k) for k in range(12)]
    rows = pl.DataFrame({"date": weeks * 2, "sku_id": [1] * 12 + [2] * 12, "units": [5.0] * 24})
    con = duckdb.connect(str(tmp_path / "data" / "warehouse.duckdb"))
    con.execute("create schema marts")
    con.register("_frame", rows.to_arrow())
    con.execute("create table marts.mart_demand_features as select * from _frame")
    con.close()
    result = CliRunner().invoke(app, ["train", "forecast"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and result.exception.__class__.__name__ == "SystemExit"
    assert "marts.mart_demand_features holds 12 weekly periods of history (2024-01-04 .. 2024-03-21)" in (
        " ".join(result.output.split())
    )
    assert "Lower forecast.backtest_folds, forecast.holdout_days or forecast.horizon" in " ".join(
        result.output.split()
    )
