"""Data Docs that render offline: the CDN files GX links, served from beside the site.

Great Expectations 1.x writes every Data Docs page with ``<script>`` and ``<link>`` tags that load
jQuery, Bootstrap, bootstrap-table, Font Awesome and Vega from public CDNs, and its logo from S3.
Without the network the pages render unstyled and the index stays empty (bootstrap-table fills
it). :func:`localise_site` copies the same files, installed from the npm registry by
``make setup`` into ``assets/data-docs/node_modules`` (exact versions in its package-lock.json),
to ``static/vendor/`` in the site, and points each page at them with a relative path, so the site
also works opened as ``file://``.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path

from pipelines.config import REPO_ROOT

__all__ = ["ASSETS_DIR", "CDN_FILES", "AssetsMissingError", "localise_site", "remote_assets"]

log = logging.getLogger(__name__)

ASSETS_DIR = REPO_ROOT / "assets" / "data-docs" / "node_modules"
VENDOR = "static/vendor"

_CDNJS = "https://cdnjs.cloudflare.com/ajax/libs"
_TABLE = "https://unpkg.com/bootstrap-table@1.19.1/dist"
# GX links the filter-control styles of 1.19.0 (minified on the index only): 1.19.1's serve.
_TABLE_CSS = "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control"
_FILTER = "bootstrap-table/dist/extensions/filter-control/bootstrap-table-filter-control"
# The address GX 1.24 links (query string dropped) -> the file in ASSETS_DIR. Versions are GX's,
# except vega, vega-lite and vega-embed, linked by major version only (the newest of each).
CDN_FILES = {
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery/dist/jquery.min.js",
    f"{_CDNJS}/popper.js/1.12.9/umd/popper.min.js": "popper.js/dist/umd/popper.min.js",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": (
        "bootstrap/dist/js/bootstrap.min.js"
    ),
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": (
        "bootstrap/dist/css/bootstrap.min.css"
    ),
    f"{_TABLE}/bootstrap-table.min.js": "bootstrap-table/dist/bootstrap-table.min.js",
    f"{_TABLE}/bootstrap-table.min.css": "bootstrap-table/dist/bootstrap-table.min.css",
    f"{_TABLE}/extensions/filter-control/bootstrap-table-filter-control.min.js": f"{_FILTER}.min.js",
    f"{_TABLE_CSS}/bootstrap-table-filter-control.min.css": f"{_FILTER}.min.css",
    f"{_TABLE_CSS}/bootstrap-table-filter-control.css": f"{_FILTER}.min.css",
    f"{_CDNJS}/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js": (
        "bootstrap-datepicker/dist/js/bootstrap-datepicker.min.js"
    ),
    f"{_CDNJS}/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css": (
        "bootstrap-datepicker/dist/css/bootstrap-datepicker.min.css"
    ),
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css": (
        "@forevolve/bootstrap-dark/dist/css/bootstrap-prefers-dark.css"
    ),
    f"{_CDNJS}/font-awesome/6.6.0/css/all.min.css": "@fortawesome/fontawesome-free/css/all.min.css",
    "https://cdn.jsdelivr.net/npm/vega@5": "vega/build/vega.min.js",
    "https://cdn.jsdelivr.net/npm/vega-lite@5": "vega-lite/build/vega-lite.min.js",
    "https://cdn.jsdelivr.net/npm/vega-embed@6": "vega-embed/build/vega-embed.min.js",
}
# Folders a copied stylesheet refers to (``url(../webfonts/...)``).
CDN_FOLDERS = ("@fortawesome/fontawesome-free/webfonts",)
# GX's logo from S3 -> the copy GX already puts in the site.
_GX_WEB = "https://great-expectations-web-assets.s3.us-east-2.amazonaws.com"
SITE_FILES = {
    f"{_GX_WEB}/logo-long.png": "static/images/logo-long.png",
    f"{_GX_WEB}/full_logo_dark.png": "static/images/logo-long.png",
}

_TAG = re.compile(r"<(?:script|link|img)\b[^>]*>", re.IGNORECASE)
_ATTR_URL = re.compile(r"""\b(src|href)=(["'])(https?://[^"']+)\2""", re.IGNORECASE)
# Subresource integrity needs a CORS fetch, which file:// pages cannot make: dropped for local files.
_SRI = re.compile(r"""\s+(?:integrity|crossorigin)(?:=(["'])[^"']*\1)?""", re.IGNORECASE)
_CSS_URL = re.compile(r"""url\((["']?)(https?://[^"')]+)\1\)""", re.IGNORECASE)
_ASSET_REF = re.compile(
    r"""<(?:script|img)\b[^>]*\bsrc=["'](https?://[^"']+)["']"""
    r"""|<link\b(?=[^>]*\brel=["']?(?:stylesheet|icon|shortcut icon)["']?)[^>]*\bhref=["'](https?://[^"']+)["']"""
    r"""|url\(["']?(https?://[^"')]+)["']?\)""",
    re.IGNORECASE,
)


class AssetsMissingError(RuntimeError):
    """The npm packages with the Data Docs' front-end files are not installed."""


def _site_path(url: str) -> str | None:
    """Where the file for ``url`` lives in the site, relative to its root; None if not ours."""
    bare = url.split("?", 1)[0].split("#", 1)[0]
    if bare in CDN_FILES:
        return f"{VENDOR}/{CDN_FILES[bare].lstrip('@')}"
    return SITE_FILES.get(bare)


def _copy_assets(site: Path, assets: Path) -> None:
    missing = [rel for rel in CDN_FILES.values() if not (assets / rel).is_file()]
    if missing:
        raise AssetsMissingError(
            f"Data Docs assets missing from {assets} ({', '.join(sorted(missing)[:3])}...): run `make setup` "
            "(npm ci in assets/data-docs)"
        )
    pairs = [(assets / rel, site / VENDOR / rel.lstrip("@")) for rel in set(CDN_FILES.values())]
    for folder in CDN_FOLDERS:
        pairs += [(f, site / VENDOR / folder.lstrip("@") / f.name) for f in (assets / folder).iterdir()]
    for source, target in pairs:
        if target.is_file() and target.stat().st_size == source.stat().st_size:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)


def _relative(site: Path, page: Path, site_path: str) -> str:
    return Path(os.path.relpath(site / site_path, page.parent)).as_posix()


def _rewrite(text: str, site: Path, page: Path) -> str:
    def tag(match: re.Match[str]) -> str:
        found = _ATTR_URL.search(match.group(0))
        local = _site_path(found.group(3)) if found else None
        if found is None or local is None:
            return match.group(0)
        attr, quote = found.group(1), found.group(2)
        replaced = match.group(0).replace(
            found.group(0), f"{attr}={quote}{_relative(site, page, local)}{quote}"
        )
        return _SRI.sub("", replaced)

    def css(match: re.Match[str]) -> str:
        local = _site_path(match.group(2))
        return match.group(0) if local is None else f"url('{_relative(site, page, local)}')"

    return _CSS_URL.sub(css, _TAG.sub(tag, text))


def localise_site(site: Path, pages: Iterable[Path] | None = None, *, assets: Path = ASSETS_DIR) -> int:
    """Serve the site's CDN files from ``static/vendor`` and point ``pages`` at them.

    Args:
        site: The Data Docs site's root (the folder of its ``index.html``).
        pages: HTML pages to rewrite (default: every page of the site); the site's stylesheets are
            always rewritten.
        assets: Where the npm packages are installed.

    Returns:
        How many files were changed.

    Raises:
        AssetsMissingError: The npm packages are not installed.
    """
    _copy_assets(site, assets)
    targets = list(site.rglob("*.html") if pages is None else pages)
    targets += sorted((site / "static" / "styles").glob("*.css"))
    changed = 0
    for page in targets:
        text = page.read_text(encoding="utf-8")
        new = _rewrite(text, site, page)
        if new != text:
            page.write_text(new, encoding="utf-8")
            changed += 1
    return changed


def remote_assets(text: str) -> list[str]:
    """Every http(s) address ``text`` loads as an asset (scripts, stylesheets, images, CSS url())."""
    return sorted({next(g for g in m.groups() if g) for m in _ASSET_REF.finditer(text)})
