from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

import qa
from qa.sentences import MAX_CHARS, split


def _check_invariants(text: str) -> list[str]:
    spans = split(text)
    previous_end = 0
    for start, end in spans:
        assert previous_end <= start < end <= len(text), (spans, text)
        sentence = text[start:end]
        assert sentence == sentence.strip(), "spans carry no surrounding white space"
        previous_end = end
    covered = "".join(text[a:b] for a, b in spans)
    # Nothing is lost: every non-space character lies inside a sentence.
    assert [c for c in covered if not c.isspace()] == [c for c in text if not c.isspace()]
    return [text[a:b] for a, b in spans]


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_offsets_hold_on_arbitrary_text(text: str) -> None:
    _check_invariants(text)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(["Mr. Smith", "U.S.", "e.g.", "’’", "“Hi.”", "(a@b.com)", " ", "\n", "...", "؟",
                                 "שלום.", "😀", "\r\n", "Dr.", "3.14", "!", "?", "\t", "A", "word"]), max_size=40))
def test_offsets_hold_on_tricky_fragments(parts: list[str]) -> None:
    _check_invariants(" ".join(parts))


def test_empty_and_blank_text_have_no_sentences() -> None:
    assert split("") == []
    assert split(" \n\t \n") == []


def test_article_traps_are_handled() -> None:
    text = qa.default_document().text
    sentences = _check_invariants(text)
    # Abbreviations do not end sentences.
    assert any(s.startswith("Meanwhile, Special Assistant to the PM, Tariq Fatmi, has recently met") for s in sentences)
    assert any("National Action Plan (NAP) being implemented" in s for s in sentences)
    # The closing ’’ that opens line 17 goes back to the quotation it closes, not to a sentence of its own.
    quoted = next(s for s in sentences if "sanctuary in Pakistan." in s)
    assert quoted.endswith("’’")
    assert any(s.startswith("Of course, the US cannot afford") for s in sentences)
    # Curly quotes stay inside their sentence, and the e-mail address is never cut.
    assert any("“very satisfied”" in s for s in sentences)
    assert any("(rizvipeaceresearcher@gmail.com)" in s for s in sentences)
    assert all(s.strip("’” ") for s in sentences), "no sentence is only punctuation"


def test_each_article_line_ends_a_sentence() -> None:
    text = qa.default_document().text
    ends = {b for _, b in split(text)}
    line_ends = [i for i, c in enumerate(text) if c == "\n" and text[:i].strip()]
    for i in line_ends:
        end = len(text[:i].rstrip())
        # a line ends a sentence, except where its closing quotes continue on the next line (lines 16-17)
        assert end in ends or text[i + 1 : i + 3] == "’’"


def test_overlong_sentence_is_cut_at_white_space() -> None:
    text = " ".join(["word"] * 1000)
    spans = split(text)
    assert len(spans) > 1
    assert all(b - a <= MAX_CHARS for a, b in spans)
    assert all(text[a:b].startswith("word") and text[a:b].endswith("word") for a, b in spans)
