"""Articles into passages, and passages into vectors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.matching.embedding import Encoder
from monitor.matching.passages import EMBED_CHUNK, embed_documents, embed_passages, split_passages


@given(
    words=st.lists(st.text(alphabet="abcdefgh", min_size=1, max_size=8), min_size=0, max_size=900),
    size=st.integers(min_value=20, max_value=200),
    overlap=st.integers(min_value=0, max_value=19),
)
def test_passages_cover_every_word_within_the_window(words: list[str], size: int, overlap: int) -> None:
    text = " ".join(words)
    passages = split_passages(None, text, size, overlap)
    assert passages
    assert all(len(p.split()) <= size for p in passages)
    covered = [w for p in passages for w in p.split()]
    assert set(covered) == set(words)
    if words:
        assert passages[0].split()[0] == words[0] and passages[-1].split()[-1] == words[-1]


def test_title_leads_the_first_passage_once() -> None:
    assert split_passages("Headline", "Body text here.")[0] == "Headline. Body text here."
    assert split_passages("Headline", "Headline\nBody text here.")[0] == "Headline Body text here."


@pytest.mark.slow
def test_embedding_in_chunks_gives_the_vectors_of_one_call(encoder: Encoder) -> None:
    documents = [
        (f"Title {i}", " ".join(f"word{i}x{j}" for j in range(400))) for i in range(EMBED_CHUNK // 2)
    ]
    embedded = embed_documents(encoder, documents, 180, 30)
    assert len(embedded.texts) > EMBED_CHUNK  # more than one chunk
    assert embedded.starts[0] == 0 and len(embedded.starts) == len(documents)
    direct = encoder.encode_passages(embedded.texts[:5])
    assert np.allclose(embedded.vectors[:5], direct, atol=1e-5)


@pytest.mark.slow
def test_embedded_passages_name_their_encoder_and_number_from_zero(encoder: Encoder) -> None:
    passages = embed_passages(encoder, [("a1", "T", "one two three"), ("a2", None, " ".join(["w"] * 300))])
    assert [(p.article_id, p.seq) for p in passages] == [("a1", 0), ("a2", 0), ("a2", 1)]
    assert {p.model for p in passages} == {encoder.name}
    assert passages[0].text == "T. one two three"


@pytest.mark.slow
def test_identical_passages_are_embedded_once_and_stored_vectors_are_reused(encoder: Encoder) -> None:
    from monitor.matching.passages import passage_hash

    body = " ".join(f"word{i}" for i in range(150))
    calls: list[int] = []

    class Counting:
        name, dim = encoder.name, encoder.dim

        def encode_passages(self, texts: list[str]) -> np.ndarray:
            calls.append(len(texts))
            return encoder.encode_passages(texts)

        encode_queries = encode_passages

    documents = [("a", None, body), ("b", None, body), ("c", None, body + " and one more sentence")]
    fresh = embed_passages(Counting(), documents)
    assert sum(calls) == 2  # the copy's passage was embedded once
    assert np.allclose(fresh[0].vector, fresh[1].vector)
    stored = {passage_hash(body): fresh[0].vector}
    calls.clear()
    again = embed_passages(
        Counting(), documents, reuse=lambda hashes: {h: stored[h] for h in hashes if h in stored}
    )
    assert sum(calls) == 1  # only the edited copy needs the model
    assert [p.text_hash for p in again] == [passage_hash(p.text) for p in again]
    assert np.allclose(again[0].vector, fresh[0].vector) and np.allclose(
        again[2].vector, fresh[2].vector, atol=1e-5
    )


@given(
    chars=st.lists(
        st.sampled_from([*"伊朗试射导弹。，新型", "Iran", "IRGC", "123"]), min_size=0, max_size=700
    ),
    size=st.integers(min_value=20, max_value=200),
)
def test_unspaced_scripts_split_by_characters_within_the_window(chars: list[str], size: int) -> None:
    from monitor.matching.passages import words_of

    text = "".join(chars)
    tokens = words_of(text)
    passages = split_passages(None, text, size, 10)
    assert all(len(words_of(p)) <= size for p in passages)
    if tokens:
        assert words_of(passages[0]) == tokens[: len(words_of(passages[0]))]
        assert words_of(passages[-1]) == tokens[len(tokens) - len(words_of(passages[-1])) :]
        assert sum(len(words_of(p)) for p in passages) >= len(tokens)


def test_chinese_text_becomes_several_passages_and_english_spacing_is_kept() -> None:
    zh = "伊朗周五试射了一枚新型中程弹道导弹，国家电视台报道称。" * 20
    passages = split_passages(None, zh, 180, 30)
    assert len(passages) == 4 and max(len(p) for p in passages) <= 180
    assert " " not in passages[0]
    assert split_passages(None, "伊朗 IRGC 发射 missile。") == ["伊朗 IRGC 发射 missile 。"]
