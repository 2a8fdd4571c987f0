"""Docs that are rendered from code stay in step with it."""

from __future__ import annotations

from pathlib import Path

from pipelines.data.contract import render_markdown

ROOT = Path(__file__).resolve().parents[2]


def test_data_contract_doc_matches_the_contract_module() -> None:
    doc = (ROOT / "docs" / "data-contract.md").read_text()
    assert doc.strip() == render_markdown().strip(), "run: ecom contract > docs/data-contract.md"


def test_readme_shows_the_two_commands_and_ci_runs_the_test_one() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make run" in readme and "make test" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
