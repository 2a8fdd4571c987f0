"""The model families the CLI and DAGs know by name (imported only when asked for)."""

from __future__ import annotations

import importlib

from pipelines.ml.family import ModelFamily

# name -> "module:attribute" of the family object.
FAMILIES = {
    "forecast": "pipelines.forecast.family:FORECAST",
    "pricing": "pipelines.pricing.family:PRICING",
}


def get_family(name: str) -> ModelFamily:
    """The family registered as ``name``.

    Raises:
        KeyError: No such family (the message lists the known ones).
    """
    if name not in FAMILIES:
        raise KeyError(f"unknown model family {name!r}; known: {', '.join(sorted(FAMILIES))}")
    module, _, attribute = FAMILIES[name].partition(":")
    return getattr(importlib.import_module(module), attribute)
