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

A config is read in steps, each its own function: the JSON strictly (:func:`read_json`: duplicate
keys, NaN and runaway nesting refused), the model type, the fields against :class:`ConfigSchema`
(strict types and ranges, every problem with its line), the family's names mapped to Hugging Face's
(:func:`_canonical`), the required keys, and the :class:`ModelConfig` with its consistency checks.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from hwmodels import limits
from hwmodels.errors import InputError, Problem, unknown_name
from hwmodels.yamlio import dotted

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
    file = f"{model_id}.json"
    return parse_config(read_json(text, file), model_id, file, text)


def _from_file(file: str) -> ModelConfig:
    try:
        text = Path(file).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("file not found", file=file) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read file: {exc}", file=file) from None
    return parse_config(read_json(text, file), Path(file).stem, file, text)


# -- reading: plain JSON, strictly ---------------------------------------------------------------
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


def read_json(text: str, file: str) -> Any:
    """``text`` parsed as JSON: duplicate keys, NaN/Infinity and nesting deeper than the
    ``json_depth`` limit are input errors (the standard parser keeps the last duplicate, accepts
    NaN and recurses until the interpreter gives up)."""
    limits.check("json_depth", _nesting(text), file=file)

    def pairs(items: list[tuple[str, Any]]) -> dict:
        out: dict = {}
        for key, value in items:
            if key in out:
                raise InputError(f"duplicate key '{key}'", file=file, line=_line_of(text, key, 2), path=key)
            out[key] = value
        return out

    def constant(name: str):
        raise InputError(f"{name} is not a number JSON allows", file=file, line=_line_of_word(text, name))

    try:
        return json.loads(text, object_pairs_hook=pairs, parse_constant=constant)
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON: {exc.msg} (column {exc.colno})", file=file, line=exc.lineno) from None
    except RecursionError:   # only with RIDGELINE_MAX_JSON_DEPTH raised past what Python can parse
        raise InputError("JSON nesting is too deep to parse", file=file) from None


def _nesting(text: str) -> int:
    """The deepest nesting of ``[``/``{`` in JSON ``text`` (strings skipped)."""
    depth = deepest = 0
    for char in re.sub(r"[^\[\]{}]", "", _STRING.sub("", text)):
        depth += 1 if char in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _line_of(text: str | None, key: str, nth: int = 1) -> int | None:
    """The line of the ``nth`` occurrence of ``"key":`` in ``text``."""
    if not text:
        return None
    found = 0
    for i, line in enumerate(text.splitlines(), 1):
        found += len(re.findall(re.escape(json.dumps(key)) + r"\s*:", line))
        if found >= nth:
            return i
    return None


def _line_of_word(text: str, word: str) -> int | None:
    for i, line in enumerate(_STRING.sub('""', text).splitlines(), 1):
        if word in line:
            return i
    return None


# -- the schema: the fields Ridgeline reads (and common ones it does not), typed -------------------
def _within(limit: str):
    def check(value: int) -> int:
        limits.check(limit, value)
        return value
    return AfterValidator(check)


Dim = Annotated[int, Field(ge=1), _within("dimension")]
Count = Annotated[int, Field(ge=0), _within("dimension")]
Layers = Annotated[int, Field(ge=1), _within("layers")]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
TokenIds = int | list[int] | None


