#!/usr/bin/env python
"""Benchmark sentence segmenters (pysbd, blingfire, syntok) for the document-QA project.

Every segmenter is wrapped so that it yields character spans ``(start, end)`` into the *original*
text (``text[start:end]`` is the sentence; spans never copy or normalise text), because sentences
are cited with exact offsets.  Text is first split on ``"\\n"`` (the default article has one
paragraph per line) and each line is segmented on its own; spans are trimmed of surrounding
whitespace and, in the ``post`` variant, fragments without any letter/digit (e.g. a lone closing
``’’``) are merged into a neighbouring sentence of the same line.

Measures
  * SQuAD (ReQA setting): sentence counts vs ReQA's spans, end-boundary P/R/F1 against ReQA,
    fraction of answer spans that cross a sentence boundary, raw-offset invariant failures,
    speed (sentences/s, median of 3 runs).
  * The default article: the sentences each segmenter produces and a set of known traps.
  * Offset invariants on weird inputs (empty, whitespace, emoji, RTL, "a.b.c", "...", CRLF,
    control chars, 10k chars without punctuation, ...).

Usage:  .venv/bin/python benchmarks/segmenters.py [--eval-dir /work/shared/eval] [--out PATH]
Writes benchmarks/results/segmenters.json (by default) and prints a summary.
"""
from __future__ import annotations

import argparse
import json
import platform
import re
import statistics
import sys
import time
import unicodedata
from importlib.metadata import version
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_EVAL = Path("/work/shared/eval")
DEFAULT_OUT = HERE / "results" / "segmenters.json"

Span = tuple[int, int]


# --------------------------------------------------------------------------------------------
# Segmenter wrappers.  ``raw(text)`` calls the library on ``text`` exactly as given and returns
# [(start, end, segment_as_reported_by_the_library)], without any repair.
# --------------------------------------------------------------------------------------------
class PysbdSeg:
    name = "pysbd"
    api = ('seg = pysbd.Segmenter(language="en", clean=False, char_span=True); '
           "[(s.start, s.end) for s in seg.segment(text)]  # TextSpan(sent, start, end), end exclusive, "
           "sent includes trailing whitespace")

    def __init__(self):
        import pysbd

        self._seg = pysbd.Segmenter(language="en", clean=False, char_span=True)

    def raw(self, text: str):
        return [(s.start, s.end, s.sent) for s in self._seg.segment(text)]


class BlingfireSeg:
    name = "blingfire"
    api = ("out, offs = blingfire.text_to_sentences_and_offsets(text); "
           "sents = out.split('\\n')  # offs: [(start, end)] code-point offsets, end exclusive")

    def __init__(self):
        import blingfire

        self._f = blingfire.text_to_sentences_and_offsets

    def raw(self, text: str):
        out, offs = self._f(text)
        sents = out.split("\n") if out else []
        res = []
        for i, (s, e) in enumerate(offs):
            res.append((s, e, sents[i] if i < len(sents) else None))
        # more sentence strings than offsets: report them as unlocated segments
        for extra in sents[len(offs):]:
            res.append((-1, -1, extra))
        return res


class SyntokSeg:
    name = "syntok"
    api = ("for para in syntok.segmenter.analyze(text): for sent in para: "
           "toks = [t for t in sent if t.value]; start = toks[0].offset; "
           "end = toks[-1].offset + len(toks[-1].value)  # use analyze(), not process(): "
           "process() rewrites n't->not and joins hyphen-linebreaks")

    def __init__(self):
        import syntok.segmenter

        self._analyze = syntok.segmenter.analyze
        self.token_mismatches = 0  # tokens whose value != text[offset:offset+len(value)]

    def raw(self, text: str):
        res = []
        for para in self._analyze(text):
            for sent in para:
                toks = [t for t in sent if t.value]
                if not toks:
                    continue
                for t in toks:
                    if text[t.offset:t.offset + len(t.value)] != t.value:
                        self.token_mismatches += 1
                start = toks[0].offset
                end = toks[-1].offset + len(toks[-1].value)
                seg = "".join(t.spacing + t.value for t in sent)
                res.append((start, end, seg))
        return res


