"""Crawl rival shops politely and read their prices, from HTML or, when drawn as images, with OCR.

Why these tools: a crawl is I/O bound and politeness is per site (its robots.txt, its rate, its
concurrency), so one asyncio loop with an async ``httpx`` client per site keeps hundreds of requests
in flight cheaply while each site gets its own token bucket and semaphore. ``selectolax`` is a
fast CSS-selector HTML parser (its lexbor engine, in C), which matters when thousands of pages are
parsed in the loop's thread. Scrapy would do the crawling, but it brings Twisted and its own process
model into Airflow tasks; a function that crawls and returns is easier to run, test and retry there.

A price is only landed when it is read, never guessed: each known layout's selectors are tried in
turn, and a page that matches none, a price text that is not a well-formed price, or an image that
OCR cannot read with enough confidence becomes a rejection carrying the page or image for
quarantine. Conditional requests (ETag / Last-Modified, kept in a :class:`CrawlState` between
crawls) make an unchanged page cost a 304, which re-confirms the last price read.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import polars as pl

from pipelines.config import CrawlParams

__all__ = [
    "LAYOUTS",
    "OBSERVATION_SCHEMA",
    "REJECTION_SCHEMA",
    "CrawlError",
    "CrawlResult",
    "CrawlState",
    "CrawlStats",
    "PageRead",
    "crawl_sites",
    "crawl_sites_async",
    "parse_price_text",
    "parse_product_page",
]

OBSERVATION_SCHEMA = pl.Schema(
    {
        "competitor": pl.String(),
        "sku_code": pl.String(),
        "price": pl.Float64(),
        "observed_at": pl.Datetime("us", "UTC"),
        "method": pl.String(),
        "ocr_confidence": pl.Float64(),
        "url": pl.String(),
    }
)
REJECTION_SCHEMA = pl.Schema(
    {
        "competitor": pl.String(),
        "sku_code": pl.String(),
        "url": pl.String(),
        "reason": pl.String(),
        # page (HTML that could not be read), image (OCR refused it) or fetch (no answer worth reading)
        "kind": pl.String(),
        "content": pl.Binary(),
    }
)

# OCR spawns a Tesseract process per image: two at a time keeps the loop's CPUs for parsing.
OCR_CONCURRENCY = 2
# The most listing pages followed per site: a loop in a site's pagination must not run forever.
MAX_LISTING_PAGES = 1000
_PRICE_TEXT = re.compile(r"^(?:¥|￥|CNY|RMB)\s?(\d{1,3}(?:,\d{3})+|\d+)\.(\d{2})$")


@dataclass(frozen=True)
class _Layout:
    """Where one page layout keeps a product's code and price."""

    name: str
    container: str
    code: str
    price_text: str
    price_image: str


# Every layout the rivals are known to use, tried in turn; a new redesign needs an entry here.
LAYOUTS: tuple[_Layout, ...] = (
    _Layout(
        "classic",
        "div.product",
        "div.product span.sku",
        "div.product span.price-now",
        "div.product img.price-now",
    ),
    _Layout(
        "modern",
        "section.pdp",
        'section.pdp [data-testid="sku"]',
        'section.pdp div[data-testid="price-now"]',
        'section.pdp img[data-testid="price-now"]',
    ),
)


@dataclass
class CrawlStats:
    """Counts of one crawl, over all sites."""

    requests: int = 0
    pages: int = 0  # listing and product pages answered (200 or 304)
    listing_pages: int = 0
    product_pages: int = 0
    images: int = 0
    not_modified: int = 0
    retries: int = 0
    rate_limited: int = 0  # 429 answers
    server_errors: int = 0  # 5xx answers
    timeouts: int = 0
    connection_errors: int = 0
    ocr_reads: int = 0
    disallowed: int = 0  # wanted product pages robots.txt disallows: never requested
    not_listed: int = 0  # wanted codes a site does not list
    seconds: float = 0.0
    pages_per_second: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass
