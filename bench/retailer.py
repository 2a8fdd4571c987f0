"""Benchmark the bring-your-own-data path on the retailer-shaped export, against its known truth.

In a fresh ECOM_HOME with ``ECOM_PARAMS=examples/retailer/params.yaml`` (for ``--size tiny`` shrunk
by the end-to-end test's overrides, ``TINY_OVERRIDES``), each step runs as the `ecom` command a user
types (docs/bring-your-own-data.md): ``generate --profile retailer``, ``land --date-from-data``,
``foundation --no-land``, ``train forecast`` and ``score forecast`` for the batch date D.

It reports the wall time of every step, the backtest metrics of every model the training run
compared (its metrics file), and the scored forecast (``forecasts.demand_forecast`` for D) against
the generator's truth (``data/retailer/truth/demand.parquet``: the drawn demand as actuals, and the
expected demand) over the horizon, scored twice: with the retailer's planned prices and promotions
(``marts.mart_demand_plans``) and without them. The second scoring runs in a copy of the warehouse
with that mart dropped, in a second ECOM_HOME whose MLflow is the first one's, so the same model
scores the same SKUs and weeks.

Results go, as JSON, to ``bench/out/retailer_<size>.json`` (git-ignored, as every bench output); a
small run also replaces the ``retailer`` section of docs/benchmarks-models.md, with a line on the latest
tiny run when there is one (a tiny run leaves the file alone).

    .venv/bin/python bench/retailer.py --size tiny    # the end-to-end test's budget, about 90 s
    .venv/bin/python bench/retailer.py --size small   # about 100 s
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchlib import MODELS_DOC, Timed, machine, markers, run_measured, write_section

REPO = Path(__file__).resolve().parents[1]
ECOM = str(Path(sys.executable).parent / "ecom")
PARAMS = REPO / "examples" / "retailer" / "params.yaml"
OUT = REPO / "bench" / "out"
START, END = markers("retailer")
MODELS = ("lstm", "xgboost", "moving_average", "seasonal_naive")
# Backtest columns shown when the training summary has them, in this order.
METRICS = (
    ("wape", "WAPE"),
    ("mae", "MAE"),
    ("mase", "MASE"),
    ("bias", "bias"),
    ("promo_accuracy", "promo accuracy"),
    ("pinball_p50", "pinball p50"),
    ("coverage_80", "coverage p10-p90"),
)


def _say(message: str) -> None:
    print(f"[retailer] {message}", file=sys.stderr, flush=True)


def _env(home: Path, size: str, **extra: str) -> dict[str, str]:
    from pipelines.config import TELEMETRY_OFF
    from pipelines.data.retailer import TINY_OVERRIDES

    return {
        **os.environ,
        **TELEMETRY_OFF,
        **(TINY_OVERRIDES if size == "tiny" else {}),
        "ECOM_HOME": str(home),
        "ECOM_PARAMS": str(PARAMS),
        "ECOM_AIRFLOW__TASK_RETRIES": "0",
        **extra,
    }


def _query(warehouse: Path, sql: str, params: list[Any] | None = None) -> Any:
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.sql(sql, params=params or None).pl()


def drop_plans(source: Path, target: Path) -> dict[str, Any]:
    """Copy the warehouse file to ``target`` and drop ``marts.mart_demand_plans`` there.

    Returns:
        What the copy still holds for the horizon: ``fct_prices_daily`` rows dated after the batch
        (scoring falls back on them without the plans).
    """
    import duckdb

    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)
    with duckdb.connect(str(target)) as con:
        kind = con.execute(
            "select table_type from information_schema.tables "
            "where table_schema = 'marts' and table_name = 'mart_demand_plans'"
        ).fetchone()
        if kind is None:
            raise SystemExit(f"no marts.mart_demand_plans in {source}: nothing to drop")
        con.execute(f"drop {'view' if kind[0] == 'VIEW' else 'table'} marts.mart_demand_plans")
    return {"dropped": kind[0]}


def _future_prices(warehouse: Path, day: dt.date) -> dict[str, int]:
    """Rows dated after ``day`` in the price and plan marts (what scoring can read for the horizon)."""
    out = {}
    for table in ("fct_prices_daily", "mart_demand_plans"):
        try:
            frame = _query(
                warehouse,
                f"select count(*) as n, count(*) filter (where is_promo) as promo from marts.{table} "
                "where date > ?",
                [day],
            )
            out[table] = int(frame["n"][0])
            out[f"{table}_promo"] = int(frame["promo"][0])
        except Exception:  # an absent table or column: nothing for the horizon
            out[table] = 0
    return out


def _wape(pred: Any, actual: Any) -> float | None:
    total = float(actual.sum())
    return float((pred - actual).abs().sum()) / total if total > 0 else None


def compare_to_truth(truth_path: Path, with_plans: Any, without_plans: Any) -> dict[str, Any]:
    """WAPE of both forecasts against the truth on the SKU-weeks all three share.

    Args:
        truth_path: The generator's ``demand.parquet`` (codes, weeks, expected and drawn demand).
        with_plans: ``forecasts.demand_forecast`` rows scored with the plans.
        without_plans: The same scored without them.

    Returns:
        Per case: WAPE of p50 and mean against drawn and expected demand, over all shared SKU-weeks
        and over the promoted ones; the truth's own expected-vs-drawn WAPE as the noise floor.
    """
    import polars as pl

    from pipelines.data.contract import surrogate_id

    truth = pl.read_parquet(truth_path)
    codes = truth["sku_id"].unique().to_list()
    ids = pl.DataFrame(
        {"sku_code": codes, "sku_id": [surrogate_id(c) for c in codes]},
        schema={"sku_code": pl.String, "sku_id": pl.Int64},
    )
    truth = (
        truth.rename({"sku_id": "sku_code"})
        .join(ids, on="sku_code")
        .select(
            "sku_id",
            "sku_code",
            pl.col("week").cast(pl.Date).alias("target_date"),
            "period",
            "expected_demand",
            "demand",
            "discount_pct",
        )
    )
    cols = ["sku_id", pl.col("target_date").cast(pl.Date), "p50", "mean"]
    a = with_plans.select(cols)
    b = without_plans.select(cols).rename({"p50": "p50_np", "mean": "mean_np"})
    joined = a.join(b, on=["sku_id", "target_date"]).join(truth, on=["sku_id", "target_date"])
    promo = joined.filter(pl.col("discount_pct") > 0)

    def scores(frame: Any, p50: str, mean: str) -> dict[str, Any]:
        return {
            "wape_p50_drawn": _wape(frame[p50], frame["demand"]),
            "wape_mean_drawn": _wape(frame[mean], frame["demand"]),
            "wape_p50_expected": _wape(frame[p50], frame["expected_demand"]),
            "wape_mean_expected": _wape(frame[mean], frame["expected_demand"]),
            "bias_mean_drawn": float((frame[mean] - frame["demand"]).sum() / frame["demand"].sum())
            if frame["demand"].sum() > 0
            else None,
        }

    return {
        "sku_weeks": joined.height,
        "skus": joined["sku_id"].n_unique(),
        "weeks": sorted(d.isoformat() for d in joined["target_date"].unique().to_list()),
        "periods": joined["period"].unique().sort().to_list(),
        "forecast_rows": {"with_plans": a.height, "without_plans": b.height},
        "unmatched_in_truth": a.join(truth, on=["sku_id", "target_date"], how="anti").height,
        "promo_sku_weeks": promo.height,
        "with_plans": {**scores(joined, "p50", "mean"), "promo": scores(promo, "p50", "mean")},
        "without_plans": {**scores(joined, "p50_np", "mean_np"), "promo": scores(promo, "p50_np", "mean_np")},
        "noise_floor": {
            "wape_expected_drawn": _wape(joined["expected_demand"], joined["demand"]),
            "promo_wape_expected_drawn": _wape(promo["expected_demand"], promo["demand"]),
        },
        "plans_differ_sku_weeks": joined.filter((pl.col("p50") - pl.col("p50_np")).abs() > 1e-9).height,
    }


def bench(size: str, seed: int, root: Path) -> dict[str, Any]:
    home, bare = root / "plans", root / "no-plans"
    for path in (home, bare):
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
    env = _env(home, size)
    steps: dict[str, Timed] = {}

    def step(name: str, *args: str, environ: dict[str, str] = env) -> Timed:
        _say(f"{name}: ecom {' '.join(args)} ...")
        steps[name] = run_measured([ECOM, *args], environ)
        _say(f"{name}: {steps[name].seconds:.1f} s")
        return steps[name]

    step("generate", "generate", "--profile", "retailer", "--scale", size, "--seed", str(seed))
    landed = step("land", "land", "--date-from-data")
    found = re.search(r"dt=(\d{4}-\d{2}-\d{2})", landed.output)
    if not found:
        raise SystemExit(f"ecom land printed no batch date:\n{landed.output[-2000:]}")
    day = dt.date.fromisoformat(found.group(1))
    step("foundation", "foundation", "--no-land", "--date", day.isoformat())
    step("train", "train", "forecast", "--date", day.isoformat(), "--metrics-out", "train.json")
    summary = json.loads((home / "train.json").read_text())
    step("score (plans)", "score", "forecast", "--date", day.isoformat(), "--summary-out", "score.json")

    warehouse = home / "data" / "warehouse.duckdb"
    dropped = drop_plans(warehouse, bare / "data" / "warehouse.duckdb")
    bare_env = _env(bare, size, ECOM_MLFLOW__TRACKING_URI=f"sqlite:///{home / 'mlflow.db'}")
    step(
        "score (no plans)",
        "score",
        "forecast",
        "--date",
        day.isoformat(),
        "--summary-out",
        "score.json",
        environ=bare_env,
    )

    sql = "select * from forecasts.demand_forecast where run_date = ?"
    with_plans = _query(warehouse, sql, [day])
    without_plans = _query(bare / "data" / "warehouse.duckdb", sql, [day])
    truth = compare_to_truth(
        home / "data" / "retailer" / "truth" / "demand.parquet", with_plans, without_plans
    )
    versions = sorted(
        set(with_plans["model_version"].to_list()) | set(without_plans["model_version"].to_list())
    )
    scored_by = sorted(set(with_plans["model_name"].to_list()) | set(without_plans["model_name"].to_list()))
    return {
        "size": size,
        "seed": seed,
        "batch_date": day.isoformat(),
        "machine": machine(),
        "commit": _commit(),
        "steps": {
            k: {"seconds": round(t.seconds, 2), "peak_gib": round(t.peak_gib, 3)} for k, t in steps.items()
        },
        "train": {
            k: summary[k] for k in ("model_kind", "model_version", "promoted", "reason", "evaluation", "fit")
        },
        "scored_by": {"model_name": scored_by, "model_version": versions},
        "horizon_inputs": {
            "with_plans": _future_prices(warehouse, day),
            "without_plans": {**_future_prices(bare / "data" / "warehouse.duckdb", day), **dropped},
        },
        "truth": truth,
        "score_logs": {
            "with_plans": _plan_lines(steps["score (plans)"].output),
            "without_plans": _plan_lines(steps["score (no plans)"].output),
        },
    }


def _commit() -> str:
    """The checkout's HEAD, with ``+dirty`` when tracked files differ from it."""
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()

    return git("rev-parse", "--short", "HEAD") + ("+dirty" if git("status", "--porcelain", "-uno") else "")