SEGMENTERS = [PysbdSeg, BlingfireSeg, SyntokSeg]
PACKAGES = ["pysbd", "blingfire", "syntok"]


# --------------------------------------------------------------------------------------------
# Span utilities
# --------------------------------------------------------------------------------------------
def trim(text: str, s: int, e: int) -> Span:
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    return s, e


def has_alnum(s: str) -> bool:
    return any(unicodedata.category(c)[0] in "LN" for c in s)


def merge_fragments(text: str, spans: list[Span]) -> list[Span]:
    """Merge spans with no letter/digit (``’’``, ``...``, ``)``) into the previous span of the
    same line, or into the next one when it is the first span of the line.  A line made only of
    such fragments stays as one span (so no text is lost)."""
    out: list[Span] = []
    carry = None
    for s, e in spans:
        if carry is not None:
            s, carry = carry, None
        if not has_alnum(text[s:e]):
            if out:
                out[-1] = (out[-1][0], e)
            else:
                carry = s
            continue
        out.append((s, e))
    if carry is not None:
        out.append((carry, spans[-1][1]))
    return out


def iter_lines(text: str):
    pos = 0
    for line in text.split("\n"):
        yield pos, line
        pos += len(line) + 1


def segment_document(seg, text: str, merge: bool = True, split_lines: bool = True) -> list[Span]:
    """The project pipeline: split on '\\n', segment every non-blank line, trim whitespace,
    optionally merge letter-less fragments.  Returns absolute spans into ``text``.
    ``split_lines=False`` hands the whole text to the library (for comparison only)."""
    spans: list[Span] = []
    for pos, line in (iter_lines(text) if split_lines else [(0, text)]):
        if not line.strip():
            continue
        line_spans = []
        for s, e, _ in seg.raw(line):
            if s < 0:
                continue
            s2, e2 = trim(line, max(s, 0), min(e, len(line)))
            if e2 > s2:
                line_spans.append((s2, e2))
        if merge and line_spans:
            line_spans = merge_fragments(line, line_spans)
        spans.extend((pos + s, pos + e) for s, e in line_spans)
    return spans


def check_spans(text: str, spans, segments=None) -> dict:
    """Offset invariants.  ``spans``: [(start, end)]; ``segments``: what the library said each
    sentence is (None = not checked)."""
    n = len(text)
    in_bounds = all(0 <= s <= e <= n for s, e in spans)
    nonempty = all(text[s:e].strip() for s, e in spans) if in_bounds else False
    ordered = all(spans[i][0] >= spans[i - 1][1] for i in range(1, len(spans)))
    match = None
    bad_match = []
    if segments is not None:
        for (s, e), seg in zip(spans, segments, strict=True):
            if seg is None or text[s:e].strip() != seg.strip():
                bad_match.append({"span": [s, e], "text": text[s:e][:80] if in_bounds else None,
                                  "segment": None if seg is None else seg[:80]})
        match = not bad_match
    covered = bytearray(n)
    if in_bounds:
        for s, e in spans:
            covered[s:e] = b"\x01" * (e - s)
    uncovered = [i for i, c in enumerate(text) if not c.isspace() and not covered[i]]
    res = {
        "n_spans": len(spans),
        "in_bounds": in_bounds,
        "nonempty": nonempty,
        "increasing_non_overlapping": ordered,
        "segment_matches_text": match,
        "covers_all_non_whitespace": not uncovered,
        "ok": in_bounds and nonempty and ordered and (match is not False) and not uncovered,
    }
    if bad_match:
        res["segment_mismatches"] = bad_match[:3]
    if uncovered:
        res["uncovered_chars"] = len(uncovered)
        res["uncovered_sample"] = [uncovered[0], text[uncovered[0]:uncovered[0] + 40]]
    return res


