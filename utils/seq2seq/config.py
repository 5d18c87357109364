"""The model's hyperparameters, one JSON-serialisable dataclass (saved in every checkpoint)."""

from __future__ import annotations

from dataclasses import dataclass

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
    """

    decoder: str
    embed_size: int = 256
    num_hiddens: int = 256
    num_layers: int = 2
    dropout: float = 0.2
    bidirectional: bool = False
    attention: str = "general"

    def __post_init__(self):
        if self.decoder not in DECODERS:
            raise ValueError(f"ModelConfig.decoder must be one of {DECODERS}; got {self.decoder!r}")
        if self.attention not in LUONG_SCORES:
            raise ValueError(
                f"ModelConfig.attention must be one of {LUONG_SCORES}; got {self.attention!r}"
            )
        for name in ("embed_size", "num_hiddens", "num_layers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"ModelConfig.{name} must be a positive int; got {value!r}")
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) \
                or not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"ModelConfig.dropout must be a number in [0, 1); got {self.dropout!r}")
        if not isinstance(self.bidirectional, bool):
            raise TypeError(f"ModelConfig.bidirectional must be a bool; got {self.bidirectional!r}")
