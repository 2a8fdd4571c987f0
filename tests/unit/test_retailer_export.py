"""The retailer-shaped export: contract files of a weekly, one-channel store, with its truth apart."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from pathlib import Path

import polars as pl
import pytest

from pipelines.config import REPO_ROOT, load_settings
from pipelines.data.contract import TABLES
from pipelines.data.land import land_batch, last_sales_date
from pipelines.data.retailer import (
    CHANNEL,
    CURRENCY,
    EXPORT_TABLES,
    PLAN_WEEKS,
    SIZES,
    WEEK_START,
    RetailerExport,
    write_retailer_export,
)

THURSDAY = 3  # date.weekday()
EXAMPLE_PARAMS = REPO_ROOT / "examples" / "retailer" / "params.yaml"
SKU_CODE = re.compile(r"[A-Z0-9]+(-[A-Z0-9]+){2,3}")


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> RetailerExport:
    root = tmp_path_factory.mktemp("retailer")
    return write_retailer_export(root / "export", root / "truth", size="tiny", seed=7)


def _read(export: RetailerExport, table: str) -> pl.DataFrame:
    """A CSV of the export, typed as the contract says, with SKU codes kept as strings."""
    schema = {c.name: (pl.String() if c.name == "sku_id" else c.dtype) for c in TABLES[table].columns}
    return pl.read_csv(export.out_dir / f"{table}.csv", schema=schema)


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_the_export_holds_only_its_four_tables_with_the_contract_columns_filled(
    export: RetailerExport,
) -> None:
    assert sorted(p.name for p in export.out_dir.iterdir()) == sorted(f"{t}.csv" for t in EXPORT_TABLES)
    for name in EXPORT_TABLES:
        table = TABLES[name]
        header = (export.out_dir / f"{name}.csv").read_text().splitlines()[0]
        assert header.split(",") == table.column_names, name
        df = _read(export, name)
        assert df.height == export.rows[name] > 0, name
        assert df.select(table.key).is_duplicated().sum() == 0, name
        # The raw gates quarantine a null in any of these columns, so none is left empty.
        assert df.null_count().sum_horizontal().item() == 0, name


def test_sales_are_weekly_rows_dated_on_thursdays_in_one_channel(export: RetailerExport) -> None:
    sales = _read(export, "daily_sales")
    assert set(sales["date"].dt.weekday().unique()) == {THURSDAY + 1}  # polars: Monday is 1
    assert sales["date"].min() == export.first_week
    assert sales["date"].max() == export.last_week == export.batch_date
    assert (export.last_week - export.first_week).days == 7 * (SIZES["tiny"].n_weeks - 1)
    assert sales["channel"].unique().to_list() == [CHANNEL]
    assert not sales["stockout"].any()
    assert (
        sales.select(
            ((pl.col("units") * pl.col("price_paid")).round(2) - pl.col("revenue")).abs().max()
        ).item()
        < 1e-9
    )
    promotions = _read(export, "promotions")
    assert set(promotions["start_date"].dt.weekday().unique()) == {THURSDAY + 1}
    assert set(promotions["end_date"].dt.weekday().unique()) == {THURSDAY}  # the week ends Wednesday
    assert promotions.select((pl.col("discount_pct").is_between(1, 99)).all()).item()


def test_skus_are_string_codes_known_to_the_product_master(export: RetailerExport) -> None:
    products = _read(export, "products")
    assert all(SKU_CODE.fullmatch(code) for code in products["sku_id"]), products["sku_id"].head(5).to_list()
    assert (
        products["sku_id"]
        .str.contains(r"^(OJ|CER|SDR|SOUP|BEER|CHE|TUNA|COOK|CRK|FRE|FRJ|LND|PTW|TPA|ANA)-")
        .all()
    )
    for name in ("daily_sales", "own_prices", "promotions"):
        assert set(_read(export, name)["sku_id"]) <= set(products["sku_id"]), name
    assert products["warehouse_id"].unique().to_list() == [1]
    assert products.select((pl.col("unit_cost") < pl.col("list_price")).all()).item()


def test_some_series_miss_weeks_as_absent_rows_not_zeros(export: RetailerExport) -> None:
    sales = _read(export, "daily_sales")
    per_sku = sales.group_by("sku_id").agg(
        pl.len().alias("rows"),
        ((pl.col("date").max() - pl.col("date").min()).dt.total_days() // 7 + 1).alias("span"),
    )
    gappy = per_sku.filter(pl.col("rows") < pl.col("span"))
    assert 0 < gappy.height < per_sku.height
    truth = pl.read_parquet(export.truth_dir / "demand.parquet")
    absent = truth.filter((pl.col("period") == "history") & ~pl.col("exported"))
    assert absent.height == (per_sku["span"] - per_sku["rows"]).sum()
    # An absent week is not a zero-selling one: the truth sold something in most of them.
    assert absent.filter(pl.col("demand") > 0).height > absent.height / 2
    assert absent.join(sales, left_on=["week", "sku_id"], right_on=["date", "sku_id"]).height == 0


def test_late_launches_and_discontinued_skus_exist(export: RetailerExport) -> None:
    products = _read(export, "products")
    sales = _read(export, "daily_sales")
    span = sales.group_by("sku_id").agg(
        pl.col("date").min().alias("first"), pl.col("date").max().alias("last")
    )
    joined = products.join(span, on="sku_id")
    assert (joined["launch_date"] == joined["first"]).all()  # launch_date: the first week it sells
    late = joined.filter(pl.col("launch_date") >= export.first_week + dt.timedelta(weeks=8))
    gone = joined.filter(pl.col("last") <= export.last_week - dt.timedelta(weeks=8))
    assert late.height >= 2 and gone.height >= 2
    # A delisted SKU has no plans after its last week.
    for name, column in (("own_prices", "effective_date"), ("promotions", "start_date")):
        after = _read(export, name).join(gone.select("sku_id", "last"), on="sku_id")
        assert after.filter(pl.col(column) > pl.col("last")).height == 0, name


def test_plans_follow_the_last_sales_week_and_nothing_else_does(export: RetailerExport) -> None:
    prices = _read(export, "own_prices")
    promotions = _read(export, "promotions")
    planned_prices = prices.filter(pl.col("effective_date") > export.batch_date)
    planned_promotions = promotions.filter(pl.col("start_date") > export.batch_date)
    assert planned_prices.height > 0 and planned_promotions.height > 0
    assert export.plan_until == export.last_week + dt.timedelta(weeks=PLAN_WEEKS, days=6)
    assert prices["effective_date"].max() <= export.plan_until
    assert promotions["end_date"].max() <= export.plan_until
    # Every SKU's shelf price is known from its first sales week on.
    first_price = prices.group_by("sku_id").agg(pl.col("effective_date").min())
    launches = _read(export, "products").select("sku_id", "launch_date")
    assert (
        first_price.join(launches, on="sku_id")
        .filter(pl.col("effective_date") != pl.col("launch_date"))
        .height
        == 0
    )


def test_demand_has_structure_a_forecaster_can_use_beyond_seasonal_naive(export: RetailerExport) -> None:
    params = pl.read_parquet(export.truth_dir / "sku_params.parquet")
    assert params["elasticity"].is_between(-3.3, -1.2).all()
    truth = pl.read_parquet(export.truth_dir / "demand.parquet").filter(pl.col("period") == "history")
    # Promoted weeks sell more than the same SKU's other weeks.
    lift = (
        truth.group_by("sku_id", pl.col("discount_pct") > 0)
        .agg(pl.col("demand").mean())
        .pivot("discount_pct", index="sku_id", values="demand")
        .drop_nulls()
    )
    assert (lift["true"] > lift["false"]).mean() > 0.8
    # Over the last 8 weeks the true expected demand is far closer to the sales than the same
    # week a year before: the structure is there for a model to find.
    test = truth.filter(pl.col("week") > pl.lit(export.last_week) - pl.duration(weeks=8))
    year_ago = truth.select("sku_id", pl.col("week") + pl.duration(weeks=52), pl.col("demand").alias("naive"))
    scored = test.join(year_ago, on=["sku_id", "week"])
    wape = {
        c: (scored[c] - scored["demand"]).abs().sum() / scored["demand"].sum()
        for c in ("expected_demand", "naive")
    }
    assert scored.height > 100
    assert wape["expected_demand"] < 0.75 * wape["naive"], wape


def test_the_truth_stays_out_of_the_export(export: RetailerExport, tmp_path: Path) -> None:
    assert sorted(p.name for p in export.truth_dir.iterdir()) == [
        "demand.parquet",
        "effects.json",
        "sku_params.parquet",
    ]
    assert export.truth_dir.resolve() not in [export.out_dir.resolve(), *export.out_dir.resolve().parents]
    for name in EXPORT_TABLES:
        header = (export.out_dir / f"{name}.csv").read_text().splitlines()[0]
        assert not {"expected_demand", "elasticity", "promo_lift", "demand"} & set(header.split(",")), name
    with pytest.raises(ValueError, match="must be kept apart"):
        write_retailer_export(tmp_path / "export", tmp_path / "export" / "truth", size="tiny")


def test_same_seed_gives_byte_identical_files_and_another_seed_does_not(tmp_path: Path) -> None:
    def run(seed: int, name: str) -> tuple[dict[str, str], dict[str, str]]:
        written = write_retailer_export(
            tmp_path / name / "export", tmp_path / name / "truth", size="tiny", seed=seed
        )
        return _digests(written.out_dir), _digests(written.truth_dir)

    first, again, other = run(3, "a"), run(3, "b"), run(4, "c")
    assert first == again
    assert first[0]["daily_sales.csv"] != other[0]["daily_sales.csv"]


def test_rewriting_replaces_the_folders_without_leftovers(tmp_path: Path) -> None:
    out, truth = tmp_path / "export", tmp_path / "truth"
    out.mkdir()
    (out / "weather.csv").write_text("stale")
    write_retailer_export(out, truth, size="tiny")
    assert not (out / "weather.csv").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_the_default_size_is_a_few_hundred_skus_over_more_than_two_years_in_seconds(tmp_path: Path) -> None:
    written = write_retailer_export(tmp_path / "export", tmp_path / "truth")
    assert written.size == "small"
    assert 150 <= written.rows["products"] <= 300
    assert (written.last_week - written.first_week).days >= 2.5 * 365
    assert written.seconds < 10


def test_bad_arguments_are_refused_with_what_to_change(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown retailer export size 'huge'; choose one of tiny, small"):
        write_retailer_export(tmp_path / "e", tmp_path / "t", size="huge")
    with pytest.raises(
        ValueError,
        match=r"start 2024-01-01 is a Monday: retailer weeks start on Thursday \(e.g. 2024-01-04\)",
    ):
        write_retailer_export(tmp_path / "e", tmp_path / "t", start=dt.date(2024, 1, 1))
    assert not (tmp_path / "e").exists()


def test_the_example_params_describe_the_export_and_land_it(export: RetailerExport, tmp_path: Path) -> None:
    settings = load_settings({"ECOM_HOME": str(tmp_path), "ECOM_PARAMS": str(EXAMPLE_PARAMS)})
    assert settings.land.grain == "weekly" and settings.forecast.grain == "weekly"
    assert settings.land.week_start == WEEK_START and settings.land.currency == CURRENCY
    assert settings.quality.channels is None
    assert settings.forecast.horizon <= PLAN_WEEKS  # scoring finds a plan for every horizon week
    assert last_sales_date(export.out_dir) == export.batch_date  # what `ecom land --date-from-data` finds
    landed = land_batch(str(export.out_dir), settings, export.batch_date)
    assert landed.tables == export.rows
