from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

import qa
from qa.lexical import Lexical, focus_words, query_weights, token_ids, tokenize

TEXTS = [
    "The Moon orbits the Earth every 27 days.",
    "Mars has two small moons, Phobos and Deimos.",
    "Jupiter is the largest planet.",
]


def test_tokenize_stems_and_drops_stop_words() -> None:
    assert tokenize("The moons are orbiting") == ["moon", "orbit"]
    assert tokenize("") == []


def test_token_ids_equal_tokenize_text_by_text_on_awkward_text(monkeypatch: pytest.MonkeyPatch) -> None:
    """Oracle: the batched byte tokenizer against :func:`tokenize` of each text, three texts a batch."""
    import qa.lexical as lexical

    monkeypatch.setattr(lexical, "_TEXTS_AT_ONCE", 3)
    texts = ["", "The Moon\u2014and MARS\u2019 moons\u2026", "\u039f\u0394\u039f\u03a3 \u03a3 \u03c3\u03b1\u03c2",
             "na\u00efve caf\u00e9 Stra\u00dfe \u0130stanbul", "nul\x00inside", "x_y 3.14 \u2460\u00bd",
             "emoji\U0001f600here", "  \t\n ", "recognised colours", "The Moon again"]
    vocab: dict[str, int] = {}
    flat, ptr = token_ids(texts, vocab)
    term = {i: t for t, i in vocab.items()}
    assert [[term[i] for i in flat[a:b]] for a, b in itertools.pairwise(ptr)] == [tokenize(t) for t in texts]
    assert list(vocab) == list(dict.fromkeys(t for text in texts for t in tokenize(text))), "ids in order of first use"


def test_scores_rank_the_sentence_with_the_rare_word_first() -> None:
    lex = Lexical.build(TEXTS)
    scores = lex.scores("Which moons are called Phobos and Deimos?")
    assert int(np.argmax(scores)) == 1
    assert scores.dtype == np.float32 and scores.shape == (3,)


def test_scores_are_a_share_of_the_best_possible() -> None:
    lex = Lexical.build(TEXTS)
    assert 0 < float(lex.scores("largest planet").max()) <= 1
    assert float(lex.scores("zebra giraffe").max()) == 0.0  # words the corpus never uses score nothing
    # a question half about things the corpus never mentions scores lower than the same words alone
    assert float(lex.scores("largest planet population census").max()) < float(lex.scores("largest planet").max())


def test_sparse_scores_equal_bm25s_own_scoring_of_every_row() -> None:
    """Oracle: reading the question's posting lists gives bm25s' full score array, normalised, row for row."""
    import bm25s

    from qa.lexical import K1, B

    docs = qa.load_sources([Path(__file__).parent / "data" / "squad_docs.jsonl"])
    texts = [d.text[a:b] for d in docs for a, b in qa.sentences.split(d.text)]
    lex = Lexical.build(texts)
    reference = bm25s.BM25(k1=K1, b=B)
    reference.index([tokenize(t) or [""] for t in texts], show_progress=False)
    for question in ["Who won Super Bowl 50?", "Denver Broncos Broncos defense", "the of and", "zzzz unknown"]:
        rows, values = lex.sparse_scores(question)
        assert list(rows) == sorted(set(rows.tolist())) and (values > 0).all()
        tokens = tokenize(question)
        ids = [reference.vocab_dict[t] for t in tokens if t in reference.vocab_dict]
        full = np.zeros(len(texts), dtype=np.float32)
        if ids:
            ceiling = (K1 + 1) * sum(float(lex._idf[lex._vocab[t]]) if t in lex._vocab
                                     else lex._idf_unseen for t in tokens)
            full = np.asarray(reference.get_scores_from_ids(ids), dtype=np.float32) / ceiling
        np.testing.assert_allclose(lex.scores(question), full, rtol=1e-5, atol=1e-7)
        assert set(np.flatnonzero(full).tolist()) == set(rows.tolist())