class CrawlState:
    """What earlier crawls learnt per page (competitor and path): validators (ETag, Last-Modified)
    and what the page said.

    Only a page whose price was read is remembered, so a 304 always has a price to re-confirm.
    """

    entries: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> CrawlState:
        """The state saved at ``path``; empty when there is none yet.

        Raises:
            ValueError: The file is not a crawl state (delete it to start afresh).
        """
        if not path.is_file():
            return cls()
        try:
            data = json.loads(path.read_text())
            entries = data["entries"]
            if not isinstance(entries, dict):
                raise TypeError("entries is not an object")
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(
                f"{path} is not a crawl state ({exc}); delete it and the next crawl fetches every page afresh"
            ) from exc
        return cls(entries)

    def save(self, path: Path) -> None:
        """Write atomically (a crash leaves the old state, never half a file)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"version": 1, "entries": self.entries}, indent=1, sort_keys=True) + "\n")
        os.replace(tmp, path)


@dataclass(frozen=True)
class CrawlResult:
    """What a crawl read.

    Attributes:
        observations: :data:`OBSERVATION_SCHEMA`: one row per rival price read (``method`` html,
            ocr, or not_modified when a 304 re-confirmed the last read).
        rejections: :data:`REJECTION_SCHEMA`: what could not be read, with the page or image.
        stats: Counts and speed.
        started_at: When the crawl started (UTC).
    """

    observations: pl.DataFrame
    rejections: pl.DataFrame
    stats: CrawlStats
    started_at: dt.datetime


def parse_price_text(text: str) -> float | None:
    """A price as the rivals' HTML writes it (``¥1,299.00``, ``CNY 1299.00``), or None when the text is
    not exactly a price in a known format (no guessing at ``from ¥99`` or ``1299``)."""
    match = _PRICE_TEXT.match(" ".join(text.split()))
    if match is None:
        return None
    whole, cents = match.groups()
    return (int(whole.replace(",", "")) * 100 + int(cents)) / 100


@dataclass(frozen=True)
class PageRead:
    """A product page read: a price, an image to OCR, or the reason there is neither."""

    layout: str | None
    price: float | None = None
    image_url: str | None = None
    reason: str | None = None


def parse_product_page(page: str, code: str) -> PageRead:
    """Find a product's price on its page, trying each known layout's selectors in turn.

    Args:
        page: The HTML.
        code: The product code the page should be for.

    Returns:
        The price (HTML text), the image URL holding it, or a reason: ``layout not recognised``, a
        page for another product, or a price text that is not a well-formed price.
    """
    from selectolax.lexbor import LexborHTMLParser as HTMLParser

    tree = HTMLParser(page)
    for layout in LAYOUTS:
        if tree.css_first(layout.container) is None:
            continue
        shown_code = tree.css_first(layout.code)
        if shown_code is None or shown_code.text(strip=True) != code:
            shown = shown_code.text(strip=True) if shown_code is not None else "no code"
            return PageRead(
                layout.name, reason=f"page shows product {shown!r}, not {code!r} ({layout.name} layout)"
            )
        text_node = tree.css_first(layout.price_text)
        if text_node is not None:
            text = text_node.text(strip=True)
            price = parse_price_text(text)
            if price is None:
                return PageRead(
                    layout.name, reason=f"price text {text!r} is not a price ({layout.name} layout)"
                )
            return PageRead(layout.name, price=price)
        image = tree.css_first(layout.price_image)
        if image is not None and image.attributes.get("src"):
            return PageRead(layout.name, image_url=image.attributes["src"])
        return PageRead(layout.name, reason=f"no price on the page ({layout.name} layout)")
    return PageRead(None, reason="layout not recognised")


def crawl_sites(
    sites: Mapping[str, str],
    wanted_codes: set[str] | None,
    params: CrawlParams,
    *,
    state: CrawlState | None = None,
    progress: Callable[[str], None] | None = None,
) -> CrawlResult:
    """Crawl rival sites and read the wanted products' prices (the synchronous entry point).

    Args:
        sites: Competitor -> base URL (``http://127.0.0.1:8001``).
        wanted_codes: Product codes to read; None reads every listed product.
        params: Politeness (rate, concurrency, User-Agent), retries, timeouts, OCR confidence.
        state: Validators and prices of earlier crawls; updated in place. None crawls afresh.
        progress: Called with short messages as the crawl goes.

    Returns:
        The observations, the rejections and the crawl's counts.

    Raises:
        CrawlError: A site URL is not http(s).
        OcrUnavailable: A price is an image and Tesseract is not installed.
    """
    return asyncio.run(crawl_sites_async(sites, wanted_codes, params, state=state, progress=progress))


async def crawl_sites_async(
    sites: Mapping[str, str],
    wanted_codes: set[str] | None,
    params: CrawlParams,
    *,
    state: CrawlState | None = None,
    progress: Callable[[str], None] | None = None,
) -> CrawlResult:
    """:func:`crawl_sites` for callers already inside an event loop."""
    import httpx

    say = progress or (lambda _m: None)
    for competitor, base in sites.items():
        if urlsplit(base).scheme not in ("http", "https") or not urlsplit(base).netloc:
            raise CrawlError(
                f"site URL {base!r} of competitor {competitor!r} is not http(s)://host[:port]; "
                "fix settings.crawl.sites"
            )
    state = state if state is not None else CrawlState()
    stats = CrawlStats()
    started_at = dt.datetime.now(dt.UTC)
    clock = time.monotonic()
    ocr_gate = asyncio.Semaphore(OCR_CONCURRENCY)
    observations: list[dict[str, Any]] = []
    rejections: list[dict[str, Any]] = []

    async def one(competitor: str, base: str) -> None:
        limits = httpx.Limits(
            max_connections=params.concurrency, max_keepalive_connections=params.concurrency
        )
        async with httpx.AsyncClient(
            base_url=base,
            headers={"User-Agent": params.user_agent},
            timeout=params.timeout_seconds,
            limits=limits,
            follow_redirects=True,
        ) as client:
            crawler = _SiteCrawler(
                competitor, base, client, params, state, stats, ocr_gate, observations, rejections
            )
            await crawler.run(wanted_codes, say)

    await asyncio.gather(*(one(c, base.rstrip("/")) for c, base in sites.items()))
    stats.seconds = time.monotonic() - clock
    stats.pages_per_second = stats.pages / stats.seconds if stats.seconds > 0 else 0.0
    say(
        f"crawled {len(sites)} site(s): {len(observations)} price(s) read, {len(rejections)} rejected, "
        f"{stats.pages} pages in {stats.seconds:.1f}s"
    )
    return CrawlResult(
        pl.DataFrame(observations, schema=OBSERVATION_SCHEMA).sort("competitor", "sku_code"),
        pl.DataFrame(rejections, schema=REJECTION_SCHEMA).sort("competitor", "sku_code"),
        stats,
        started_at,
    )


class CrawlError(RuntimeError):
    """A crawl cannot run or read nothing at all: a site URL that is not http(s), every site down."""


class _FetchFailed(Exception):
    def __init__(self, reason: str, content: bytes = b"") -> None:
        super().__init__(reason)
        self.reason = reason
        self.content = content


class _TokenBucket:
    """At most ``rate`` requests a second, evenly spaced (a bucket of one token)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self.next_at = 0.0
        self.lock = asyncio.Lock()

    async def take(self) -> None:
        async with self.lock:
            now = time.monotonic()
            wait = self.next_at - now
            self.next_at = max(now, self.next_at) + self.interval
        if wait > 0:
            await asyncio.sleep(wait)


class _SiteCrawler:
    """One site's crawl: its robots rules, rate, concurrency and retries."""

    def __init__(
        self,
        competitor: str,
        base: str,
        client: Any,
        params: CrawlParams,
        state: CrawlState,
        stats: CrawlStats,
        ocr_gate: asyncio.Semaphore,
        observations: list[dict[str, Any]],
        rejections: list[dict[str, Any]],
    ) -> None:
        self.competitor = competitor
        self.base = base
        self.client = client
        self.params = params
        self.state = state
        self.stats = stats
        self.ocr_gate = ocr_gate
        self.observations = observations
        self.rejections = rejections
        self.gate = asyncio.Semaphore(params.concurrency)
        self.bucket = _TokenBucket(params.requests_per_second)
        self.robots: Any = None
        self.jitter = random.Random(f"{competitor}|{base}")

    async def run(self, wanted: set[str] | None, say: Callable[[str], None]) -> None:
        if not await self._read_robots(say):
            return
        listed = await self._walk_listing(say)
        codes = [c for c in listed if wanted is None or c in wanted]
        if wanted is not None:
            self.stats.not_listed += len(wanted - set(listed))
        say(f"{self.competitor}: {len(listed)} products listed, reading {len(codes)}")
        await asyncio.gather(*(self._product(code, listed[code]) for code in codes))

    # --- robots.txt ---

    async def _read_robots(self, say: Callable[[str], None]) -> bool:
        """Load robots.txt; False when the site cannot be crawled at all."""
        from urllib.robotparser import RobotFileParser

        url = f"{self.base}/robots.txt"
        robots = RobotFileParser(url)
        try:
            resp = await self._get(url, {}, check_robots=False)
        except _FetchFailed as exc:
            # RFC 9309: an unreachable robots.txt means the whole site is off limits for now.
            self._reject(
                "", url, f"robots.txt unreachable, site not crawled: {exc.reason}", "fetch", exc.content
            )
            return False
        if resp.status_code in (401, 403):
            robots.disallow_all = True
        elif resp.status_code >= 400:
            robots.allow_all = True  # no robots.txt: everything is allowed
        else:
            robots.parse(resp.text.splitlines())
            delay = _crawl_delay(resp.text, self.params.user_agent)
            if delay and delay > 0 and 1.0 / delay < self.params.requests_per_second:
                # The slower of robots.txt's crawl delay and our own rate wins.
                self.bucket = _TokenBucket(1.0 / delay)
                say(f"{self.competitor}: robots.txt asks for {delay:g}s between requests")
        self.robots = robots
        return True

    def _allowed(self, url: str) -> bool:
        return self.robots is None or self.robots.can_fetch(self.params.user_agent, url)

    # --- fetching ---

    async def _get(self, url: str, headers: dict[str, str], *, check_robots: bool = True) -> Any:
        """GET with politeness and retries; the response (any status below 500 but 429).

        Raises:
            _FetchFailed: Retries ran out, or robots.txt disallows the URL.
        """
        import httpx

        if check_robots and not self._allowed(url):
            raise _FetchFailed(f"disallowed by robots.txt: {url}")
        last_reason, last_content = "", b""
        for attempt in range(self.params.max_retries + 1):
            wait = self.params.backoff_seconds * 2**attempt * (0.5 + self.jitter.random())
            # The token is taken inside the gate so that requests leave evenly spaced, not in a
            # burst of the tokens that queued while every slot was busy.
            async with self.gate:
                await self.bucket.take()
                self.stats.requests += 1
                try:
                    resp = await self.client.get(url, headers=headers)
                except httpx.TimeoutException:
                    self.stats.timeouts += 1
                    last_reason, last_content = f"timed out after {self.params.timeout_seconds:g}s", b""
                    resp = None
                except httpx.TransportError as exc:
                    self.stats.connection_errors += 1
                    last_reason, last_content = f"connection error: {type(exc).__name__}: {exc}", b""
                    resp = None
            if resp is not None:
                if resp.status_code == 429:
                    self.stats.rate_limited += 1
                    wait = max(wait, _retry_after(resp.headers.get("Retry-After")))
                    last_reason, last_content = "429 Too Many Requests", resp.content
                elif resp.status_code >= 500:
                    self.stats.server_errors += 1
                    last_reason, last_content = f"HTTP {resp.status_code}", resp.content
                else:
                    return resp
            if attempt < self.params.max_retries:
                self.stats.retries += 1
                await asyncio.sleep(wait)
        raise _FetchFailed(f"{last_reason} ({self.params.max_retries} retries)", last_content)

    async def _get_conditional(self, url: str) -> tuple[Any, dict[str, Any] | None]:
        """GET with the validators remembered for ``url``; the response and the remembered entry."""
        entry = self.state.entries.get(self._key(url))
        headers: dict[str, str] = {}
        if entry is not None:
            if entry.get("etag"):
                headers["If-None-Match"] = entry["etag"]
            if entry.get("last_modified"):
                headers["If-Modified-Since"] = entry["last_modified"]
        resp = await self._get(url, headers)
        if resp.status_code == 304:
            self.stats.not_modified += 1
        return resp, entry

    def _remember(self, url: str, resp: Any, data: dict[str, Any]) -> None:
        etag, modified = resp.headers.get("ETag"), resp.headers.get("Last-Modified")
        if etag or modified:
            self.state.entries[self._key(url)] = {"etag": etag, "last_modified": modified, **data}
        else:
            self._forget(url)

    def _forget(self, url: str) -> None:
        self.state.entries.pop(self._key(url), None)

    def _key(self, url: str) -> str:
        """A URL's key in the crawl state: the competitor and the path, so that a site answering on
        another host or port (the simulated rivals get a new port each run) keeps its validators."""
        parts = urlsplit(url)
        return f"{self.competitor} {parts.path}" + (f"?{parts.query}" if parts.query else "")

    # --- listing ---

    async def _walk_listing(self, say: Callable[[str], None]) -> dict[str, str]:
        """Follow the listing's pagination; product code -> product page URL."""
        from selectolax.lexbor import LexborHTMLParser as HTMLParser

        found: dict[str, str] = {}
        url: str | None = f"{self.base}/products?page=1"
        seen: set[str] = set()
        while url is not None and url not in seen and len(seen) < MAX_LISTING_PAGES:
            seen.add(url)
            if not self._allowed(url):
                say(f"{self.competitor}: robots.txt disallows the listing {url}; stopping there")
                break
            try:
                resp, entry = await self._get_conditional(url)
            except _FetchFailed as exc:
                self._reject("", url, f"listing page not read: {exc.reason}", "fetch", exc.content)
                break
            # Links are kept as the page wrote them (relative, usually) and resolved against the
            # page's URL now, so a remembered listing still points at the site wherever it answers.
            if resp.status_code == 304 and entry is not None:
                hrefs, next_href = entry["links"], entry["next"]
            elif resp.status_code == 200:
                tree = HTMLParser(resp.text)
                hrefs = {}
                for a in tree.css('a[href*="/p/"]'):
                    href = a.attributes.get("href") or ""
                    path = urlsplit(urljoin(url, href)).path
                    if path.startswith("/p/") and len(path) > 3:
                        hrefs[unquote(path[3:])] = href
                nxt = tree.css_first('a[rel="next"]')
                next_href = nxt.attributes.get("href") if nxt is not None else None
                self._remember(url, resp, {"links": hrefs, "next": next_href})
            else:
                self._reject("", url, f"listing page answered HTTP {resp.status_code}", "fetch", resp.content)
                break
            self.stats.pages += 1
            self.stats.listing_pages += 1
            found.update({code: urljoin(url, href) for code, href in hrefs.items()})
            url = urljoin(url, next_href) if next_href else None
        return found

    # --- products ---

    async def _product(self, code: str, url: str) -> None:
        if not self._allowed(url):
            self.stats.disallowed += 1
            return
        try:
            resp, entry = await self._get_conditional(url)
        except _FetchFailed as exc:
            self._reject(code, url, f"product page not read: {exc.reason}", "fetch", exc.content)
            return
        if resp.status_code == 304 and entry is not None:
            self.stats.pages += 1
            self.stats.product_pages += 1
            self._observe(code, url, entry["price"], "not_modified", entry.get("ocr_confidence"))
            return
        if resp.status_code != 200:
            self._reject(code, url, f"product page answered HTTP {resp.status_code}", "fetch", resp.content)
            return
        self.stats.pages += 1
        self.stats.product_pages += 1
        read = parse_product_page(resp.text, code)
        if read.price is not None:
            self._remember(url, resp, {"price": read.price, "method": "html", "ocr_confidence": None})
            self._observe(code, url, read.price, "html", None)
            return
        if read.image_url is None:
            self._forget(url)
            self._reject(code, url, read.reason or "no price", "page", resp.content)
            return
        await self._image_price(code, url, resp, urljoin(url, read.image_url))

    async def _image_price(self, code: str, page_url: str, page: Any, image_url: str) -> None:
        from pipelines.pricing.ocr import read_price

        try:
            resp, entry = await self._get_conditional(image_url)
        except _FetchFailed as exc:
            self._reject(code, image_url, f"price image not read: {exc.reason}", "fetch", exc.content)
            return
        self.stats.images += 1
        if resp.status_code == 304 and entry is not None:
            price, confidence = entry["price"], entry.get("ocr_confidence")
        elif resp.status_code == 200:
            async with self.ocr_gate:
                self.stats.ocr_reads += 1
                read = await asyncio.to_thread(read_price, resp.content, self.params.min_ocr_confidence)
            if read.price is None:
                self._forget(page_url)
                self._reject(code, image_url, f"price image: {read.reason}", "image", resp.content)
                return
            price, confidence = read.price, read.confidence
            self._remember(image_url, resp, {"price": price, "method": "ocr", "ocr_confidence": confidence})
        else:
            self._reject(
                code, image_url, f"price image answered HTTP {resp.status_code}", "fetch", resp.content
            )
            return
        self._remember(page_url, page, {"price": price, "method": "ocr", "ocr_confidence": confidence})
        self._observe(code, page_url, price, "ocr", confidence)

    def _observe(self, code: str, url: str, price: float, method: str, confidence: float | None) -> None:
        self.observations.append(
            {
                "competitor": self.competitor,
                "sku_code": code,
                "price": float(price),
                "observed_at": dt.datetime.now(dt.UTC),
                "method": method,
                "ocr_confidence": confidence,
                "url": url,
            }
        )

    def _reject(self, code: str, url: str, reason: str, kind: str, content: bytes) -> None:
        self.rejections.append(
            {
                "competitor": self.competitor,
                "sku_code": code,
                "url": url,
                "reason": reason,
                "kind": kind,
                "content": bytes(content),
            }
        )


def _retry_after(value: str | None) -> float:
    """Seconds a ``Retry-After`` asks for (delta-seconds or an HTTP date); 0 when absent or unreadable."""
    if not value:
        return 0.0
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        return max(0.0, (parsedate_to_datetime(value) - dt.datetime.now(dt.UTC)).total_seconds())
    except (TypeError, ValueError):
        return 0.0


def _crawl_delay(robots_txt: str, user_agent: str) -> float | None:
    """The Crawl-delay for ``user_agent`` (its own group, else ``*``), fractions allowed.

    ``urllib.robotparser`` reads only whole seconds, and shops do write ``Crawl-delay: 0.5``.
    """
    agent = user_agent.split("/")[0].lower()
    groups: dict[str, float] = {}
    current: list[str] = []
    in_rules = False
    for raw in robots_txt.splitlines():
        line = raw.split("#", 1)[0].strip()
        if ":" not in line:
            continue
        key, value = (s.strip() for s in line.split(":", 1))
        key = key.lower()
        if key == "user-agent":
            if in_rules:
                current, in_rules = [], False
            current.append(value.lower())
        else:
            in_rules = True
            if key == "crawl-delay":
                try:
                    delay = float(value)
                except ValueError:
                    continue
                for name in current:
                    groups.setdefault(name, delay)
    for name, delay in groups.items():
        if name != "*" and name in agent:
            return delay
    return groups.get("*")
