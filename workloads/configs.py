"""Model architectures from Hugging Face-style ``config.json`` files (bundled ids or a user's file).

Supported ``model_type`` values and the family they build:

* ``llama``, ``mistral``, ``qwen2``: dense decoder, RMSNorm, rotary, GQA, SwiGLU (``qwen2``: q/k/v
  biases; Llama's ``attention_bias``: q/k/v/o biases, ``mlp_bias``: gate/up/down biases; ``sliding_window`` when ``use_sliding_window`` is not false);
* ``mixtral``: the same with a top-k MoE MLP (``num_local_experts``, ``num_experts_per_tok``);
* ``gpt2``/``gpt3``: LayerNorm, learned positions, GELU MLP, biases everywhere (GPT-2 key names
  ``n_embd n_layer n_head n_inner n_positions`` or the Llama-style ones);
* ``deepseek_v2``: multi-head latent attention plus routed and shared experts;
* ``mamba``: selective-state-space blocks (``d_model``/``n_layer``/``ssm_cfg`` as in
  state-spaces/mamba, or ``hidden_size``/``state_size``/... as in transformers' MambaConfig).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path

from hwmodels.errors import InputError, unknown_name

FAMILIES = {"llama": "dense", "mistral": "dense", "qwen2": "dense", "mixtral": "moe",
            "gpt2": "gpt", "gpt3": "gpt", "deepseek_v2": "mla", "mamba": "mamba"}


@dataclass(frozen=True)
class ModelConfig:
    """The architecture facts the builders use, normalized from a config.json."""

    id: str
    model_type: str
    family: str
    hidden: int
    layers: int
    vocab: int
    heads: int = 0
    kv_heads: int = 0
    head_dim: int = 0
    intermediate: int = 0
    max_positions: int | None = None
    tie_embeddings: bool = False
    qkv_bias: bool = False
    o_bias: bool = False      # o_proj bias (GPT; Llama's attention_bias)
    mlp_bias: bool = False    # MLP biases (GPT; Llama's mlp_bias)
    sliding_window: int | None = None
    # MoE
    experts: int = 0
    top_k: int = 0
    moe_intermediate: int = 0
    shared_experts: int = 0
    first_dense: int = 0
    # MLA
    kv_lora_rank: int = 0
    q_lora_rank: int | None = None
    qk_nope_head_dim: int = 0
    qk_rope_head_dim: int = 0
    v_head_dim: int = 0
    # Mamba
    d_state: int = 0
    d_conv: int = 0
    expand: int = 0
    dt_rank: int = 0
    source: str = ""
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def d_inner(self) -> int:
        return self.expand * self.hidden

    def kv_bytes_per_token(self, kv_bytes: float) -> float:
        """KV-cache bytes one token adds over all layers (MLA: the compressed latent; Mamba: 0)."""
        if self.family == "mamba":
            return 0.0
        if self.family == "mla":
            return self.layers * (self.kv_lora_rank + self.qk_rope_head_dim) * kv_bytes
        return 2.0 * self.layers * self.kv_heads * self.head_dim * kv_bytes


def bundled_ids() -> list[str]:
    """The ids of the bundled model configs."""
    files = resources.files("workloads.models").iterdir()
    return sorted(p.name.removesuffix(".json") for p in files if p.name.endswith(".json"))


def load_config(ref: str | Path) -> ModelConfig:
    """A bundled model id, or the path of a config.json."""
    path = Path(str(ref))
    if path.suffix == ".json" or path.exists():
        return _from_file(str(path))
    ids = bundled_ids()
    if str(ref) not in ids:
        raise unknown_name("model", str(ref), ids)
    return _bundled(str(ref))


@lru_cache(maxsize=64)
def _bundled(model_id: str) -> ModelConfig:
    text = resources.files("workloads.models").joinpath(f"{model_id}.json").read_text(encoding="utf-8")
    return parse_config(json.loads(text), model_id, f"{model_id}.json")


def _from_file(file: str) -> ModelConfig:
    try:
        text = Path(file).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("file not found", file=file) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read file: {exc}", file=file) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON: {exc.msg} (column {exc.colno})", file=file, line=exc.lineno) from None
    return parse_config(data, Path(file).stem, file, text)


def _line_of(text: str | None, key: str) -> int | None:
    if not text:
        return None
    needle = f'"{key}"'
    for i, line in enumerate(text.splitlines(), 1):
        if needle in line:
            return i
    return None


def parse_config(data: dict, model_id: str, file: str = "<config>", text: str | None = None) -> ModelConfig:
    """Normalize a config.json mapping; missing or invalid keys are named in the error."""
    if not isinstance(data, dict):
        raise InputError("a config.json must be a JSON object", file=file, line=1)
    model_type = data.get("model_type")
    if model_type is None:
        model_type = "mamba" if "d_model" in data and "ssm_cfg" in data else None
    if model_type not in FAMILIES:
        if model_type is None:
            raise InputError("missing required key 'model_type'; expected one of: "
                             + ", ".join(sorted(FAMILIES)), file=file, path="model_type")
        raise unknown_name("model_type", str(model_type), FAMILIES, file=file,
                           line=_line_of(text, "model_type"), path="model_type")
    family = FAMILIES[model_type]
    cfg = dict(data)
    if family == "gpt":
        for hf, gpt2 in (("hidden_size", "n_embd"), ("num_hidden_layers", "n_layer"),
                         ("num_attention_heads", "n_head"), ("max_position_embeddings", "n_positions"),
                         ("intermediate_size", "n_inner")):
            if cfg.get(hf) is None and cfg.get(gpt2) is not None:
                cfg[hf] = cfg[gpt2]
        if cfg.get("intermediate_size") is None and isinstance(cfg.get("hidden_size"), int):
            cfg["intermediate_size"] = 4 * cfg["hidden_size"]
    if family == "mamba":
        ssm = cfg.get("ssm_cfg") or {}
        for hf, orig, default in (("hidden_size", "d_model", None), ("num_hidden_layers", "n_layer", None),
                                  ("state_size", "d_state", 16), ("conv_kernel", "d_conv", 4),
                                  ("expand", "expand", 2)):
            if cfg.get(hf) is None:
                cfg[hf] = ssm.get(orig, cfg.get(orig, default))

    def get(key: str, required: bool = True, default=None, minimum: int = 1):
        value = cfg.get(key, default)
        if value is None:
            if required:
                missing.append(key)
            return default
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            bad.append(InputError(f"must be an integer >= {minimum}, got {value!r}", file=file,
                                  line=_line_of(text, key), path=key).problems[0])
        return value

    missing: list[str] = []
    bad: list = []
    common = {"hidden": get("hidden_size"), "layers": get("num_hidden_layers"), "vocab": get("vocab_size")}
    if family == "mamba":
        multiple = cfg.get("pad_vocab_size_multiple") or 1
        if isinstance(common["vocab"], int) and isinstance(multiple, int) and multiple > 1:
            common["vocab"] = math.ceil(common["vocab"] / multiple) * multiple
        extra = {"d_state": get("state_size"), "d_conv": get("conv_kernel"), "expand": get("expand"),
                 "tie_embeddings": bool(cfg.get("tie_word_embeddings", True))}
        if not missing and not bad:
            extra["dt_rank"] = get("time_step_rank", required=False) or math.ceil(common["hidden"] / 16)
            extra["intermediate"] = extra["expand"] * common["hidden"]
    else:
        heads = get("num_attention_heads")
        kv_heads = get("num_key_value_heads", required=False, default=heads)
        extra = {"heads": heads, "kv_heads": kv_heads, "intermediate": get("intermediate_size"),
                 "max_positions": get("max_position_embeddings", required=False),
                 "tie_embeddings": bool(cfg.get("tie_word_embeddings", family == "gpt")),
                 "qkv_bias": bool(cfg.get("attention_bias", model_type == "qwen2")) or family == "gpt",
                 # transformers' Llama puts attention_bias on o_proj too and has mlp_bias; Qwen2's
                 # biases are q/k/v only
                 "o_bias": family == "gpt" or (model_type == "llama" and bool(cfg.get("attention_bias"))),
                 "mlp_bias": family == "gpt" or (model_type == "llama" and bool(cfg.get("mlp_bias")))}
        window = cfg.get("sliding_window")
        if window is not None and cfg.get("use_sliding_window", True):
            extra["sliding_window"] = get("sliding_window")
        if family == "moe":
            extra.update(experts=get("num_local_experts"), top_k=get("num_experts_per_tok"))
        if family == "mla":
            extra.update(experts=get("n_routed_experts"), top_k=get("num_experts_per_tok"),
                         moe_intermediate=get("moe_intermediate_size"),
                         shared_experts=get("n_shared_experts", required=False, default=0, minimum=0),
                         first_dense=get("first_k_dense_replace", required=False, default=0, minimum=0),
                         kv_lora_rank=get("kv_lora_rank"), q_lora_rank=get("q_lora_rank", required=False),
                         qk_nope_head_dim=get("qk_nope_head_dim"), qk_rope_head_dim=get("qk_rope_head_dim"),
                         v_head_dim=get("v_head_dim"))
        if not missing and not bad:
            extra["head_dim"] = get("head_dim", required=False) or common["hidden"] // heads
            if family != "mla" and extra["head_dim"] * heads != common["hidden"] and "head_dim" not in cfg:
                bad.append(InputError(f"hidden_size ({common['hidden']}) is not a multiple of "
                                      f"num_attention_heads ({heads}); give head_dim", file=file,
                                      path="num_attention_heads").problems[0])
            if heads % kv_heads:
                bad.append(InputError(f"num_attention_heads ({heads}) must be a multiple of "
                                      f"num_key_value_heads ({kv_heads})", file=file,
                                      line=_line_of(text, "num_key_value_heads"),
                                      path="num_key_value_heads").problems[0])
            if extra.get("top_k", 0) > extra.get("experts", 0):
                bad.append(InputError("num_experts_per_tok exceeds the number of experts", file=file,
                                      path="num_experts_per_tok").problems[0])
    if missing:
        raise InputError(f"config for model_type '{model_type}' is missing required key(s): "
                         f"{', '.join(missing)}", file=file, path=missing[0])
    if bad:
        raise InputError(problems=bad)
    return ModelConfig(id=model_id, model_type=model_type, family=family, source=str(cfg.get("_source", file)),
                       raw=data, **common, **extra)