class ConfigSchema(BaseModel):
    """A config.json's fields with their types and ranges. Strict: ``"false"`` is not a bool and
    ``"4096"`` not an integer. Keys not listed are kept and not read (configs carry many)."""

    model_config = ConfigDict(strict=True, extra="allow", frozen=True)

    model_type: str
    # sizes (Hugging Face names)
    hidden_size: Dim | None = None
    num_hidden_layers: Layers | None = None
    vocab_size: Dim | None = None
    num_attention_heads: Dim | None = None
    num_key_value_heads: Dim | None = None
    head_dim: Dim | None = None
    intermediate_size: Dim | None = None
    max_position_embeddings: Dim | None = None
    sliding_window: Dim | None = None
    # GPT-2 names
    n_embd: Dim | None = None
    n_layer: Layers | None = None
    n_head: Dim | None = None
    n_inner: Dim | None = None
    n_positions: Dim | None = None
    # MoE and MLA
    num_local_experts: Dim | None = None
    num_experts_per_tok: Dim | None = None
    n_routed_experts: Dim | None = None
    moe_intermediate_size: Dim | None = None
    n_shared_experts: Count | None = None
    first_k_dense_replace: Count | None = None
    moe_layer_freq: Dim | None = None
    kv_lora_rank: Dim | None = None
    q_lora_rank: Dim | None = None
    qk_nope_head_dim: Dim | None = None
    qk_rope_head_dim: Dim | None = None
    v_head_dim: Dim | None = None
    # Mamba (transformers' names, then state-spaces/mamba's)
    state_size: Dim | None = None
    conv_kernel: Dim | None = None
    expand: Dim | None = None
    time_step_rank: Dim | Literal["auto"] | None = None
    d_model: Dim | None = None
    ssm_cfg: MambaSsmConfig | None = None
    pad_vocab_size_multiple: Dim | None = None
    # switches
    tie_word_embeddings: bool | None = None
    attention_bias: bool | None = None
    mlp_bias: bool | None = None
    use_sliding_window: bool | None = None
    use_cache: bool | None = None
    # read by other tools, typed so that a wrong type is not silently carried along
    rope_theta: Positive | None = None
    rms_norm_eps: Positive | None = None
    layer_norm_epsilon: Positive | None = None
    layer_norm_eps: Positive | None = None
    initializer_range: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    hidden_act: str | None = None
    torch_dtype: str | None = None
    architectures: list[str] | None = None
    rope_scaling: dict | None = None
    bos_token_id: TokenIds = None
    eos_token_id: TokenIds = None
    pad_token_id: TokenIds = None
    transformers_version: str | None = None


class MambaSsmConfig(BaseModel):
    """state-spaces/mamba's ``ssm_cfg`` block."""

    model_config = ConfigDict(strict=True, extra="allow", frozen=True)

    d_state: Dim | None = None
    d_conv: Dim | None = None
    expand: Dim | None = None


ConfigSchema.model_rebuild()


def parse_config(data: Any, model_id: str, file: str = "<config>", text: str | None = None) -> ModelConfig:
    """Normalize a config.json mapping; missing or invalid keys are named (with their line when
    ``text``, the file's text, is given)."""
    if not isinstance(data, dict):
        raise InputError("a config.json must be a JSON object", file=file, line=1)
    model_type = _model_type(data, file, text)
    fields = _validated({**data, "model_type": model_type}, file, text)
    family = FAMILIES[model_type]
    cfg = _canonical(fields, family)
    _require(cfg, family, model_type, file, text)
    return _model_config(cfg, model_type, family, model_id, file, text, data)


def _model_type(data: dict, file: str, text: str | None) -> str:
    """The config's model_type (a state-spaces/mamba config has none: ``d_model`` and ``ssm_cfg``)."""
    model_type = data.get("model_type")
    if model_type is None and "d_model" in data and "ssm_cfg" in data:
        return "mamba"
    if model_type is None:
        raise InputError("missing required key 'model_type'; expected one of: " + ", ".join(sorted(FAMILIES)),
                         file=file, path="model_type")
    if not isinstance(model_type, str) or model_type not in FAMILIES:
        raise unknown_name("model_type", str(model_type), FAMILIES, file=file,
                           line=_line_of(text, "model_type"), path="model_type")
    return model_type


_EXPECTED = {"bool_type": "expected true or false", "int_type": "expected an integer",
             "float_type": "expected a number", "string_type": "expected a string",
             "list_type": "expected a list", "dict_type": "expected an object",
             "model_type": "expected an object", "literal_error": "expected an integer or 'auto'",
             "finite_number": "expected a finite number"}