def check_raw(seg, text: str) -> dict:
    try:
        r = seg.raw(text)
    except Exception as ex:  # noqa: BLE001
        return {"ok": False, "exception": f"{type(ex).__name__}: {ex}"}
    return check_spans(text, [(s, e) for s, e, _ in r], [x for _, _, x in r])


# --------------------------------------------------------------------------------------------
# SQuAD / ReQA
# --------------------------------------------------------------------------------------------
def load_jsonl(p: Path):
    with open(p, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def rstrip_end(text: str, e: int) -> int:
    while e > 0 and text[e - 1].isspace():
        e -= 1
    return e


def boundary_sets(text: str, spans) -> tuple[set, set]:
    """(internal end boundaries, all end boundaries), whitespace-normalised."""
    ends = {rstrip_end(text, e) for s, e in spans}
    doc_end = rstrip_end(text, len(text))
    return ends - {doc_end}, ends


def prf(tp, n_pred, n_gold):
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4)}


def answer_instances(questions, docs):
    """Unique (doc_id, start, end) answer spans, whitespace-trimmed, verified against the text."""
    seen = set()
    bad = 0
    for q in questions:
        text = docs[q["doc_id"]]
        for ans, st in zip(q["answers"], q["answer_start"], strict=True):
            if text[st:st + len(ans)] != ans:
                bad += 1
                continue
            a, b = trim(text, st, st + len(ans))
            if b > a:
                seen.add((q["doc_id"], a, b))
    return sorted(seen), bad


EXAMPLES = 25


def squad_metrics(spans_by_doc, reqa, docs, answers) -> dict:
    n_pred = sum(len(v) for v in spans_by_doc.values())
    n_gold = sum(len(v) for v in reqa.values())
    same_count = sum(len(spans_by_doc[d]) == len(reqa[d]) for d in docs)
    tp_i = np_i = ng_i = tp_a = np_a = ng_a = 0
    fp_ex, fn_ex = [], []
    fp_kind: dict[str, int] = {}
    fragments: list[str] = []
    for d, text in docs.items():
        pi, pa = boundary_sets(text, spans_by_doc[d])
        gi, ga = boundary_sets(text, reqa[d])
        tp_i += len(pi & gi)
        np_i += len(pi)
        ng_i += len(gi)
        tp_a += len(pa & ga)
        np_a += len(pa)
        ng_a += len(ga)
        for b in pi - gi:
            k = text[b - 1] if b else ""
            k = k if k in ".!?;:”’\")]]" else ("digit" if k.isdigit() else "other")
            fp_kind[k] = fp_kind.get(k, 0) + 1
        for s, e in spans_by_doc[d]:
            if not has_alnum(text[s:e]):
                fragments.append(text[s:e])
        for b in sorted(pi - gi):
            fp_ex.append({"doc_id": d, "at": b, "context": text[max(0, b - 50):b] + " ‖ " + text[b:b + 30]})
        for b in sorted(gi - pi):
            fn_ex.append({"doc_id": d, "at": b, "context": text[max(0, b - 50):b] + " ‖ " + text[b:b + 30]})
    crossing = 0
    examples = []
    for d, a, b in answers:
        if not any(s <= a and b <= e for s, e in spans_by_doc[d]):
            crossing += 1
            if len(examples) < 5:
                examples.append({"doc_id": d, "answer": docs[d][a:b][:80]})
    return {
        "n_sentences": n_pred,
        "n_sentences_reqa": n_gold,
        "docs_with_same_count_as_reqa": round(same_count / len(docs), 4),
        "internal_end_boundaries": {"tp": tp_i, "pred": np_i, "gold": ng_i, **prf(tp_i, np_i, ng_i)},
        "all_end_boundaries": {"tp": tp_a, "pred": np_a, "gold": ng_a, **prf(tp_a, np_a, ng_a)},
        "answers": len(answers),
        "answers_crossing_boundary": crossing,
        "answers_crossing_fraction": round(crossing / len(answers), 5) if answers else None,
        "crossing_examples": examples,
        "extra_boundaries_by_last_char": dict(sorted(fp_kind.items(), key=lambda x: -x[1])),
        "letterless_sentences": fragments[:20],
        "n_letterless_sentences": len(fragments),
        "extra_boundary_examples": fp_ex[:EXAMPLES],
        "missed_boundary_examples": fn_ex[:EXAMPLES],
    }


