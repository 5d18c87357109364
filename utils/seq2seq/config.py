"""The model's hyperparameters, one JSON-serialisable dataclass (saved in every checkpoint)."""

from __future__ import annotations

from dataclasses import dataclass

from utils.validate import require_int, require_number, require_one_of

DECODERS = ("plain", "bahdanau", "luong")
LUONG_SCORES = ("dot", "general")


@dataclass
class ModelConfig:
    """What ``build_model`` builds.

    ``decoder``: ``"plain"`` (fixed context, chapter 06), ``"bahdanau"`` (additive attention
    before the LSTM, one step at a time) or ``"luong"`` (attention after the LSTM, whole target
    in one LSTM call). ``num_hiddens`` is what the decoder sees: a bidirectional encoder runs
    ``num_hiddens`` per direction and projects ``2 * num_hiddens`` back to ``num_hiddens``.
    ``attention``: the Luong score, ``"dot"`` (``h_t . h_s``) or ``"general"``
    (``h_t . W_a h_s``); ignored by the other decoders.
    ``dataclasses.asdict(config)`` is a plain dict and ``ModelConfig(**that_dict)`` rebuilds it.

    Used in chapter 07 §4; tested in tests/test_seq2seq_model.py.
    """

    decoder: str
    embed_size: int = 256
    num_hiddens: int = 256
    num_layers: int = 2
    dropout: float = 0.2
    bidirectional: bool = False
    attention: str = "general"

    def __post_init__(self):
        require_one_of("ModelConfig.decoder", self.decoder, DECODERS)
        require_one_of("ModelConfig.attention", self.attention, LUONG_SCORES)
        for name in ("embed_size", "num_hiddens", "num_layers"):
            require_int(f"ModelConfig.{name}", getattr(self, name), at_least=1)
        require_number("ModelConfig.dropout", self.dropout, at_least=0, below=1)
        if not isinstance(self.bidirectional, bool):
            raise TypeError(f"ModelConfig.bidirectional must be a bool; got {self.bidirectional!r}")