def _plan_lines(output: str) -> list[str]:
    return [ln.strip() for ln in output.splitlines() if "plan" in ln.lower()][:5]


# ------------------------------------------------------------------------------------------ render


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return f"{value:.{digits}f}"


def render_table(r: dict[str, Any]) -> list[str]:
    """The run as Markdown: steps, backtest, forecast against the truth."""
    models = r["train"]["evaluation"]
    served = r["train"]["model_kind"] if r["train"]["promoted"] else None
    columns = [(k, label) for k, label in METRICS if any(k in models[m] for m in models)]
    steps = r["steps"]
    lines = [
        "| step | wall s | peak RSS GiB |",
        "|---|--:|--:|",
        *(f"| {name} | {s['seconds']:,.1f} | {s['peak_gib']:.2f} |" for name, s in steps.items()),
        f"| all | {sum(s['seconds'] for s in steps.values()):,.1f} | |",
        "",
        "| model (backtest) | " + " | ".join(label for _, label in columns) + " | fit + forecast s |",
        "|---|" + "--:|" * (len(columns) + 1),
    ]
    for model in [m for m in MODELS if m in models] + [m for m in models if m not in MODELS]:
        m = models[model]
        name = f"**{model}** (promoted)" if model == served else model
        cells = [_fmt(m.get(k)) for k, _ in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {_fmt(m.get('seconds'), 1)} |")
    t = r["truth"]
    lines += [
        "",
        f"| scored forecast vs truth ({t['skus']} SKUs x {len(t['weeks'])} weeks = "
        f"{t['sku_weeks']} SKU-weeks; on promotion: {t['promo_sku_weeks']}) | WAPE p50 vs drawn "
        "| WAPE mean vs drawn | WAPE p50 vs expected | WAPE mean vs expected | bias (mean vs drawn) "
        "| WAPE p50 vs drawn, promotion weeks |",
        "|---|--:|--:|--:|--:|--:|--:|",
    ]
    for key, label in (("with_plans", "with the plans"), ("without_plans", "without the plans")):
        s = t[key]
        lines.append(
            f"| {label} | {_fmt(s['wape_p50_drawn'])} | {_fmt(s['wape_mean_drawn'])} | "
            f"{_fmt(s['wape_p50_expected'])} | {_fmt(s['wape_mean_expected'])} | "
            f"{_fmt(s['bias_mean_drawn'])} | "
            f"{_fmt(s['promo']['wape_p50_drawn'])} |"
        )
    n = t["noise_floor"]
    lines.append(
        f"| the truth's expected demand (noise floor) | {_fmt(n['wape_expected_drawn'])} | | | | | "
        f"{_fmt(n['promo_wape_expected_drawn'])} |"
    )
    return lines


def render(r: dict[str, Any], command: str, tiny: dict[str, Any] | None) -> str:
    h = r["horizon_inputs"]
    lines = [
        START,
        "## Retailer export (bring your own data, against the generator's truth)",
        "",
        f"Command: `{command}`. In a fresh `ECOM_HOME` with `ECOM_PARAMS=examples/retailer/params.yaml`, "
        "the commands of docs/bring-your-own-data.md: `ecom generate --profile retailer`, `ecom land "
        "--date-from-data`, `ecom foundation --no-land`, `ecom train forecast`, `ecom score forecast`; "
        "then `ecom score forecast` again in a copy of the warehouse without `marts.mart_demand_plans` "
        "(same MLflow, so the same model). The forecast for the batch date is compared with the "
        "generator's truth (`data/retailer/truth/demand.parquet`) on the SKU-weeks both scorings share.",
        "",
        f"Machine: {r['machine']}.",
        "",
        f"### {r['size']} (seed {r['seed']}, batch {r['batch_date']})",
        "",
        *render_table(r),
        "",
        f"Without the mart, scoring still read {h['without_plans'].get('fct_prices_daily', 0):,} rows of "
        "`marts.fct_prices_daily` dated after the batch "
        f"({h['without_plans'].get('fct_prices_daily_promo', 0):,} with a promotion); with it, "
        f"{h['with_plans'].get('mart_demand_plans', 0):,} plan rows. The forecasts differ on "
        f"{r['truth']['plans_differ_sku_weeks']:,} of {r['truth']['sku_weeks']:,} SKU-weeks.",
        "",
        "Drawn demand is the generator's draw (what the store would have sold, the actuals); expected "
        "demand its mean. The noise floor is the expected demand's own WAPE against the draw: what a "
        "forecast that knew the truth's mean would score. Backtest columns are the training run's "
        f"metrics file (pooled over its folds). JSON: `bench/out/retailer_{r['size']}.json`.",
    ]
    if tiny is not None:
        t = tiny["truth"]
        lines += [
            "",
            f"tiny (`--size tiny`, the end-to-end test's budget; batch {tiny['batch_date']}): all steps "
            f"{sum(s['seconds'] for s in tiny['steps'].values()):,.0f} s; promoted "
            f"{tiny['train']['model_kind']}; forecast WAPE p50 vs drawn "
            f"{_fmt(t['with_plans']['wape_p50_drawn'])} with the plans, "
            f"{_fmt(t['without_plans']['wape_p50_drawn'])} without ({t['sku_weeks']} SKU-weeks); "
            f"bench/out/retailer_tiny.json.",
        ]
    lines += [END]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="small", choices=["tiny", "small"])
    parser.add_argument("--seed", type=int, default=7, help="The export's seed (ecom generate's default)")
    parser.add_argument("--out-root", type=Path, default=None, help="Where the temporary ECOM_HOMEs go")
    parser.add_argument("--keep", action="store_true", help="Keep the ECOM_HOMEs")
    parser.add_argument(
        "--no-doc",
        action="store_true",
        help="Leave docs/benchmarks-models.md alone (small runs rewrite its section)",
    )
    args = parser.parse_args()
    root = args.out_root or Path(tempfile.mkdtemp(prefix="bench-retailer-"))
    result = bench(args.size, args.seed, root)
    OUT.mkdir(parents=True, exist_ok=True)
    out = OUT / f"retailer_{args.size}.json"
    out.write_text(json.dumps(result, indent=1, sort_keys=True, default=str) + "\n")
    _say(f"results -> {out}")
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    command = f"python bench/retailer.py --size {args.size}" + (
        f" --seed {args.seed}" if args.seed != 7 else ""
    )
    tiny_path = OUT / "retailer_tiny.json"
    tiny = json.loads(tiny_path.read_text()) if args.size == "small" and tiny_path.exists() else None
    section = render(result, command, tiny)
    print("\n".join(render_table(result)))
    if args.size == "small" and not args.no_doc:
        write_section("retailer", section, MODELS_DOC)


if __name__ == "__main__":
    main()
