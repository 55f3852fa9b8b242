"""Validate the hand-written reworded SQuAD question sets and measure how many words they share with the answer.

Checks every record of ``benchmarks/data/reworded/{answerable,unanswerable}.jsonl`` (fields and types, ids
unique, the document exists and belongs to the record's article, ``text[answer_start:][:len(answer)] == answer``,
the answer within one sentence), then reports word overlap: for each answerable question, the share of its
content words (lower-cased, stop words removed, crude suffix stemming) that occur in its answer sentence,
against the same statistic for the original SQuAD questions of the same documents. It also flags questions that
contain their answer or any of its content words, or that copy a run of 3+ consecutive content words of the
answer sentence (a near-verbatim phrase). Stdlib only; prints a table, writes
``benchmarks/results/reworded_overlap.json`` and exits 1 on any error or flag.

    python benchmarks/check_reworded.py
"""

from __future__ import annotations

import functools
import json
import re
import statistics
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "benchmarks" / "data" / "reworded"
SQUAD = ROOT.parent.parent / "shared" / "eval" / "squad"  # /work/shared/eval/squad from /work/wt/<name>
if not SQUAD.exists():
    SQUAD = ROOT.parent / "shared" / "eval" / "squad"  # from a checkout at /work/<name>
OUT = ROOT / "benchmarks" / "results" / "reworded_overlap.json"

STYLES = ("paraphrase", "keyword", "casual")
ARTICLES = range(24)
MAX_ANSWER_WORDS = 12

# A small stop list: function words, question words and auxiliaries, so only words that carry content count.
STOP = frozenset({
    "a", "about", "above", "after", "again", "against", "all", "also", "am", "an", "and", "any", "are", "as", "at",
    "be", "because", "been", "before", "being", "below", "between", "both", "but", "by", "can", "could", "did", "do",
    "does", "doing", "down", "during", "each", "else", "ever", "few", "for", "from", "further", "had", "has", "have",
    "having", "he", "her", "here", "hers", "herself", "him", "himself", "his", "how", "i", "if", "in", "into", "is",
    "it", "its", "itself", "just", "let", "me", "more", "most", "much", "my", "myself", "no", "nor", "not", "now",
    "of", "off", "on", "once", "one", "only", "or", "other", "ought", "our", "ours", "ourselves", "out", "over",
    "own", "same", "shall", "she", "should", "so", "some", "such", "than", "that", "the", "their", "theirs", "them",
    "themselves", "then", "there", "these", "they", "this", "those", "through", "to", "too", "under", "until", "up",
    "upon", "us", "very", "was", "we", "were", "what", "when", "where", "which", "while", "who", "whom", "whose",
    "why", "will", "with", "would", "you", "your", "yours", "yourself", "yourselves", "get", "got", "s", "t", "don",
    "didn", "doesn", "isn", "wasn", "weren", "aren", "many", "kind", "sort", "thing", "things", "way",
})

SUFFIXES = ("ations", "ation", "ments", "ment", "ings", "ing", "ness", "ies", "ied", "ed", "es", "ly", "er", "s")


@functools.cache
def stem(word: str) -> str:
    """Strip one common English suffix, keeping at least three letters: ``stem("renovated") == "renovat"``."""
    for suffix in SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def tokens(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower().replace("'s", "").replace("’s", ""))


def content(text: str) -> list[str]:
    """Stemmed content words of ``text`` in order: ``content("When was it renovated?") == ["renovat"]``."""
    return [stem(t) for t in tokens(text) if t not in STOP]


# A period after these does not end a sentence: initials ("John G. Trump", "J.W. Wild") and common abbreviations.
ABBREVIATIONS = frozenset({"st", "mr", "mrs", "dr", "jr", "sr", "vs", "c", "ca", "e.g", "i.e", "no", "mt", "approx",
                           "al"})
# A sentence ends at . ! ? plus any closing quotes or brackets and a page citation (".:292 "), then whitespace.
SENTENCE_END = re.compile(r"[.!?][\"'”’)\]]*(?::[0-9–-]+)?\s+")


def is_boundary(text: str, dot: int) -> bool:
    """Whether the . ! ? at ``dot`` (followed by whitespace) ends a sentence."""
    if text[dot] != ".":
        return True
    begin = max(text.rfind(" ", 0, dot), text.rfind("\n", 0, dot)) + 1
    last = text[begin:dot].lstrip("(\"'")
    return not (re.fullmatch(r"(?:[A-Z]\.)*[A-Z]", last) or last.lower() in ABBREVIATIONS)


def sentence_span(text: str, pos: int) -> tuple[int, int]:
    """Start and end of the sentence holding ``pos``: split at . ! ? before whitespace, except after initials.

    >>> text = 'Tea came "first." Then John G. Trump spoke.'
    >>> lo, hi = sentence_span(text, text.index("Trump"))
    >>> text[lo:hi]
    'Then John G. Trump spoke.'
    >>> text[slice(*sentence_span(text, 0))]
    'Tea came "first."'
    """
    start = 0
    for m in SENTENCE_END.finditer(text):
        if not is_boundary(text, m.start()):
            continue
        if m.end() <= pos:
            start = m.end()
        elif m.start() >= pos:
            return start, len(m.group().rstrip()) + m.start()
    return start, len(text)


