from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import qa
from qa.lexical import Lexical, tokenize

TEXTS = [
    "The Moon orbits the Earth every 27 days.",
    "Mars has two small moons, Phobos and Deimos.",
    "Jupiter is the largest planet.",
]


def test_tokenize_stems_and_drops_stop_words() -> None:
    assert tokenize("The moons are orbiting") == ["moon", "orbit"]
    assert tokenize("") == []


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
