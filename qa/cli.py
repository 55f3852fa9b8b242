"""The ``qa`` command line: a thin layer over the public API.

Errors a user can fix are printed as one line on stderr with exit code 2; heavy imports happen only inside
the command that needs them, so ``qa --help`` is instant.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .config import Settings, get_settings
from .errors import QAError

__all__ = ["main"]


def _settings(args: argparse.Namespace) -> Settings:
    return get_settings(
        model=getattr(args, "model", None),
        index_dir=getattr(args, "index_dir", None),
        k=getattr(args, "k", None),
        min_score=getattr(args, "min_score", None),
        scorer=getattr(args, "scorer", None),
        answer_threshold=getattr(args, "threshold", None),
        context=getattr(args, "context", None),
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        progress=False if getattr(args, "no_progress", False) else None,
    )


def _index_location(text: str) -> str | Path:
    """An index argument: a Milvus location (``milvus:URI#NAME``, kept as text: a Path would fold ``//``) or a
    folder."""
    return text.strip() if text.strip().startswith("milvus:") else Path(text)


def _is_location(value: object) -> bool:
    return isinstance(value, str) and value.startswith("milvus:")


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def _report_failures(failures: Sequence[Any]) -> int:
    for failure in failures:
        print(f"qa: error: {failure.source}: {failure.reason}", file=sys.stderr)
    return 2 if failures else 0


def _cmd_build(args: argparse.Namespace) -> int:
    from .documents import read_sources
    from .index import Index
    from .store import check_apart, check_target

    s = _settings(args)
    if _is_location(args.out):  # before any file is read: a bad location or a missing pymilvus costs nothing
        from .index.index import _check_milvus

        _check_milvus(args.out)
    else:
        # Before any file is read: --out must not be (or hold, or sit in) a path being indexed, and must be new,
        # empty or an index, since a save replaces the whole folder.
        check_apart(args.out, args.paths)
        check_target(args.out)
    read = read_sources(
        args.paths, include=args.include, exclude=args.exclude, max_bytes=_max_bytes(s), progress=_progress(args)
    )
    if not read.documents:
        _report_failures(read.failures)
        print("qa: error: no documents could be read; nothing was indexed", file=sys.stderr)
        return 2
    index = Index.build(read.documents, args.out, settings=s, progress=_progress(args), ray=args.ray)
    print(f"indexed {len(index.documents)} documents, {len(index)} sentences into {args.out}")
    return _report_failures(read.failures)


def _cmd_add(args: argparse.Namespace) -> int:
    from .documents import read_sources
    from .index import Index, checked_manifest, holds_unchanged

    s = _settings(args)
    if _is_location(args.dir):  # a missing or unusable index fails before the files are read
        index = Index.load(args.dir, settings=s)
        manifest = index.manifest
    else:
        index, manifest = None, checked_manifest(args.dir, s)
    read = read_sources([Path(p) for p in args.paths], max_bytes=_max_bytes(s), progress=_progress(args))
    if holds_unchanged(manifest, read.documents):  # nothing would change: the index is not even opened
        counts = manifest.get("counts", {})
        print(f"added 0, replaced 0, unchanged {len(read.documents)} (0 texts embedded); "
              f"{counts.get('documents')} documents, {counts.get('sentences')} sentences")
        return _report_failures(read.failures)
    index = index if index is not None else Index.load(args.dir, settings=s)
    up = index.update(add=read.documents, progress=_progress(args))
    print(f"added {len(up.added)}, replaced {len(up.replaced)}, unchanged {len(up.unchanged)} "
          f"({up.embedded} texts embedded); {len(up.index.documents)} documents, {len(up.index)} sentences")
    return _report_failures([*read.failures, *up.failures])


def _cmd_remove(args: argparse.Namespace) -> int:
    from .index import Index

    index = Index.load(args.dir, settings=_settings(args))
    up = index.update(remove=args.doc_ids, progress=_progress(args))
    print(f"removed {len(up.removed)}; {len(up.index.documents)} documents, {len(up.index)} sentences")
    return _report_failures(up.failures)


def _progress(args: argparse.Namespace) -> bool | None:
    return False if args.no_progress else None


def _max_bytes(s: Settings) -> int:
    return int(s.max_file_mb * 1024 * 1024)


def _cmd_list(args: argparse.Namespace) -> int:
    from .retrieval import open_index

    index = open_index(args.dir, settings=_settings(args))
    if args.json:
        _print_json([asdict(d) for d in index.documents])
    else:
        for d in index.documents:
            print(f"{d.doc_id}\t{d.sentences} sentences\t{d.title}")
    return 0


def _cmd_retrieve(args: argparse.Namespace) -> int:
    from .retrieval import retrieve

    passages = retrieve(args.question, k=args.k, index=args.index, docs=args.docs, settings=_settings(args))
    if args.json:
        _print_json([p.to_dict() for p in passages])
        return 0
    for rank, p in enumerate(passages, start=1):
        print(f"{rank}. [{p.score:.3f}] {p.title} — sentence {p.sentence + 1}, chars {p.start}-{p.end}")
        where = "".join(f", {label} {value}" for label, value in (("page", p.page), ("under", p.heading)) if value)
        if where:
            print(f"   ({where[2:]})")
        print(f"   {p.text}")
    return 0


def _cmd_ask(args: argparse.Namespace) -> int:
    from .answer import answer

    result = answer(args.question, k=args.k, index=args.index, docs=args.docs, settings=_settings(args))
    if args.json:
        _print_json(result.to_dict())
        return 0
    print(result.text)
    if result.confidence is not None:
        verdict = "answered" if result.found else "declined"
        print(f"(confidence {result.confidence:.2f}, {verdict} at threshold {result.threshold:.2f})")
    if result.citations:
        print()
        for n, p in enumerate(result.citations, start=1):
            print(f"[{n}] {p.title}, sentence {p.sentence + 1} (chars {p.start}-{p.end}, score {p.score:.3f})")
    elif result.closest:
        print("\nClosest passages (they do not answer it):")
        for p in result.closest:
            print(f"  - [{p.score:.3f}] {p.text}")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from .evaluation import evaluate, load_questions
    from .retrieval import open_index

    s = _settings(args)
    questions = load_questions(args.questions)
    report = evaluate(questions, open_index(args.index, settings=s), settings=s)
    if args.json:
        _print_json(report.to_dict())
        return 0
    recall = "  ".join(f"{name} {value:.3f}" for name, value in report.recall.items())
    print(f"questions {report.questions} (answerable {report.answerable})")
    print(f"{recall}  MRR@10 {report.mrr_at_10:.3f}")
    print(f"found {report.answerable_found}/{report.answerable} answerable; "
          f"declined {report.unanswerable_declined}/{report.unanswerable} unanswerable")
    print(f"latency p50 {report.latency_ms_p50:.1f} ms  p99 {report.latency_ms_p99:.1f} ms")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from .web import serve

    serve(index=args.index, settings=_settings(args), allow_public=args.allow_public)
    return 0


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="count", default=0, help="more detail on stderr (-vv: debug)")
    common.add_argument("--model", help="sentence-transformers model name or local path (QA_MODEL)")
    common.add_argument("--index-dir", type=Path, help="folder of the default index (QA_INDEX_DIR)")
    common.add_argument("--no-progress", action="store_true", help="never show progress bars")

    def index_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument("--index", type=_index_location,
                       help="index directory or milvus:URI#NAME (default: QA_INDEX, else the bundled article)")

    def query_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("question", help="the question, in quotes")
        index_arg(p)
        p.add_argument("-k", type=int, help="number of passages (QA_K, default 5)")
        p.add_argument("--docs", nargs="+", metavar="DOC_ID", help="only search these document ids")
        p.add_argument("--context", type=int, help="neighbouring sentences shown each side (QA_CONTEXT)")
        p.add_argument("--json", action="store_true", help="print JSON")
        scorer_arg(p)

    def scorer_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument("--scorer", help="auto, fusion, a shipped scorer name or a scorer .json (QA_SCORER)")

    def ranking_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--threshold", type=float,
                       help="answer only at or above this confidence (QA_ANSWER_THRESHOLD; default: the scorer's)")
        p.add_argument("--min-score", type=float, help="with --scorer fusion: abstention threshold (QA_MIN_SCORE)")

    parser = argparse.ArgumentParser(prog="qa", description="Ask questions about documents, with exact citations.")
    parser.add_argument("--version", action="version", version="qa 0.1.0")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    idx = sub.add_parser("index", help="build or inspect an index", parents=[common])
    idx_sub = idx.add_subparsers(dest="index_command", required=True, metavar="ACTION")
    build = idx_sub.add_parser("build", help="build an index from files and folders", parents=[common])
    build.add_argument("--out", required=True, type=_index_location,
                       help="index folder to write: a new or empty folder, or an index (replaced atomically); or a "
                       "Milvus location milvus:./FILE.db#NAME (Milvus Lite) or milvus:http://HOST:19530#NAME")
    build.add_argument("paths", nargs="+", type=Path, help="files (.txt .md .html .pdf .docx .jsonl) or folders")
    build.add_argument("--include", nargs="+", metavar="GLOB", help="in folders, only files matching these")
    build.add_argument("--exclude", nargs="+", metavar="GLOB", help="in folders, skip files matching these")
    build.add_argument("--ray", metavar="ADDRESS",
                       help="embed on Ray (qa[ray]): 'local' starts Ray here, else a cluster's "
                       "host:port (QA_RAY_ADDRESS)")
    build.set_defaults(func=_cmd_build)
    add = idx_sub.add_parser("add", help="add or replace documents (unchanged ones are skipped)", parents=[common])
    add.add_argument("dir", type=_index_location, help="index directory or milvus:URI#NAME")
    add.add_argument("paths", nargs="+", type=Path, help="files or folders")
    add.set_defaults(func=_cmd_add)
    rm = idx_sub.add_parser("remove", help="remove documents by id", parents=[common])
    rm.add_argument("dir", type=_index_location, help="index directory or milvus:URI#NAME")
    rm.add_argument("doc_ids", nargs="+", metavar="DOC_ID", help="document ids (see: qa index list DIR)")
    rm.set_defaults(func=_cmd_remove)
    lst = idx_sub.add_parser("list", help="list the documents of an index", parents=[common])
    lst.add_argument("dir", type=_index_location, help="index directory or milvus:URI#NAME")
    lst.add_argument("--json", action="store_true", help="print JSON")
    lst.set_defaults(func=_cmd_list)

    ret = sub.add_parser("retrieve", help="print the sentences that best answer a question", parents=[common])
    query_args(ret)
    ret.set_defaults(func=_cmd_retrieve)

    ask = sub.add_parser("ask", help="answer a question with cited sentences", parents=[common])
    query_args(ask)
    ranking_args(ask)
    ask.set_defaults(func=_cmd_ask)

    ev = sub.add_parser("eval", help="recall, MRR, abstention and latency on a question file", parents=[common])
    ev.add_argument("questions", type=Path, help="JSONL questions (gold substrings or answer_start offsets)")
    index_arg(ev)
    ranking_args(ev)
    scorer_arg(ev)
    ev.add_argument("--json", action="store_true", help="print JSON")
    ev.set_defaults(func=_cmd_eval)

    serve = sub.add_parser("serve", help="start the web app (same as python app.py)", parents=[common])
    index_arg(serve)
    serve.add_argument("--host", help="address to bind (QA_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (QA_PORT, default 7860)")
    serve.add_argument("--allow-public", action="store_true", help="allow a non-local host without a login")
    serve.set_defaults(func=_cmd_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 2 a user error, 1 anything unexpected)."""
    args = _parser().parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except QAError as exc:
        print(f"qa: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("qa: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