def overlap(question: str, sentence: str) -> float | None:
    q = content(question)
    if not q:
        return None
    s = set(content(sentence))
    return sum(w in s for w in q) / len(q)


def copied_runs(question: str, sentence: str, n: int = 3) -> list[str]:
    """Runs of ``n`` consecutive content words of the question that also occur consecutively in the sentence."""
    q, s = content(question), content(sentence)
    grams = {tuple(s[i : i + n]) for i in range(len(s) - n + 1)}
    return [" ".join(q[i : i + n]) for i in range(len(q) - n + 1) if tuple(q[i : i + n]) in grams]


def contains_answer(question: str, answer: str) -> bool:
    """Whether the answer's words appear, as whole words in a row, in the question (case-insensitive)."""
    a = " ".join(tokens(answer))
    return bool(a) and f" {a} " in f" {' '.join(tokens(question))} "


def read_jsonl(path: Path, errors: list[str]) -> list[dict[str, Any]]:
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            errors.append(f"{path.name}:{n}: not JSON ({exc})")
    return rows


def article_of(doc_id: str) -> int:
    """SQuAD doc ids are ``aNN-pMMM``: NN is the article's index (0-23)."""
    return int(doc_id[1:3])


def validate(answerable: list[dict[str, Any]], unanswerable: list[dict[str, Any]],
             docs: dict[str, dict[str, Any]]) -> list[str]:
    errors: list[str] = []
    ids = Counter(r.get("id") for r in answerable + unanswerable)
    errors += [f"duplicate id {i!r} ({c} times)" for i, c in ids.items() if c > 1]
    texts = Counter(str(r.get("question", "")).strip().lower() for r in answerable + unanswerable)
    errors += [f"duplicate question {q!r}" for q, c in texts.items() if c > 1]
    keys = {"id", "question", "doc_id", "answers", "answer_start", "article", "style"}
    for r in answerable:
        rid = r.get("id")
        if set(r) != keys:
            errors.append(f"{rid}: fields {sorted(r)} should be {sorted(keys)}")
            continue
        art, doc = r["article"], docs.get(r["doc_id"])
        if not isinstance(art, int) or art not in ARTICLES:
            errors.append(f"{rid}: article {art!r} is not an int 0-23")
        if not re.fullmatch(rf"rw-{art}-\d+", str(rid)):
            errors.append(f"{rid}: id should be rw-{art}-<n>")
        if r["style"] not in STYLES:
            errors.append(f"{rid}: style {r['style']!r} not in {STYLES}")
        if not isinstance(r["question"], str) or len(r["question"].split()) < 2:
            errors.append(f"{rid}: question too short")
        if doc is None:
            errors.append(f"{rid}: doc_id {r['doc_id']!r} not in docs.jsonl")
            continue
        if article_of(doc["id"]) != art:
            errors.append(f"{rid}: doc {doc['id']} belongs to article {article_of(doc['id'])}, not {art}")
        ans, starts = r["answers"], r["answer_start"]
        if not (isinstance(ans, list) and isinstance(starts, list) and len(ans) == len(starts) >= 1):
            errors.append(f"{rid}: answers and answer_start must be non-empty lists of equal length")
            continue
        for a, s in zip(ans, starts, strict=True):
            if not isinstance(s, int) or doc["text"][s : s + len(a)] != a:
                errors.append(f"{rid}: answer {a!r} not at offset {s} of {doc['id']}")
                continue
            _, hi = sentence_span(doc["text"], s)
            if s + len(a) > hi:
                errors.append(f"{rid}: answer {a!r} crosses a sentence boundary")
            if len(a.split()) > MAX_ANSWER_WORDS:
                errors.append(f"{rid}: answer {a!r} is longer than {MAX_ANSWER_WORDS} words")
    ukeys = keys
    for r in unanswerable:
        rid = r.get("id")
        if set(r) != ukeys:
            errors.append(f"{rid}: fields {sorted(r)} should be {sorted(ukeys)}")
            continue
        art = r["article"]
        if not isinstance(art, int) or art not in ARTICLES:
            errors.append(f"{rid}: article {art!r} is not an int 0-23")
        if not re.fullmatch(rf"rw-u-{art}-\d+", str(rid)):
            errors.append(f"{rid}: id should be rw-u-{art}-<n>")
        if r["doc_id"] is not None or r["answers"] != [] or r["answer_start"] != []:
            errors.append(f"{rid}: an unanswerable record has doc_id null and empty answers/answer_start")
        if r["style"] not in STYLES:
            errors.append(f"{rid}: style {r['style']!r} not in {STYLES}")
    return errors


def mean(values: list[float]) -> float:
    return round(statistics.fmean(values), 3) if values else float("nan")


