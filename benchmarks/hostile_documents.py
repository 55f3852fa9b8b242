"""Hostile documents: how fast, and in how much memory, qa refuses (or reads) them with its default limits.

Builds, streaming into a temporary folder:

* a Word zip bomb: ~4 MB whose word/document.xml unpacks to 4 GB (a paragraph, then spaces), with an honest
  zip directory, and the same with a directory that claims 1,000 bytes (so only the real bytes tell); the
  liar is read twice, the second time with ``QA_MAX_ZIP_RATIO`` raised out of the way, so that 200 MB are
  really inflated before ``max_unpacked_mb`` stops it (the worst case of the streaming check);
* a Word paragraph bomb: a million tiny paragraphs, identical ("a": ~130 KB, as reported) and numbered
  (compressing like real text);
* a PDF of identical full pages (``--pdf-pages``, default 50,000; 0 skips it).

Each file is then read by ``qa.read_sources`` in a fresh Python process with the default settings (every
``QA_MAX_*`` variable unset), which reports whether it was refused, the message, the wall time of the read
and the process's peak RSS (``VmHWM``, imports included; ``ru_maxrss`` is recorded too, but on Linux a child's
starts at its parent's RSS, which here holds the files just built). Prints the figures and writes
``benchmarks/results/hostile_documents.json``.

    python benchmarks/hostile_documents.py [--pdf-pages 50000]

Target: the 4 GB bomb refused by name in under 10 s with a peak under 1 GiB (reported before the limits:
9.3 GB and 78 s before python-docx refused it).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from _common import machine, write  # noqa: E402
from hostile_files import paragraph_docx, zip_bomb  # noqa: E402

GB = 10**9

#: Run in a fresh process: read one file with the default limits, report what happened.
_CHILD = """
import json, resource, sys, time


def peak_mb():
    # VmHWM: this process's own peak RSS. ru_maxrss survives exec, so a child's starts at its parent's RSS.
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


import qa
imported = peak_mb()
t = time.perf_counter()
report = qa.read_sources([sys.argv[1]], progress=False)
wall = time.perf_counter() - t
print(json.dumps({
    "refused": bool(report.failures),
    "message": report.failures[0].reason if report.failures else None,
    "documents": len(report.documents),
    "chars": sum(len(d.text) for d in report.documents),
    "wall_s": round(wall, 3),
    "peak_rss_mb": round(peak_mb(), 1),
    "peak_rss_after_import_mb": round(imported, 1),
    "ru_maxrss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
}))
"""


def same_pages_pdf(path: Path, pages: int) -> Path:
    """A PDF of ``pages`` identical pages, each twelve lines of text (~1,000 characters)."""
    from fpdf import FPDF

    line = "Every page of this file says the same thing, line after line, from top to bottom here."
    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    for _ in range(pages):
        pdf.add_page()
        for _ in range(12):
            pdf.cell(0, 6, line, new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))
    return path


def read_in_child(path: Path, settings: dict[str, str] | None = None) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QA_MAX_")}
    env.update(settings or {})
    env["PYTHONPATH"] = str(ROOT)
    env.setdefault("HF_HUB_OFFLINE", "1")
    out = subprocess.run([sys.executable, "-c", _CHILD, str(path)], capture_output=True, text=True, env=env,
                         check=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pdf-pages", type=int, default=50_000, help="pages of the identical-pages PDF (0: skip it)")
    args = ap.parse_args()
    cases: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        builders = {
            "docx_bomb_4gb": lambda p: zip_bomb(p, 4 * GB),
            "docx_bomb_4gb_lying_directory": lambda p: zip_bomb(p, 4 * GB, claim=1000),
            "docx_bomb_4gb_lying_directory_ratio_allowed": lambda p: zip_bomb(p, 4 * GB, claim=1000),
            "docx_1m_identical_paragraphs": lambda p: paragraph_docx(p, 1_000_000, numbered=False),
            "docx_1m_numbered_paragraphs": lambda p: paragraph_docx(p, 1_000_000),
        }
        if args.pdf_pages:
            builders[f"pdf_{args.pdf_pages}_identical_pages"] = lambda p: same_pages_pdf(p, args.pdf_pages)
        for name, build in builders.items():
            path = folder / (f"{name}.pdf" if name.startswith("pdf") else f"{name}.docx")
            t = time.perf_counter()
            build(path)
            made = time.perf_counter() - t
            settings = {"QA_MAX_ZIP_RATIO": "1000000"} if name.endswith("ratio_allowed") else {}
            result = {"file_mb": round(path.stat().st_size / 1e6, 3), "build_s": round(made, 1), "settings": settings,
                      **read_in_child(path, settings)}
            if result["message"]:
                result["message"] = result["message"].replace(str(path), path.name)
            cases[name] = result
            print(f"{name}: {result['file_mb']} MB; refused={result['refused']} in {result['wall_s']} s, "
                  f"peak RSS {result['peak_rss_mb']} MB (after imports {result['peak_rss_after_import_mb']} MB)")
            print("    " + (result["message"] or f"read: {result['chars']:,} characters"))
    bomb = cases["docx_bomb_4gb"]
    met = bomb["refused"] and bomb["wall_s"] < 10 and bomb["peak_rss_mb"] < 1024
    for liar in (cases["docx_bomb_4gb_lying_directory"], cases["docx_bomb_4gb_lying_directory_ratio_allowed"]):
        met = met and liar["refused"] and liar["wall_s"] < 10 and liar["peak_rss_mb"] < 1024
    print(f"target (4 GB bombs refused in < 10 s with a peak < 1 GiB): {'met' if met else 'NOT met'}")
    path = write("hostile_documents.json", {
        "machine": machine(),
        "target": "4 GB docx bombs refused by name in < 10 s, peak RSS < 1 GiB",
        "target_met": bool(met),
        "before": "4 GB docx bomb: 0.9 -> 9.3 GB of memory, refused by python-docx after 78 s",
        "cases": cases,
    })
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
