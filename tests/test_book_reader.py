"""What a reader sees in the built book: every page at a phone's 390 px and at 1280 px without
horizontal overflow, no serious or critical accessibility violation (axe-core, from npm, injected
into each page), figures with alt text, and the convolution explorer giving the sizes cnnlib gives.

Run after ``make book`` (``make test`` does both; it installs axe-core into tests/_node).
"""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest
from test_book_browser import HTML, PAGES, PageLog, _typeset, browser, server  # noqa: F401

from cnnlib import geometry

pytestmark = pytest.mark.book

AXE = Path(__file__).resolve().parent / "_node" / "node_modules" / "axe-core" / "axe.min.js"
WIDTHS = {"phone": 390, "desktop": 1280}
IDS = [str(p.relative_to(HTML)) for p in PAGES]


def _open(browser, server, path: Path, width: int):  # noqa: F811
    page = browser.new_page(viewport={"width": width, "height": 900})
    log = PageLog(page, server)
    page.goto(f"{server}/{path.relative_to(HTML).as_posix()}")
    _typeset(page)
    return page, log


def _overflow(page) -> list[str]:
    """The page's own horizontal overflow, and the elements sticking out of the viewport."""
    return page.evaluate("""() => {
        const width = document.documentElement.clientWidth;
        const out = [];
        if (document.documentElement.scrollWidth > width + 1)
            out.push(`page scrolls sideways: ${document.documentElement.scrollWidth} > ${width}`);
        for (const el of document.querySelectorAll(
                '.animation, mjx-container[display="true"], div.highlight, .conv-explorer, figure')) {
            const box = el.getBoundingClientRect();
            if (box.width > 0 && box.right > width + 1)
                out.push(`${el.tagName.toLowerCase()}.${el.className} ends at ${Math.round(box.right)}`);
        }
        return out;
    }""")


@pytest.mark.parametrize("width", WIDTHS.values(), ids=WIDTHS.keys())
@pytest.mark.parametrize("path", PAGES, ids=IDS)
def test_page_fits_the_screen_width(browser, server, path, width):  # noqa: F811
    page, log = _open(browser, server, path, width)
    problems = _overflow(page)
    page.close()
    assert not problems, f"{path.name} at {width} px: {problems}"
    assert not log.errors, log.errors


def _axe(page, context: str, options: str) -> list[str]:
    """Serious and critical axe-core violations in ``context`` (a JS expression)."""
    page.add_script_tag(path=str(AXE))
    return page.evaluate(f"""async () => {{
        const result = await axe.run({context}, {options});
        return result.violations
            .filter(v => v.impact === 'serious' || v.impact === 'critical')
            .map(v => `${{v.impact}} ${{v.id}}: ${{v.help}} (` +
                      v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', ') + ')');
    }}""")


@pytest.fixture(scope="module")
def axe_core():
    if not AXE.is_file():
        pytest.fail(f"{AXE} missing: `make axe` installs axe-core from npm", pytrace=False)


# Rules that judge the theme's colours (contrast, links told apart from text) give the same
# answer on every page and take most of axe's time on long pages: they run on two pages, in both
# themes; every other rule runs on every page.
STYLE_RULES = ["color-contrast", "link-in-text-block"]


@pytest.mark.parametrize("path", PAGES, ids=IDS)
def test_page_has_no_serious_accessibility_violation(browser, server, axe_core, path):  # noqa: F811
    page, _ = _open(browser, server, path, WIDTHS["desktop"])
    rules = ", ".join(f"'{rule}': {{enabled: false}}" for rule in STYLE_RULES)
    violations = _axe(page, "document", f"{{rules: {{{rules}}}}}")
    page.close()
    assert not violations, f"{path.name}: " + "\n".join(violations)


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("name", ["intro", "ch02_convolution"])
def test_text_code_and_links_are_legible_in_both_themes(browser, server, axe_core, name, theme):  # noqa: F811
    """Formulas are left out: MathJax draws them in the text's own colour."""
    page, _ = _open(browser, server, HTML / "book" / f"{name}.html", WIDTHS["desktop"])
    page.evaluate(f"document.documentElement.dataset.theme = '{theme}'")
    page.wait_for_timeout(300)
    violations = _axe(page, "{exclude: [['mjx-container']]}", f"{{runOnly: {STYLE_RULES}}}")
    page.close()
    assert not violations, f"{name} ({theme}): " + "\n".join(violations)


@pytest.mark.parametrize("path", PAGES, ids=IDS)
def test_every_figure_says_what_it_shows(path):
    """Each image and each animation frame carries alt text (not the file name, not empty)."""
    from html.parser import HTMLParser

    class Images(HTMLParser):
        def __init__(self):
            super().__init__()
            self.missing: list[str] = []

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            alt = (attrs.get("alt") or "").strip()
            if tag == "img" and (len(alt) < 10 or alt.lower().endswith((".png", ".svg"))):
                self.missing.append(f"{attrs.get('src', '')[:60]} alt={alt!r}")

    parser = Images()
    parser.feed(path.read_text(encoding="utf-8"))
    assert not parser.missing, f"{path.name}: images without a description: {parser.missing}"


# --------------------------------------------------------------------------- the explorer

