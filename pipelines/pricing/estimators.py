"""Three per-SKU price-elasticity estimators with one face.

Every estimator is ``fit(frame, params) -> Fitted`` on rows of
:func:`pipelines.pricing.dataset.prepare_pricing_frame`; then ``elasticities(fitted, frame)`` gives one
row per SKU (:data:`ELASTICITY_COLUMNS`) and ``predict_units(fitted, frame)`` the expected units of
each row at the prices it carries. The estimand is d log E[units] / d log price paid with rival
prices held fixed (own) and d log E[units] / d log cheapest rival price (cross).

- ``dml``: double/debiased ML. Log own price, log rival price and units are residualised on the
  controls (promotion, calendar, stock cover, demand context, category) with cross-fitted
  gradient-boosted nuisance models; each SKU's effects come from a Poisson regression of its units
  on its treatment residuals with the nuisance demand as offset (units are sparse counts, mostly
  zeros: a log outcome would drop them); then empirical-Bayes partial pooling shrinks each SKU
  toward its category mean by precision, so sparse SKUs borrow strength. The cross-fitting is our
  own (scikit-learn ``HistGradientBoosting``) because DoubleML's and econml's partially linear
  models take an additive outcome and one effect per fit, not a count outcome with a thousand
  per-SKU effects; DoubleML's PLR gives the pooled effect every category mean is shrunk toward.
- ``xgboost``: a Poisson demand model, non-increasing in own log price (and non-decreasing in the
  rival gap, so a higher own price can only lower units); elasticities by perturbing prices by a
  few percent over each SKU's recent days.
- ``loglog_ols``: per-SKU OLS of log units on log price (and log rival price) over days with
  sales, no controls: the naive baseline.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from pipelines.pricing.dataset import CONTROLS, LABELS

KINDS = ("dml", "xgboost", "loglog_ols")
ELASTICITY_COLUMNS = (
    "sku_id",
    "own_elasticity",
    "own_elasticity_low",
    "own_elasticity_high",
    "cross_elasticity",
    "identified",
    "n_days",
    "price_variation",
    "category",
)
Z95 = 1.959964
PERTURB = math.log(1.05)  # the xgboost elasticities' price step (+-5 %)
RECENT_ROWS = 28  # a SKU's recent rows the perturbation averages over
MIN_SALES = 3  # units a SKU needs before its own effect is estimated at all
TAU_FLOOR = 0.05  # the smallest spread of true elasticities within a category we assume
FIT_THREADS = 1  # threads per booster fit unless the params say otherwise
NUISANCE_MAX_ROWS = 100_000  # rows each cross-fitted nuisance model learns from, at most


@dataclass
class Fitted:
    """A fitted estimator: its per-SKU table and whatever it needs to predict.

    Attributes:
        kind: ``dml``, ``xgboost`` or ``loglog_ols``.
        params: The parameters it was fitted with.
        skus: One row per SKU: :data:`ELASTICITY_COLUMNS` plus the estimator's own columns
            (``level``: mean units per row; ``intercept`` where the model has one).
        categories: One row per category: the pooled ``own_elasticity``, its interval and
            ``cross_elasticity``, and ``level`` (what an unseen SKU gets).
        vocab: Label vocabularies (``category``, ``event``, ``event_phase``) the models encode with.
        controls: The controls the models saw.
        models: The kind's fitted models.
        metrics: Figures of the fit (seconds, pooled effect, ...).
    """

    kind: str
    params: dict[str, Any]
    skus: pl.DataFrame
    categories: pl.DataFrame
    vocab: dict[str, list[str]]
    controls: list[str]
    models: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)


# --- shared pieces ------------------------------------------------------------------------------


def sku_summary(frame: pl.DataFrame, min_price_variation: float) -> pl.DataFrame:
    """Per SKU: rows, log-price std, whether identified, category, mean units (``level``)."""
    return (
        frame.group_by("sku_id")
        .agg(
            pl.len().cast(pl.Int64).alias("n_days"),
            pl.col("log_price").std(ddof=0).fill_null(0.0).alias("price_variation"),
            pl.col("category").mode().sort().first().alias("category"),
            pl.col("units").mean().alias("level"),
            pl.col("units").sum().alias("sales"),
            pl.col("log_rival").is_not_null().any().alias("has_rival"),
        )
        .with_columns((pl.col("price_variation") >= min_price_variation).alias("identified"))
        .sort("sku_id")
    )


def _vocab(frame: pl.DataFrame) -> dict[str, list[str]]:
    return {c: sorted(frame[c].drop_nulls().unique().to_list()) for c in LABELS if c in frame.columns}


def _controls(frame: pl.DataFrame) -> list[str]:
    return [c for c in CONTROLS if c in frame.columns and frame[c].drop_nulls().n_unique() > 1]


def _design(frame: pl.DataFrame, fitted: Fitted, extra: list[str]) -> np.ndarray:
    """Controls, label codes (by the fitted vocabulary; unseen labels -1) and ``extra`` columns."""
    cols = [pl.col(c).cast(pl.Float64) for c in (*fitted.controls, *extra)]
    codes = [
        pl.col(name).replace_strict(vals, list(range(len(vals))), default=-1).cast(pl.Float64)
        for name, vals in fitted.vocab.items()
    ]
    return frame.select(*cols, *codes).fill_null(np.nan).to_numpy().astype(np.float64)


def _levels(frame: pl.DataFrame, fitted: Fitted) -> np.ndarray:
    """Each row's SKU level (mean units per row when fitted; the category's, else the overall)."""
    known = frame.select("sku_id", "category").join(
        fitted.skus.select("sku_id", pl.col("level").alias("_sku")), on="sku_id", how="left"
    )
    known = known.join(
        fitted.categories.select("category", pl.col("level").alias("_cat")), on="category", how="left"
    )
    overall = float(fitted.skus["level"].mean())
    level = known.select(pl.coalesce("_sku", "_cat", pl.lit(overall))).to_series().to_numpy()
    return np.maximum(level.astype(np.float64), 1e-3)


def _sku_index(frame: pl.DataFrame, skus: pl.DataFrame) -> np.ndarray:
    """Each row's position in ``skus`` (-1 for a SKU not in it)."""
    lookup = skus.select("sku_id").with_row_index("_i")
    out = frame.select("sku_id").join(lookup, on="sku_id", how="left")["_i"]
    return out.fill_null(-1).cast(pl.Int64).to_numpy()


