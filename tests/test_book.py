"""Browser check of the built book (_build/html).

Build the book first (``.venv/bin/jupyter-book build -W --keep-going .``). For every page in _toc.yml,
the page is served from a loopback HTTP server started here and loaded in headless Chromium, which
is not allowed to resolve any other host. Each page must load without a missing file, typeset its
math with the MathJax copy under _static (never a CDN), show only images that exist, and link only
to pages and anchors that exist.

Without Chromium or without a built book the tests are skipped, unless ADAMLAB_REQUIRE_BROWSER=1
(as in CI), which turns the skip into a failure.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import subprocess
import threading
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
BUILD_COMMAND = ".venv/bin/jupyter-book build -W --keep-going ."
REQUIRED = os.environ.get("ADAMLAB_REQUIRE_BROWSER") == "1"
# Hosts a page may name in a <script src> or stylesheet: none. The book reads offline.
CDN_MARKERS = ("cdn.", "unpkg.com", "jsdelivr", "cdnjs", "googleapis", "mathjax.org")
URL = re.compile(r"(?:https?:)?//[^\s\"'<>]+")


def _unavailable(reason: str):
    if REQUIRED:
        pytest.fail(f"{reason} (ADAMLAB_REQUIRE_BROWSER=1)")
    pytest.skip(reason)


def toc_pages() -> list[str]:
    """Every document in _toc.yml (root first), as paths without suffix, in reading order."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf8"))
    pages = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                pages.append(entry["file"])
            walk(entry.get("parts"))
            walk(entry.get("chapters"))
            walk(entry.get("sections"))

    walk(toc.get("parts"))
    walk(toc.get("chapters"))
    return [str(Path(p).with_suffix("")) if Path(p).suffix in (".md", ".ipynb") else p for p in pages]


PAGES = toc_pages()