def test_build_gives_bm25s_own_arrays_posting_for_posting() -> None:
    """Oracle: the numpy builder's posting lists equal bm25s' (rows and float32 scores, bit for bit)."""
    import bm25s

    from qa.lexical import K1, B

    docs = qa.load_sources([Path(__file__).parent / "data" / "squad_docs.jsonl"])
    texts = [d.text[a:b] for d in docs for a, b in qa.sentences.split(d.text)] + ["", "the of and"]
    lex = Lexical.build(texts)
    reference = bm25s.BM25(k1=K1, b=B)
    reference.index([tokenize(t) or [""] for t in texts], show_progress=False)
    ours, theirs = lex._bm25.scores, reference.scores
    assert ours["num_docs"] == theirs["num_docs"] == len(texts)
    assert set(lex._vocab) == set(reference.vocab_dict)
    for token, j in reference.vocab_dict.items():
        i = lex._vocab[token]
        a, b = int(ours["indptr"][i]), int(ours["indptr"][i + 1])
        c, d = int(theirs["indptr"][j]), int(theirs["indptr"][j + 1])
        np.testing.assert_array_equal(ours["indices"][a:b], theirs["indices"][c:d])
        np.testing.assert_array_equal(ours["data"][a:b], theirs["data"][c:d])


def test_channels_score_as_bm25_of_the_titled_sentences_and_their_windows() -> None:
    """Oracle: the channels built from each sentence's tokens equal BM25 over the texts written out."""
    from qa.index import WINDOW, _sentence_texts, window_texts
    from qa.lexical import channels

    article = Path(qa.__file__).parent / "data" / "article.txt"
    docs = qa.load_sources([Path(__file__).parent / "data" / "squad_docs.jsonl", article])
    spans = [qa.sentences.split(d.text) for d in docs]
    sentences, windows = _sentence_texts(docs, spans), window_texts(docs, spans)
    doc_of = np.repeat(np.arange(len(docs)), [len(sp) for sp in spans])
    titled = [f"{docs[d].title} {t}" for d, t in zip(doc_of, sentences, strict=True)]
    ours = channels(sentences, doc_of, [d.title for d in docs], WINDOW)
    for lex, texts in zip(ours, (titled, windows), strict=True):
        reference = Lexical.build(texts)
        assert lex._vocab.keys() == reference._vocab.keys()
        for question in ["Who won Super Bowl 50?", "Which economic sectors were discussed?", "Pakistan Trump",
                         "Denver Broncos defense", "US-Pakistan relations"]:
            rows, values = lex.sparse_scores(question, focus_weight=1.5)
            ref_rows, ref_values = reference.sparse_scores(question, focus_weight=1.5)
            np.testing.assert_array_equal(rows, ref_rows)
            np.testing.assert_array_equal(values, ref_values)


@pytest.mark.parametrize(
    ("question", "focus"),
    [
        ("Which economic sectors were discussed during the visit?", ["economic", "sectors"]),
        ("What unresolved dispute between India and Pakistan threatens stability?", ["unresolved", "dispute"]),
        ("In what year did the war end?", ["year"]),
        ("How many moons does Mars have?", ["moons"]),
        ("What is the largest planet?", []),  # the phrase ends at once: no focus
        ("Who discovered Phobos?", []),
        ("Name the largest planet", []),
    ],
)
def test_focus_words_are_the_phrase_after_the_wh_word(question: str, focus: list[str]) -> None:
    assert focus_words(question) == focus


def test_query_weights_count_repeats_and_weight_focus_words() -> None:
    assert query_weights("Which moons orbit Mars, and which moons orbit Earth?") == {
        "which": 2.0, "moon": 2.0, "orbit": 2.0, "mar": 1.0, "earth": 1.0}
    weighted = query_weights("Which moons does Mars have?", focus_weight=1.5)
    assert weighted == {"which": 1.0, "moon": 1.5, "doe": 1.0, "mar": 1.0, "have": 1.0}
    # a focus word is matched as its term, British spelling included
    british = query_weights("Which organisations were recognised?", focus_weight=1.5)
    assert british == {"which": 1.0, tokenize("organizations")[0]: 1.5, "were": 1.0, tokenize("recognized")[0]: 1.0}


