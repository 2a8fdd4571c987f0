"""The causal demand model: each lever moves expected demand the documented way."""

from __future__ import annotations

import datetime as dt
import itertools

import numpy as np
import pytest

from pipelines.data import world as w


def _demand(**overrides: object) -> float:
    args = dict(
        base=np.array(2.0),
        price=np.array(100.0),
        reference_price=np.array(100.0),
        elasticity=np.array(-1.8),
        competitor_price=np.array(100.0),
        cross_elasticity=np.array(0.6),
        promo_active=np.array(False),
        promo_uplift=np.array(1.3),
        context=np.array(1.0),
    )
    args.update(overrides)
    return float(w.expected_demand(**args))


def test_a_promotion_raises_expected_demand() -> None:
    plain = _demand()
    assert _demand(promo_active=np.array(True)) == pytest.approx(plain * 1.3)
    # A promotion that also cuts the price raises demand further through the elasticity.
    assert _demand(promo_active=np.array(True), price=np.array(80.0)) > _demand(promo_active=np.array(True))


@pytest.mark.parametrize("elasticity", [-0.4, -1.2, -3.0])
def test_a_higher_own_price_lowers_expected_demand(elasticity: float) -> None:
    prices = np.array([60.0, 80.0, 100.0, 120.0, 150.0])
    demand = [_demand(price=np.array(p), elasticity=np.array(elasticity)) for p in prices]
    assert all(a > b for a, b in itertools.pairwise(demand))


def test_a_cheaper_competitor_takes_demand_and_no_competitor_is_neutral() -> None:
    assert _demand(competitor_price=np.array(80.0)) < _demand() < _demand(competitor_price=np.array(120.0))
    assert _demand(competitor_price=np.array(np.inf)) == pytest.approx(_demand())


def test_ramp_up_is_zero_before_launch_and_rises_to_one() -> None:
    ramp = w.ramp_up(np.arange(-3, 200), np.array(20.0))
    assert (ramp[:3] == 0).all()
    assert (np.diff(ramp[3:]) > 0).all()
    assert ramp[-1] == pytest.approx(1.0, abs=1e-3)


def test_shopping_calendar_peaks_and_the_spring_festival_shutdown() -> None:
    start = dt.date(2024, 1, 1)
    effects = w.event_log_effects(start, 366)
    weights = np.array([leaf.department.event_weight for leaf in w.LEAVES])
    calendar = w.calendar_multiplier(weights, effects)
    day = {d: i for i, d in enumerate(w.dates_of(start, 366))}
    assert (calendar[:, day[dt.date(2024, 11, 11)]] > 2.0).all()
    assert (calendar[:, day[dt.date(2024, 6, 18)]] > 1.3).all()
    assert (calendar[:, day[dt.date(2024, 12, 12)]] > 1.3).all()
    assert (calendar[:, day[dt.date(2024, 2, 10)]] < 1.0).all()  # lunar new year: logistics pause
    assert (calendar[:, day[dt.date(2024, 3, 20)]] == 1.0).all()


def test_calendar_refuses_years_without_a_known_spring_festival() -> None:
    with pytest.raises(ValueError, match="Spring Festival"):
        w.event_log_effects(dt.date(2031, 1, 1), 10)


def test_weekends_and_yearly_peaks() -> None:
    dow, doy = np.arange(14) % 7, np.arange(1, 15)
    m = w.seasonal_multiplier(np.array([0.3]), np.array([0.0]), np.array([1]), dow, doy)[0]
    assert m[5] > m[0] and m[6] > m[2]
    yearly = w.seasonal_multiplier(
        np.array([0.0]), np.array([0.5]), np.array([200]), np.zeros(365, int), np.arange(1, 366)
    )[0]
    assert int(np.argmax(yearly)) + 1 == 200