def run_squad(segs, eval_dir: Path) -> dict:
    sq = eval_dir / "squad"
    docs = {d["id"]: d["text"] for d in load_jsonl(sq / "docs.jsonl")}
    reqa = {r["doc_id"]: [tuple(x) for x in r["spans"]] for r in load_jsonl(sq / "sentences_reqa.jsonl")}
    questions = load_jsonl(sq / "questions.jsonl")
    answers, bad_answers = answer_instances(questions, docs)
    out = {
        "n_docs": len(docs),
        "n_docs_with_newline": sum("\n" in t for t in docs.values()),
        "n_questions": len(questions),
        "n_unique_answer_spans": len(answers),
        "answers_not_matching_text": bad_answers,
        "reqa_baseline": squad_metrics(reqa, reqa, docs, answers),
        "segmenters": {},
    }
    out["reqa_baseline"]["raw_invariants_failed_docs"] = sum(
        not check_spans(docs[d], reqa[d])["ok"] for d in docs)
    for seg in segs:
        res = {}
        # offset invariants of the library itself, line by line
        fails, fail_examples = 0, []
        for d, text in docs.items():
            for _, line in iter_lines(text):
                if not line.strip():
                    continue
                c = check_raw(seg, line)
                if not c["ok"]:
                    fails += 1
                    if len(fail_examples) < 3:
                        fail_examples.append({"doc_id": d, **{k: v for k, v in c.items() if k != "ok"}})
        res["raw_invariant_failed_lines"] = fails
        res["raw_invariant_fail_examples"] = fail_examples
        for variant, merge, split_lines in (("per_line", False, True), ("per_line_merged", True, True),
                                            ("whole_text_merged", True, False)):
            spans = {d: segment_document(seg, t, merge=merge, split_lines=split_lines)
                     for d, t in docs.items()}
            res[variant] = squad_metrics(spans, reqa, docs, answers)
            res[variant]["pipeline_invariant_failed_docs"] = sum(
                not check_spans(docs[d], spans[d])["ok"] for d in docs)
        # speed: full pipeline (per-line + trim + merge), median of 3
        # CPU time (process_time) is the headline figure because the benchmark machine may be
        # shared; wall-clock is recorded too.
        wall, cpu = [], []
        n = 0
        for _ in range(3):
            t0, c0 = time.perf_counter(), time.process_time()
            n = sum(len(segment_document(seg, t)) for t in docs.values())
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        med, medw = statistics.median(cpu), statistics.median(wall)
        res["speed"] = {"cpu_runs_s": [round(t, 4) for t in cpu], "wall_runs_s": [round(t, 4) for t in wall],
                        "median_cpu_s": round(med, 4), "median_wall_s": round(medw, 4),
                        "sentences": n, "sentences_per_s": round(n / med, 1),
                        "sentences_per_s_wall": round(n / medw, 1),
                        "docs_per_s": round(len(docs) / med, 1)}
        out["segmenters"][seg.name] = res
    return out


# --------------------------------------------------------------------------------------------
# The default article
# --------------------------------------------------------------------------------------------
ABBREV_RE = re.compile(r"\b(US|PM|NAP|NACTA|ECPR|IR|KP|Pak)\W{0,2}$")
PHRASES = {
    # abbreviations that must not cause a split
    "abbrev_US": ["the US still has", "the US Administration has", "the US cannot afford",
                  "with the US based on", "vital to the US, as it sits"],
    "abbrev_PM": ["Special Assistant to the PM, Tariq Fatmi"],
    "abbrev_NAP_NACTA": ["National Action Plan (NAP) being implemented",
                         "Authority (NACTA) to combat"],
    # curly quotes / apostrophes
    "curly_quotes": ["authorities’ regarding", "Pakistan ‘s security", "Trump‘s associate",
                     "“very satisfied” over", "Trump’s narrative", "be ‘’more aligned"],
    # e-mail at the very end
    "email": ["(rizvipeaceresearcher@gmail.com)"],
    # other parentheses
    "parentheses": ["(a major non-NATO ally since 2002)", "(with special focus on Palestine, Kashmir)",
                    "(ECPR), including"],
}