SET_AND_READ = """([values, transposed]) => {
    const root = document.querySelector('div.conv-explorer');
    const box = root.querySelector('input[name=transposed]');
    if (box.checked !== transposed) box.click();
    for (const [name, value] of Object.entries(values)) {
        const input = root.querySelector(`input[name=${name}]`);
        input.value = String(value);
        input.dispatchEvent(new Event('input', {bubbles: true}));
    }
    const svg = root.querySelector('.ce-pictures svg');
    return {size: root.dataset.outputSize, formula: root.querySelector('.ce-formula').textContent,
            note: root.querySelector('.ce-note').textContent,
            taps: svg ? svg.querySelectorAll('.ce-tap').length : null};
}"""


def _expected(n, k, s, p, d, op, transposed):
    """(size or None, formula, note fragment) from cnnlib.geometry, PyTorch's rules."""
    if transposed:
        formula = geometry.conv_transpose_output_formula(n, k, s, p, op, d)
        try:
            return geometry.conv_transpose_output_size(n, k, s, p, op, d), formula, ""
        except ValueError:
            return None, formula, "Not allowed"
    formula = geometry.conv_output_formula(n, k, s, p, d)
    try:
        size = geometry.conv_output_size(n, k, s, p, d)
    except ValueError:
        return None, formula, "Not allowed"
    return size, formula, "does not fit" if geometry.conv_leftover(n, k, s, p, d) else ""


def _settings():
    """Every small case conv_arithmetic draws, and a fixed random sample of the rest."""
    grid = list(itertools.product(range(1, 9), range(1, 5), range(1, 4), range(0, 3), (1, 2),
                                  range(0, 3), (False, True)))
    return random.Random(13).sample(grid, 160)


@pytest.fixture(scope="module")
def explorer(browser, server):  # noqa: F811
    page, log = _open(browser, server, HTML / "book" / "ch04_stride.html", 1280)
    page.wait_for_selector("div.conv-explorer .ce-size")
    yield page
    page.close()
    assert not log.errors, log.errors


def test_explorer_shows_cnnlibs_output_size_formula_and_fit(explorer):
    for n, k, s, p, d, op, transposed in _settings():
        shown = explorer.evaluate(SET_AND_READ, [dict(n=n, k=k, s=s, p=p, d=d, op=op), transposed])
        size, formula, note = _expected(n, k, s, p, d, op, transposed)
        where = f"n={n} k={k} s={s} p={p} d={d} op={op} transposed={transposed}: {shown}"
        assert shown["size"] == ("" if size is None else str(size)), where
        assert shown["formula"] == formula, where
        assert (note in shown["note"]) if note else not shown["note"].startswith("Not"), where
        if size is not None and shown["taps"] is not None:
            assert shown["taps"] == k * k, f"{where}: the window should cover k*k cells"


def test_explorer_says_the_lectures_stride_does_not_fit(explorer):
    shown = explorer.evaluate(SET_AND_READ, [dict(n=7, k=3, s=3, p=0, d=1), False])
    assert shown["size"] == "2" and "does not fit" in shown["note"], shown
    assert "2.33" in shown["note"], shown
    shown = explorer.evaluate(SET_AND_READ, [dict(n=7, k=3, s=2, p=0, d=1), False])
    assert shown["size"] == "3" and not shown["note"], shown


def test_explorer_steps_the_window_with_the_buttons(explorer):
    """With stride 2 the second window starts two cells right of the first (padding 1 shifts
    both); the transposed case starts each window one cell on (stride 1 over the stretched input)."""
    def first_tap_column():
        return explorer.evaluate("""() => {
            const rects = [...document.querySelectorAll('div.conv-explorer .ce-pictures svg')[0]
                           .querySelectorAll('rect')];
            const tap = rects.find(r => r.classList.contains('ce-tap'));
            return Number(tap.getAttribute('x')) / Number(tap.getAttribute('width'));
        }""")

    for transposed, step in ((False, 2), (True, 1)):
        explorer.evaluate(SET_AND_READ, [dict(n=7, k=3, s=2, p=1, d=1, op=0), transposed])
        root = explorer.locator("div.conv-explorer")
        assert "Window 1 of" in root.locator(".ce-where").inner_text()
        before = first_tap_column()
        root.locator("button.ce-next").click()
        assert "Window 2 of" in root.locator(".ce-where").inner_text()
        assert first_tap_column() == before + step
        root.locator("button.ce-prev").click()
        assert first_tap_column() == before


def test_explorer_controls_are_labelled_and_typed_input_is_checked(explorer):
    root = explorer.locator("div.conv-explorer")
    explorer.evaluate(SET_AND_READ, [dict(n=7, k=3, s=1, p=0, d=1), False])
    root.get_by_label("stride").fill("0")
    assert "stride must be an integer >= 1" in root.locator(".ce-note").inner_text()
    assert root.locator(".ce-size").inner_text() == "none"
    root.get_by_label("stride").fill("2")
    assert root.locator(".ce-size").inner_text() == "3 x 3"


@pytest.mark.parametrize("page_name, transposed", [("ch04_stride", False), ("ch05_padding", False),
                                                   ("ch08_everything_conv", True)])
def test_explorer_is_on_the_stride_padding_and_transposed_pages(page_name, transposed):
    html = (HTML / "book" / f"{page_name}.html").read_text(encoding="utf-8")
    assert 'class="conv-explorer"' in html
    assert ('data-transposed="true"' in html) == transposed
    assert "_static/explorer.js" in html
