"""Competitor price monitoring: price parsing, OCR, and the crawler's manners against a local site."""

from __future__ import annotations

import collections
import datetime as dt
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import polars as pl
import pytest

from pipelines.config import CrawlParams
from pipelines.pricing.crawl import CrawlState, crawl_sites, parse_price_text, parse_product_page
from pipelines.pricing.monitor import extraction_accuracy, quarantine_rejections, staleness_at_cadence
from pipelines.pricing.ocr import OcrUnavailable, parse_price_number, read_price
from pipelines.pricing.site import RivalSite, SiteFaults, format_price, render_price_image, serve_rival_sites

DAY = dt.date(2024, 6, 3)


def _catalogue(n: int = 12, rivals: tuple[str, ...] = ("rival_a",)) -> pl.DataFrame:
    rng = random.Random(3)
    rows = []
    for competitor in rivals:
        for i in range(1, n + 1):
            price = round(rng.uniform(5, 9000), 1)
            rows.append((competitor, i, f"SKU-{i:03d}", f"Product {i}", price))
    return pl.DataFrame(rows, schema=["competitor", "sku_id", "sku_code", "title", "price"], orient="row")


def _params(**overrides: object) -> CrawlParams:
    base = {"requests_per_second": 500.0, "backoff_seconds": 0.01, "timeout_seconds": 5.0}
    base.update(overrides)
    return CrawlParams(**base)


def _truth(catalogue: pl.DataFrame) -> dict[tuple[str, str], float]:
    return {(c, code): p for c, code, p in catalogue.select("competitor", "sku_code", "price").iter_rows()}


# --- price text --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "price"),
    [
        ("¥1,299.00", 1299.0),
        ("¥12.50", 12.5),
        ("¥1,234,567.89", 1234567.89),
        ("CNY 1299.00", 1299.0),
        ("CNY 0.99", 0.99),
        (" CNY  45.10 ", 45.1),
        ("￥88.00", 88.0),
    ],
)
def test_price_text_of_each_format_is_read_exactly(text: str, price: float) -> None:
    assert parse_price_text(text) == price


@pytest.mark.parametrize(
    "text", ["1299", "¥1,299", "from ¥99.00", "¥12,34.00", "CNY 1299.0", "¥1.299,00", "USD 12.00", ""]
)
def test_anything_but_a_well_formed_price_is_refused(text: str) -> None:
    assert parse_price_text(text) is None


@pytest.mark.parametrize("layout", ["classic", "modern"])
def test_each_layout_formats_and_reads_back_every_price(layout: str) -> None:
    rng = random.Random(11)
    for _ in range(200):
        price = round(rng.uniform(0.1, 99999), 1)
        assert parse_price_text(format_price(price, layout)) == price  # type: ignore[arg-type]
        assert parse_price_number(format_price(price, layout, with_currency=False)) == price  # type: ignore[arg-type]


def test_each_site_layout_is_parsed_and_the_struck_price_ignored() -> None:
    catalogue = _catalogue(30)
    for share in (0.0, 1.0):
        site = RivalSite(
            "rival_a", catalogue, DAY, 0, SiteFaults.off(layout_change_share=share, was_price_share=1.0)
        )
        assert site.layout == ("modern" if share else "classic")
        for code, (_title, price) in site.products.items():
            read = parse_product_page(site.product(code) or "", code)
            assert (read.layout, read.price, read.reason) == (site.layout, price, None)


def test_a_page_for_another_product_or_without_a_price_is_refused() -> None:
    site = RivalSite("rival_a", _catalogue(3), DAY, 0, SiteFaults.off())
    page = site.product("SKU-001") or ""
    assert "not 'SKU-002'" in (parse_product_page(page, "SKU-002").reason or "")
    broken = page.replace('class="price-now"', 'class="price-later"')
    assert parse_product_page(broken, "SKU-001").reason == "no price on the page (classic layout)"
    unknown = RivalSite("rival_a", _catalogue(3), DAY, 0, SiteFaults.off(unknown_layout_share=1.0))
    read = parse_product_page(unknown.product("SKU-001") or "", "SKU-001")
    assert (read.price, read.reason) == (None, "layout not recognised")


