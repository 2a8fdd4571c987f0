"""Data Docs pages point at local copies of the files GX links from CDNs (pipelines/quality/data_docs.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.quality.data_docs import CDN_FILES, AssetsMissingError, localise_site, remote_assets

GX_WEB = "https://great-expectations-web-assets.s3.us-east-2.amazonaws.com"
POPPER = "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js"
PAGE = f"""<html><head>
<link rel="stylesheet" href="https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css"/>
<script src="{POPPER}" integrity="sha384-x" crossorigin="anonymous"></script>
<script src="https://cdn.jsdelivr.net/npm/vega@5"></script>
<style>.logo {{ background: url('{GX_WEB}/full_logo_dark.png') }}</style>
</head><body>
<img src="{GX_WEB}/logo-long.png?d=20261204T142015Z">
<a href="https://greatexpectations.io">Great Expectations</a>
</body></html>
"""


@pytest.fixture
def assets(tmp_path: Path) -> Path:
    """Stand-ins for the npm packages: one small file per linked file, and Font Awesome's fonts."""
    root = tmp_path / "node_modules"
    for rel in CDN_FILES.values():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(f"/* {rel} */")
    fonts = root / "@fortawesome/fontawesome-free/webfonts"
    fonts.mkdir(parents=True, exist_ok=True)
    (fonts / "fa-solid-900.woff2").write_bytes(b"font")
    return root


def test_a_nested_page_loads_every_asset_from_the_site(tmp_path: Path, assets: Path) -> None:
    site = tmp_path / "site"
    page = site / "validations" / "marts" / "run" / "page.html"
    page.parent.mkdir(parents=True)
    page.write_text(PAGE)

    assert localise_site(site, assets=assets) == 1

    text = page.read_text()
    assert remote_assets(text) == []
    assert 'href="../../../static/vendor/bootstrap/dist/css/bootstrap.min.css"' in text
    assert '<script src="../../../static/vendor/popper.js/dist/umd/popper.min.js"></script>' in text
    assert 'src="../../../static/vendor/vega/build/vega.min.js"' in text
    assert "url('../../../static/images/logo-long.png')" in text
    assert 'src="../../../static/images/logo-long.png"' in text
    assert '<a href="https://greatexpectations.io">' in text  # links stay links
    assert (site / "static/vendor/fortawesome/fontawesome-free/css/all.min.css").is_file()
    assert (site / "static/vendor/fortawesome/fontawesome-free/webfonts/fa-solid-900.woff2").is_file()


def test_rewriting_twice_changes_nothing(tmp_path: Path, assets: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text(PAGE)
    localise_site(site, assets=assets)
    assert localise_site(site, assets=assets) == 0


def test_an_address_gx_starts_linking_is_reported_not_hidden(tmp_path: Path, assets: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text('<script src="https://cdn.example.org/new-lib@2.js"></script>')
    localise_site(site, assets=assets)
    assert remote_assets((site / "index.html").read_text()) == ["https://cdn.example.org/new-lib@2.js"]


def test_missing_packages_name_the_setup_step(tmp_path: Path) -> None:
    with pytest.raises(AssetsMissingError, match=r"run `make setup` \(npm ci in assets/data-docs\)"):
        localise_site(tmp_path, assets=tmp_path / "nothing")
