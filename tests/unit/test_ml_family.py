"""The shared model layer's pure parts: recipes, what gets evaluated, which candidate goes forward."""

from __future__ import annotations

import math

import polars as pl
import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.ml.families import get_family
from pipelines.ml.family import Evaluation, OutputTable, Recipe, format_table
from pipelines.ml.lifecycle import CHAMPION_LABEL, ChampionRecipe, best_candidate, evaluation_recipes
from pipelines.ml.registry import _decide


class Family:
    name = "toy"
    model_name = "toy_model"
    metric = "mae"
    higher_is_better = False
    candidates = ("good", "other")
    baselines = ("naive",)
    output = OutputTable("toy.out", {"id": "bigint", "y": "double"}, ("id",), "id")

    def __init__(self, alpha: float = 0.5) -> None:
        self.alpha = alpha

    def recipe(self, settings: object, kind: str) -> Recipe:
        return Recipe(kind, {"alpha": self.alpha} if kind == "good" else {})


def evaluation(**scores: float) -> Evaluation:
    return Evaluation(comparison=pl.DataFrame({"model": list(scores), "mae": list(scores.values())}))


def test_recipes_compare_by_content_and_survive_json() -> None:
    recipe = Recipe("lstm", {"epochs": 2, "hidden_sizes": [64, 32]})
    assert (
        Recipe.from_json(recipe.to_json())
        == recipe
        == Recipe("lstm", {"hidden_sizes": [64, 32], "epochs": 2})
    )
    assert recipe != Recipe("lstm", {"epochs": 3, "hidden_sizes": [64, 32]})
    assert len({recipe, Recipe.from_json(recipe.to_json())}) == 1


def test_the_layer_adds_run_date_and_the_model_columns_to_every_output() -> None:
    assert list(Family.output.all_columns()) == [
        "run_date",
        "id",
        "y",
        "model_name",
        "model_version",
        "scored_at",
    ]


def test_without_a_champion_only_candidates_and_baselines_are_evaluated() -> None:
    recipes, label = evaluation_recipes(Family(), None, None)
    assert list(recipes) == ["good", "other", "naive"] and label is None


def test_a_champion_with_the_candidates_recipe_is_not_evaluated_twice() -> None:
    family = Family(alpha=0.5)
    recipes, label = evaluation_recipes(family, None, ChampionRecipe(3, Recipe("good", {"alpha": 0.5})))
    assert CHAMPION_LABEL not in recipes and label == "good"


def test_a_champion_with_another_recipe_is_evaluated_under_its_own_label() -> None:
    recipes, label = evaluation_recipes(
        Family(alpha=0.1), None, ChampionRecipe(3, Recipe("good", {"alpha": 0.9}))
    )
    assert label == CHAMPION_LABEL and recipes[CHAMPION_LABEL] == Recipe("good", {"alpha": 0.9})


def test_a_champion_without_a_recorded_recipe_or_of_a_gone_kind_falls_back_to_its_stored_figure() -> None:
    assert evaluation_recipes(Family(), None, ChampionRecipe(1, None))[1] is None
    assert evaluation_recipes(Family(), None, ChampionRecipe(1, Recipe("retired_kind")))[1] is None


def test_the_best_candidate_goes_forward_and_the_flagship_wins_ties_and_all_nan() -> None:
    assert best_candidate(Family(), evaluation(good=2.0, other=1.0, naive=0.5)) == "other"
    assert best_candidate(Family(), evaluation(good=1.0, other=1.0, naive=3.0)) == "good"
    assert best_candidate(Family(), evaluation(good=math.nan, other=math.nan, naive=3.0)) == "good"


def test_promotion_rule_every_baseline_then_the_champion() -> None:
    lower = False
    assert _decide(1.0, None, None, ("naive", 0.9), lower) == (
        False,
        "does not beat every baseline: naive scores 0.9 against 1 (lower is better)",
    )
    assert _decide(1.0, None, None, ("naive", 2.0), lower)[0]
    assert not _decide(1.0, 1.0, 4, ("naive", 2.0), lower)[0]  # a tie with another recipe
    promoted, reason = _decide(1.0, 1.0, 4, ("naive", 2.0), lower, same_recipe=True)
    assert promoted and "same recipe as champion v4" in reason
    assert not _decide(1.1, 1.0, 4, ("naive", 2.0), lower, same_recipe=True)[0]
    assert _decide(0.9, 1.0, 4, ("naive", 2.0), lower)[0]


def test_format_table_aligns_and_marks_missing_values() -> None:
    text = format_table(pl.DataFrame({"model": ["a", "bb"], "mae": [1.0, None], "n_points": [10, 2000]}))
    assert text.splitlines()[0].split() == ["model", "mae", "n_points"] and "2,000" in text and " - " in text


def test_unknown_families_are_named_with_the_known_ones() -> None:
    with pytest.raises(KeyError, match="unknown model family 'vision'; known: forecast, pricing"):
        get_family("vision")
    result = CliRunner().invoke(app, ["train", "vision"])
    assert result.exit_code == 2 and "unknown model family 'vision'" in result.output