class _Page(HTMLParser):
    """The attributes of a page that the checks need: ids, links, images, scripts, math."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.hrefs: list[str] = []
        self.imgs: list[str] = []
        self.scripts: list[str] = []
        self.stylesheets: list[str] = []
        self.math_elements = 0
        self.mjx_containers = 0
        self.mjx_errors = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("id", "name") if tag == "a" else ("id",):
            if a.get(key):
                self.ids.add(a[key])
        if tag == "a" and a.get("href") is not None:
            self.hrefs.append(a["href"])
        elif tag == "img" and a.get("src") is not None:
            self.imgs.append(a["src"])
        elif tag == "script" and a.get("src"):
            self.scripts.append(a["src"])
        elif tag == "link" and "stylesheet" in (a.get("rel") or "") and a.get("href"):
            self.stylesheets.append(a["href"])
        elif tag == "mjx-container":
            self.mjx_containers += 1
        elif tag == "mjx-merror":
            self.mjx_errors += 1
        if "math" in (a.get("class") or "").split():
            self.math_elements += 1

    @property
    def has_math(self) -> bool:
        return self.math_elements > 0

    handle_startendtag = handle_starttag


@functools.lru_cache(maxsize=None)
def parse_file(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf8"))
    return page


def _is_remote(url: str) -> bool:
    parts = urlsplit(url)
    return bool(parts.scheme and parts.scheme not in ("file",)) or url.startswith("//")


def _local_target(page_rel: str, url: str) -> tuple[Path, str]:
    """The file under _build/html that ``url`` (relative to page ``page_rel``) names, and its anchor."""
    parts = urlsplit(urljoin("/" + page_rel, url))
    return HTML / unquote(parts.path).lstrip("/"), unquote(parts.fragment)


#: Injected into a page requested with ``?probe=overflow``: once the page has settled (MathJax
#: typeset), it records how far the document is wider than the window, and the outermost elements
#: that stick out past the right edge, in a ``<meta name="overflow-probe">`` that --dump-dom returns.
OVERFLOW_PROBE = """<script>
window.addEventListener("load", () => setTimeout(() => {
  const root = document.documentElement, width = root.clientWidth;
  const name = (el) => el.tagName.toLowerCase() + "." + String(el.className.baseVal ?? el.className)
    .split(" ")[0] + " " + JSON.stringify((el.textContent || "").trim().slice(0, 50))
    .replace(/[<>"&|]/g, " ");
  const clips = (el) => ["auto", "scroll", "hidden", "clip"].includes(getComputedStyle(el).overflowX);
  const outside = [];
  for (const el of document.querySelectorAll("main *")) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.right <= width + 1) continue;
    const own = getComputedStyle(el);
    if (own.visibility === "hidden" || own.display === "none" || own.position === "fixed") continue;
    let contained = false;
    for (let a = el.parentElement; a && a !== root; a = a.parentElement) {
      if (getComputedStyle(a).position === "fixed") { contained = true; break; }
      if (clips(a) && a.getBoundingClientRect().right <= width + 1) { contained = true; break; }
    }
    if (!contained) outside.push(name(el) + " " + Math.round(r.right - width) + "px");
  }
  const scrolled = [];
  for (const el of document.querySelectorAll(
      "main pre, main table, main mjx-container[display=true], main div.cell_output")) {
    if (el.scrollWidth > el.clientWidth + 1)
      scrolled.push(name(el) + " " + (el.scrollWidth - el.clientWidth) + "px");
  }
  const meta = document.createElement("meta");
  meta.name = "overflow-probe";
  meta.content = [root.scrollWidth - width, outside.slice(0, 6).join(" ;; "),
                  scrolled.slice(0, 6).join(" ;; ")].join("|");
  document.head.appendChild(meta);
}, 4000));
</script>"""


class _Handler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=str(HTML), **kwargs)

    def do_GET(self):  # noqa: N802 - http.server's name
        path, _, query = self.path.partition("?")
        if query != "probe=overflow" or not path.endswith(".html"):
            return super().do_GET()
        body = (HTML / unquote(path).lstrip("/")).read_bytes()
        body = body.replace(b"</body>", OVERFLOW_PROBE.encode() + b"</body>")
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.log_request(200)

    def log_message(self, format, *args):  # noqa: A002 - http.server's signature
        pass

    def log_request(self, code="-", size="-"):
        self.server.requests.append((self.path, int(code) if isinstance(code, int) else 0))


@pytest.fixture(scope="module")
def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None and Path("/usr/bin/chromium").exists():
        exe = "/usr/bin/chromium"
    if exe is None:
        _unavailable("chromium not found (install it with: apt-get install -y chromium)")
    return exe


@pytest.fixture(scope="module")
def built_book() -> Path:
    if not (HTML / "index.html").is_file():
        _unavailable(f"build the book first: {BUILD_COMMAND}")
    return HTML


@pytest.fixture(scope="module")
def server(built_book):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.requests = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=10)


def load_in_browser(chromium: str, url: str, profile: Path, width: int | None = None) -> str:
    window = [f"--window-size={width},900"] if width else []
    cmd = [*window,
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-quic", "--disable-sync",
        "--disable-extensions", "--disable-dev-shm-usage",
        # Only the loopback server can be reached: a page that needs a CDN fails here, online or not.
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
        f"--user-data-dir={profile}", "--virtual-time-budget=10000", "--dump-dom", url,
    ]
    cmd = [cmd[len(window)], *window, *cmd[len(window) + 1:]]  # the executable first
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"chromium exited with {proc.returncode} on {url}:\n{proc.stderr[-2000:]}"
    return proc.stdout


def test_every_notebook_is_in_the_toc():
    """With only_build_toc_files a notebook missing from _toc.yml is silently left out of the book."""
    notebooks = {str(p.relative_to(ROOT).with_suffix("")) for p in (ROOT / "notebooks").glob("*.ipynb")}
    missing = sorted(notebooks - set(PAGES))
    assert not missing, f"notebooks not listed in _toc.yml: {missing}"


def test_toc_pages_were_built(built_book):
    missing = [p for p in PAGES if not (built_book / f"{p}.html").is_file()]
    assert not missing, f"pages in _toc.yml without HTML (rebuild: {BUILD_COMMAND}): {missing}"


def test_no_remote_assets_in_any_page(built_book):
    """No built page loads a script or stylesheet from another host, MathJax included."""
    offenders = []
    for path in sorted(built_book.rglob("*.html")):
        page = parse_file(path)
        text = path.read_text(encoding="utf8")
        offenders += [(str(path.relative_to(built_book)), u) for u in page.scripts + page.stylesheets
                      if _is_remote(u)]
        offenders += [(str(path.relative_to(built_book)), u) for u in URL.findall(text)
                      if any(m in u for m in CDN_MARKERS)]
    assert not offenders, f"remote assets or CDN URLs in the built book: {offenders}"
    assert (built_book / "_static" / "mathjax" / "tex-chtml.js").is_file(), "local MathJax was not copied"


@pytest.mark.parametrize("page", PAGES)
def test_page_in_browser(page, chromium, server, tmp_path):
    html_file = HTML / f"{page}.html"
    assert html_file.is_file(), f"{page}: {html_file} missing (rebuild: {BUILD_COMMAND})"
    static = parse_file(html_file)
    url = f"http://127.0.0.1:{server.server_address[1]}/{page}.html"

    server.requests.clear()
    dom_text = load_in_browser(chromium, url, tmp_path / "profile")
    requests = list(server.requests)

    # The page loads, and so does everything it asked the server for.
    assert (f"/{page}.html", 200) in requests, f"{page}: not served: {requests}"
    failed = [(p, c) for p, c in requests if c >= 400 and not p.startswith("/favicon.ico")]
    assert not failed, f"{page}: requests that failed while loading: {failed}"
    dom = _Page()
    dom.feed(dom_text)
    assert dom.hrefs or dom.ids, f"{page}: the browser returned an empty document"

    # Math is typeset, and by the MathJax under _static.
    # (Sphinx adds the MathJax script only to pages that contain math.)
    mathjax = [s for s in static.scripts if "mathjax" in s.lower()]
    assert mathjax or not static.has_math, f"{page}: has math but no MathJax script"
    for src in mathjax:
        assert not _is_remote(src), f"{page}: MathJax loaded from {src}"
        target, _ = _local_target(f"{page}.html", src)
        assert target.is_file(), f"{page}: MathJax script {src} -> {target} missing"
    if static.has_math:
        # Each Sphinx math element holds at least one formula, and each formula becomes one container.
        assert dom.mjx_containers >= static.math_elements, (
            f"{page}: {static.math_elements} math elements but only {dom.mjx_containers} typeset")
        assert dom.mjx_errors == 0, f"{page}: MathJax reported {dom.mjx_errors} TeX error(s)"
        assert any(p.startswith("/_static/mathjax/") for p, _ in requests), \
            f"{page}: MathJax files were not fetched from the local server"

    # Every image exists.
    for src in set(static.imgs) | set(dom.imgs):
        if src.startswith("data:"):
            continue
        assert not _is_remote(src), f"{page}: image from another host: {src}"
        target, _ = _local_target(f"{page}.html", src)
        assert target.is_file(), f"{page}: image {src} -> {target} missing"

    # Every internal link resolves, anchors included.
    broken = []
    for href in static.hrefs:
        if _is_remote(href) or href.startswith(("mailto:", "javascript:")):
            continue
        target, anchor = _local_target(f"{page}.html", href)
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            broken.append(f"{href} (no file {target.relative_to(HTML)})")
        elif anchor and target.suffix == ".html" and anchor not in parse_file(target).ids:
            broken.append(f"{href} (no id {anchor!r} in {target.relative_to(HTML)})")
    assert not broken, f"{page}: broken internal links: {broken}"


#: Widths at which every page must fit: a desktop window and a phone.
WIDTHS = (1400, 400)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("page", PAGES)
def test_page_fits_the_window(page, width, chromium, server, tmp_path):
    """Nothing widens the page, and on a desktop nothing needs a scroll bar of its own.

    At both widths no element sticks out of the window unless a box that scrolls holds it. At
    1400 px, in addition, no code block, output, table or display formula is wider than its box (a
    reader would see it cut off at the right edge). On a phone such boxes may scroll.
    """
    url = f"http://127.0.0.1:{server.server_address[1]}/{page}.html?probe=overflow"
    dom = load_in_browser(chromium, url, tmp_path / "profile", width=width)
    match = re.search(r'<meta name="overflow-probe" content="(-?\d+)\|([^"|]*)\|([^"|]*)"', dom)
    assert match, f"{page}: the overflow probe did not run (page did not finish loading?)"
    excess, outside, scrolled = int(match.group(1)), match.group(2), match.group(3)
    assert excess <= 0 and not outside, (
        f"{page} at {width} px: the page is {excess} px wider than the window; elements that stick "
        f"out: {outside}")
    if width >= 1000:
        assert not scrolled, f"{page} at {width} px: boxes cut off at the right edge: {scrolled}"


class _Figures(HTMLParser):
    """Output images of a notebook page, and whether each sits in a numbered, captioned figure."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.images: list[tuple[str, bool]] = []  # (src, inside a <figure>)
        self.figures = 0
        self.numbers = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "figure":
            self.figures += 1
        if tag == "img" and "_images/" in (a.get("src") or ""):
            self.images.append((a["src"], "figure" in self.stack))
        if tag == "span" and "caption-number" in (a.get("class") or "").split():
            self.numbers += 1
        if tag not in ("img", "br", "hr", "meta", "link", "input"):
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag in self.stack:
            while self.stack and self.stack.pop() != tag:
                pass