# --- OCR ---------------------------------------------------------------------------------------


def test_ocr_reads_rendered_prices_exactly() -> None:
    rng = random.Random(7)
    cases = []
    for i in range(24):
        price = round(rng.uniform(1, 9999), 1)
        text = format_price(price, "classic" if i % 2 else "modern", with_currency=False)
        cases.append((price, render_price_image(text, size=(18, 20, 22, 24)[i % 4])))
    # Two at a time, as the crawler does: each read is a Tesseract process.
    with ThreadPoolExecutor(2) as pool:
        reads = list(pool.map(lambda case: read_price(case[1], 80.0), cases))
    assert [r.price for r in reads] == [price for price, _ in cases]
    assert all(r.confidence >= 80 and r.reason is None for r in reads)


def test_ocr_refuses_a_garbled_image_rather_than_guess() -> None:
    for text in ("1,299.00", "4583.60", "87.30"):
        read = read_price(render_price_image(text, size=20, garbled=True), 80.0)
        assert read.price is None and read.reason
    assert read_price(b"not a png", 80.0).reason.startswith("not an image")


def test_ocr_refuses_text_that_is_not_a_price() -> None:
    read = read_price(render_price_image("12,34.5", size=22), 0.0)
    assert read.price is None and "not a well-formed price" in (read.reason or "")


def test_a_missing_tesseract_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TESSERACT_CMD", str(tmp_path / "no-tesseract"))
    with pytest.raises(OcrUnavailable, match=r"make setup.*apt-get install tesseract-ocr.*TESSERACT_CMD"):
        read_price(render_price_image("1.00"), 80.0)


# --- the crawler's manners --------------------------------------------------------------------


def test_robots_txt_is_obeyed_and_nothing_disallowed_is_requested() -> None:
    catalogue = _catalogue(30)
    faults = SiteFaults.off(disallow=("/cart", "/search", "/account", "/p/SKU-01"), page_size=7)
    with serve_rival_sites(catalogue, DAY, faults=faults) as sites:
        result = crawl_sites(sites, None, _params())
        log = sites.sites["rival_a"].requests
    paths = [r.path for r in log]
    assert paths[0] == "/robots.txt"
    assert not [p for p in paths if p.startswith(("/cart", "/search", "/account", "/p/SKU-01"))]
    assert sum(p.startswith("/products") for p in paths) == 5  # 30 products, 7 a page, pages followed
    codes = set(result.observations["sku_code"])
    assert codes == {f"SKU-{i:03d}" for i in range(1, 31)} - {f"SKU-{i:03d}" for i in range(10, 20)}
    assert result.stats.disallowed == 10
    assert {r.user_agent for r in log} == {"ecom-price-monitor/1.0"}


def test_the_slower_of_crawl_delay_and_our_rate_is_kept_per_second() -> None:
    catalogue = _catalogue(40)
    # robots.txt asks for 0.1 s between requests; we would go at 500/s.
    faults = SiteFaults.off(crawl_delay_seconds=0.1, rate_limit_per_second=15)
    with serve_rival_sites(catalogue, DAY, faults=faults) as sites:
        result = crawl_sites(sites, {f"SKU-{i:03d}" for i in range(1, 21)}, _params(concurrency=8))
        log = [r for r in sites.sites["rival_a"].requests if r.path != "/robots.txt"]
    start = log[0].at
    per_second = collections.Counter(int(r.at - start) for r in log)
    # 10 a second, 11 when a second's bin catches both ends; 12 leaves room for a busy machine.
    assert max(per_second.values()) <= 12 and len(log) == 21  # the listing page, 20 products
    assert result.stats.rate_limited == 0 and result.observations.height == 20


def test_429_with_retry_after_and_5xx_are_retried_until_they_succeed() -> None:
    catalogue = _catalogue(20)
    faults = SiteFaults.off(error_rate=0.5, rate_limit_per_second=10, retry_after_seconds=1)
    with serve_rival_sites(catalogue, DAY, faults=faults) as sites:
        result = crawl_sites(sites, None, _params(concurrency=4, requests_per_second=40.0, max_retries=8))
        log = sites.sites["rival_a"].requests
    assert result.observations.height == 20 and result.rejections.is_empty()
    assert result.stats.server_errors > 0 and result.stats.rate_limited > 0
    assert result.stats.retries == result.stats.server_errors + result.stats.rate_limited
    # After a 429 the client waited the Retry-After second before its next request.
    limited = [r for r in log if r.status == 429]
    for hit in limited[:3]:
        later = [r.at for r in log if r.at > hit.at and r.path == hit.path]
        assert later and later[0] - hit.at >= 0.95