def _validated(data: dict, file: str, text: str | None) -> dict:
    """The config's fields checked against :class:`ConfigSchema` (all problems at once, one per field)."""
    try:
        return ConfigSchema.model_validate(data).model_dump(exclude_none=True)
    except ValidationError as exc:
        problems: dict[str, Problem] = {}
        for err in exc.errors(include_url=False):
            loc = [p for p in err["loc"] if isinstance(p, int) or _is_key(p, data)]
            if loc and loc[0] in problems:
                continue   # one problem per field: a union's other members say the same
            message = err["msg"].removeprefix("Value error, ")
            if err["type"] in _EXPECTED:
                message = f"{_EXPECTED[err['type']]}, got {json.dumps(err['input'])[:60]}"
            keys = [p for p in loc if isinstance(p, str)]
            problems[loc[0] if loc else ""] = Problem(message, file, _line_of(text, keys[-1]) if keys else None,
                                                      dotted(loc) or None)
        raise InputError(problems=list(problems.values())) from None


def _is_key(part: str, data: dict) -> bool:
    """Whether a pydantic location part is a key of the config (not a union member's tag)."""
    return part in ConfigSchema.model_fields or part in MambaSsmConfig.model_fields or part in data


def _canonical(fields: dict, family: str) -> dict:
    """The fields under Hugging Face's names: GPT-2's ``n_embd``... and Mamba's ``d_model``,
    ``ssm_cfg``... mapped over, with the defaults those families imply."""
    cfg = dict(fields)
    if family == "gpt":
        for hf, gpt2 in (("hidden_size", "n_embd"), ("num_hidden_layers", "n_layer"),
                         ("num_attention_heads", "n_head"), ("max_position_embeddings", "n_positions"),
                         ("intermediate_size", "n_inner")):
            if cfg.get(hf) is None and cfg.get(gpt2) is not None:
                cfg[hf] = cfg[gpt2]
        if cfg.get("intermediate_size") is None and cfg.get("hidden_size") is not None:
            cfg["intermediate_size"] = 4 * cfg["hidden_size"]
    if family == "mamba":
        ssm = cfg.get("ssm_cfg") or {}
        for hf, orig, default in (("hidden_size", "d_model", None), ("num_hidden_layers", "n_layer", None),
                                  ("state_size", "d_state", 16), ("conv_kernel", "d_conv", 4),
                                  ("expand", "expand", 2)):
            if cfg.get(hf) is None:
                value = ssm.get(orig, cfg.get(orig, default))
                if value is not None:
                    cfg[hf] = value
    return cfg


