"""The model's hyperparameters, one JSON-serialisable dataclass (saved in every checkpoint)."""

from __future__ import annotations

from dataclasses import dataclass, fields

from utils.validate import require_int, require_number, require_one_of

DECODERS = ("plain", "bahdanau", "luong", "transformer")
LUONG_SCORES = ("dot", "general")
TRANSFORMER_FIELDS = ("num_heads", "ffn_hiddens", "norm_first")


@dataclass
class ModelConfig:
    """What ``build_model`` builds.

    ``decoder``: ``"plain"`` (fixed context, chapter 06), ``"bahdanau"`` (additive attention
    before the LSTM, one step at a time) or ``"luong"`` (attention after the LSTM, whole target
    in one LSTM call). ``num_hiddens`` is what the decoder sees: a bidirectional encoder runs
    ``num_hiddens`` per direction and projects ``2 * num_hiddens`` back to ``num_hiddens``.
    ``attention``: the Luong score, ``"dot"`` (``h_t . h_s``) or ``"general"``
    (``h_t . W_a h_s``); ignored by the other decoders.

    ``"transformer"`` (chapter 08) replaces the LSTMs on both sides: ``num_layers`` encoder and
    ``num_layers`` decoder layers of width ``d_model = num_hiddens`` (so ``embed_size`` must equal
    it, and ``bidirectional`` must be False), ``num_heads`` attention heads, a feed-forward block
    ``ffn_hiddens`` wide (``None``: ``4 * num_hiddens``, the paper's ratio), pre-LN
    (``norm_first=True``) or post-LN. These three fields are ignored by the LSTM decoders.
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
    num_heads: int = 4
    ffn_hiddens: int | None = None
    norm_first: bool = True

    def __post_init__(self):
        require_one_of("ModelConfig.decoder", self.decoder, DECODERS)
        require_one_of("ModelConfig.attention", self.attention, LUONG_SCORES)
        for name in ("embed_size", "num_hiddens", "num_layers"):
            require_int(f"ModelConfig.{name}", getattr(self, name), at_least=1)
        require_number("ModelConfig.dropout", self.dropout, at_least=0, below=1)
        if not isinstance(self.bidirectional, bool):
            raise TypeError(f"ModelConfig.bidirectional must be a bool; got {self.bidirectional!r}")
        self._check_transformer_fields()

    def __repr__(self) -> str:
        """The dataclass repr, without the transformer's fields for the LSTM decoders (which ignore them)."""
        shown = [field.name for field in fields(self)
                 if self.decoder == "transformer" or field.name not in TRANSFORMER_FIELDS]
        return f"ModelConfig({', '.join(f'{name}={getattr(self, name)!r}' for name in shown)})"

    @property
    def ffn_size(self) -> int:
        """The feed-forward width of the transformer: ``ffn_hiddens``, or ``4 * num_hiddens``."""
        return 4 * self.num_hiddens if self.ffn_hiddens is None else self.ffn_hiddens

    def _check_transformer_fields(self) -> None:
        require_int("ModelConfig.num_heads", self.num_heads, at_least=1)
        require_int("ModelConfig.ffn_hiddens", self.ffn_hiddens, at_least=1, none_ok=True)
        if not isinstance(self.norm_first, bool):
            raise TypeError(f"ModelConfig.norm_first must be a bool; got {self.norm_first!r}")
        if self.decoder != "transformer":
            return
        if self.num_hiddens % self.num_heads:
            raise ValueError(f"ModelConfig.num_hiddens={self.num_hiddens} (the transformer's d_model) must be "
                             f"divisible by num_heads={self.num_heads}")
        if self.embed_size != self.num_hiddens:
            raise ValueError(f"ModelConfig.embed_size={self.embed_size} must equal num_hiddens={self.num_hiddens} "
                             f"for the transformer (both are its width d_model)")
        if self.bidirectional:
            raise ValueError("ModelConfig.bidirectional=True is for the LSTM encoder; the transformer's "
                             "encoder already sees both directions: set it to False")