def test_retries_run_out_into_a_rejection_with_the_reason() -> None:
    catalogue = _catalogue(4)
    faults = SiteFaults.off(error_rate=1.0)  # every path fails once or twice
    with serve_rival_sites(catalogue, DAY, faults=faults) as sites:
        result = crawl_sites(sites, None, _params(max_retries=0))
    assert result.observations.is_empty()
    assert result.rejections["reason"].to_list() == ["listing page not read: HTTP 503 (0 retries)"]


def test_timeouts_are_retried() -> None:
    catalogue = _catalogue(3)
    faults = SiteFaults.off(slow_share=1.0, slow_seconds=(0.6, 0.6))  # only a path's first try is slow
    with serve_rival_sites(catalogue, DAY, faults=faults) as sites:
        result = crawl_sites(sites, None, _params(timeout_seconds=0.3))
    assert result.stats.timeouts >= 4 and result.observations.height == 3


def test_unchanged_pages_answer_304_and_reconfirm_the_last_price(tmp_path: Path) -> None:
    catalogue = _catalogue(10)
    faults = SiteFaults.off(image_share=0.3)
    path = tmp_path / "state.json"
    state = CrawlState.load(path)  # no file yet: an empty state
    assert state.entries == {}
    with serve_rival_sites(catalogue, DAY, faults=faults) as sites:
        first = crawl_sites(sites, None, _params(), state=state)
        state.save(path)
        second = crawl_sites(sites, None, _params(), state=CrawlState.load(path))
    assert set(first.observations["method"]) == {"html", "ocr"}
    assert set(second.observations["method"]) == {"not_modified"}
    assert second.stats.not_modified == 11 and second.stats.ocr_reads == 0  # 10 products, 1 listing
    before = first.observations.select("competitor", "sku_code", "price")
    assert second.observations.select("competitor", "sku_code", "price").equals(before)
    assert (second.observations["observed_at"] > first.observations["observed_at"].max()).all()
    ocr_rows = second.observations.join(first.observations.filter(pl.col("method") == "ocr"), on="sku_code")
    assert ocr_rows.height and (ocr_rows["ocr_confidence"] == ocr_rows["ocr_confidence_right"]).all()
    # A changed price is a changed page: fetched again, not confirmed.
    moved = catalogue.with_columns(pl.when(pl.col("sku_id") == 1).then(1.5).otherwise("price").alias("price"))
    with serve_rival_sites(moved, DAY, faults=faults) as sites:
        third = crawl_sites(sites, None, _params(), state=CrawlState.load(path))
    row = third.observations.filter(pl.col("sku_code") == "SKU-001").row(0, named=True)
    assert row["price"] == 1.5 and row["method"] in {"html", "ocr"}


def test_a_broken_state_file_says_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="delete it"):
        CrawlState.load(path)


def test_a_page_in_an_unknown_layout_is_quarantined_not_guessed(tmp_path: Path) -> None:
    catalogue = _catalogue(12)
    faults = SiteFaults.off(unknown_layout_share=0.3, image_share=0.2, garbled_image_share=1.0)
    with serve_rival_sites(catalogue, DAY, faults=faults) as sites:
        result = crawl_sites(sites, None, _params())
        site = sites.sites["rival_a"]
    unknown = {c for c in site.codes if site.page_layout(c) == "unknown"}
    images = {c for c in site.codes if site.is_image(c) and c not in unknown}
    assert unknown and images
    pages = result.rejections.filter(pl.col("kind") == "page")
    assert set(pages["sku_code"]) == unknown and set(pages["reason"]) == {"layout not recognised"}
    assert set(result.rejections.filter(pl.col("kind") == "image")["sku_code"]) == images
    assert not set(result.observations["sku_code"]) & (unknown | images)
    truth = _truth(catalogue)
    assert all(
        truth[(c, s)] == p
        for c, s, p in result.observations.select("competitor", "sku_code", "price").iter_rows()
    )
    written = quarantine_rejections(result.rejections, tmp_path / "q")
    assert len(written) == result.rejections.height
    for path in written:
        assert path.stat().st_size > 0 and path.with_name(path.name + ".reason.json").is_file()
    acc = extraction_accuracy(result.observations, catalogue, rejections=result.rejections)
    assert acc["wrong_landed"] == 0 and acc["quarantined_share"] == pytest.approx(len(unknown | images) / 12)


