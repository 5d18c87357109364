"""The three LSTM decoders: plain (fixed context), Bahdanau (attend, then LSTM), Luong (LSTM, then attend).

(The fourth, chapter 08's ``TransformerDecoder``, is in ``utils.seq2seq.transformer``; its state is a
key/value cache instead of ``(h, c)``.) Every decoder has the same interface, which ``Seq2Seq`` and
the decoding functions use:

- ``init_state(memory) -> state``: the LSTM state ``(h, c)``, each ``(num_layers, batch, H)``,
  starts from the encoder's final state (so the encoder needs as many layers as the decoder).
- ``forward(tgt_in (batch, tgt_steps), state, memory) -> (logits (batch, tgt_steps, vocab), state,
  weights (batch, tgt_steps, src_steps) or None)``: teacher forcing over the whole target.
- ``step(tokens (batch,), state, memory) -> (logits (batch, vocab), state, weights (batch,
  src_steps) or None)``: one step, for decoding; in eval mode it gives the same logits as
  ``forward`` on the same prefix.
- ``reorder_state(state, indices) -> state``: the states of batch rows ``indices`` (beam search).
"""

from __future__ import annotations

import torch
from torch import nn

from utils.attention import AdditiveAttention, LuongAttention
from utils.seq2seq.encoder import LSTMState, Memory


class Decoder(nn.Module):
    """What the three decoders share: embedding, dropout, the output layer, state handling.

    Built in chapter 06 §4 as ``Decoder``; tested in tests/test_seq2seq_model.py.
    """

    def __init__(self, vocab_size: int, embed_size: int, num_hiddens: int, dropout: float,
                 pad_id: int):
        super().__init__()
        self.vocab_size, self.num_hiddens = vocab_size, num_hiddens
        self.embedding = nn.Embedding(vocab_size, embed_size, padding_idx=pad_id)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(num_hiddens, vocab_size)  # hidden -> logits

    def init_state(self, memory: Memory) -> LSTMState:
        return memory.state

    def reorder_state(self, state: LSTMState, indices: torch.Tensor) -> LSTMState:
        h, c = state  # batch is axis 1 of an LSTM state
        return h.index_select(1, indices), c.index_select(1, indices)

    def step(self, tokens: torch.Tensor, state: LSTMState, memory: Memory):
        if not torch.is_tensor(tokens) or tokens.dim() != 1:
            got = tuple(tokens.shape) if torch.is_tensor(tokens) else type(tokens).__name__
            raise ValueError(f"tokens must be a tensor of shape (batch,); got {got}")
        logits, state, weights = self(tokens[:, None], state, memory)  # a target of one step
        return logits[:, 0], state, None if weights is None else weights[:, 0]


def _lstm(input_size: int, num_hiddens: int, num_layers: int, dropout: float) -> nn.LSTM:
    return nn.LSTM(input_size, num_hiddens, num_layers, batch_first=True,
                   dropout=dropout if num_layers > 1 else 0.0)


class PlainDecoder(Decoder):
    """d2l's ``Seq2SeqDecoder`` with an LSTM: no attention, one fixed context for every step.

    The context is the encoder's final top-layer hidden state ``(batch, H)``, concatenated to
    every input embedding; the whole sentence must squeeze through it (chapter 06's bottleneck).
    The target runs through the LSTM in one call.

    Built in chapter 06 §4 as ``Decoder``; tested in tests/test_seq2seq_model.py.
    """

    def __init__(self, vocab_size: int, embed_size: int, num_hiddens: int, num_layers: int,
                 dropout: float = 0.0, pad_id: int = 0):
        super().__init__(vocab_size, embed_size, num_hiddens, dropout, pad_id)
        self.rnn = _lstm(embed_size + num_hiddens, num_hiddens, num_layers, dropout)

    def forward(self, tgt_in: torch.Tensor, state: LSTMState, memory: Memory):
        embedded = self.dropout(self.embedding(tgt_in))  # (batch, T, E)
        context = memory.state[0][-1]  # (batch, H): the encoder's, not the decoder's, state
        context = context.unsqueeze(1).expand(-1, tgt_in.shape[1], -1)  # (batch, T, H)
        outputs, state = self.rnn(torch.cat([embedded, context.to(embedded.dtype)], -1), state)
        return self.output(self.dropout(outputs)), state, None  # (batch, T, vocab)