def contained(text: str, spans, phrase: str) -> bool | None:
    i = text.find(phrase)
    if i < 0:
        return None
    return any(s <= i and i + len(phrase) <= e for s, e in spans)


def run_article(segs, eval_dir: Path) -> dict:
    text = (eval_dir / "seed" / "article.txt").read_text(encoding="utf-8")
    lines = text.split("\n")
    line_of = []
    for no, (pos, line) in enumerate(iter_lines(text), 1):
        line_of.append((pos, pos + len(line), no))

    def lineno(off):
        for a, b, no in line_of:
            if a <= off <= b:
                return no
        return None

    out = {"n_lines": len(lines), "n_chars": len(text), "segmenters": {}}
    for seg in segs:
        raw = segment_document(seg, text, merge=False)
        post = segment_document(seg, text, merge=True)
        res = {
            "n_sentences_raw": len(raw),
            "n_sentences_merged": len(post),
            "invariants_raw_per_line": all(check_raw(seg, ln)["ok"] for ln in lines if ln.strip()),
            "invariants_pipeline": check_spans(text, post)["ok"],
        }
        # extra splits: lines 1..31 should be one sentence each; line 32 may be 1 or 2
        counts = {}
        for s, _ in raw:
            counts[lineno(s)] = counts.get(lineno(s), 0) + 1
        res["lines_with_multiple_sentences_raw"] = {str(k): v for k, v in counts.items() if v > 1}
        splits = []
        for s, e in raw:
            ln = lineno(s)
            lpos = line_of[ln - 1][0]
            lend = rstrip_end(text, line_of[ln - 1][1])
            if e < lend:  # a split inside the line
                left = text[lpos:e]
                splits.append({"line": ln, "before": left[-40:], "after": text[e:e + 30].lstrip()[:30],
                               "abbreviation_split": bool(ABBREV_RE.search(left))})
        res["in_line_splits"] = splits
        traps = {}
        for name, phrases in PHRASES.items():
            traps[name] = {p: contained(text, post, p) for p in phrases}
        # the closing ’’ at the start of line 17
        l17 = [(s, e) for s, e in raw if lineno(s) == 17]
        l17p = [(s, e) for s, e in post if lineno(s) == 17]
        traps["quote_line17"] = {
            "raw_first_segment": text[l17[0][0]:l17[0][1]][:40] if l17 else None,
            "raw_isolated_quote_fragment": any(not has_alnum(text[s:e]) for s, e in l17),
            "merged_first_segment": text[l17p[0][0]:l17p[0][1]][:40] if l17p else None,
            "ok_raw": bool(l17) and has_alnum(text[l17[0][0]:l17[0][1]]) and len(l17) == 1,
            "ok_merged": bool(l17p) and text[l17p[0][0]:].startswith("’’ Of course") and len(l17p) == 1,
        }
        l32 = [text[s:e] for s, e in post if lineno(s) == 32]
        traps["line32_sentences"] = l32
        traps["summary"] = {
            "no_abbreviation_splits": not any(x["abbreviation_split"] for x in splits)
            and all(v for k in ("abbrev_US", "abbrev_PM", "abbrev_NAP_NACTA") for v in traps[k].values()),
            "curly_quotes_ok": all(traps["curly_quotes"].values()),
            "email_intact": all(traps["email"].values()),
            "parentheses_ok": all(traps["parentheses"].values()),
            "quote_line17_ok_raw": traps["quote_line17"]["ok_raw"],
            "quote_line17_ok_merged": traps["quote_line17"]["ok_merged"],
            "lines_1_31_one_sentence_each_raw": all(counts.get(i, 0) == 1 for i in range(1, 32)),
        }
        res["traps"] = traps
        # for comparison: the library on the whole article at once (no per-line split)
        whole = [(a, b) for a, b, _ in seg.raw(text)]
        l17_start = line_of[16][0]
        q = [(a, b) for a, b in whole if a <= l17_start + 1 and b > l17_start]
        res["whole_text_no_line_split"] = {
            "n_sentences": len(whole),
            "invariants": check_raw(seg, text)["ok"],
            "letterless_fragments": [text[a:b] for a, b in whole if not has_alnum(text[a:b])],
            "spans_crossing_newline": sum("\n" in text[a:b].strip() for a, b in whole),
            "span_with_closing_quote_of_line16": [text[a:b][:30] + " … " + text[a:b][-30:] for a, b in q],
        }
        res["sentences_raw"] = [{"line": lineno(s), "start": s, "end": e, "text": text[s:e]} for s, e in raw]
        res["sentences_merged"] = [{"line": lineno(s), "start": s, "end": e, "text": text[s:e]} for s, e in post]
        out["segmenters"][seg.name] = res
    return out


