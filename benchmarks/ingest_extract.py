#!/usr/bin/env python
"""Benchmark document extraction: which HTML parser extracts cleanly, and how fast a mixed folder is read.

1. HTML parsers. ``qa.extract.HtmlText`` turns a stream of HTML events into text; it is fed here by the
   standard library's ``html.parser`` (what qa uses), by ``lxml.html`` and by BeautifulSoup (with its
   ``html.parser`` and ``lxml`` builders). Each is scored on traps (scripts holding ``</div>``, unclosed and
   misnested tags, entities, ``<pre>``, tables, missing ``</head>``, hidden elements, ...): every expected line
   must be present, every forbidden string absent. Each is also timed on the generated HTML files and, when
   real HTML documentation is installed on the machine (``--real-html`` globs: the Rust, Node.js, npm, Valgrind
   and libxslt manuals by default), compared with the standard library's text page by page and timed on it.
   Parsers that are not installed are reported as skipped (``pip install lxml beautifulsoup4`` to compare).
2. Throughput. A folder of ~300 generated files (.txt, .md, .html, .pdf made with fpdf2, .docx made with
   python-docx, .jsonl) is read with ``qa.documents.read_sources``; documents/s and MB/s overall (median of 3
   runs) and per format.

Usage:  .venv/bin/python benchmarks/ingest_extract.py [--files 300] [--out PATH]
Writes benchmarks/results/ingest_extract.json (by default) and prints a summary.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qa.documents import read_sources  # noqa: E402
from qa.extract import Extracted, HtmlText, html_to_text  # noqa: E402

DEFAULT_OUT = ROOT / "benchmarks" / "results" / "ingest_extract.json"

# --------------------------------------------------------------------------------------------------------------
# HTML parsers: each feeds HtmlText's events from its own tree or tokenizer.
# --------------------------------------------------------------------------------------------------------------


def stdlib(markup: str) -> Extracted:
    return html_to_text(markup)


def lxml_html(markup: str) -> Extracted:
    import lxml.html

    sink = HtmlText()
    root = lxml.html.document_fromstring(markup.encode("utf-8"), parser=lxml.html.HTMLParser(encoding="utf-8"))

    def walk(el: Any) -> None:
        # Recursion over children (not iterwalk, which skips comments and with them the text after them).
        sink.start(el.tag, list(el.attrib.items()))
        if el.text:
            sink.data(el.text)
        for child in el:
            if isinstance(child.tag, str):
                walk(child)
            if child.tail:
                sink.data(child.tail)
        sink.end(el.tag)

    walk(root)
    return sink.finish()


def _soup(markup: str, builder: str) -> Extracted:
    from bs4 import BeautifulSoup
    from bs4.element import NavigableString, PreformattedString, Tag

    sink = HtmlText()

    def walk(node: Tag) -> None:
        for child in node.children:
            if isinstance(child, Tag):
                attrs = [(k, v if isinstance(v, str) else " ".join(v)) for k, v in child.attrs.items()]
                sink.start(child.name, attrs)
                walk(child)
                sink.end(child.name)
            elif isinstance(child, NavigableString) and not isinstance(child, PreformattedString):
                sink.data(str(child))

    walk(BeautifulSoup(markup, builder))
    return sink.finish()


def bs4_htmlparser(markup: str) -> Extracted:
    return _soup(markup, "html.parser")


def bs4_lxml(markup: str) -> Extracted:
    return _soup(markup, "lxml")


PARSERS: dict[str, tuple[Callable[[str], Extracted], list[str]]] = {
    "stdlib html.parser": (stdlib, []),
    "lxml.html": (lxml_html, ["lxml"]),
    "bs4 + html.parser": (bs4_htmlparser, ["beautifulsoup4"]),
    "bs4 + lxml": (bs4_lxml, ["beautifulsoup4", "lxml"]),
}

# (name, html, lines that must appear whole, strings that must not appear anywhere, expected title)
TRAPS: list[tuple[str, str, list[str], list[str], str | None]] = [
    ("script holding markup", '<p>Before.</p><script>var s = "</div><p>not text</p>";</script><p>After.</p>',
     ["Before.", "After."], ["not text", "var s"], None),
    ("style, noscript, template", "<style>p{color:red}</style><noscript>Enable JS</noscript>"
     "<template><p>tmpl</p></template><p>Kept.</p>", ["Kept."], ["color", "Enable JS", "tmpl"], None),
    ("navigation and page furniture", "<header><a href=/>Home</a></header><nav><ul><li>Menu<li>More</ul></nav>"
     "<main><p>Content here.</p></main><aside>Related</aside><footer>Copyright</footer>"
     '<div role="navigation">Crumbs</div>', ["Content here."], ["Home", "Menu", "More", "Related",
                                                                 "Copyright", "Crumbs"], None),
    ("article header kept", "<article><header><h1>Cats</h1></header><p>Cats sleep.</p>"
     "<footer>By Ann</footer></article>", ["Cats", "Cats sleep.", "By Ann"], [], "Cats"),
    ("hidden elements", '<p>Shown.</p><div hidden>h1dden</div><div style="display: none">g0ne</div>'
     '<span aria-hidden="true">ic0n</span>', ["Shown."], ["h1dden", "g0ne", "ic0n"], None),
    ("entities", "<p>Caf&eacute; &mdash; na&iuml;ve&nbsp;text &lt;b&gt; &amp; &#8364;5 &#x263A;</p>",
     ["Café — naïve text <b> & €5 ☺"], [], None),
    ("inline elements inside words", "<p>Hel<b>lo</b> <i>wor</i>ld.</p>", ["Hello world."], [], None),
    ("unclosed p and li", "<p>One<p>Two<ul><li>A<li>B</ul>", ["One", "Two", "A", "B"], [], None),
    ("misnested inline", "<b><p>Misnested</b> bold.</p>", ["Misnested bold."], [], None),
    ("stray end tags", "<p>First.</p></div></span></table><p>Second.</p>", ["First.", "Second."], [], None),
    ("dropped block between words", "<p>Before<nav>menu</nav>After</p>", ["Before", "After"], ["menu"], None),
    ("upper-case tags, bare attributes", "<P CLASS=x>Upper case.</P><BR><DIV>Div.</DIV>",
     ["Upper case.", "Div."], [], None),
    ("br splits lines", "<p>Line one<br>Line two<br/>Line three</p>", ["Line one", "Line two", "Line three"],
     [], None),
    ("pre keeps lines", "<pre>def f():\n    return 1\n</pre>", ["def f():", "    return 1"], [], None),
    ("table rows", "<table><tr><th>Name<th>Age<tr><td>Tom<td>3</table>", ["Name | Age", "Tom | 3"], [], None),
    ("comments and conditional comments", "<p>Vis<!-- hid -->ible</p><!--[if IE]><p>ie only</p><![endif]-->",
     ["Visible"], ["hid", "ie only"], None),
    ("missing </head>", "<html><head><title>T</title><meta charset=utf-8><body><p>Body survives.</p>",
     ["Body survives."], [], "T"),
    ("no html, head or body", "Just text <em>here</em>.<h3>Head</h3>More.", ["Just text here.", "Head", "More."],
     [], None),
    ("title from h1 without <title>", "<h1>The <em>Real</em> Title</h1><p>x</p>", ["The Real Title"], [],
     "The Real Title"),
    ("form widgets", "<form><label>Name</label><select><option>Opt1</select><button>Go</button>"
     "<textarea>typed</textarea></form><p>After form.</p>", ["Name", "After form."], ["Opt1", "Go", "typed"],
     None),
    ("svg text", "<p>Before svg.</p><svg><title>icon</title><text>Svg text</text></svg><p>After svg.</p>",
     ["Before svg.", "After svg."], ["Svg text", "icon"], None),
]


def score_parser(fn: Callable[[str], Extracted]) -> dict[str, Any]:
    failures = []
    for name, markup, required, forbidden, title in TRAPS:
        try:
            got = fn(markup)
        except Exception as exc:  # noqa: BLE001 - a parser that crashes fails the trap
            failures.append({"trap": name, "error": f"{type(exc).__name__}: {exc}"})
            continue
        lines = got.text.split("\n")
        problems = [f"missing line {r!r}" for r in required if r not in lines]
        problems += [f"kept {f!r}" for f in forbidden if f in got.text]
        if title is not None and got.title != title:
            problems.append(f"title {got.title!r} != {title!r}")
        if problems:
            failures.append({"trap": name, "problems": problems, "text": got.text})
    return {"passed": len(TRAPS) - len(failures), "traps": len(TRAPS), "failures": failures}


DEFAULT_REAL_HTML = [
    "/root/.rustup/toolchains/stable-*/share/doc/rust/html/book/*.html:40",
    "/root/.rustup/toolchains/stable-*/share/doc/rust/html/error_codes/*.html:20",
    "/root/.rustup/toolchains/stable-*/share/doc/rust/html/std/vec/*.html:10",
    "/usr/share/doc/nodejs/api/*.html:25",
    "/usr/share/doc/valgrind/html/*.html:20",
    "/usr/share/doc/libxslt1-dev/html/*.html:15",
    "/usr/lib/node_modules/npm/docs/output/commands/*.html:20",
    "/usr/share/doc/libffi8/html/*.html:10",
]


def real_pages(specs: list[str]) -> list[tuple[str, str]]:
    """Installed HTML pages: each spec is ``GLOB[:N]`` (the first N matches in name order)."""
    import glob

    from qa.errors import DocumentError
    from qa.extract import decode_text

    pages = []
    for spec in specs:
        pattern, _, count = spec.rpartition(":") if spec.rpartition(":")[2].isdigit() else (spec, "", "")
        for path in sorted(glob.glob(pattern))[: int(count) if count else None]:
            try:
                pages.append((path, decode_text(Path(path).read_bytes(), path)))
            except (OSError, DocumentError):
                continue
    return pages


def compare_real(pages: list[tuple[str, str]]) -> dict[str, Any]:
    """Each parser's text on real pages against the standard library's, and its speed on them."""
    import warnings

    warnings.filterwarnings("ignore", message=".*looks like you're using an HTML parser to parse an XML")
    if not pages:
        return {"pages": 0}
    out: dict[str, Any] = {"pages": len(pages), "MB": round(sum(len(t.encode()) for _, t in pages) / 1e6, 3),
                           "parsers": {}}
    base = [stdlib(text) for _, text in pages]
    for name, (fn, needs) in PARSERS.items():
        if any(versions()[n] == "not installed" for n in needs):
            continue
        t0 = time.perf_counter()
        got = [fn(text) for _, text in pages]
        took = time.perf_counter() - t0
        differ = [path for (path, _), a, b in zip(pages, base, got, strict=True)
                  if (a.text, a.title) != (b.text, b.title)]
        out["parsers"][name] = {
            "ms_per_page": round(1000 * took / len(pages), 2), "MB_per_s": round(out["MB"] / took, 2),
            "same_text_and_title_as_stdlib": len(pages) - len(differ), "differing_pages": differ[:10],
        }
    return out


def time_parser(fn: Callable[[str], Extracted], pages: list[str]) -> float:
    runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        for page in pages:
            fn(page)
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


# --------------------------------------------------------------------------------------------------------------
# A mixed folder of generated files
# --------------------------------------------------------------------------------------------------------------


def paragraphs() -> list[str]:
    text = (ROOT / "qa" / "data" / "article.txt").read_text(encoding="utf-8")
    return [p.strip() for p in text.split("\n") if len(p.strip()) > 40]


def make_folder(folder: Path, n_files: int, seed: int = 0) -> dict[str, int]:
    """Write ~n_files files of every format into ``folder``; return how many of each."""
    import docx
    from fpdf import FPDF

    rng = random.Random(seed)
    paras = paragraphs()
    font = None
    for candidate in ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",):
        if Path(candidate).is_file():
            font = candidate
    counts: dict[str, int] = {}
    kinds = [".txt", ".md", ".html", ".pdf", ".docx", ".jsonl"]
    for i in range(n_files):
        kind = kinds[i % len(kinds)]
        counts[kind] = counts.get(kind, 0) + 1
        chosen = rng.sample(paras, k=min(len(paras), rng.randint(4, 16)))
        sub = folder / f"part{i % 7}"
        sub.mkdir(parents=True, exist_ok=True)
        path = sub / f"doc{i:04d}{kind}"
        if kind == ".txt":
            path.write_text("\n\n".join(chosen) + "\n", encoding="utf-8")
        elif kind == ".md":
            body = [f"# Document {i}"]
            for j, p in enumerate(chosen):
                if j % 4 == 0:
                    body.append(f"## Section {j // 4 + 1}")
                body.append(p)
            path.write_text("\n\n".join(body) + "\n", encoding="utf-8")
        elif kind == ".html":
            items = "".join(f"<h2>Section {j}</h2><p>{p}</p>" if j % 4 == 0 else f"<p>{p}</p>"
                            for j, p in enumerate(chosen))
            path.write_text(
                f"<!DOCTYPE html><html><head><title>Document {i}</title><style>p{{margin:0}}</style>"
                f"<script>console.log('x')</script></head><body><nav><a href='/'>Home</a></nav>"
                f"<main><article><h1>Document {i}</h1>{items}</article></main><footer>(c) 2024</footer>"
                "</body></html>",
                encoding="utf-8",
            )
        elif kind == ".pdf":
            pdf = FPDF()
            pdf.set_title(f"Document {i}")
            if font:
                pdf.add_font("DejaVu", fname=font)
                pdf.set_font("DejaVu", size=11)
            else:
                pdf.set_font("Helvetica", size=11)
            pdf.add_page()
            for p in chosen:
                pdf.multi_cell(0, 6, p if font else p.encode("latin-1", "replace").decode("latin-1"),
                               new_x="LMARGIN", new_y="NEXT")
                pdf.ln(3)
            pdf.output(str(path))
        elif kind == ".docx":
            d = docx.Document()
            d.add_heading(f"Document {i}", level=1)
            for j, p in enumerate(chosen):
                if j % 4 == 0:
                    d.add_heading(f"Section {j // 4 + 1}", level=2)
                d.add_paragraph(p)
            d.save(str(path))
        else:
            lines = [json.dumps({"id": f"j{i}-{k}", "title": f"Record {k}", "text": p})
                     for k, p in enumerate(chosen)]
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return counts


def throughput(folder: Path) -> dict[str, Any]:
    files = [p for p in folder.rglob("*") if p.is_file()]
    total_bytes = sum(p.stat().st_size for p in files)
    runs, report = [], None
    for _ in range(3):
        t0 = time.perf_counter()
        report = read_sources([folder])
        runs.append(time.perf_counter() - t0)
    assert report is not None
    if report.failures:
        raise SystemExit(f"unexpected failures: {report.failures[:3]}")
    seconds = statistics.median(runs)
    per_format: dict[str, Any] = {}
    for suffix in sorted({p.suffix for p in files}):
        group = [p for p in files if p.suffix == suffix]
        t0 = time.perf_counter()
        docs = read_sources(group)
        took = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in group)
        per_format[suffix] = {
            "files": len(group), "documents": len(docs.documents), "MB": round(size / 1e6, 3),
            "seconds": round(took, 3), "files_per_s": round(len(group) / took, 1),
            "MB_per_s": round(size / 1e6 / took, 2),
        }
    return {
        "files": len(files), "documents": len(report.documents), "MB": round(total_bytes / 1e6, 3),
        "text_MB": round(sum(len(d.text.encode("utf-8")) for d in report.documents) / 1e6, 3),
        "seconds_median_of_3": round(seconds, 3), "files_per_s": round(len(files) / seconds, 1),
        "documents_per_s": round(len(report.documents) / seconds, 1),
        "MB_per_s": round(total_bytes / 1e6 / seconds, 2), "per_format": per_format,
    }


def versions() -> dict[str, str]:
    out = {}
    for name in ("pypdf", "python-docx", "markdown-it-py", "fpdf2", "lxml", "beautifulsoup4", "cryptography"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--real-html", action="append", default=None, metavar="GLOB[:N]",
                        help="installed HTML pages to compare the parsers on (default: manuals found on this machine)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "docs"
        counts = make_folder(folder, args.files)
        html_pages = [p.read_text(encoding="utf-8") for p in sorted(folder.rglob("*.html"))]
        parsers: dict[str, Any] = {}
        for name, (fn, needs) in PARSERS.items():
            missing = [n for n in needs if versions()[n] == "not installed"]
            if missing:
                parsers[name] = {"skipped": f"not installed: {', '.join(missing)}"}
                continue
            result = score_parser(fn)
            seconds = time_parser(fn, html_pages)
            result["ms_per_page"] = round(1000 * seconds / max(len(html_pages), 1), 3)
            parsers[name] = result
        speed = throughput(folder)
    real = compare_real(real_pages(args.real_html or DEFAULT_REAL_HTML))
    result = {
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
                    "load_average_1m_at_end": round(os.getloadavg()[0], 2)},
        "versions": versions(), "generated": counts, "html_parsers": parsers, "html_parsers_on_real_pages": real,
        "throughput": speed,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print("HTML parsers (traps passed, ms per generated page):")
    for name, r in parsers.items():
        if "skipped" in r:
            print(f"  {name:20s} skipped ({r['skipped']})")
        else:
            failed = ", ".join(f["trap"] for f in r["failures"]) or "-"
            print(f"  {name:20s} {r['passed']}/{r['traps']}  {r['ms_per_page']:.2f} ms  failed: {failed}")
    if real["pages"]:
        print(f"HTML parsers on {real['pages']} installed pages ({real['MB']} MB): same text and title as stdlib:")
        for name, r in real["parsers"].items():
            print(f"  {name:20s} {r['same_text_and_title_as_stdlib']}/{real['pages']}  {r['ms_per_page']:.1f} ms/page"
                  f"  {r['MB_per_s']:.2f} MB/s")
    print(f"Throughput on {speed['files']} files ({speed['MB']} MB): {speed['documents_per_s']} documents/s, "
          f"{speed['files_per_s']} files/s, {speed['MB_per_s']} MB/s")
    for suffix, r in speed["per_format"].items():
        print(f"  {suffix:6s} {r['files']:4d} files {r['MB']:7.3f} MB  {r['files_per_s']:8.1f} files/s  "
              f"{r['MB_per_s']:7.2f} MB/s")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
