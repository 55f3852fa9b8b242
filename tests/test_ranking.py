from __future__ import annotations

import numpy as np
import pytest

import qa
from qa.ranking import duplicate_key, duplicate_keys, fuse, text_key, text_keys, top_unique


def test_fuse_is_the_weighted_mean_of_channels() -> None:
    got = fuse({"a": np.array([0.2, 0.8]), "b": np.array([1.0, 0.0])}, {"a": 1.0, "b": 3.0, "unused": 9.0})
    assert got.tolist() == pytest.approx([0.8, 0.2])


def test_fuse_refuses_all_zero_weights() -> None:
    with pytest.raises(ValueError, match="add up to 0"):
        fuse({"a": np.array([1.0])}, {"a": 0.0})


def test_duplicate_key_ignores_case_and_white_space_only() -> None:
    assert duplicate_key("The  Moon orbits\nthe Earth.") == duplicate_key("the moon orbits the earth.")
    assert duplicate_key("The Moon orbits the Earth.") != duplicate_key("The Moon orbits the Sun.")


def test_duplicate_keys_treat_every_unicode_space_and_case_alike() -> None:
    texts = ["The\u00a0Moon\u2003orbits\t\n", " the moon orbits", "THE MOON ORBITS", "The Moon orbits!",
             "Stra\u00dfe", "STRASSE", "a\x00b", "a b"]
    keys = duplicate_keys(texts)
    assert len(set(keys[:3].tolist())) == 1
    assert keys[3] != keys[0], "punctuation is not white space"
    assert keys[4] == keys[5], "case folding, not lower-casing"
    assert keys[6] != keys[7], "NUL is not white space"
    assert keys.tolist() == [duplicate_key(t) for t in texts]


def test_text_keys_differ_for_any_changed_character() -> None:
    texts = ["The Moon orbits.", "The moon orbits.", "The Moon orbits. ", "The Moon orbits."]
    keys = text_keys(texts).tolist()
    assert len(set(keys[:3])) == 3 and keys[3] == keys[0] == text_key(texts[0])
    assert all(0 <= k < 2**63 for k in keys)


def test_top_unique_keeps_the_best_of_each_duplicate() -> None:
    rows = np.array([10, 11, 12, 13])
    scores = np.array([0.5, 0.9, 0.8, 0.7])
    keys = np.array([1, 2, 2, 3])
    got_rows, got_scores = top_unique(rows, scores, keys, 3)
    assert got_rows.tolist() == [11, 13, 10]
    assert got_scores.tolist() == pytest.approx([0.9, 0.7, 0.5])


def test_repeated_sentence_does_not_crowd_out_the_top_k() -> None:
    """Five documents carry the same boilerplate sentence; it is returned once, and other sentences follow."""
    boiler = "Contact the press office for more information about the launch."
    docs = [qa.Document(f"d{i}", f"Release {i}", f"{boiler} Rocket {i} carried {i + 2} satellites.") for i in range(5)]
    index = qa.Index.build(docs)
    got = index.search("Who do I contact for more information about the launch?", k=4)
    assert sum(p.text == boiler for p in got) == 1
    assert len({p.text for p in got}) == 4