# --------------------------------------------------------------------------------------------
# Small hand-made cases with an expected segmentation (news-style traps beyond the article)
# --------------------------------------------------------------------------------------------
HANDMADE = [
    ("It is. He ran. Go now.", ["It is.", "He ran.", "Go now."]),
    ("Yes. No. Maybe.", ["Yes.", "No.", "Maybe."]),
    ("Hi. Hi. Hi. Yes. Hi.", ["Hi.", "Hi.", "Hi.", "Yes.", "Hi."]),
    ("The U.S. is big. Dr. Smith agreed.", ["The U.S. is big.", "Dr. Smith agreed."]),
    ("It was 5 p.m. on Monday. See Fig. 3 for details.", ["It was 5 p.m. on Monday.", "See Fig. 3 for details."]),
    ("He said “Go.” Then he left.", ["He said “Go.”", "Then he left."]),
    ("He earned $3.5 million. In 2001 he retired.", ["He earned $3.5 million.", "In 2001 he retired."]),
    ("Or e-mail j.doe@ex.com. Thanks!", ["Or e-mail j.doe@ex.com.", "Thanks!"]),
    ("NATO (N.A.T.O.) met. Prof. X spoke.", ["NATO (N.A.T.O.) met.", "Prof. X spoke."]),
    ("The PM met the US envoy. The NAP was discussed.", ["The PM met the US envoy.", "The NAP was discussed."]),
    ("Mr. Khan arrived at 10 a.m. He spoke briefly.", ["Mr. Khan arrived at 10 a.m.", "He spoke briefly."]),
    ("See www.example.com/a.b for more. Done.", ["See www.example.com/a.b for more.", "Done."]),
    ("Is it true? Yes! Really.", ["Is it true?", "Yes!", "Really."]),
    ("He asked, ‘Why now?’ Nobody answered.", ["He asked, ‘Why now?’", "Nobody answered."]),
    ("Section 3.2 covers it. Version 1.0.4 shipped.", ["Section 3.2 covers it.", "Version 1.0.4 shipped."]),
]


def run_handmade(segs) -> dict:
    out = {}
    for seg in segs:
        rows, exact = [], 0
        for text, expected in HANDMADE:
            got = [text[s:e] for s, e in segment_document(seg, text)]
            exact += got == expected
            rows.append({"text": text, "ok": got == expected, "got": got})
        out[seg.name] = {"exact": exact, "total": len(HANDMADE), "cases": rows}
    return out