def test_focus_weight_two_scores_as_if_the_focus_words_were_asked_twice() -> None:
    """Oracle: weight 2 on the focus equals plain scoring of the question with its focus words repeated."""
    docs = qa.load_sources([Path(__file__).parent / "data" / "squad_docs.jsonl"])
    lex = Lexical.build([d.text[a:b] for d in docs for a, b in qa.sentences.split(d.text)])
    for question in ["Which NFL team represented the AFC?", "How many points did Denver score?"]:
        repeated = question + " " + " ".join(focus_words(question))
        np.testing.assert_allclose(lex.scores(question, focus_weight=2.0), lex.scores(repeated), rtol=1e-5)
        assert not np.allclose(lex.scores(question, focus_weight=2.0), lex.scores(question))


def test_focus_weight_prefers_the_sentence_with_the_focus_word() -> None:
    lex = Lexical.build(["The delegates discussed the economy during the visit.",
                         "Trade in sectors such as mining was on the agenda."])
    question = "Which sectors were discussed during the visit?"
    assert int(np.argmax(lex.scores(question))) == 0
    assert int(np.argmax(lex.scores(question, focus_weight=3.0))) == 1


def test_scores_at_equal_the_full_scores_at_those_rows() -> None:
    """Oracle: the binary-search path gives the full score array's values, row for row, in any row order."""
    docs = qa.load_sources([Path(__file__).parent / "data" / "squad_docs.jsonl"])
    lex = Lexical.build([d.text[a:b] for d in docs for a, b in qa.sentences.split(d.text)])
    rows = np.random.default_rng(0).permutation(lex.size)[: lex.size // 2]
    for question in ["Who won Super Bowl 50?", "Which NFL team won? team team", "zzzz unknown", "the of"]:
        full = lex.scores(question, focus_weight=1.5)
        np.testing.assert_allclose(lex.scores_at(question, rows, focus_weight=1.5), full[rows], rtol=1e-6, atol=0)
    assert lex.scores_at("Super Bowl", np.zeros(0, dtype=np.int64)).shape == (0,)
    # A word of the vocabulary that no row holds (a title of a document with no sentence) scores nothing.
    sparse = Lexical.from_postings(np.array([0, 1, 0]), np.array([0, 1, 1]), 2, {"cat": 0, "dog": 1, "moon": 2})
    np.testing.assert_allclose(sparse.scores_at("moon cat", np.array([1, 0])), sparse.scores("moon cat")[[1, 0]])


def test_save_load_round_trip(tmp_path: Path) -> None:
    lex = Lexical.build(TEXTS)
    lex.save(tmp_path / "bm25")
    again = Lexical.load(tmp_path / "bm25")
    assert again.scores("two small moons").tolist() == pytest.approx(lex.scores("two small moons").tolist())


def test_each_channel_alone_finds_what_it_is_good_at(squad_index_dir: Path) -> None:
    """Keyword channels find a rare exact name; embedding channels find a paraphrase with no shared words."""
    def only(channel: str) -> qa.Index:
        weights = {f"weight_{c}": 0.0 for c in ("bm25", "bm25_context", "dense", "dense_context")}
        weights[f"weight_{channel}"] = 1.0
        return qa.Index.load(squad_index_dir, settings=qa.get_settings(**weights))

    for channel in ("bm25", "bm25_context"):
        top = only(channel).search("How many sacks did Kawann Short have?", k=3)
        assert any("Kawann Short" in p.context for p in top), channel
    paraphrase = "Which musicians performed during the break in the middle of the match?"
    for channel in ("dense", "dense_context"):
        top = only(channel).search(paraphrase, k=3)
        assert any("Coldplay" in p.context for p in top), channel


def test_best_keeps_the_k_largest_and_of_a_tie_at_the_edge_the_first_rows() -> None:
    from qa.lexical import best

    rng = np.random.default_rng(7)
    for _ in range(300):
        n, k = int(rng.integers(1, 200)), int(rng.integers(0, 60))
        values = rng.integers(0, 5, n).astype(np.float32)  # many ties
        want = sorted(sorted(range(n), key=lambda i: (-values[i], i))[:k])
        assert best(values, k).tolist() == want
    distinct = rng.random(1000).astype(np.float32)
    assert best(distinct, 50).tolist() == sorted(np.argsort(-distinct)[:50].tolist())
