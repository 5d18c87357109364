"""``attn train``: train the translator (a profile's preset, adjusted by options), checkpoint, resume.

    attn train --profile cpu --out runs/cpu
    attn train --profile smoke --steps 200 --checkpoint-every 50 --out runs/s
    attn train --profile smoke --out runs/s --resume        # continue after a crash
    attn train --profile cpu-real --decoder plain           # the real corpus, ~30 min on 2 cores
    attn train --profile gpu-real --decoder transformer --data fra.txt   # the shipped models on a GPU
    attn train --profile gpu --data fra-eng --decoder bahdanau
    attn train --profile smoke --decoder transformer --no-norm-first   # post-LN
    torchrun --nproc_per_node=2 -m utils.course.cli train --profile gpu --out runs/ddp
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from utils.command_line import writable_folder
from utils.data import CorpusUnavailable, Vocab
from utils.runtime import choose_device, get_profile, seed_everything
from utils.seq2seq import ModelConfig, build_model
from utils.training import distributed
from utils.training.checkpoint import CHECKPOINT_NAME, read_checkpoint
from utils.training.commands import (
    add_device_options,
    apply_threads,
    fail,
    int_at_least,
    number_in,
    path_text,
)
from utils.training.config import PRESETS, DataSpec, TrainConfig, build_data, presets
from utils.training.loop import TrainingDiverged, train

# options that change the model or the data: a resumed run must not change them
_MODEL_OPTIONS = ("decoder", "embed_size", "num_hiddens", "num_layers", "dropout", "bidirectional",
                  "attention", "num_heads", "ffn_hiddens", "norm_first")
_DATA_OPTIONS = ("data", "generated", "max_pairs", "data_seed", "min_freq")
# options of TrainConfig that may change on --resume (the rest would break "same as uninterrupted")
_RESUMABLE_TRAIN_OPTIONS = ("steps", "log_every", "checkpoint_every", "eval_every", "eval_sentences")
_TRAIN_OPTIONS = ("steps", "batch_size", "lr", "weight_decay", "clip_norm", "warmup_steps", "log_every",
                  "checkpoint_every", "eval_every", "eval_sentences", "seed", "amp", "max_len",
                  "label_smoothing")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = __doc__.split("\n", 2)[2]
    parser.add_argument("--profile", choices=PRESETS,
                        help="preset sizes: smoke (seconds), cpu (minutes, generated corpus), cpu-real "
                             "(the real corpus on a laptop CPU: the shipped models' recipe), gpu-real (the "
                             "same models with GPU batches in bf16), gpu (bigger models on the whole real "
                             "corpus, on a GPU); default: $COURSE_PROFILE, else gpu with CUDA, else cpu")
    parser.add_argument("--out", metavar="DIR", type=path_text,
                        help="folder for checkpoint.pt and metrics.json (default: runs/PROFILE-DECODER)")
    start = parser.add_mutually_exclusive_group()
    start.add_argument("--resume", action="store_true",
                       help="continue from DIR/checkpoint.pt (same model, data and order); starts "
                            "from scratch when there is none")
    start.add_argument("--overwrite", action="store_true",
                       help="start over in DIR even when it holds a run (that run is replaced)")

    data = parser.add_argument_group("data (default: the profile's)")
    source = data.add_mutually_exclusive_group()
    source.add_argument("--data", metavar="PATH", type=path_text,
                        help="a local fra.txt or fra-eng.zip, or 'fra-eng' for the downloaded corpus")
    source.add_argument("--generated", type=int_at_least(10), metavar="N", help="N pairs of the offline generated corpus")
    data.add_argument("--max-pairs", type=int_at_least(10), metavar="N", help="keep the first N pairs of a real corpus")
    data.add_argument("--data-seed", type=int_at_least(0), metavar="S", help="seed of the corpus generator and the split")
    data.add_argument("--min-freq", type=int_at_least(1), metavar="K", help="vocabulary: keep tokens seen K times")

    model = parser.add_argument_group("model (default: the profile's)")
    model.add_argument("--decoder", choices=("luong", "bahdanau", "plain", "transformer"),
                       help="default: luong; transformer: chapter 08's (the encoder is one too)")
    model.add_argument("--embed-size", type=int_at_least(1))
    model.add_argument("--num-hiddens", type=int_at_least(1))
    model.add_argument("--num-layers", type=int_at_least(1))
    model.add_argument("--dropout", type=number_in(0, 1))
    model.add_argument("--bidirectional", action=argparse.BooleanOptionalAction, default=None)
    model.add_argument("--attention", choices=("general", "dot"), help="Luong score")
    model.add_argument("--num-heads", type=int_at_least(1), help="transformer: attention heads")
    model.add_argument("--ffn-hiddens", type=int_at_least(1), help="transformer: feed-forward width")
    model.add_argument("--norm-first", action=argparse.BooleanOptionalAction, default=None,
                       help="transformer: pre-LN (default) or post-LN (--no-norm-first)")

    training = parser.add_argument_group("training (default: the profile's)")
    training.add_argument("--steps", type=int_at_least(1))
    training.add_argument("--batch-size", type=int_at_least(1), help="pairs per batch per process")
    training.add_argument("--lr", type=number_in(0, low_open=True), help="peak learning rate of AdamW")
    training.add_argument("--weight-decay", type=number_in(0))
    training.add_argument("--clip-norm", type=number_in(0), help="gradient norm clip (0: off)")
    training.add_argument("--warmup-steps", type=int_at_least(0))
    training.add_argument("--log-every", type=int_at_least(1), metavar="STEPS")
    training.add_argument("--checkpoint-every", type=int_at_least(0), metavar="STEPS", help="0: only at the end")
    training.add_argument("--eval-every", type=int_at_least(0), metavar="STEPS", help="valid BLEU (0: only at the end)")
    training.add_argument("--eval-sentences", type=int_at_least(0), metavar="N", help="valid pairs for BLEU (0: none)")
    training.add_argument("--label-smoothing", type=number_in(0, 1), metavar="EPS", help="of the loss (0: off)")
    training.add_argument("--max-len", type=int_at_least(2), metavar="TOKENS", help="skip longer training pairs")
    training.add_argument("--amp", choices=("bf16", "off"), help="bf16 autocast on CUDA")
    training.add_argument("--seed", type=int_at_least(0), help="model init, dropout and data order")
    training.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_device_options(parser)


def _given(args, names) -> dict:
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def _data_spec(args, default):
    values = dataclasses.asdict(default)
    if args.generated is not None:
        values.update(source="generated", num_pairs=args.generated, path=None)
    elif args.data is not None:
        is_download = args.data == "fra-eng" and not Path(args.data).exists()
        if not is_download and not Path(args.data).expanduser().exists():
            raise ValueError(f"--data {args.data}: no such file (give a fra.txt / fra-eng.zip, or 'fra-eng')")
        values.update(source="fra-eng" if is_download else "file", path=None if is_download else args.data)
    if args.max_pairs is not None:
        values["max_pairs"] = args.max_pairs
    if args.data_seed is not None:
        values["seed"] = args.data_seed
    if args.min_freq is not None:
        values["min_freq"] = args.min_freq
    return DataSpec(**values)


def _configs(args, profile: str, checkpoint: dict | None):
    """``(ModelConfig, TrainConfig, DataSpec)`` from the preset (or the checkpoint) and the options."""
    if checkpoint is not None:
        model_config = ModelConfig(**checkpoint["model_config"])
        train_config = TrainConfig.from_dict(checkpoint["train_config"])
        if checkpoint.get("data_spec") is None:
            raise ValueError("the checkpoint has no data spec: it was not written by `attn train`")
        spec = DataSpec.from_dict(checkpoint["data_spec"])
        changed = {name: value for name, value in _given(args, _MODEL_OPTIONS).items()
                   if getattr(model_config, name) != value}
        changed.update({name: value for name, value in _given(args, _TRAIN_OPTIONS).items()
                        if name not in _RESUMABLE_TRAIN_OPTIONS and getattr(train_config, name) != value})
        if any(getattr(args, name) is not None for name in _DATA_OPTIONS):
            if _data_spec(args, spec) != spec:
                changed["data"] = "(other data options)"
        if changed:
            options = ", ".join(f"--{name.replace('_', '-')}" for name in changed)
            raise ValueError(f"--resume continues the saved run; {options} differ(s) from it. "
                             "Drop them, or train into a new --out folder")
        train_values = {**dataclasses.asdict(train_config), **_given(args, _RESUMABLE_TRAIN_OPTIONS)}
        return model_config, TrainConfig(**train_values), spec

    model_config, train_config, spec = presets(profile, args.decoder or "luong")
    model_config = ModelConfig(**{**dataclasses.asdict(model_config), **_given(args, _MODEL_OPTIONS)})
    train_config = TrainConfig(**{**dataclasses.asdict(train_config), **_given(args, _TRAIN_OPTIONS)})
    return model_config, train_config, _data_spec(args, spec)


def run(args: argparse.Namespace) -> int:
    try:
        apply_threads(args.threads)
        profile = args.profile if args.profile in ("cpu-real", "gpu-real") else get_profile(args.profile)
        out_dir = Path(args.out or f"runs/{profile}-{args.decoder or 'luong'}")
        checkpoint_path = out_dir / CHECKPOINT_NAME
        checkpoint = read_checkpoint(checkpoint_path) if args.resume and checkpoint_path.is_file() else None
        if checkpoint is None:
            check_out_dir(out_dir, overwrite=args.overwrite)
        elif args.profile is not None:
            _check_resumed_profile(args.profile, checkpoint, out_dir)
        model_config, train_config, spec = _configs(args, profile, checkpoint)
        if args.attention is not None and model_config.decoder != "luong":
            raise ValueError(f"--attention chooses the Luong score; the {model_config.decoder} decoder has "
                             f"none (use --decoder luong, or drop --attention)")
        device = choose_device(args.device)
    except (ValueError, FileNotFoundError) as error:
        return fail("train", str(error), 2)

    info = distributed.dist_info_from_env()
    say = print if info.is_main else (lambda *a, **k: None)
    if args.resume and checkpoint is None:
        say(f"--resume: no checkpoint in {out_dir} yet; starting from scratch")
    try:
        seed_everything(train_config.seed)
        data = build_data(spec, **({} if checkpoint is None else {
            "src_vocab": _vocab(checkpoint["src_vocab"]), "tgt_vocab": _vocab(checkpoint["tgt_vocab"])}))
        seed_everything(train_config.seed)
        model = build_model(model_config, len(data.src_vocab), len(data.tgt_vocab), pad_id=data.src_vocab.pad)
        num_parameters = sum(p.numel() for p in model.parameters())
        say(f"profile {profile if checkpoint is None else 'of the resumed run'}: {spec.describe()} -> {data}")
        heads = (f", {model_config.num_heads} heads, feed-forward {model_config.ffn_size}, "
                 f"{'pre' if model_config.norm_first else 'post'}-LN" if model_config.decoder == "transformer" else "")
        say(f"model: {model_config.decoder} decoder, embed {model_config.embed_size}, hidden "
            f"{model_config.num_hiddens} x {model_config.num_layers} layer(s){heads}, {num_parameters:,} parameters")
        world = f" x {info.world_size} processes" if info.enabled else ""
        resumed = f", resuming at step {checkpoint['step']}" if checkpoint is not None else ""
        say(f"training: {train_config.steps} steps, batch {train_config.batch_size}{world}, lr "
            f"{train_config.lr:g}, device {device}{resumed}; writing to {out_dir}")
        metrics = train(model, data, train_config, out_dir, resume=args.resume, device=device,
                        progress=not args.no_progress, data_spec=spec,
                        log=lambda line: print(line, flush=True))
    except TrainingDiverged as error:
        return fail("train", str(error), 1)
    except CorpusUnavailable as error:
        return fail("train", str(error), 1)
    except (ValueError, FileNotFoundError) as error:
        return fail("train", str(error), 2)
    finally:
        distributed.shutdown()
    bleu, loss = metrics["valid_bleu"], metrics["final_loss"]
    say(f"done: {metrics['steps']} steps in {metrics['wall_seconds']:.1f} s, "
        f"{metrics['tokens_per_s']:,.0f} target tokens/s"
        + (f", final loss {loss:.3f}" if loss is not None else "")
        + (f", valid sacreBLEU {bleu:.1f} (greedy)" if bleu is not None else ""))
    say(f"checkpoint: {checkpoint_path}; metrics: {out_dir / 'metrics.json'}")
    sys.stdout.flush()
    return 0


def check_out_dir(out_dir: Path, *, overwrite: bool) -> None:
    """Refuse before any step runs: an --out that is a file, that cannot be written, or that holds a
    run which ``--resume`` would continue and a fresh start would silently replace."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--out {out_dir} is a file, not a folder: give a folder for checkpoint.pt and metrics.json")
    if (out_dir / CHECKPOINT_NAME).is_file() and not overwrite:
        raise ValueError(f"--out {out_dir} already holds a run ({CHECKPOINT_NAME}): add --resume to continue "
                         f"it, or --overwrite to start over and replace it (or choose another --out)")
    writable_folder(out_dir, "--out")


def _check_resumed_profile(profile: str, checkpoint: dict, out_dir: Path) -> None:
    """``--resume --profile P``: P must be the profile whose sizes the saved run has."""
    model_config, _, _ = presets(profile, checkpoint["model_config"]["decoder"])
    if model_config != ModelConfig(**checkpoint["model_config"]):  # an old one lacks newer fields
        raise ValueError(f"--resume: {out_dir} holds a run with other sizes than --profile {profile} "
                         f"({checkpoint['model_config']}); drop --profile to continue that run, or "
                         f"train into another --out")


def _vocab(description: dict):
    return Vocab.from_dict(description)