# --------------------------------------------------------------------------------------------
# Weird inputs
# --------------------------------------------------------------------------------------------
WEIRD = {
    "empty": "",
    "whitespace_only": " \t  \n \u00a0\u3000 ",
    "emoji": "I love it 😀. Really 👍🏽! Family 👨‍👩‍👧 is here. Flags 🇵🇰🇺🇸 too.",
    "rtl_arabic_hebrew_urdu": "مرحبا بالعالم. كيف حالك؟ שלום עולם. זה מבחן! یہ ایک جملہ ہے۔ دوسرا جملہ۔",
    "a.b.c": "a.b.c",
    "a.b.c_in_sentence": "See a.b.c for details. Then stop.",
    "ellipsis_only": "...",
    "ellipsis_mixed": "Wait... what? ... Fine.",
    "crlf": "First line here.\r\nSecond line. Third sentence!\r\n\r\nLast one.\r\n",
    "control_chars": "Hello\x00 world. Next\x0b sentence\x07 here.\x1f End\x1b[0m. Form\x0cfeed. Bell\x08.",
    "nul_only_line": "Before NUL.\x00After NUL. More.",
    "zero_width_and_bidi": "Zero\u200bwidth. Bidi \u202etxet\u202c mark. Soft\u00adhyphen done.",
    "combining_marks": "Cafe\u0301 is open. Nai\u0308ve test. End.",
    "repeated_sentences": "Hi. Hi. Hi. Yes. Hi.",
    "no_punct_10k": ("word " * 2000)[:10000],
    "no_space_10k": "a" * 10000,
    "long_10k_with_periods": ("This is sentence number one. " * 400)[:10000],
    "long_40k_with_periods_one_line": ("This is sentence number one. " * 1400)[:40000],
}


def run_weird(segs) -> dict:
    out = {}
    for name, text in WEIRD.items():
        row = {"len": len(text), "text_repr": repr(text[:80])}
        for seg in segs:
            t0 = time.perf_counter()
            raw = check_raw(seg, text)
            t1 = time.perf_counter()
            try:
                spans = segment_document(seg, text)
                pipe = check_spans(text, spans)
                pipe["spans"] = [[s, e, text[s:e][:40]] for s, e in spans[:8]]
            except Exception as ex:  # noqa: BLE001
                pipe = {"ok": False, "exception": f"{type(ex).__name__}: {ex}"}
            try:
                rr = seg.raw(text)
                raw["spans"] = [[s, e, (x or "")[:40]] for s, e, x in rr[:8]]
            except Exception:  # noqa: BLE001
                pass
            raw["time_ms"] = round((t1 - t0) * 1000, 2)
            row[seg.name] = {"raw_whole_text": raw, "pipeline": pipe}
        out[name] = row
    return out