# --- measurement -------------------------------------------------------------------------------


def test_extraction_accuracy_counts_exact_wrong_and_ocr() -> None:
    catalogue = _catalogue(4, ("a", "b"))
    truth = catalogue.select("competitor", "sku_code", "price")
    obs = truth.head(6).with_columns(
        pl.when((pl.col("competitor") == "a") & (pl.col("sku_code") == "SKU-002"))
        .then(pl.col("price") + 0.1)
        .otherwise("price")
        .alias("price"),
        pl.Series("method", ["html", "ocr", "ocr", "html", "html", "ocr"]),
    )
    rej = pl.DataFrame({"competitor": ["b"], "sku_code": ["SKU-003"], "kind": ["image"]})
    acc = extraction_accuracy(obs, catalogue, rejections=rej)
    assert acc["prices"] == 8 and acc["exact_share"] == 5 / 8 and acc["wrong_landed"] == 1
    assert acc["quarantined_share"] == 1 / 8 and acc["missing_share"] == 1 / 8
    assert acc["ocr_attempts"] == 4 and acc["ocr_exact"] == 2 and acc["html_exact_share"] == 1.0


def test_staleness_when_every_page_is_fetched_at_the_start() -> None:
    s = staleness_at_cadence([0.0] * 5, 20)
    assert s["p50_minutes"] == pytest.approx(10, abs=0.05)
    assert s["p95_minutes"] == pytest.approx(19, abs=0.05)
    assert s["max_minutes"] == pytest.approx(20, abs=0.05)


def test_staleness_counts_the_wait_for_the_crawl_to_land() -> None:
    # Two pages, at 0 and 10 minutes into a crawl every 20: prices land at 10 minutes, so the first
    # page's price is 10 to 30 minutes old, the second's 0 to 20.
    s = staleness_at_cadence([0.0, 600.0], 20)
    assert s["crawl_minutes"] == 10 and s["period_minutes"] == 20
    assert s["max_minutes"] == pytest.approx(30, abs=0.05)
    assert s["p50_minutes"] == pytest.approx(15, abs=0.05)
    # A crawl longer than the cadence: the next waits for it, so the period is the crawl's length.
    assert staleness_at_cadence([0.0, 1800.0], 20)["period_minutes"] == 30
    with pytest.raises(ValueError, match="at least one"):
        staleness_at_cadence([], 20)


def test_the_site_answers_if_modified_since_and_if_none_match_with_304() -> None:
    import httpx

    with serve_rival_sites(_catalogue(2), DAY, faults=SiteFaults.off()) as sites:
        url = f"{sites['rival_a']}/p/SKU-001"
        first = httpx.get(url)
        etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
        assert httpx.get(url, headers={"If-None-Match": etag}).status_code == 304
        assert httpx.get(url, headers={"If-Modified-Since": modified}).status_code == 304
        older = {"If-Modified-Since": "Mon, 01 Jan 2024 00:00:00 GMT"}
        assert httpx.get(url, headers=older).status_code == 200
        # If-None-Match wins: another version's tag means the page changed, whatever the date says.
        both = {"If-None-Match": '"other"', "If-Modified-Since": modified}
        assert httpx.get(url, headers=both).status_code == 200


def test_a_site_url_that_is_not_http_is_refused() -> None:
    from pipelines.pricing.crawl import CrawlError

    with pytest.raises(CrawlError, match=r"'ftp://rival' of competitor 'rival_x'.*settings.crawl.sites"):
        crawl_sites({"rival_x": "ftp://rival"}, None, _params())
