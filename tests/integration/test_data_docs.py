"""The Data Docs site that a marts audit builds renders offline: no script, stylesheet or image comes
from the network, and every copied file a page names exists."""

from __future__ import annotations

import re

import pytest

from pipelines.config import Settings
from pipelines.quality import validate_marts
from pipelines.quality.data_docs import ASSETS_DIR, remote_assets
from tests.integration.test_quality_marts import RUN, _build

pytestmark = pytest.mark.integration

_LOCAL_REF = re.compile(r"""<(?:script|link|img)\b[^>]*\b(?:src|href)=["'](?!https?:|data:|#)([^"'?#]+)""")


def test_the_data_docs_site_loads_nothing_from_the_network(settings: Settings) -> None:
    assert ASSETS_DIR.is_dir(), f"{ASSETS_DIR} is missing: `make setup` installs it (npm ci)"
    _build(settings)
    site = validate_marts(settings, RUN).data_docs_index.parent

    pages = sorted(site.rglob("*.html"))
    assert len(pages) > 10  # the index, a page per suite and per validation
    for page in [*pages, *sorted((site / "static" / "styles").glob("*.css"))]:
        text = page.read_text(encoding="utf-8")
        assert remote_assets(text) == [], page.relative_to(site)
        # Only what the rewrite points at: GX's own favicon link on validation pages is one level
        # short, a GX bug that costs nothing but the icon.
        for ref in (r for r in _LOCAL_REF.findall(text) if "static/vendor/" in r or "logo-long" in r):
            assert (page.parent / ref).is_file(), f"{page.relative_to(site)} names missing {ref}"
    index = (site / "index.html").read_text(encoding="utf-8")
    for name in ("jquery.min.js", "bootstrap-table.min.js", "all.min.css", "vega-embed.min.js"):
        assert name in index
    fonts = site / "static/vendor/fortawesome/fontawesome-free/webfonts"
    assert sorted(p.name for p in fonts.glob("*.woff2"))