def _png_width(path: Path) -> int:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return int.from_bytes(head[16:20], "big")


@pytest.mark.parametrize("page", [p for p in PAGES if p.startswith("notebooks/")])
def test_figures_are_numbered_captioned_and_hidpi(page, built_book):
    """Every output image is a numbered figure with a caption, drawn for a HiDPI screen."""
    html_file = built_book / f"{page}.html"
    parser = _Figures()
    parser.feed(html_file.read_text(encoding="utf8"))
    loose = [src for src, inside in parser.images if not inside]
    assert not loose, f"{page}: output images outside a numbered figure: {loose}"
    assert parser.numbers >= len(parser.images), (
        f"{page}: {len(parser.images)} figures but {parser.numbers} caption numbers")
    for src, _ in parser.images:
        target, _ = _local_target(f"{page}.html", src)
        width = _png_width(target)
        # The text column is about 750 CSS px wide; twice that density needs about 1500 device px
        # for a full-width figure. Figures are drawn 5 in wide at 200 dpi (1000 px, more than the
        # 450 px of the old 90-dpi figures by a factor of 2.2); smaller ones are drawn smaller on
        # purpose, but none below 800 px.
        assert width >= 800, f"{page}: {src} is {width} px wide; draw at 200 dpi (use_book_style)"
