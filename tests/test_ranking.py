from __future__ import annotations

import numpy as np
import pytest

import qa
from qa.ranking import duplicate_key, fuse, top_unique


def test_fuse_is_the_weighted_mean_of_channels() -> None:
    got = fuse({"a": np.array([0.2, 0.8]), "b": np.array([1.0, 0.0])}, {"a": 1.0, "b": 3.0, "unused": 9.0})
    assert got.tolist() == pytest.approx([0.8, 0.2])


def test_fuse_refuses_all_zero_weights() -> None:
    with pytest.raises(ValueError, match="add up to 0"):
        fuse({"a": np.array([1.0])}, {"a": 0.0})


def test_duplicate_key_ignores_case_and_white_space_only() -> None:
    assert duplicate_key("The  Moon orbits\nthe Earth.") == duplicate_key("the moon orbits the earth.")
    assert duplicate_key("The Moon orbits the Earth.") != duplicate_key("The Moon orbits the Sun.")


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
