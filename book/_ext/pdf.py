"""The whole built book as one PDF, printed by Debian's Chromium (no LaTeX, no downloaded browser).

    python book/_ext/pdf.py [_build/html] [_build/pdf/book.pdf]

Each page of the HTML book (``make book`` builds it) is opened in headless Chromium in the
order of ``_toc.yml``, MathJax finishes typesetting, every image has loaded, and the page is
printed with its print stylesheet; pypdf joins the pages into one file with one bookmark per
chapter. The pages are served on 127.0.0.1 for the time it takes, so nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import io
import threading
from contextlib import contextmanager
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update"]
READY = """async () => {
    await Promise.all([...document.images].map(i => i.complete ? null :
        new Promise(done => { i.onload = i.onerror = done; })));
    if (window.MathJax && MathJax.startup) await MathJax.startup.promise;
    document.querySelectorAll('details').forEach(d => { d.open = false; });
}"""


def toc_pages(toc: Path = ROOT / "_toc.yml") -> list[str]:
    """The book's pages in reading order, as paths without a suffix: the root, then chapters."""
    def files(entries) -> list[str]:
        found = []
        for entry in entries or []:
            found += [entry["file"]] if "file" in entry else []
            for key in ("parts", "chapters", "sections"):
                found += files(entry.get(key))
        return found

    spec = yaml.safe_load(toc.read_text())
    return [spec["root"]] + files([{k: v for k, v in spec.items() if k != "root"}])


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@contextmanager
def serve(folder: Path):
    """An HTTP server for ``folder`` on 127.0.0.1 (a free port), stopped on exit."""
    handler = functools.partial(_Quiet, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def print_pages(html: Path, pages: list[str]) -> list[tuple[str, bytes]]:
    """(title, PDF bytes) of each page, printed on A4 with backgrounds (figures on white)."""
    from playwright.sync_api import sync_playwright

    printed = []
    with serve(html) as origin, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        page = browser.new_page()
        page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(
            (origin, "data:", "blob:")) else route.abort())
        for name in pages:
            page.goto(f"{origin}/{name}.html", wait_until="load", timeout=60_000)
            page.evaluate(READY)
            title = page.locator("main h1").first.inner_text().strip().rstrip("#").strip()
            printed.append((title, page.pdf(format="A4", print_background=True,
                                            margin=dict(top="15mm", bottom="15mm",
                                                        left="12mm", right="12mm"))))
        browser.close()
    return printed


def merge(printed: list[tuple[str, bytes]], target: Path) -> int:
    """Join the pages' PDFs into ``target`` with a bookmark per page; returns the page count."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for title, data in printed:
        start = len(writer.pages)
        writer.append(PdfReader(io.BytesIO(data)))
        writer.add_outline_item(title=title, page_number=start)
    writer.add_metadata({"/Title": yaml.safe_load((ROOT / "_config.yml").read_text())["title"]})
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as out:
        writer.write(out)
    return len(writer.pages)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", nargs="?", type=Path, default=ROOT / "_build" / "html")
    parser.add_argument("target", nargs="?", type=Path, default=ROOT / "_build" / "pdf" / "book.pdf")
    args = parser.parse_args(argv)
    pages = toc_pages()
    missing = [name for name in pages if not (args.html / f"{name}.html").is_file()]
    if missing:
        raise SystemExit(f"{args.html} lacks {missing}: run `make book` first")
    count = merge(print_pages(args.html, pages), args.target)
    print(f"{args.target}: {count} pages, {len(pages)} chapters")


if __name__ == "__main__":
    main()