# model family -> keys it needs
_REQUIRED = {
    "dense": ("num_attention_heads", "intermediate_size"),
    "gpt": ("num_attention_heads", "intermediate_size"),
    "moe": ("num_attention_heads", "intermediate_size", "num_local_experts", "num_experts_per_tok"),
    "mla": ("num_attention_heads", "intermediate_size", "n_routed_experts", "num_experts_per_tok",
            "moe_intermediate_size", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim"),
    "mamba": ("state_size", "conv_kernel", "expand"),
}


def _require(cfg: dict, family: str, model_type: str, file: str, text: str | None) -> None:
    keys = ("hidden_size", "num_hidden_layers", "vocab_size", *_REQUIRED[family])
    missing = [k for k in keys if cfg.get(k) is None]
    if missing:
        raise InputError(f"config for model_type '{model_type}' is missing required key(s): "
                         f"{', '.join(missing)}", file=file, path=missing[0])


def _model_config(cfg: dict, model_type: str, family: str, model_id: str, file: str,
                  text: str | None, raw: dict) -> ModelConfig:
    """The :class:`ModelConfig` of validated, canonical fields; inconsistent sizes are named."""
    common = {"hidden": cfg["hidden_size"], "layers": cfg["num_hidden_layers"], "vocab": cfg["vocab_size"]}
    extra = _mamba_fields(cfg, common) if family == "mamba" else _attention_fields(cfg, model_type, family)
    problems = [] if family == "mamba" else _consistency(cfg, extra, common["hidden"], family, file, text)
    if problems:
        raise InputError(problems=problems)
    return ModelConfig(id=model_id, model_type=model_type, family=family, source=str(cfg.get("_source", file)),
                       raw=raw, **common, **extra)


def _mamba_fields(cfg: dict, common: dict) -> dict:
    multiple = cfg.get("pad_vocab_size_multiple", 1)
    if multiple > 1:
        common["vocab"] = math.ceil(common["vocab"] / multiple) * multiple
    rank = cfg.get("time_step_rank", "auto")
    return {"d_state": cfg["state_size"], "d_conv": cfg["conv_kernel"], "expand": cfg["expand"],
            "tie_embeddings": cfg.get("tie_word_embeddings", True),
            "dt_rank": math.ceil(common["hidden"] / 16) if rank == "auto" else rank,
            "intermediate": cfg["expand"] * common["hidden"]}


def _attention_fields(cfg: dict, model_type: str, family: str) -> dict:
    heads = cfg["num_attention_heads"]
    bias = cfg.get("attention_bias", model_type == "qwen2")
    extra = {"heads": heads, "kv_heads": cfg.get("num_key_value_heads", heads),
             "intermediate": cfg["intermediate_size"], "max_positions": cfg.get("max_position_embeddings"),
             "tie_embeddings": cfg.get("tie_word_embeddings", family == "gpt"),
             "qkv_bias": bias or family == "gpt",
             # transformers' Llama puts attention_bias on o_proj too and has mlp_bias; Qwen2's
             # biases are q/k/v only
             "o_bias": family == "gpt" or (model_type == "llama" and bias),
             "mlp_bias": family == "gpt" or (model_type == "llama" and cfg.get("mlp_bias", False)),
             "head_dim": cfg.get("head_dim") or cfg["hidden_size"] // heads}
    if cfg.get("sliding_window") is not None and cfg.get("use_sliding_window", True):
        extra["sliding_window"] = cfg["sliding_window"]
    if family == "moe":
        extra.update(experts=cfg["num_local_experts"], top_k=cfg["num_experts_per_tok"])
    if family == "mla":
        extra.update(experts=cfg["n_routed_experts"], top_k=cfg["num_experts_per_tok"],
                     moe_intermediate=cfg["moe_intermediate_size"], shared_experts=cfg.get("n_shared_experts", 0),
                     first_dense=cfg.get("first_k_dense_replace", 0), kv_lora_rank=cfg["kv_lora_rank"],
                     q_lora_rank=cfg.get("q_lora_rank"), qk_nope_head_dim=cfg["qk_nope_head_dim"],
                     qk_rope_head_dim=cfg["qk_rope_head_dim"], v_head_dim=cfg["v_head_dim"])
    return extra


def _consistency(cfg: dict, extra: dict, hidden: int, family: str, file: str, text: str | None) -> list[Problem]:
    """Sizes that must divide or bound each other."""
    heads, kv_heads = extra["heads"], extra["kv_heads"]
    problems = []

    def problem(message: str, key: str) -> None:
        problems.append(Problem(message, file, _line_of(text, key), key))

    if family != "mla" and extra["head_dim"] * heads != hidden and "head_dim" not in cfg:
        problem(f"hidden_size ({hidden}) is not a multiple of num_attention_heads ({heads}); give head_dim",
                "num_attention_heads")
    if family == "mla" and extra["head_dim"] < 1:
        problem(f"hidden_size ({hidden}) is smaller than num_attention_heads ({heads}); give head_dim",
                "num_attention_heads")
    if heads % kv_heads:
        problem(f"num_attention_heads ({heads}) must be a multiple of num_key_value_heads ({kv_heads})",
                "num_key_value_heads")
    if extra.get("top_k", 0) > extra.get("experts", 0):
        problem("num_experts_per_tok exceeds the number of experts", "num_experts_per_tok")
    return problems
