"""A token <-> id vocabulary with the four special tokens at fixed ids."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from utils.validate import is_int, require_int

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIAL_TOKENS = (PAD, BOS, EOS, UNK)


def _count_tokens(token_lists_or_counter) -> Counter:
    """Token counts from a mapping token -> count, a flat token list or a list of token lists."""
    if isinstance(token_lists_or_counter, Mapping):
        return Counter(dict(token_lists_or_counter))
    if isinstance(token_lists_or_counter, str) or not isinstance(token_lists_or_counter, Iterable):
        raise TypeError(
            "token_lists_or_counter must be a Counter (token -> count), a list of tokens or a "
            f"list of token lists; got {type(token_lists_or_counter).__name__}"
        )
    counts: Counter = Counter()
    for item in token_lists_or_counter:
        if isinstance(item, str):
            counts[item] += 1
        else:
            counts.update(item)
    return counts


class Vocab:
    """Maps tokens to ids and back.

    Ids 0-3 are always ``<pad>``, ``<bos>``, ``<eos>``, ``<unk>`` (the ids are
    also the attributes ``pad``, ``bos``, ``eos``, ``unk``), then come the
    ``reserved_tokens``, then every token seen at least ``min_freq`` times, by
    descending count with ties in alphabetical order, so the same data always
    gives the same ids.

    ``token_lists_or_counter`` is a list of token lists (sentences), a flat list
    of tokens, or a mapping token -> count (e.g. a ``collections.Counter``).

    No chapter builds it; tested in tests/test_data_text_vocab.py.
    """

    pad, bos, eos, unk = 0, 1, 2, 3

    def __init__(self, token_lists_or_counter=(), min_freq: int = 1, reserved_tokens=()):
        require_int("min_freq", min_freq, at_least=0)
        if isinstance(reserved_tokens, str):
            raise TypeError(f"reserved_tokens must be a list of tokens, not the str {reserved_tokens!r}")
        counts = _count_tokens(token_lists_or_counter)
        self.min_freq = min_freq
        idx_to_token = list(SPECIAL_TOKENS)
        for token in reserved_tokens:
            if token not in idx_to_token:
                idx_to_token.append(token)
        taken = set(idx_to_token)
        frequent = sorted(
            (item for item in counts.items() if item[1] >= min_freq and item[0] not in taken),
            key=lambda item: (-item[1], item[0]),
        )
        idx_to_token.extend(token for token, _ in frequent)
        self._set_tokens(idx_to_token)

    def _set_tokens(self, idx_to_token: list[str]) -> None:
        self.idx_to_token = idx_to_token
        self.token_to_idx = {token: idx for idx, token in enumerate(idx_to_token)}

    def __len__(self) -> int:
        return len(self.idx_to_token)

    def __contains__(self, token) -> bool:
        return token in self.token_to_idx

    def __getitem__(self, token):
        """The id of ``token`` (``unk`` when unknown); a list/tuple of tokens gives a list of ids."""
        if isinstance(token, (list, tuple)):
            return self.encode(token)
        return self.token_to_idx.get(token, self.unk)

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocab) and self.idx_to_token == other.idx_to_token

    __hash__ = None  # mutable-looking and compared by content

    def __repr__(self) -> str:
        shown = ", ".join(self.idx_to_token[4:12])
        return f"Vocab({len(self)} tokens: <pad> <bos> <eos> <unk> {shown}{' …' if len(self) > 12 else ''})"

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """Token ids; unknown tokens become ``unk``. No ``<bos>``/``<eos>`` is added."""
        if isinstance(tokens, str):
            raise TypeError(
                f"tokens must be a list of tokens, not the str {tokens!r} (tokenize it first)"
            )
        get = self.token_to_idx.get
        return [get(token, self.unk) for token in tokens]

    def decode(self, ids, strip_special: bool = True) -> list[str]:
        """Tokens for ``ids`` (a list of ints, or a 1-D tensor/array of shape ``(steps,)``).

        With ``strip_special`` (the default) decoding stops at the first
        ``<eos>`` and ``<pad>``/``<bos>`` are left out, which turns a decoder's
        output row into the sentence. With ``strip_special=False`` every id is
        mapped, specials included, for debugging.
        """
        if hasattr(ids, "tolist"):  # torch tensors and numpy arrays
            if getattr(ids, "ndim", 1) != 1:
                raise ValueError(f"ids must be 1-D (steps,); got shape {tuple(ids.shape)}")
            ids = ids.tolist()
        tokens = []
        size = len(self.idx_to_token)
        for position, idx in enumerate(ids):
            if not is_int(idx) or not 0 <= idx < size:
                raise ValueError(
                    f"ids[{position}] = {idx!r} is not a token id of this vocabulary (0..{size - 1})"
                )
            if strip_special:
                if idx == self.eos:
                    break
                if idx in (self.pad, self.bos):
                    continue
            tokens.append(self.idx_to_token[idx])
        return tokens

    def to_dict(self) -> dict:
        """A JSON-serialisable description, for checkpoints: ``Vocab.from_dict(v.to_dict()) == v``."""
        return {"format": 1, "min_freq": self.min_freq, "tokens": list(self.idx_to_token)}

    @classmethod
    def from_dict(cls, description: Mapping) -> Vocab:
        """The vocabulary that ``to_dict`` described (same tokens at the same ids)."""
        if not isinstance(description, Mapping) or "tokens" not in description:
            raise ValueError(
                "description must be a dict written by Vocab.to_dict() with a 'tokens' list; "
                f"got {type(description).__name__}"
                + (f" with keys {sorted(description)}" if isinstance(description, Mapping) else "")
            )
        tokens = list(description["tokens"])
        if tuple(tokens[:4]) != SPECIAL_TOKENS:
            raise ValueError(
                f"description['tokens'] must start with {list(SPECIAL_TOKENS)}; got {tokens[:4]}"
            )
        if len(set(tokens)) != len(tokens) or not all(isinstance(t, str) for t in tokens):
            raise ValueError("description['tokens'] must be distinct strings")
        vocab = cls.__new__(cls)
        vocab.min_freq = description.get("min_freq", 1)
        vocab._set_tokens(tokens)
        return vocab
