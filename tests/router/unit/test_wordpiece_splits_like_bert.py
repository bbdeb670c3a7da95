"""The tier classifier's WordPiece splits text the way BERT's uncased tokenizer does
(lower case, accents stripped, punctuation and CJK apart, longest pieces first) and keeps
its word cache bounded."""

from __future__ import annotations

import pytest

from tierwise.router.tier_quality import WordPiece

VOCAB = ["[PAD]", "[UNK]", "un", "##aff", "##able", "the", "cafe", "我", "爱", ",", "run", "##s"]


def tokens(text: str, tokenizer: WordPiece | None = None) -> list[str]:
    tokenizer = tokenizer or WordPiece({w: i for i, w in enumerate(VOCAB)})
    return [VOCAB[i] for i in tokenizer(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("unaffable", ["un", "##aff", "##able"]),
        ("The CAFÉ", ["the", "cafe"]),
        ("我爱", ["我", "爱"]),
        ("runs, the", ["run", "##s", ",", "the"]),
        ("", []),
        ("   \n\t", []),
        ("zzz", ["[UNK]"]),
        ("u" + "n" * 100, ["[UNK]"]),
    ],
)
def test_text_splits_into_bert_pieces(text: str, expected: list[str]) -> None:
    assert tokens(text) == expected


def test_word_cache_never_exceeds_its_bound() -> None:
    class Small(WordPiece):
        CACHE_WORDS = 8

    tokenizer = Small({w: i for i, w in enumerate(VOCAB)})
    for i in range(100):
        tokenizer(f"word{i} the")
        assert len(tokenizer._cache) <= Small.CACHE_WORDS
    assert tokens("unaffable the", tokenizer) == ["un", "##aff", "##able", "the"]