class BahdanauDecoder(Decoder):
    """d2l's ``Seq2SeqAttentionDecoder`` with an LSTM (Bahdanau et al., 2015).

    At each step the previous top-layer hidden state queries the encoder outputs with additive
    attention; the context ``(batch, 1, H)`` is concatenated to the input embedding and fed to
    the LSTM. The query depends on the previous step, so even under teacher forcing the target
    is processed one step at a time.

    Used in chapter 07 §3; tested in tests/test_seq2seq_model.py.
    """

    def __init__(self, vocab_size: int, embed_size: int, num_hiddens: int, num_layers: int,
                 dropout: float = 0.0, pad_id: int = 0):
        super().__init__(vocab_size, embed_size, num_hiddens, dropout, pad_id)
        self.attention = AdditiveAttention(num_hiddens, num_hiddens, num_hiddens, dropout)
        self.rnn = _lstm(embed_size + num_hiddens, num_hiddens, num_layers, dropout)

    def forward(self, tgt_in: torch.Tensor, state: LSTMState, memory: Memory):
        embedded = self.dropout(self.embedding(tgt_in))  # (batch, T, E)
        outputs, weights = [], []
        for t in range(tgt_in.shape[1]):
            query = state[0][-1].unsqueeze(1)  # (batch, 1, H): previous top hidden state
            context = self.attention(query, memory.outputs, memory.outputs, memory.valid_lens)
            x = torch.cat([embedded[:, t : t + 1], context.to(embedded.dtype)], -1)  # (batch, 1, E+H)
            output, state = self.rnn(x, state)  # (batch, 1, H)
            outputs.append(output)
            weights.append(self.attention.attention_weights)  # (batch, 1, src_steps)
        outputs = torch.cat(outputs, 1)  # (batch, T, H)
        return self.output(self.dropout(outputs)), state, torch.cat(weights, 1)


class LuongDecoder(Decoder):
    """Luong et al. (2015) global attention, without input feeding.

    The LSTM runs over the whole target in ONE call (one cuDNN kernel under teacher forcing);
    then every decoder output ``h_t`` attends over the encoder outputs ``h_s`` with
    ``utils.attention.LuongAttention`` ("dot" or "general" score), ``c_t = sum_s a_ts h_s``,
    ``h~_t = tanh(W_c [c_t; h_t])``, and the logits come from ``h~_t``. (With input feeding,
    ``h~_{t-1}`` would enter the LSTM's input and the decoder would run step by step too.)

    Built in chapter 07 §3; tested in tests/test_seq2seq_model.py.
    """

    def __init__(self, vocab_size: int, embed_size: int, num_hiddens: int, num_layers: int,
                 dropout: float = 0.0, pad_id: int = 0, score: str = "general"):
        super().__init__(vocab_size, embed_size, num_hiddens, dropout, pad_id)
        self.rnn = _lstm(embed_size, num_hiddens, num_layers, dropout)
        self.attention = LuongAttention(num_hiddens, score)
        self.W_c = nn.Linear(2 * num_hiddens, num_hiddens, bias=False)
        self._register_load_state_dict_pre_hook(_moved_W_a)

    @property
    def score(self) -> str:
        return self.attention.score

    @property
    def W_a(self) -> nn.Linear:
        """The "general" score's matrix (it lives in ``self.attention``); the "dot" score has none."""
        if self.attention.W_a is None:
            raise AttributeError("a Luong decoder with the 'dot' score has no W_a")
        return self.attention.W_a

    def attend(self, outputs: torch.Tensor, memory: Memory):
        """``outputs (batch, T, H)`` -> (attentional hidden ``h~`` (batch, T, H), weights (batch, T, S))."""
        context = self.attention(outputs, memory.outputs, memory.outputs, memory.valid_lens)  # (batch, T, H)
        hidden = torch.tanh(self.W_c(torch.cat([context, outputs], -1)))  # (batch, T, H)
        return hidden, self.attention.attention_weights

    def forward(self, tgt_in: torch.Tensor, state: LSTMState, memory: Memory):
        embedded = self.dropout(self.embedding(tgt_in))  # (batch, T, E)
        outputs, state = self.rnn(embedded, state)  # (batch, T, H): the whole target at once
        hidden, weights = self.attend(outputs, memory)
        return self.output(self.dropout(hidden)), state, weights


def _moved_W_a(state_dict, prefix, *args) -> None:
    """Checkpoints written before ``LuongAttention`` existed hold ``W_a`` on the decoder itself."""
    old, new = prefix + "W_a.weight", prefix + "attention.W_a.weight"
    if old in state_dict and new not in state_dict:
        state_dict[new] = state_dict.pop(old)
