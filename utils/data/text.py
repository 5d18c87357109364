"""Normalisation and tokenisation of sentences, as d2l does it for fra-eng.

Both corpora (the real fra-eng file and the generated one) go through the same
two functions, so a model trained on one reads the other the same way.
"""

from __future__ import annotations

import re

# A punctuation mark that directly follows something other than a space gets a
# space in front of it, so that "cold." becomes the two tokens "cold" and ".".
_PUNCTUATION_WITHOUT_SPACE = re.compile(r"(?<=[^ ])([,.!?])")


def normalize(text: str) -> str:
    """Normalise one sentence the way d2l 1.0.3's ``MTFraEng._preprocess`` does.

    Non-breaking spaces (``\\u202f``, ``\\xa0``) become spaces, letters become
    lowercase, and a space is inserted before ``, . ! ?`` when the character
    before it is not a space::

        >>> normalize("Va\\u202f!")
        'va !'
        >>> normalize("I'm cold.")
        "i'm cold ."

    The function is idempotent: ``normalize(normalize(t)) == normalize(t)``.
    (d2l looks at the character before in the text *before* lowercasing; the
    two agree except after the rare letters whose lowercase is longer, like
    "İ".)
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str; got {type(text).__name__}: {text!r}")
    text = text.replace("\u202f", " ").replace("\xa0", " ").lower()
    return _PUNCTUATION_WITHOUT_SPACE.sub(r" \1", text)


def tokenize(text: str) -> list[str]:
    """The tokens of one sentence: ``normalize(text)`` split on spaces.

    Punctuation marks are tokens of their own and empty tokens are dropped, as
    in d2l: ``tokenize("I'm cold.") == ["i'm", "cold", "."]``. Because
    ``normalize`` is idempotent, already normalised text may be passed too.

    Used in chapter 06 §8; tested in tests/test_data_text_vocab.py.
    """
    return [token for token in normalize(text).split(" ") if token]
