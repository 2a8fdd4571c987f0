"""The simulated world's rival shops, served over real HTTP on 127.0.0.1 for the crawler to read.

Each rival gets its own server (so rate limits are per site) that behaves like a shop that does not
love scrapers: a ``robots.txt`` with disallowed paths and a crawl delay, paginated listings
(``/products?page=N``), product pages (``/p/<code>``), a per-client rate limit answering 429 with
``Retry-After``, transient 5xx errors, slow answers now and then, some prices drawn as PNG images,
and on some days a changed layout (other markup and another price format). Pages carry ``ETag`` and
``Last-Modified`` and answer conditional requests with 304.

Everything a page shows is decided by hashing (seed, day, rival, code), so the same day serves the
same pages; only transient faults depend on how often a path was asked for (the first try fails,
a retry succeeds), as they would on a real site.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import io
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, quote, unquote, urlsplit

import polars as pl

from pipelines.config import Settings

__all__ = [
    "LAYOUTS",
    "LoggedRequest",
    "RivalSite",
    "RivalSites",
    "SiteFaults",
    "format_price",
    "read_rival_catalogue",
    "render_price_image",
    "rival_catalogue",
    "serve_rival_sites",
]

Layout = Literal["classic", "modern", "unknown"]
# The layouts the crawler is expected to know; "unknown" stands for a redesign nobody has seen yet.
LAYOUTS: tuple[Layout, ...] = ("classic", "modern")

CATALOGUE_SCHEMA = pl.Schema(
    {
        "competitor": pl.String(),
        "sku_id": pl.Int64(),
        "sku_code": pl.String(),
        "title": pl.String(),
        "price": pl.Float64(),
    }
)


@dataclass(frozen=True)
class SiteFaults:
    """How unfriendly the rival sites are; tests turn these up or off.

    Attributes:
        image_share: Share of product pages whose price is a PNG image.
        error_rate: Share of paths whose first one or two requests answer 503.
        slow_share: Share of paths whose first request is slow.
        slow_seconds: Range of a slow answer's delay.
        rate_limit_per_second: Requests one client (address and User-Agent) may make in any
            second before getting 429.
        retry_after_seconds: The ``Retry-After`` a 429 carries.
        crawl_delay_seconds: ``Crawl-delay`` in robots.txt.
        disallow: Path prefixes robots.txt disallows.
        layout_change_share: Share of (day, rival) pairs served in the changed ("modern") layout.
        unknown_layout_share: Share of product pages in a layout no crawler knows.
        garbled_image_share: Share of image prices drawn blurred and noisy beyond reading.
        was_price_share: Share of classic pages that also show a struck-through earlier price.
        page_size: Products per listing page.
    """

    image_share: float = 0.15
    error_rate: float = 0.03
    slow_share: float = 0.03
    slow_seconds: tuple[float, float] = (0.2, 0.5)
    rate_limit_per_second: float = 30.0
    retry_after_seconds: int = 1
    crawl_delay_seconds: float = 0.05
    disallow: tuple[str, ...] = ("/cart", "/search", "/account")
    layout_change_share: float = 0.3
    unknown_layout_share: float = 0.0
    garbled_image_share: float = 0.0
    was_price_share: float = 0.3
    page_size: int = 50

    @classmethod
    def off(cls, **overrides: object) -> SiteFaults:
        """A well-behaved site: no errors, no slowness, no images, no layout change."""
        base: dict[str, object] = {
            "image_share": 0.0,
            "error_rate": 0.0,
            "slow_share": 0.0,
            "rate_limit_per_second": 1e9,
            "crawl_delay_seconds": 0.0,
            "layout_change_share": 0.0,
            "was_price_share": 0.0,
        }
        base.update(overrides)
        return cls(**base)  # type: ignore[arg-type]


@dataclass(frozen=True)
class LoggedRequest:
    """One request a site answered: when (monotonic seconds), what, from whom and how."""

    at: float
    path: str
    user_agent: str
    status: int


def rival_catalogue(settings: Settings, day: dt.date) -> pl.DataFrame:
    """The rivals' prices as of ``day`` (each one's last change on or before it): the truth a crawl of
    the simulated sites is measured against.

    The generator has no SKU codes, so a SKU's code is its decimal id (what ``dim_products.sku_code``
    holds for the simulated world) and its title the product name.

    Returns:
        competitor, sku_id, sku_code, title, price; one row per rival and SKU it carries.

    Raises:
        FileNotFoundError: The generated world is missing (run ``ecom generate`` first).
    """
    return read_rival_catalogue(settings.generated_dir, day)


def read_rival_catalogue(generated_dir: Path, day: dt.date) -> pl.DataFrame:
    """:func:`rival_catalogue` from a generated world's folder (``data/generated``).

    Raises:
        FileNotFoundError: The folder lacks competitor_prices.parquet or products.parquet.
    """
    prices_path = generated_dir / "competitor_prices.parquet"
    products_path = generated_dir / "products.parquet"
    for path in (prices_path, products_path):
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} not found: the simulated rivals serve the generated world's prices; "
                "run `ecom generate` (or `make run`) first"
            )
    latest = (
        pl.scan_parquet(prices_path)
        .filter(pl.col("effective_date") <= day)
        .sort("effective_date")
        .group_by("competitor", "sku_id")
        .last()
    )
    products = pl.scan_parquet(products_path).select("sku_id", pl.col("sku_name").alias("title"))
    return (
        latest.join(products, on="sku_id", how="left")
        .select(
            pl.col("competitor").cast(pl.String),
            pl.col("sku_id").cast(pl.Int64),
            pl.col("sku_id").cast(pl.String).alias("sku_code"),
            pl.col("title").fill_null(pl.concat_str(pl.lit("Product "), pl.col("sku_id").cast(pl.String))),
            pl.col("price").cast(pl.Float64),
        )
        .sort("competitor", "sku_id")
        .collect()
    )


def format_price(price: float, layout: Layout, *, with_currency: bool = True) -> str:
    """A price as a layout shows it: classic ``¥1,299.00``, modern ``CNY 1299.00``."""
    if layout == "modern":
        number = f"{price:.2f}"
        return f"CNY {number}" if with_currency else number
    number = f"{price:,.2f}"
    return f"¥{number}" if with_currency else number


def render_price_image(text: str, *, size: int = 22, garbled: bool = False) -> bytes:
    """A price drawn as a shop draws it against scrapers: coloured text on a tinted PNG.

    Args:
        text: What to draw.
        size: Font size in pixels.
        garbled: Blur it and sprinkle noise over it, so that it cannot be read reliably.
    """
    from PIL import Image, ImageDraw, ImageFilter, ImageFont

    font = ImageFont.load_default(size=size)
    left, top, right, bottom = font.getbbox(text)
    img = Image.new("RGB", (right - left + 16, bottom - top + 12), (255, 250, 240))
    draw = ImageDraw.Draw(img)
    draw.text((8 - left, 6 - top), text, font=font, fill=(180, 20, 30))
    if garbled:
        img = img.resize((max(1, img.width // 3), max(1, img.height // 3))).resize(img.size)
        img = img.filter(ImageFilter.GaussianBlur(2.5))
        noise = ImageDraw.Draw(img)
        digest = hashlib.blake2b(text.encode(), digest_size=32).digest()
        for i in range(0, len(digest) - 3, 4):
            x, y = digest[i] % img.width, digest[i + 1] % img.height
            noise.line(
                (x, y, digest[i + 2] % img.width, digest[i + 3] % img.height), fill=(90, 90, 90), width=2
            )
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


class RivalSite:
    """One rival's shop for one day: its pages, faults and a log of every request it answered."""

    def __init__(
        self, competitor: str, catalogue: pl.DataFrame, day: dt.date, seed: int, faults: SiteFaults
    ) -> None:
        self.competitor = competitor
        self.day = day
        self.seed = seed
        self.faults = faults
        rows = catalogue.filter(pl.col("competitor") == competitor).sort("sku_id")
        self.codes: list[str] = rows["sku_code"].to_list()
        self.products: dict[str, tuple[str, float]] = {
            code: (title, float(price))
            for code, title, price in rows.select("sku_code", "title", "price").iter_rows()
        }
        self.layout: Layout = self.layout_on(day)
        self.requests: list[LoggedRequest] = []
        self._lock = threading.Lock()
        self._tries: dict[str, int] = defaultdict(int)
        self._window: dict[tuple[str, str], deque[float]] = defaultdict(deque)

    # --- deterministic choices ---

    def _unit(self, *parts: object) -> float:
        """A number in [0, 1) fixed by the seed, the rival and ``parts``."""
        key = "|".join(str(p) for p in (self.seed, self.competitor, *parts))
        return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big") / 2**64

    def layout_on(self, day: dt.date) -> Layout:
        """The site's layout on a day: the changed ("modern") one on some days."""
        return "modern" if self._unit(day, "layout") < self.faults.layout_change_share else "classic"

    def page_layout(self, code: str) -> Layout:
        return "unknown" if self._unit(code, "unknown") < self.faults.unknown_layout_share else self.layout

    def is_image(self, code: str) -> bool:
        return self._unit(code, "image") < self.faults.image_share

    # --- pages ---

    def robots(self) -> str:
        lines = ["User-agent: *", *(f"Disallow: {p}" for p in self.faults.disallow)]
        if self.faults.crawl_delay_seconds > 0:
            lines.append(f"Crawl-delay: {self.faults.crawl_delay_seconds:g}")
        return "\n".join(lines) + "\n"

    def listing(self, page: int) -> str | None:
        size = self.faults.page_size
        pages = max(1, -(-len(self.codes) // size))
        if page < 1 or page > pages:
            return None
        items = []
        for code in self.codes[(page - 1) * size : page * size]:
            title, href = html.escape(self.products[code][0]), f"/p/{quote(code, safe='')}"
            cart = f"/cart/add?code={quote(code, safe='')}"
            if self.layout == "modern":
                items.append(
                    f'<article class="tile"><a data-testid="tile-link" href="{href}">{title}</a>'
                    f'<small data-testid="sku">{html.escape(code)}</small>'
                    f'<a class="buy" href="{cart}">Buy</a></article>'
                )
            else:
                items.append(
                    f'<li class="product-card"><a class="product-link" href="{href}">{title}</a>'
                    f'<span class="code">{html.escape(code)}</span>'
                    f'<a href="{cart}">Add to cart</a></li>'
                )
        nav = f'<a rel="next" href="/products?page={page + 1}">Next</a>' if page < pages else ""
        body = "\n".join(items)
        return _html(
            f"{self.competitor}: all products, page {page}",
            '<a href="/search?q=">Search</a> <a href="/account">Account</a>\n'
            + (
                f'<main class="grid">{body}</main>'
                if self.layout == "modern"
                else f'<ul class="products">{body}</ul>'
            )
            + f"\n<nav>{nav}</nav>",
        )

    def product(self, code: str) -> str | None:
        if code not in self.products:
            return None
        title, price = self.products[code]
        layout = self.page_layout(code)
        esc_title, esc_code = html.escape(title), html.escape(code)
        image = f"/img/{quote(code, safe='')}.png?v={self._image_version(code)}"
        if layout == "unknown":
            return _html(
                title,
                f'<table class="item"><tr><td>{esc_title}</td><td>{esc_code}</td>'
                f"<td>Price: {price:g} yuan</td></tr></table>",
            )
        if layout == "modern":
            shown = (
                f'<img data-testid="price-now" src="{image}" alt="price">'
                if self.is_image(code)
                else f'<div data-testid="price-now">{format_price(price, "modern")}</div>'
            )
            return _html(
                title,
                f'<main><section class="pdp" data-product-code="{esc_code}">'
                f'<h2 data-role="name">{esc_title}</h2><div data-testid="sku">{esc_code}</div>'
                f'{shown}<button data-testid="add">Add</button></section></main>',
            )
        was = ""
        if self._unit(self.day, code, "was") < self.faults.was_price_share:
            was = f'<s class="price-was">{format_price(round(price * 1.2, 1), "classic")}</s> '
        shown = (
            f'<img class="price-now" src="{image}" alt="price">'
            if self.is_image(code)
            else f'<span class="price-now">{format_price(price, "classic")}</span>'
        )
        return _html(
            title,
            f'<div class="product" data-sku="{esc_code}"><h1 class="product-title">{esc_title}</h1>'
            f'<span class="sku">{esc_code}</span><p class="prices">{was}{shown}</p>'
            f'<a href="/cart/add?code={quote(code, safe="")}">Add to cart</a></div>',
        )

    def image(self, code: str) -> bytes | None:
        if code not in self.products:
            return None
        layout = self.page_layout(code)
        text = format_price(
            self.products[code][1], "modern" if layout == "modern" else "classic", with_currency=False
        )
        size = (18, 20, 22, 24)[int(self._unit(code, "font") * 4)]
        garbled = self._unit(code, "garbled") < self.faults.garbled_image_share
        return render_price_image(text, size=size, garbled=garbled)

    def _image_version(self, code: str) -> str:
        key = f"{self.products[code][1]}|{self.page_layout(code)}|{self.seed}"
        return hashlib.blake2b(key.encode(), digest_size=6).hexdigest()

    def last_modified(self) -> dt.datetime:
        """Midnight of the day the site last changed its layout (pages never claim a later change)."""
        day = self.day
        for back in range(1, 60):
            if self.layout_on(self.day - dt.timedelta(days=back)) != self.layout:
                break
            day = self.day - dt.timedelta(days=back)
        return dt.datetime.combine(day, dt.time(), dt.UTC)

    # --- faults ---

    def admit(self, client: tuple[str, str], now: float) -> bool:
        """Whether a client is within the rate limit; counts the request when it is."""
        with self._lock:
            window = self._window[client]
            while window and now - window[0] >= 1.0:
                window.popleft()
            if len(window) >= self.faults.rate_limit_per_second:
                return False
            window.append(now)
            return True

    def transient(self, path: str) -> tuple[bool, float]:
        """Whether this try of ``path`` fails with 503, and how long it takes to answer."""
        with self._lock:
            self._tries[path] += 1
            tries = self._tries[path]
        failures = 1 + int(self._unit(self.day, path, "failures") * 2)
        fails = self._unit(self.day, path, "error") < self.faults.error_rate and tries <= failures
        delay = 0.0
        if tries == 1 and self._unit(self.day, path, "slow") < self.faults.slow_share:
            low, high = self.faults.slow_seconds
            delay = low + (high - low) * self._unit(self.day, path, "delay")
        return fails, delay

    def log(self, entry: LoggedRequest) -> None:
        with self._lock:
            self.requests.append(entry)


class RivalSites(dict[str, str]):
    """Competitor -> base URL of the served sites, with each site's state (``.sites``) for tests."""

    def __init__(self, urls: dict[str, str], sites: dict[str, RivalSite]) -> None:
        super().__init__(urls)
        self.sites = sites


@contextmanager
def serve_rival_sites(
    catalogue: pl.DataFrame, day: dt.date, *, seed: int = 0, faults: SiteFaults | None = None
) -> Iterator[RivalSites]:
    """Serve every rival of a catalogue (see :func:`rival_catalogue`) on its own 127.0.0.1 port.

    Args:
        catalogue: competitor, sku_code, title, price (sku_id optional).
        day: The day being served: picks the layout and the transient faults.
        seed: Varies which pages are images, slow or failing.
        faults: How unfriendly the sites are; the defaults when None.

    Yields:
        Competitor -> ``http://127.0.0.1:PORT``; ``.sites`` holds each :class:`RivalSite`.
    """
    faults = faults or SiteFaults()
    missing = {"competitor", "sku_code", "title", "price"} - set(catalogue.columns)
    if missing:
        raise ValueError(f"rival catalogue lacks column(s) {sorted(missing)}; see rival_catalogue()")
    if "sku_id" not in catalogue.columns:
        catalogue = catalogue.with_columns(pl.int_range(pl.len()).alias("sku_id"))
    with ExitStack() as stack:
        urls: dict[str, str] = {}
        sites: dict[str, RivalSite] = {}
        for competitor in sorted(catalogue["competitor"].unique().to_list()):
            site = RivalSite(competitor, catalogue, day, seed, faults)
            server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(site))
            server.daemon_threads = True
            thread = threading.Thread(target=server.serve_forever, name=f"rival-{competitor}", daemon=True)
            thread.start()
            stack.callback(_stop, server, thread)
            urls[competitor] = f"http://127.0.0.1:{server.server_address[1]}"
            sites[competitor] = site
        yield RivalSites(urls, sites)


def _stop(server: ThreadingHTTPServer, thread: threading.Thread) -> None:
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _html(title: str, body: str) -> str:
    return (
        f'<!doctype html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title></head>'
        f"<body>\n{body}\n</body></html>\n"
    )


def _handler_for(site: RivalSite) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "RivalShop/1.0"

        def do_GET(self) -> None:
            started = time.monotonic()
            ua = self.headers.get("User-Agent", "")
            parts = urlsplit(self.path)
            path = unquote(parts.path)
            status = self._answer(path, parse_qs(parts.query), ua, started)
            site.log(LoggedRequest(started, self.path, ua, status))

        def _answer(self, path: str, query: dict[str, list[str]], ua: str, now: float) -> int:
            if path == "/robots.txt":
                return self._send(200, site.robots().encode(), "text/plain; charset=utf-8")
            if not site.admit((self.client_address[0], ua), now):
                return self._send(
                    429,
                    b"Too many requests",
                    "text/plain",
                    {"Retry-After": str(site.faults.retry_after_seconds)},
                )
            fails, delay = site.transient(self.path)
            if delay:
                time.sleep(delay)
            if fails:
                return self._send(503, b"Service temporarily unavailable", "text/plain")
            body: bytes | None
            kind = "text/html; charset=utf-8"
            if path == "/products":
                try:
                    page = int(query.get("page", ["1"])[0])
                except ValueError:
                    page = 0
                text = site.listing(page)
                body = text.encode() if text is not None else None
            elif path.startswith("/p/"):
                text = site.product(path[3:])
                body = text.encode() if text is not None else None
            elif path.startswith("/img/") and path.endswith(".png"):
                body, kind = site.image(path[5:-4]), "image/png"
            elif path == "/" or path.startswith(("/cart", "/search", "/account")):
                body = _html(site.competitor, '<a href="/products?page=1">All products</a>').encode()
            else:
                body = None
            if body is None:
                return self._send(404, b"Not found", "text/plain")
            etag = '"' + hashlib.blake2b(body, digest_size=10).hexdigest() + '"'
            modified = site.last_modified()
            headers = {"ETag": etag, "Last-Modified": format_datetime(modified, usegmt=True)}
            if self._not_modified(etag, modified):
                return self._send(304, b"", None, headers)
            return self._send(200, body, kind, headers)

        def _not_modified(self, etag: str, modified: dt.datetime) -> bool:
            match = self.headers.get("If-None-Match")
            if match is not None:  # RFC 9110: If-None-Match wins over If-Modified-Since
                return etag in {m.strip() for m in match.split(",")} or match.strip() == "*"
            since = self.headers.get("If-Modified-Since")
            if since is None:
                return False
            try:
                return modified <= parsedate_to_datetime(since)
            except (TypeError, ValueError):
                return False

        def _send(
            self, status: int, body: bytes, kind: str | None, headers: dict[str, str] | None = None
        ) -> int:
            self.send_response(status)
            if kind:
                self.send_header("Content-Type", kind)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            if status != 304:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if status != 304:
                self.wfile.write(body)
            return status

        def log_message(self, format: str, *args: object) -> None:
            return None

    return Handler