def main() -> int:
    docs = {d["id"]: d for d in map(json.loads, (SQUAD / "docs.jsonl").read_text(encoding="utf-8").splitlines())}
    squad = [json.loads(x) for x in (SQUAD / "questions.jsonl").read_text(encoding="utf-8").splitlines()]
    errors: list[str] = []
    answerable = read_jsonl(DATA / "answerable.jsonl", errors)
    unanswerable = read_jsonl(DATA / "unanswerable.jsonl", errors)
    errors += validate(answerable, unanswerable, docs)

    flags: list[str] = []
    ours: dict[str, list[float]] = defaultdict(list)  # key: "all", a style, or "a<article>"
    for r in answerable:
        doc = docs.get(r.get("doc_id", ""))
        if doc is None or not r.get("answers"):
            continue
        lo, hi = sentence_span(doc["text"], r["answer_start"][0])
        sent = doc["text"][lo:hi]
        if any(contains_answer(r["question"], a) for a in r["answers"]):
            flags.append(f"{r['id']}: question contains the answer: {r['question']!r}")
        shared = {w for a in r["answers"] for w in content(a)} & set(content(r["question"]))
        if shared:
            flags.append(f"{r['id']}: question shares answer words {sorted(shared)}: {r['question']!r}")
        runs = copied_runs(r["question"], sent)
        if runs:
            flags.append(f"{r['id']}: copies {runs[0]!r} from its sentence: {r['question']!r}")
        ov = overlap(r["question"], sent)
        if ov is not None:
            for key in ("all", r["style"], f"a{r['article']}"):
                ours[key].append(ov)

    used_docs = {r.get("doc_id") for r in answerable}
    theirs: dict[str, list[float]] = defaultdict(list)
    squad_runs = squad_contains = 0
    for q in squad:
        if q["doc_id"] not in used_docs:
            continue
        text = docs[q["doc_id"]]["text"]
        lo, hi = sentence_span(text, q["answer_start"][0])
        ov = overlap(q["question"], text[lo:hi])
        squad_runs += bool(copied_runs(q["question"], text[lo:hi]))
        squad_contains += contains_answer(q["question"], q["answers"][0])
        if ov is not None:
            theirs["all"].append(ov)
            theirs[f"a{article_of(q['doc_id'])}"].append(ov)

    per_article = {
        a: {
            "answerable": sum(r.get("article") == a for r in answerable),
            "unanswerable": sum(r.get("article") == a for r in unanswerable),
            "docs": len({r.get("doc_id") for r in answerable if r.get("article") == a}),
            "overlap": mean(ours[f"a{a}"]),
            "squad_overlap": mean(theirs[f"a{a}"]),
        }
        for a in ARTICLES
    }
    missing = [a for a, v in per_article.items() if not v["answerable"] or not v["unanswerable"]]
    errors += [f"article {a} has no answerable or no unanswerable questions" for a in missing]

    print(f"{'article':>7} {'title':<34} {'ans':>4} {'unans':>5} {'docs':>4} {'overlap':>7} {'squad':>6}")
    titles = {article_of(d["id"]): d["title"] for d in docs.values()}
    for a, v in per_article.items():
        print(f"{a:>7} {titles[a][:34]:<34} {v['answerable']:>4} {v['unanswerable']:>5} {v['docs']:>4} "
              f"{v['overlap']:>7} {v['squad_overlap']:>6}")
    zero = sum(o == 0 for o in ours["all"])
    print(f"\nanswerable {len(answerable)}, unanswerable {len(unanswerable)}, styles "
          f"{dict(Counter(r.get('style') for r in answerable))}")
    print(f"mean content-word overlap with the answer sentence: reworded {mean(ours['all'])} "
          f"(median {round(statistics.median(ours['all']), 3) if ours['all'] else 'nan'}, "
          f"{zero} with none), SQuAD originals of the same {len(used_docs)} docs {mean(theirs['all'])} "
          f"(n={len(theirs['all'])})")
    print("by style: " + ", ".join(f"{s} {mean(ours[s])} (n={len(ours[s])})" for s in STYLES))
    print(f"SQuAD originals of those docs: {squad_runs} copy a 3-content-word run, {squad_contains} contain the answer")
    for line in errors + flags:
        print("ERROR " + line if line in errors else "FLAG " + line)
    print(f"{len(errors)} errors, {len(flags)} flags")

    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        "styles": dict(Counter(r.get("style") for r in answerable)),
        "unanswerable_styles": dict(Counter(r.get("style") for r in unanswerable)),
        "overlap_mean": mean(ours["all"]),
        "overlap_median": round(statistics.median(ours["all"]), 3) if ours["all"] else None,
        "overlap_zero_share": round(zero / len(ours["all"]), 3) if ours["all"] else None,
        "overlap_by_style": {s: mean(ours[s]) for s in STYLES},
        "squad_overlap_mean": mean(theirs["all"]),
        "squad_overlap_median": round(statistics.median(theirs["all"]), 3) if theirs["all"] else None,
        "squad_questions_compared": len(theirs["all"]),
        "squad_copying_3_word_run": squad_runs,
        "docs_used": len(used_docs),
        "per_article": per_article,
        "errors": errors,
        "flags": flags,
    }, indent=1) + "\n", encoding="utf-8")
    return 1 if errors or flags else 0


if __name__ == "__main__":
    sys.exit(main())