# --------------------------------------------------------------------------------------------
def fmt_table(headers, rows):
    w = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=True)]
    line = lambda r: "| " + " | ".join(str(x).ljust(n) for x, n in zip(r, w, strict=True)) + " |"  # noqa: E731
    return "\n".join([line(headers), "|" + "|".join("-" * (n + 2) for n in w) + "|"] + [line(r) for r in rows])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--eval-dir", type=Path, default=DEFAULT_EVAL)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)

    segs = [cls() for cls in SEGMENTERS]
    result = {
        "environment": {"python": sys.version.split()[0], "platform": platform.platform(),
                        "packages": {p: version(p) for p in PACKAGES}},
        "api": {s.name: s.api for s in segs},
        "pipeline": "split on '\\n'; segment each non-blank line; trim whitespace; "
                    "per_line_merged also merges letter/digit-less fragments into a neighbour",
    }
    result["squad"] = run_squad(segs, args.eval_dir)
    result["article"] = run_article(segs, args.eval_dir)
    result["handmade_cases"] = run_handmade(segs)
    result["weird_inputs"] = run_weird(segs)
    syn = next(s for s in segs if s.name == "syntok")
    result["syntok_token_offset_mismatches"] = syn.token_mismatches

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")

    # ---- printed summary
    print("packages:", result["environment"]["packages"], "python", result["environment"]["python"])
    sq = result["squad"]
    print(f"\nSQuAD: {sq['n_docs']} docs ({sq['n_docs_with_newline']} contain '\\n'), "
          f"{sq['n_unique_answer_spans']} unique answer spans")
    for variant in ("per_line", "per_line_merged", "whole_text_merged"):
        rows = []
        b = sq["reqa_baseline"]
        rows.append(["ReQA", b["n_sentences"], "-", "1.0", "1.0", "1.0",
                     f"{b['answers_crossing_fraction']:.4f}", "-", "-"])
        for name, r in sq["segmenters"].items():
            m = r[variant]
            ib = m["internal_end_boundaries"]
            rows.append([name, m["n_sentences"], m["docs_with_same_count_as_reqa"], ib["precision"],
                         ib["recall"], ib["f1"], f"{m['answers_crossing_fraction']:.4f}",
                         r["speed"]["sentences_per_s"], r["raw_invariant_failed_lines"]])
        print(f"\n[{variant}]")
        print(fmt_table(["segmenter", "sentences", "same#docs", "P(end)", "R(end)", "F1(end)",
                         "ans-cross", "sent/s", "raw-inv-fail-lines"], rows))
    print("(whole_text_merged = no newline split, for comparison: 27 SQuAD paragraphs contain '\\n', "
          "mostly chemical subscripts such as 'O\\n2', which the per-line split always breaks)")
    print("(P/R/F1 over internal sentence-end boundaries, whitespace-normalised, vs ReQA; "
          "ans-cross = fraction of unique answer spans not inside one sentence; "
          "sent/s = per_line_merged pipeline, CPU time, median of 3)")
    print("\nArticle traps:")
    keys = list(next(iter(result["article"]["segmenters"].values()))["traps"]["summary"])
    rows = []
    for name, r in result["article"]["segmenters"].items():
        rows.append([name, r["n_sentences_raw"], r["n_sentences_merged"]] +
                    [r["traps"]["summary"][k] for k in keys])
    print(fmt_table(["segmenter", "n_raw", "n_merged", *keys], rows))
    for name, r in result["article"]["segmenters"].items():
        print(f"\n  {name}: in-line splits:")
        for s in r["in_line_splits"]:
            print(f"    line {s['line']}: …{s['before']!r} | {s['after']!r}"
                  f"{'  <-- ABBREV' if s['abbreviation_split'] else ''}")
        print(f"    line 17 raw first segment: {r['traps']['quote_line17']['raw_first_segment']!r}")
        print(f"    line 32: {r['traps']['line32_sentences']}")
        w = r["whole_text_no_line_split"]
        print(f"    whole article in one call: {w['n_sentences']} sentences, letter-less fragments "
              f"{w['letterless_fragments']}, spans crossing a newline {w['spans_crossing_newline']}")
    print("\nHand-made cases (exact segmentation):")
    for name, r in result["handmade_cases"].items():
        print(f"  {name}: {r['exact']}/{r['total']}")
        for c in r["cases"]:
            if not c["ok"]:
                print(f"    FAIL {c['text']!r} -> {c['got']}")
    print("\nWeird inputs (raw = library on the whole string; pipe = per-line pipeline): ok / n_spans")
    rows = []
    for name, row in result["weird_inputs"].items():
        cells = [name]
        for s in segs:
            x = row[s.name]
            rr, pp = x["raw_whole_text"], x["pipeline"]
            cells.append(("ok" if rr.get("ok") else "FAIL") + f"/{rr.get('n_spans', 'exc')} ({rr.get('time_ms')}ms)")
            cells.append(("ok" if pp.get("ok") else "FAIL") + f"/{pp.get('n_spans', 'exc')}")
        rows.append(cells)
    hdr = ["input"] + [f"{s.name} {k}" for s in segs for k in ("raw", "pipe")]
    print(fmt_table(hdr, rows))
    print(f"\nsyntok token offset mismatches: {result['syntok_token_offset_mismatches']}")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