def _grouped_moments(g: np.ndarray, n_groups: int, z: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Per group ``sum w z z'`` (n_groups x k x k)."""
    k = z.shape[1]
    out = np.empty((n_groups, k, k))
    for i in range(k):
        for j in range(i, k):
            s = np.bincount(g, weights=w * z[:, i] * z[:, j], minlength=n_groups)
            out[:, i, j] = out[:, j, i] = s
    return out


def _grouped_sums(g: np.ndarray, n_groups: int, z: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Per group ``sum z v`` (n_groups x k)."""
    return np.stack([np.bincount(g, weights=z[:, i] * v, minlength=n_groups) for i in range(z.shape[1])], 1)


def grouped_poisson(
    g: np.ndarray,
    n_groups: int,
    z: np.ndarray,
    y: np.ndarray,
    offset: np.ndarray,
    *,
    iterations: int = 30,
    ridge: float = 1e-4,
) -> tuple[np.ndarray, np.ndarray]:
    """Per group, a Poisson regression ``y ~ exp(offset + a + z b)`` by Newton's method.

    Args:
        g: Each row's group (0 .. n_groups - 1).
        z: Regressors (no intercept column: one per group is added).
        y: Counts.
        offset: Log of the known part of each row's mean.
        ridge: A small prior precision on ``b`` (a group where a regressor never varies keeps 0).

    Returns:
        ``(coef, se)``, each n_groups x (1 + k): intercept first; the standard errors scaled by the
        group's Pearson dispersion (at least 1: demand is over-dispersed).
    """
    x = np.column_stack([np.ones(len(y)), z])
    k = x.shape[1]
    beta = np.zeros((n_groups, k))
    sum_y = np.bincount(g, weights=y, minlength=n_groups)
    sum_e = np.bincount(g, weights=np.exp(offset), minlength=n_groups)
    beta[:, 0] = np.log(np.maximum(sum_y, 0.5) / np.maximum(sum_e, 1e-12))
    prior = np.diag([0.0] + [ridge] * (k - 1))
    for _ in range(iterations):
        eta = np.clip(offset + np.einsum("nk,nk->n", x, beta[g]), -30, 30)
        mu = np.exp(eta)
        hess = _grouped_moments(g, n_groups, x, mu) + prior + 1e-9 * np.eye(k)
        grad = _grouped_sums(g, n_groups, x, y - mu) - beta @ prior
        step = np.linalg.solve(hess, grad[..., None])[..., 0]
        step = np.clip(step, -1.0, 1.0)
        beta += step
        if np.abs(step).max() < 1e-7:
            break
    mu = np.exp(np.clip(offset + np.einsum("nk,nk->n", x, beta[g]), -30, 30))
    hess = _grouped_moments(g, n_groups, x, mu) + prior + 1e-9 * np.eye(k)
    pearson = np.bincount(g, weights=(y - mu) ** 2 / np.maximum(mu, 1e-9), minlength=n_groups)
    rows = np.bincount(g, minlength=n_groups)
    dispersion = np.maximum(pearson / np.maximum(rows - k, 1), 1.0)
    cov = np.linalg.inv(hess) * dispersion[:, None, None]
    se = np.sqrt(np.maximum(np.diagonal(cov, axis1=1, axis2=2), 0.0))
    return beta, se


def partial_pool(
    estimate: np.ndarray,
    se: np.ndarray,
    category: np.ndarray,
    *,
    prior_mean: float | None = None,
    tau_floor: float = TAU_FLOOR,
) -> tuple[np.ndarray, np.ndarray, dict[str, tuple[float, float]], float]:
    """Empirical-Bayes shrinkage of per-SKU estimates toward their category mean, by precision.

    Each SKU's true effect is taken as drawn around its category mean with spread ``tau`` (one
    for all categories, DerSimonian-Laird, at least ``tau_floor``); a category's mean is itself
    pulled toward ``prior_mean`` (default: the precision-weighted overall mean) by one SKU's worth
    of weight, so a category of one sparse SKU is not trusted alone. SKUs without an estimate
    (NaN) get their category's mean.

    Returns:
        ``(shrunk, shrunk_se, category -> (mean, se), tau)``.
    """
    ok = np.isfinite(estimate) & np.isfinite(se) & (se > 0)
    cats = np.unique(category)
    if not ok.any():
        mean = 0.0 if prior_mean is None else prior_mean
        tau = max(tau_floor, 1.0)
        return (
            np.full(len(estimate), mean),
            np.full(len(estimate), tau),
            {str(c): (mean, tau) for c in cats},
            tau,
        )
    var = np.where(ok, se**2, np.inf)
    tau2 = tau_floor**2
    grand = prior_mean
    for _ in range(20):
        w = np.where(ok, 1.0 / (var + tau2), 0.0)
        if grand is None or prior_mean is None:
            grand_now = float(np.sum(w * np.where(ok, estimate, 0)) / np.sum(w))
        else:
            grand_now = prior_mean
        kappa = float(np.median(w[ok]))  # one typical SKU's weight
        means = {}
        for c in cats:
            m = (category == c) & ok
            sw = w[m].sum()
            means[c] = (float((w[m] * estimate[m]).sum() + kappa * grand_now) / (sw + kappa), sw + kappa)
        mu = np.array([means[c][0] for c in category])
        # DerSimonian-Laird: excess of the weighted squared deviations over their sampling part
        wf = np.where(ok, 1.0 / var, 0.0)
        q = float(np.sum(wf * np.where(ok, estimate - mu, 0) ** 2))
        dof = max(int(ok.sum()) - len(cats), 1)
        denom = float(
            wf.sum() - sum((wf[category == c] ** 2).sum() / max(wf[category == c].sum(), 1e-12) for c in cats)
        )
        new_tau2 = max(tau_floor**2, (q - dof) / max(denom, 1e-12))
        grand = grand_now
        if abs(new_tau2 - tau2) < 1e-8:
            tau2 = new_tau2
            break
        tau2 = new_tau2
    precision = np.where(ok, 1.0 / var, 0.0) + 1.0 / tau2
    shrunk = (np.where(ok, estimate / var, 0.0) + mu / tau2) / precision
    shrunk_se = np.sqrt(1.0 / precision)
    summary = {str(c): (means[c][0], math.sqrt(tau2 + 1.0 / means[c][1])) for c in cats}
    return shrunk, shrunk_se, summary, math.sqrt(tau2)


def _finish(
    summary: pl.DataFrame,
    own: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    cross: np.ndarray,
    extra: Mapping[str, np.ndarray] | None = None,
) -> pl.DataFrame:
    """The per-SKU table: the summary's columns with the estimates (NaN stored as null)."""

    def col(name: str, values: np.ndarray) -> pl.Series:
        return pl.Series(name, values, pl.Float64).fill_nan(None)

    return summary.with_columns(
        col("own_elasticity", own),
        col("own_elasticity_low", low),
        col("own_elasticity_high", high),
        col("cross_elasticity", cross),
        *[col(k, v) for k, v in (extra or {}).items()],
    ).with_columns(pl.when(pl.col("has_rival")).then(pl.col("cross_elasticity")).alias("cross_elasticity"))


def _category_table(
    skus: pl.DataFrame, pooled: Mapping[str, tuple[float, float]] | None = None
) -> pl.DataFrame:
    """Per category: the level, and the pooled own and cross effect (given, or the SKUs' median)."""
    table = skus.group_by("category").agg(
        pl.col("level").mean(),
        pl.col("own_elasticity").median().alias("_own"),
        pl.col("cross_elasticity").median(),
        pl.col("own_elasticity").std().fill_null(0.0).alias("_spread"),
    )
    if pooled:
        given = pl.DataFrame(
            {
                "category": list(pooled),
                "own_elasticity": [v[0] for v in pooled.values()],
                "_se": [v[1] for v in pooled.values()],
            }
        )
        table = table.join(given, on="category", how="left").with_columns(
            pl.col("own_elasticity").fill_null(pl.col("_own")), pl.col("_se").fill_null(pl.col("_spread"))
        )
    else:
        table = table.with_columns(pl.col("_own").alias("own_elasticity"), pl.col("_spread").alias("_se"))
    return table.select(
        "category",
        "level",
        "own_elasticity",
        (pl.col("own_elasticity") - Z95 * pl.col("_se")).alias("own_elasticity_low"),
        (pl.col("own_elasticity") + Z95 * pl.col("_se")).alias("own_elasticity_high"),
        "cross_elasticity",
    ).sort("category")


def treatments(frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    d1 = frame["log_price"].to_numpy().astype(np.float64)
    d2 = frame["log_rival"].cast(pl.Float64).to_numpy()
    d2 = np.where(np.isfinite(d2), d2, np.nan)
    return d1, d2, np.isfinite(d2)


# --- DML ----------------------------------------------------------------------------------------


def _hgb(loss: str, params: Mapping[str, Any], seed: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(
        loss=loss,
        max_iter=int(params.get("nuisance_rounds", 150)),
        learning_rate=float(params.get("nuisance_learning_rate", 0.1)),
        max_leaf_nodes=31,
        max_bins=63,
        min_samples_leaf=40,
        l2_regularization=1.0,
        early_stopping=False,
        random_state=seed,
    )


def _fit_dml(frame: pl.DataFrame, params: Mapping[str, Any]) -> Fitted:
    from sklearn.model_selection import KFold

    seed = int(params.get("seed", 7))
    folds = int(params.get("folds", 3))
    summary = sku_summary(frame, float(params.get("min_price_variation", 0.03)))
    fitted = Fitted("dml", dict(params), summary, pl.DataFrame(), _vocab(frame), _controls(frame))
    fitted.categories = _category_table(summary.with_columns(own_elasticity=None, cross_elasticity=None))
    x = _design(frame, fitted, [])
    y = frame["units"].to_numpy().astype(np.float64)
    level = _levels(frame, fitted)
    d1, d2, has2 = treatments(frame)
    any_rival = bool(has2.any())
    l_hat, m1_hat, m2_hat = np.empty(len(y)), np.empty(len(y)), np.full(len(y), np.nan)
    models: list[dict[str, Any]] = []
    cap = int(params.get("nuisance_max_rows", NUISANCE_MAX_ROWS))
    rng = np.random.default_rng(seed)
    for k, (every, test) in enumerate(KFold(folds, shuffle=True, random_state=seed).split(x)):
        # the nuisance models learn from a sample of the other folds: plenty for smooth controls
        train = np.sort(rng.choice(every, cap, replace=False)) if len(every) > cap else every
        fold: dict[str, Any] = {
            "demand": _hgb("poisson", params, seed + k).fit(
                x[train], y[train] / level[train], sample_weight=level[train]
            ),
            "price": _hgb("squared_error", params, seed + k).fit(x[train], d1[train]),
        }
        l_hat[test] = level[test] * fold["demand"].predict(x[test])
        m1_hat[test] = fold["price"].predict(x[test])
        if any_rival:
            tr = train[has2[train]]
            fold["rival"] = _hgb("squared_error", params, seed + k).fit(x[tr], d2[tr])
            te = test[has2[test]]
            if len(te):
                m2_hat[te] = fold["rival"].predict(x[te])
        models.append(fold)
    r1 = d1 - m1_hat
    r2 = np.where(has2, d2 - m2_hat, 0.0)
    g = _sku_index(frame, summary)
    n = summary.height
    beta, se = grouped_poisson(g, n, np.column_stack([r1, r2]), y, np.log(np.maximum(l_hat, 1e-9)))
    enough = summary["sales"].to_numpy() >= MIN_SALES
    varied2 = np.bincount(g, weights=r2**2, minlength=n) > 1e-6
    own_raw = np.where(enough, beta[:, 1], np.nan)
    own_se = np.where(enough, se[:, 1], np.nan)
    cross_raw = np.where(enough & varied2, beta[:, 2], np.nan)
    cross_se = np.where(enough & varied2, se[:, 2], np.nan)
    pooled, pooled_se = pooled_effect(frame, x, level, seed, folds, params)
    categories = summary["category"].to_numpy()
    own, own_sd, by_cat, tau = partial_pool(own_raw, own_se, categories, prior_mean=pooled)
    cross, _, cross_by_cat, _ = partial_pool(cross_raw, cross_se, categories)
    if not any_rival:
        cross = np.full(n, np.nan)
    # the SKU's level given the pooled effects, for predictions at other prices
    fit_eta = np.log(np.maximum(l_hat, 1e-9)) + own[g] * r1 + np.nan_to_num(cross[g]) * r2
    intercept = np.log(
        np.maximum(np.bincount(g, weights=y, minlength=n), 0.5)
        / np.maximum(np.bincount(g, weights=np.exp(fit_eta), minlength=n), 1e-9)
    )
    fitted.skus = _finish(
        summary,
        own,
        own - Z95 * own_sd,
        own + Z95 * own_sd,
        cross,
        {"own_raw": own_raw, "own_raw_se": own_se, "cross_raw": cross_raw, "intercept": intercept},
    )
    categories_table = _category_table(fitted.skus, by_cat)
    cross_cats = pl.DataFrame(
        {"category": list(cross_by_cat), "_cross": [v[0] for v in cross_by_cat.values()]}
    )
    fitted.categories = (
        categories_table.join(cross_cats, on="category", how="left")
        .with_columns(pl.when(pl.lit(any_rival)).then(pl.col("_cross")).alias("cross_elasticity"))
        .drop("_cross")
    )
    fitted.models = {"folds": models, "any_rival": any_rival}
    fitted.metrics = {"pooled_own_elasticity": pooled, "pooled_own_elasticity_se": pooled_se, "tau_own": tau}
    return fitted


def pooled_effect(
    frame: pl.DataFrame,
    x: np.ndarray,
    level: np.ndarray,
    seed: int,
    folds: int,
    params: Mapping[str, Any],
    max_rows: int = 60_000,
) -> tuple[float, float]:
    """The pooled own-price effect by DoubleML's partially linear model (partialling out).

    The outcome is units over the SKU's level (so every SKU's demand counts on one scale and
    ``E[y | D, X] ~ 1 + theta (D - E[D | X])`` near the usual prices), the treatment the log price
    paid relative to the SKU's reference, the controls those of the nuisance models. A sample of
    ``max_rows`` rows keeps it quick; it only sets the prior every category mean is pulled toward.
    """
    import doubleml as dml

    rng = np.random.default_rng(seed)
    rows = np.arange(len(x)) if len(x) <= max_rows else np.sort(rng.choice(len(x), max_rows, replace=False))
    y = frame["units"].to_numpy().astype(np.float64)[rows] / level[rows]
    d = frame["log_price"].to_numpy().astype(np.float64)[rows]
    xs = np.nan_to_num(x[rows], nan=-999.0)
    if len(rows) < 50 or np.std(d) < 1e-6:
        return math.nan, math.nan
    data = dml.DoubleMLData.from_arrays(xs, y, d)
    light = dict(params) | {"nuisance_rounds": min(int(params.get("nuisance_rounds", 150)), 100)}
    model = dml.DoubleMLPLR(
        data, _hgb("squared_error", light, seed), _hgb("squared_error", light, seed), n_folds=max(folds, 2)
    )
    np.random.seed(seed)  # DoubleML draws its sample splits from numpy's global stream
    model.fit()
    return float(model.coef[0]), float(model.se[0])


def dml_nuisance(fitted: Fitted, frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The demand and treatment nuisances for new rows: the fold models' mean."""
    x = _design(frame, fitted, [])
    level = _levels(frame, fitted)
    folds = fitted.models["folds"]
    demand = level * np.mean([f["demand"].predict(x) for f in folds], axis=0)
    price = np.mean([f["price"].predict(x) for f in folds], axis=0)
    rival = (
        np.mean([f["rival"].predict(x) for f in folds], axis=0)
        if fitted.models["any_rival"]
        else np.zeros(len(x))
    )
    return demand, price, rival


def _predict_dml(fitted: Fitted, frame: pl.DataFrame) -> np.ndarray:
    demand, m1, m2 = dml_nuisance(fitted, frame)
    d1, d2, has2 = treatments(frame)
    effects = row_effects(fitted, frame)
    eta = effects["intercept"] + effects["own"] * (d1 - m1) + effects["cross"] * np.where(has2, d2 - m2, 0.0)
    return demand * np.exp(np.clip(eta, -20, 20))


def row_effects(fitted: Fitted, frame: pl.DataFrame) -> dict[str, np.ndarray]:
    """Each row's SKU effects (its category's for an unseen SKU; intercept 0 there)."""
    skus = fitted.skus.select(
        "sku_id",
        pl.col("own_elasticity").alias("_own"),
        pl.col("cross_elasticity").alias("_cross"),
        pl.col("intercept") if "intercept" in fitted.skus.columns else pl.lit(0.0).alias("intercept"),
    )
    cats = fitted.categories.select(
        "category", pl.col("own_elasticity").alias("_cown"), pl.col("cross_elasticity").alias("_ccross")
    )
    rows = (
        frame.select("sku_id", "category")
        .join(skus, on="sku_id", how="left")
        .join(cats, on="category", how="left")
    )
    overall = float(fitted.skus["own_elasticity"].median() or 0.0)
    return {
        "own": rows.select(pl.coalesce("_own", "_cown", pl.lit(overall)))
        .to_series()
        .to_numpy()
        .astype(float),
        "cross": rows.select(pl.coalesce("_cross", "_ccross", pl.lit(0.0)))
        .to_series()
        .to_numpy()
        .astype(float),
        "intercept": rows["intercept"].fill_null(0.0).to_numpy().astype(float),
    }


# --- XGBoost ------------------------------------------------------------------------------------


def _xgb_matrix(fitted: Fitted, frame: pl.DataFrame, own_shift: float = 0.0, rival_shift: float = 0.0) -> Any:
    """The booster's inputs: log price (shifted), rival gap (shifted), controls, SKU encodings."""
    import xgboost as xgb

    shifted = frame.with_columns(
        (pl.col("log_price") + own_shift).alias("_own"),
        (pl.col("log_rival") + rival_shift - pl.col("log_price") - own_shift).alias("_gap"),
        pl.col("reference_price").log().alias("_ref"),
    )
    x = np.column_stack(
        [
            shifted.select("_own", "_gap").fill_null(np.nan).to_numpy().astype(np.float64),
            _design(shifted, fitted, ["_ref"]),
        ]
    )
    margin = np.log(_levels(frame, fitted))
    return xgb.DMatrix(x, base_margin=margin, missing=np.nan)


def _fit_xgboost(frame: pl.DataFrame, params: Mapping[str, Any]) -> Fitted:
    import xgboost as xgb

    summary = sku_summary(frame, float(params.get("min_price_variation", 0.03)))
    fitted = Fitted("xgboost", dict(params), summary, pl.DataFrame(), _vocab(frame), _controls(frame))
    fitted.categories = _category_table(summary.with_columns(own_elasticity=None, cross_elasticity=None))
    n_features = 2 + len(fitted.controls) + 1 + len(fitted.vocab)
    # own log price: non-increasing; rival gap (rival over own): non-decreasing. Together a higher
    # own price (which lowers the gap) can never raise predicted units.
    constraints = "(" + ",".join(["-1", "1"] + ["0"] * (n_features - 2)) + ")"
    booster = xgb.train(
        {
            "objective": "count:poisson",
            "eta": float(params.get("learning_rate", 0.05)),
            "max_depth": int(params.get("max_depth", 6)),
            "min_child_weight": 5.0,
            "subsample": 0.8,
            "colsample_bytree": 0.8,
            "lambda": 1.0,
            "tree_method": "hist",
            "monotone_constraints": constraints,
            "seed": int(params.get("seed", 7)),
            "nthread": int(params.get("threads", FIT_THREADS)),
            "max_delta_step": 0.7,
        },
        _labelled(fitted, frame),
        num_boost_round=int(params.get("rounds", 300)),
    )
    fitted.models = {"booster": booster}
    own, low, high, cross = _perturbation_elasticities(fitted, frame)
    fitted.skus = _finish(summary, own, low, high, cross)
    fitted.categories = _category_table(fitted.skus)
    return fitted


def _labelled(fitted: Fitted, frame: pl.DataFrame) -> Any:
    matrix = _xgb_matrix(fitted, frame)
    matrix.set_label(frame["units"].to_numpy().astype(np.float64))
    return matrix


def _perturbation_elasticities(
    fitted: Fitted, frame: pl.DataFrame
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Arc elasticities of the booster's demand over each SKU's recent rows (+-5 % prices).

    Own: the price paid moves, rival prices stay. Cross: the cheapest rival moves. The estimate is
    the change in the SKU's summed predicted units; low/high are the 10th and 90th percentiles of
    the per-row arc elasticities (how much the local effect varies over those days, not a
    sampling interval: a tree model has none), widened to hold the estimate where the SKU's units
    sit on a few days outside that band.
    """
    booster = fitted.models["booster"]
    recent = frame.sort("sku_id", "date").group_by("sku_id", maintain_order=True).tail(RECENT_ROWS)
    g = _sku_index(recent, fitted.skus)
    n = fitted.skus.height

    def predict(own: float, rival: float) -> np.ndarray:
        return booster.predict(_xgb_matrix(fitted, recent, own, rival))

    up, down = predict(PERTURB, 0.0), predict(-PERTURB, 0.0)
    own = (np.log(np.bincount(g, up, n) + 1e-12) - np.log(np.bincount(g, down, n) + 1e-12)) / (2 * PERTURB)
    per_row = (np.log(up) - np.log(down)) / (2 * PERTURB)
    spread = (
        pl.DataFrame({"g": g, "e": per_row})
        .group_by("g")
        .agg(pl.col("e").quantile(0.1).alias("lo"), pl.col("e").quantile(0.9).alias("hi"))
    )
    low, high = np.full(n, np.nan), np.full(n, np.nan)
    low[spread["g"].to_numpy()] = spread["lo"].to_numpy()
    high[spread["g"].to_numpy()] = spread["hi"].to_numpy()
    low, high = np.fmin(low, own), np.fmax(high, own)
    has_rival = recent["log_rival"].is_not_null().to_numpy()
    rup, rdown = predict(0.0, PERTURB), predict(0.0, -PERTURB)
    sums_up = np.bincount(g, np.where(has_rival, rup, 0), n)
    sums_down = np.bincount(g, np.where(has_rival, rdown, 0), n)
    with np.errstate(divide="ignore", invalid="ignore"):
        cross = np.where(sums_down > 0, (np.log(sums_up) - np.log(sums_down)) / (2 * PERTURB), np.nan)
    return own, low, high, cross


def _predict_xgboost(fitted: Fitted, frame: pl.DataFrame) -> np.ndarray:
    return fitted.models["booster"].predict(_xgb_matrix(fitted, frame))


# --- log-log OLS --------------------------------------------------------------------------------


def _fit_ols(frame: pl.DataFrame, params: Mapping[str, Any]) -> Fitted:
    summary = sku_summary(frame, float(params.get("min_price_variation", 0.03)))
    fitted = Fitted("loglog_ols", dict(params), summary, pl.DataFrame(), _vocab(frame), [])
    n = summary.height
    sold = frame.filter(pl.col("units") > 0).with_columns(
        pl.col("log_rival").fill_null(pl.col("log_rival").mean().over("sku_id")).fill_null(0.0)
    )
    g = _sku_index(sold, summary)
    d1, d2 = sold["log_price"].to_numpy().copy(), sold["log_rival"].to_numpy().copy()
    # centred per SKU, so a rival price that never moves drops out instead of making X'X singular
    for d in (d1, d2):
        d -= (np.bincount(g, d, n) / np.maximum(np.bincount(g, minlength=n), 1))[g]
    z = np.column_stack([np.ones(len(g)), d1, d2])
    y = np.log(sold["units"].to_numpy().astype(np.float64))
    xtx = _grouped_moments(g, n, z, np.ones(len(g))) + np.diag([1e-9, 1e-8, 1e-8])
    xty = _grouped_sums(g, n, z, y)
    beta = np.linalg.solve(xtx, xty[..., None])[..., 0]
    resid = y - np.einsum("nk,nk->n", z, beta[g])
    rows = np.bincount(g, minlength=n)
    sigma2 = np.bincount(g, resid**2, n) / np.maximum(rows - 3, 1)
    se = np.sqrt(np.maximum(np.diagonal(np.linalg.inv(xtx), axis1=1, axis2=2), 0) * sigma2[:, None])
    estimable = rows >= 4
    varied2 = np.bincount(g, d2**2, n) > 1e-6
    own = np.where(estimable, beta[:, 1], np.nan)
    cross = np.where(estimable & varied2, beta[:, 2], np.nan)
    means = pl.DataFrame({"sku_id": summary["sku_id"]}).join(
        sold.group_by("sku_id").agg(
            pl.col("log_price").mean().alias("_p"), pl.col("log_rival").mean().alias("_r")
        ),
        on="sku_id",
        how="left",
    )
    fitted.skus = _finish(
        summary,
        own,
        own - Z95 * se[:, 1],
        own + Z95 * se[:, 1],
        cross,
        {
            "intercept": np.where(estimable, beta[:, 0], np.nan),
            "mean_log_price": means["_p"].to_numpy(),
            "mean_log_rival": means["_r"].to_numpy(),
        },
    )
    # level: the SKU's units over all its rows, against exp(fit) over them (zeros included)
    scale = _ols_raw(fitted, frame)
    ratio = (
        pl.DataFrame({"sku_id": frame["sku_id"], "u": frame["units"], "p": scale})
        .group_by("sku_id")
        .agg((pl.col("u").sum() / pl.col("p").sum()).alias("ols_scale"))
    )
    fitted.skus = fitted.skus.join(ratio, on="sku_id", how="left")
    fitted.categories = _category_table(fitted.skus)
    return fitted


def _ols_raw(fitted: Fitted, frame: pl.DataFrame) -> np.ndarray:
    rows = frame.select("sku_id", "log_price", "log_rival").join(
        fitted.skus.select(
            "sku_id", "intercept", "own_elasticity", "cross_elasticity", "mean_log_price", "mean_log_rival"
        ),
        on="sku_id",
        how="left",
    )
    eta = rows.select(
        pl.col("intercept")
        + pl.col("own_elasticity") * (pl.col("log_price") - pl.col("mean_log_price"))
        + pl.col("cross_elasticity").fill_null(0.0)
        * (pl.col("log_rival").fill_null(pl.col("mean_log_rival")) - pl.col("mean_log_rival")).fill_null(0.0)
    ).to_series()
    return np.exp(np.clip(eta.fill_null(np.nan).to_numpy().astype(float), -20, 20))


def _predict_ols(fitted: Fitted, frame: pl.DataFrame) -> np.ndarray:
    raw = _ols_raw(fitted, frame)
    scale = frame.select("sku_id").join(fitted.skus.select("sku_id", "ols_scale"), on="sku_id", how="left")[
        "ols_scale"
    ]
    predicted = raw * scale.fill_null(np.nan).to_numpy().astype(float)
    # a SKU without a fit (too few days with sales): its mean, or its category's
    return np.where(np.isfinite(predicted), predicted, _levels(frame, fitted))


# --- one face -----------------------------------------------------------------------------------

_FIT = {"dml": _fit_dml, "xgboost": _fit_xgboost, "loglog_ols": _fit_ols}
_PREDICT = {"dml": _predict_dml, "xgboost": _predict_xgboost, "loglog_ols": _predict_ols}


def fit(kind: str, frame: pl.DataFrame, params: Mapping[str, Any]) -> Fitted:
    """Fit estimator ``kind`` on prepared rows.

    Args:
        kind: One of :data:`KINDS`.
        frame: Rows of :func:`pipelines.pricing.dataset.prepare_pricing_frame`.
        params: ``min_price_variation``, ``seed``; ``folds`` and ``nuisance_rounds`` (dml);
            ``rounds``, ``learning_rate``, ``max_depth`` (xgboost); ``threads`` (default 1).

    Raises:
        ValueError: Unknown kind, or no rows.
    """
    if kind not in _FIT:
        raise ValueError(f"unknown elasticity estimator {kind!r}; known: {', '.join(KINDS)}")
    if frame.is_empty():
        raise ValueError("no rows to estimate elasticities from")
    from threadpoolctl import threadpool_limits

    started = time.perf_counter()
    # OpenMP's spinning threads slow the boosters down many times over on a shared, busy machine;
    # one thread each is steady (``threads`` raises it)
    with threadpool_limits(limits=int(params.get("threads", FIT_THREADS))):
        fitted = _FIT[kind](frame, params)
    fitted.metrics["fit_seconds"] = time.perf_counter() - started
    return fitted


def elasticities(fitted: Fitted, frame: pl.DataFrame | None = None) -> pl.DataFrame:
    """One row per SKU (:data:`ELASTICITY_COLUMNS`).

    Without ``frame``: the SKUs the estimator was fitted on. With it: the frame's SKUs, their
    ``n_days``, ``price_variation``, ``identified`` and ``category`` from the frame, their
    elasticities from the fit (an unseen SKU gets its category's pooled figures, not identified).
    """
    cols = list(ELASTICITY_COLUMNS)
    if frame is None:
        return fitted.skus.select(cols)
    summary = sku_summary(frame, float(fitted.params.get("min_price_variation", 0.03)))
    estimates = ["own_elasticity", "own_elasticity_low", "own_elasticity_high", "cross_elasticity"]
    known = fitted.skus.select("sku_id", *[pl.col(c).alias(f"_{c}") for c in estimates])
    cats = fitted.categories.select("category", *[pl.col(c).alias(f"_cat_{c}") for c in estimates])
    rows = summary.join(known, on="sku_id", how="left").join(cats, on="category", how="left")
    seen = pl.col("_own_elasticity").is_not_null() | pl.col("sku_id").is_in(fitted.skus["sku_id"].implode())
    return (
        rows.with_columns(
            *[pl.coalesce(f"_{c}", f"_cat_{c}").alias(c) for c in estimates],
            (pl.col("identified") & seen).alias("identified"),
        )
        .with_columns(pl.when(pl.col("has_rival")).then(pl.col("cross_elasticity")).alias("cross_elasticity"))
        .select(cols)
    )


def predict_units(fitted: Fitted, frame: pl.DataFrame) -> np.ndarray:
    """Expected units of each row of ``frame`` at the prices it carries."""
    return _PREDICT[fitted.kind](fitted, frame)
