"""Benchmark the demand forecaster: backtest accuracy against the baselines, training time, scoring speed.

For each tier, in a fresh ECOM_HOME: generate the world and build the published marts for its last
day (`ecom foundation`), then time `ecom train forecast` with the configured budget (the backtest of
the LSTM, seasonal naive, moving average and XGBoost, the final fit, MLflow logging, registration).
The accuracy table is that run's backtest, read from its metrics file and MLflow artifacts.

Scoring throughput: `ecom score forecast` on 100,000 SKUs (``--score-skus``) x 28 days with the
champion the tier just trained. The 100k-SKU input is a contract-shaped warehouse built here from
the tier's own rows: each active SKU's last 90 days of `marts.mart_demand_features` (scoring reads
the last 57) and `marts.fct_prices_daily` copied under new SKU ids until there are 100k SKUs, with
`marts.dim_dates` as it is. The scoring code, model and queries are the real ones; the generator's
large tier is not needed.

Each step runs as the `ecom` command a user would type; wall time and peak memory (RSS summed over
the process tree, sampled every 0.2 s) are recorded. Results replace the `forecast` section of
docs/benchmarks-models.md.

    .venv/bin/python bench/forecast.py --tiers small
    .venv/bin/python bench/forecast.py --tiers tiny --score-skus 5000 --no-doc   # a quick check
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchlib import MODELS_DOC, Timed, machine, markers, run_measured, write_section

ECOM = str(Path(sys.executable).parent / "ecom")
START, END = markers("forecast")
SCORE_TARGET_S = 60.0  # the issue: 100k SKUs x 28 days in at most 60 s on 2 cores
SCORE_TARGET_SKUS = 100_000
SCORE_HISTORY_DAYS = 90
MODELS = ("lstm", "xgboost", "moving_average", "seasonal_naive")
METRICS = (
    ("wape", "WAPE"),
    ("mase", "MASE"),
    ("bias", "bias"),
    ("promo_accuracy", "promo accuracy"),
    ("pinball_p10", "pinball p10"),
    ("pinball_p50", "pinball p50"),
    ("pinball_p90", "pinball p90"),
    ("coverage_80", "coverage p10-p90"),
)
# Lower is better for every metric but these; bias is best near 0, coverage near 0.8.
HIGHER_IS_BETTER = {"promo_accuracy"}


@dataclass
class TierResult:
    tier: str
    skus: int
    days: int
    budget: dict[str, Any]
    build: Timed
    train: Timed
    metrics: dict[str, Any]
    per_fold: list[dict[str, Any]]
    score: Timed
    score_summary: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)


def _say(tier: str, message: str) -> None:
    print(f"[{tier}] {message}", file=sys.stderr, flush=True)


def build_scoring_warehouse(source: Path, target: Path, run_date: dt.date, n_skus: int) -> int:
    """Copy the active SKUs' recent rows of ``source`` under new ids into ``target`` until there are
    ``n_skus`` SKUs; returns how many distinct source SKUs were copied."""
    import duckdb
    import polars as pl

    target.parent.mkdir(parents=True, exist_ok=True)
    since = run_date - dt.timedelta(days=SCORE_HISTORY_DAYS)
    with duckdb.connect(str(target)) as con:
        con.execute(f"attach '{source}' as src (read_only)")
        active = [
            r[0]
            for r in con.execute(
                "select distinct sku_id from src.marts.mart_demand_features "
                "where date > ? and date <= ? and units is not null order by 1",
                [run_date - dt.timedelta(days=56), run_date],
            ).fetchall()
        ]
        if not active:
            raise SystemExit(f"no active SKU on {run_date} in {source}")
        mapping = pl.DataFrame(
            {"new_id": range(1, n_skus + 1), "src_id": [active[i % len(active)] for i in range(n_skus)]},
            schema={"new_id": pl.Int64, "src_id": pl.Int64},
        )
        con.register("sku_map", mapping.to_arrow())
        con.execute("create schema marts")
        for table in ("mart_demand_features", "fct_prices_daily"):
            con.execute(
                f"create table marts.{table} as select * replace (k.new_id as sku_id) "
                f"from src.marts.{table} t join sku_map k on t.sku_id = k.src_id where t.date > ?",
                [since],
            )
        con.execute("create table marts.dim_dates as select * from src.marts.dim_dates")
        con.unregister("sku_map")
        con.execute("detach src")
    return len(active)


def _mlflow_table(tracking_uri: str, run_id: str, name: str) -> list[dict[str, Any]]:
    import mlflow

    path = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path=f"tables/{name}.json", tracking_uri=tracking_uri
    )
    return json.loads(Path(path).read_text())


def bench_tier(tier: str, seed: int, root: Path, score_skus: int) -> TierResult:
    from pipelines.config import load_settings
    from pipelines.data.world import TIERS

    home = root / tier
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    env = {**os.environ, "ECOM_HOME": str(home)}
    settings = load_settings(env)
    last = settings.generate.start_date + dt.timedelta(days=TIERS[tier].n_days - 1)
    day = last.isoformat()

    _say(tier, "generate and build the marts ...")
    generated = run_measured([ECOM, "generate", "--scale", tier, "--seed", str(seed)], env)
    built = run_measured([ECOM, "foundation", "--date", day], env)
    build = Timed(generated.seconds + built.seconds, max(generated.peak_gib, built.peak_gib), "")
    _say(tier, f"marts built in {build.seconds:.1f} s; training ...")

    train = run_measured([ECOM, "train", "forecast", "--date", day, "--metrics-out", "bench/train.json"], env)
    metrics = json.loads((home / "bench" / "train.json").read_text())
    _say(tier, f"trained in {train.seconds:.1f} s (peak {train.peak_gib:.2f} GiB)")
    per_fold = _mlflow_table(settings.tracking_uri, metrics["run_id"], "per_fold")
    replay = _mlflow_table(settings.tracking_uri, metrics["run_id"], "replenishment_simulation")
    metrics["replay"] = {row["policy"]: row for row in replay}

    _say(tier, f"building the {score_skus:,}-SKU scoring input ...")
    score_home = root / f"{tier}-score"
    shutil.rmtree(score_home, ignore_errors=True)
    sources = build_scoring_warehouse(
        settings.warehouse_path, score_home / "data" / "warehouse.duckdb", last, score_skus
    )
    score_env = {**env, "ECOM_HOME": str(score_home), "ECOM_MLFLOW__TRACKING_URI": settings.tracking_uri}
    score = run_measured(
        [ECOM, "score", "forecast", "--date", day, "--summary-out", "bench/score.json"], score_env
    )
    summary = json.loads((score_home / "bench" / "score.json").read_text())
    _say(
        tier,
        f"scored {summary['entities']:,} SKUs in {score.seconds:.1f} s "
        f"(in-process {summary['seconds']:.1f} s)",
    )

    budget = settings.forecast.model_dump(
        include={
            "epochs",
            "max_train_windows",
            "backtest_epochs",
            "backtest_max_train_windows",
            "backtest_folds",
            "holdout_days",
            "batch_size",
            "learning_rate",
            "xgboost_max_rows",
            "xgboost_rounds",
            "xgboost_threads",
        }
    )
    result = TierResult(
        tier=tier,
        skus=TIERS[tier].n_skus,
        days=TIERS[tier].n_days,
        budget=budget,
        build=build,
        train=train,
        metrics=metrics,
        per_fold=per_fold,
        score=score,
        score_summary=summary,
        extra={"score_source_skus": sources},
    )
    shutil.rmtree(home, ignore_errors=True)
    shutil.rmtree(score_home, ignore_errors=True)
    return result


# ------------------------------------------------------------------------------------------ render


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return f"{value:.{digits}f}"


def _better(metric: str, a: float | None, b: float | None) -> bool:
    """Whether ``a`` is strictly better than ``b`` on ``metric``."""
    if a is None or b is None:
        return False
    if metric == "bias":
        return abs(a) < abs(b)
    if metric == "coverage_80":
        return abs(a - 0.8) < abs(b - 0.8)
    return a > b if metric in HIGHER_IS_BETTER else a < b


def _findings(r: TierResult) -> list[str]:
    """Plain statements computed from the run: the target against seasonal naive, where XGBoost wins."""
    models = r.metrics["evaluation"]
    lstm, naive = models["lstm"]["wape"], models["seasonal_naive"]["wape"]
    lines = [
        f"- LSTM against seasonal naive on WAPE: {lstm:.3f} vs {naive:.3f}: "
        + ("**beats it** (target met)." if lstm < naive else "**does not beat it** (target missed).")
    ]
    if "xgboost" in models:
        xgb = models["xgboost"]
        wins = [label for key, label in METRICS if _better(key, xgb.get(key), models["lstm"].get(key))]
        folds = sorted(
            int(f["fold"])
            for f in r.per_fold
            if f["model"] == "xgboost"
            and any(
                g["model"] == "lstm" and g["fold"] == f["fold"] and f["wape"] < g["wape"] for g in r.per_fold
            )
        )
        where = ", ".join(wins) if wins else "no metric"
        fold_text = ", ".join(str(f) for f in folds) if folds else "none"
        lines.append(
            f"- Where XGBoost wins: {where} (pooled over folds); WAPE in fold(s) {fold_text} of "
            f"{r.budget['backtest_folds']}. Its fits took {_fmt(xgb.get('seconds'), 1)} s in all, the "
            f"LSTM's {_fmt(models['lstm'].get('seconds'), 1)} s."
        )
    return lines


REPLAY_COLUMNS = (
    ("safety_days", "safety days", 1),
    ("fill_rate", "fill rate", 3),
    ("stockout_rate", "stock-out rate", 3),
    ("average_stock_units", "avg stock (units)", 1),
    ("average_stock_value", "avg stock value", 0),
    ("average_safety_stock_units", "avg safety stock (units)", 1),
    ("inventory_turnover", "turnover (x/yr)", 1),
)


def _replay_table(rows: dict[str, dict[str, Any]]) -> list[str]:
    """The replenishment policy replay the training run logged (LSTM quantiles vs traditional)."""
    if not rows:
        return ["Replenishment replay: not run (see the training log)."]
    lines = [
        "Replenishment policy replay over the backtest days (`simulate_policies`, logged by the run):",
        "",
        "| policy | " + " | ".join(label for _, label, _ in REPLAY_COLUMNS) + " |",
        "|---|" + "--:|" * len(REPLAY_COLUMNS),
    ]
    for policy, row in rows.items():
        cells = [_fmt(row.get(key), digits) for key, _, digits in REPLAY_COLUMNS]
        lines.append(f"| {policy} | " + " | ".join(cells) + " |")
    return lines


def render(results: list[TierResult], command: str) -> str:
    lines = [
        START,
        "## Demand forecasting (backtest accuracy, training time, scoring throughput)",
        "",
        f"Command: `{command}`. Each tier: `ecom generate` and `ecom foundation` in a fresh "
        "`ECOM_HOME`, then `ecom train forecast` (rolling-origin backtest of the LSTM and the "
        "baselines, final fit, MLflow logging, registration) and `ecom score forecast` on a "
        f"{SCORE_TARGET_SKUS:,}-SKU copy of the tier's recent rows (see `bench/forecast.py`).",
        "",
        f"Machine: {machine()}.",
    ]
    for r in results:
        b, models = r.budget, r.metrics["evaluation"]
        fold_epochs = b["backtest_epochs"] or b["epochs"]
        fold_windows = b["backtest_max_train_windows"] or b["max_train_windows"]
        lines += [
            "",
            f"### {r.tier} ({r.skus:,} SKUs x {r.days} days)",
            "",
            f"Budget: final fit {b['epochs']} epochs x {b['max_train_windows']:,} windows, backtest fits "
            f"{fold_epochs} x {fold_windows:,}, batch {b['batch_size']}, learning rate "
            f"{b['learning_rate']}; {b['backtest_folds']} folds of {b['holdout_days']} days; XGBoost "
            f"{b['xgboost_max_rows']:,} rows, {b['xgboost_rounds']} rounds, "
            f"{b['xgboost_threads']} thread(s). Run date {r.metrics['run_date']}.",
            "",
            "| model | " + " | ".join(label for _, label in METRICS) + " | fit + forecast s |",
            "|---|" + "--:|" * (len(METRICS) + 1),
        ]
        for model in MODELS:
            if model not in models:
                continue
            m = models[model]
            name = f"**{model}**" if model == "lstm" else model
            cells = [_fmt(m.get(key)) for key, _ in METRICS]
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {_fmt(m.get('seconds'), 1)} |")
        folds = sorted({int(f["fold"]) for f in r.per_fold})
        lines += ["", "WAPE per fold (origin):", ""]
        origins = {int(f["fold"]): f["origin"] for f in r.per_fold}
        lines.append("| model | " + " | ".join(f"fold {k} ({origins[k]})" for k in folds) + " |")
        lines.append("|---|" + "--:|" * len(folds))
        for model in MODELS:
            rows = {int(f["fold"]): f["wape"] for f in r.per_fold if f["model"] == model}
            if rows:
                lines.append(f"| {model} | " + " | ".join(_fmt(rows.get(k)) for k in folds) + " |")
        lines += ["", *_findings(r), "", *_replay_table(r.metrics.get("replay", {})), ""]
        s = r.score_summary
        skus, horizon = s["entities"], s["rows"] // max(s["entities"], 1)
        rate = skus / r.score.seconds if r.score.seconds else 0.0
        verdict = "meets" if skus >= SCORE_TARGET_SKUS and r.score.seconds <= SCORE_TARGET_S else "misses"
        if skus < SCORE_TARGET_SKUS:
            verdict = f"not measured at {SCORE_TARGET_SKUS:,} SKUs"
        lines += [
            "| step | figure |",
            "|---|---|",
            f"| generate + build the marts | {r.build.seconds:,.1f} s |",
            f"| `ecom train forecast` (all of it) | {r.train.seconds:,.1f} s wall, peak RSS "
            f"{r.train.peak_gib:.2f} GiB |",
            f"| model put forward and served | {r.metrics['model_kind']} (v{r.metrics['model_version']}, "
            f"{'promoted' if r.metrics['promoted'] else 'not promoted'}) |",
            f"| final fit | {_fmt(r.metrics['fit'].get('fit_seconds'), 1)} s |",
            f"| `ecom score forecast`, {skus:,} SKUs x {horizon} days = {s['rows']:,} rows "
            f"| {r.score.seconds:,.1f} s wall ({s['seconds']:.1f} s in `score_family`), "
            f"{rate:,.0f} SKUs/s, "
            f"peak RSS {r.score.peak_gib:.2f} GiB; target <= {SCORE_TARGET_S:.0f} s: {verdict} |",
        ]
    lines += [
        "",
        "Wall times include starting Python and importing torch, Lightning and MLflow (a few seconds",
        "per command). The scoring input copies the tier's active SKUs "
        f"({', '.join(str(r.extra['score_source_skus']) for r in results)} distinct) under new ids, so",
        "its series are real model inputs but repeat; the network's cost does not depend on their values.",
        END,
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiers", nargs="+", default=["small"], choices=["tiny", "small", "medium", "large"])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--score-skus", type=int, default=SCORE_TARGET_SKUS, help="SKUs in the scoring run")
    parser.add_argument("--out-root", type=Path, default=None, help="Where the temporary ECOM_HOMEs go")
    parser.add_argument(
        "--no-doc", action="store_true", help="Print the section; leave docs/benchmarks-models.md"
    )
    args = parser.parse_args()
    root = args.out_root or Path(tempfile.mkdtemp(prefix="bench-forecast-"))
    results = [bench_tier(tier, args.seed, root, args.score_skus) for tier in args.tiers]
    command = "python bench/forecast.py --tiers " + " ".join(args.tiers)
    if args.score_skus != SCORE_TARGET_SKUS:
        command += f" --score-skus {args.score_skus}"
    section = render(results, command)
    if not args.no_doc:
        write_section("forecast", section, MODELS_DOC)
    print(section)


if __name__ == "__main__":
    main()
