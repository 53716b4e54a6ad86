"""Workload YAML: an operator graph written by hand.

::

    workload: toy-decoder          # name
    dtype: bf16                    # default for every op that has a dtype field
    meta: {phase: decode, batch: 8, tokens: 8}
    ops:
      - {name: embed, kind: embedding, tokens: 8, hidden: 1024, vocab: 32000}
      - repeat: 4                  # a block of ops x N; its ops are named layer.0.norm, layer.1.norm, ...
        name: layer
        ops:
          - {name: norm, kind: rmsnorm, rows: 8, cols: 1024}
          - {name: qkv, kind: matmul, m: 8, k: 1024, n: 3072}
          - {name: attn, kind: attention, batch: 8, heads: 8, kv_heads: 8, q_len: 1, kv_len: 1024,
             head_dim: 128}
          - {name: o_proj, kind: matmul, m: 8, k: 1024, n: 1024, from: attn}
      - {name: lm_head, kind: matmul, m: 8, k: 1024, n: 32000}

Each op takes its kind's fields (see ``workloads.OPERATORS``) plus ``after`` (names it waits for)
and ``from`` (the op whose first output is its first input: a dependency whose shape is checked).
With neither, an op follows the op before it (the first op of a block iteration follows the
previous iteration). Inside a block, names refer to the same iteration first, then to the whole
graph; outside, a block's name means its last op. Errors are reported as FILE:LINE: field.path.

``meta.tokens`` counts the tokens a step produces (a language model's throughput is tokens/s);
a graph that is not a language model (a CNN) gives ``meta.samples`` instead (images, items:
its throughput is samples/s).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx

from hwmodels import limits, yamlio
from hwmodels.errors import InputError, Problem, did_you_mean

from .graph import Graph
from .importers import IMPORTERS
from .operators import OPERATORS, Operator, make_operator
from .options import StepOptions

TOP_KEYS = ("workload", "dtype", "meta", "ops")
BLOCK_KEYS = ("repeat", "name", "ops")
META_INTS = ("batch", "tp", "pp", "ep", "microbatches")
META_COUNTS = ("tokens", "samples")   # what a step completes: throughput is per second of these


@dataclass
class _Spec:
    name: str
    kind: str
    fields: dict
    path: tuple
    deps: list[tuple[str, tuple]] = field(default_factory=list)   # (reference, path of the reference)
    source: tuple[str, tuple] | None = None                        # the ``from`` reference
    scope: str = ""


def load_yaml_workload(path: str | Path) -> Graph:
    """The graph of a workload YAML file (validated; all problems reported together)."""
    return parse_workload(yamlio.load(path))


@IMPORTERS.register(".yaml", help="workload YAML: operators and their dependencies")
def import_yaml_workload(path: Path, **knobs) -> Graph:
    """:func:`load_yaml_workload` as an importer: the file says everything, so no build options."""
    if knobs:
        raise InputError(f"a workload YAML file takes no build options (got {', '.join(sorted(knobs))})",
                         file=str(path))
    return load_yaml_workload(path)


IMPORTERS.register(".yml", import_yaml_workload, help="workload YAML (as .yaml)")


def loads_workload(text: str, file: str = "<string>") -> Graph:
    return parse_workload(yamlio.loads(text, file))


def parse_workload(doc: yamlio.Document) -> Graph:
    data = yamlio.require_mapping(doc)
    problems: list[Problem] = []
    for key in data:
        if key not in TOP_KEYS:
            problems.append(doc.problem(f"unknown field; expected one of: {', '.join(TOP_KEYS)}", (key,),
                                        did_you_mean(str(key), TOP_KEYS)))
    meta = data.get("meta") or {}
    if not isinstance(meta, dict):
        problems.append(doc.problem("expected a mapping", ("meta",)))
        meta = {}
    meta = {k: v for k, v in meta.items() if v is not None}   # null: not given
    for key, value in meta.items():
        if key == "phase" and not isinstance(value, str):
            problems.append(doc.problem(f"expected a name such as 'decode', got {value!r}", ("meta", key)))
        elif isinstance(value, float) and not math.isfinite(value):
            problems.append(doc.problem(f"must be a finite number, got {value!r}", ("meta", key)))
    axes = StepOptions.axes()     # the step knobs' ranges: one definition for builders and files
    for key in META_INTS:
        value = meta.get(key)
        if value is not None:
            try:
                axes[key].check(value)
            except InputError as err:
                problems.append(doc.problem(err.problems[0].message, ("meta", key)))
    for key in META_COUNTS:
        value = meta.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0
                                  or not math.isfinite(value) or value > limits.LIMITS["dimension"].value):
            problems.append(doc.problem(f"must be a non-negative number (finite, at most 2^53), got {value!r}",
                                        ("meta", key)))
    if meta.get("tokens") and meta.get("samples"):
        problems.append(doc.problem("give tokens (a language model's step) or samples (any other "
                                    "graph), not both", ("meta", "samples")))
    ops = data.get("ops")
    if not isinstance(ops, list) or not ops:
        problems.append(doc.problem("expected a non-empty list of operators", ("ops",)))
        raise InputError(problems=problems)
    _count_ops(doc, ops, ("ops",))
    specs: list[_Spec] = []
    _expand(doc, ops, ("ops",), "", specs, problems, {}, data.get("dtype"))
    if problems:
        raise _failure(problems)
    pp = meta.get("pp", 1)
    for s in specs:
        stage = s.fields.get("stage", 0)
        if isinstance(stage, int) and not isinstance(stage, bool) and stage >= pp:
            problems.append(doc.problem(f"stage {stage} does not exist: meta.pp is {pp} (stages 0..{pp - 1})",
                                        (*s.path, "stage")))
    if problems:
        raise _failure(problems)
    graph = Graph(str(data.get("workload") or Path(doc.file).stem),
                  meta={"phase": "custom", "batch": 1, "tokens": 0, "tp": 1, "pp": 1, "ep": 1,
                        "microbatches": 1, **meta, "source": doc.file})
    _build(doc, specs, graph)
    return graph


MAX_PROBLEMS = 25   # a repeated block repeats its problems: the first ones say it all


def _failure(problems: list[Problem]) -> InputError:
    """One InputError of the distinct ``problems`` (at most :data:`MAX_PROBLEMS` of them)."""
    distinct = list(dict.fromkeys(problems))
    if len(distinct) > MAX_PROBLEMS:
        more = len(distinct) - MAX_PROBLEMS
        distinct = [*distinct[:MAX_PROBLEMS], Problem(f"... and {more} more problems", distinct[0].file)]
    return InputError(problems=distinct)


def _expand(doc, items, path, scope, specs, problems, aliases, dtype, previous: str | None = None):
    """Flatten ``items`` (ops and repeated blocks) into specs; returns the name of the last op."""
    if not isinstance(items, list):
        problems.append(doc.problem("expected a list of operators", path))
        return previous
    local: dict[str, str] = {}
    for i, item in enumerate(items):
        p = (*path, i)
        if not isinstance(item, dict):
            problems.append(doc.problem("expected a mapping with name and kind (or a repeat block)", p))
            continue
        name = item.get("name")
        if not isinstance(name, str) or not name or "." in name:
            problems.append(doc.problem("every op and block needs a name (a string without dots)", (*p, "name")))
            continue
        full = scope + name
        if full in aliases or full in local.values():
            problems.append(doc.problem(f"duplicate name '{name}'", (*p, "name")))
            continue
        if "repeat" in item:
            count = item["repeat"]
            for key in item:
                if key not in BLOCK_KEYS:
                    problems.append(doc.problem(f"unknown field of a repeat block; expected one of: "
                                                f"{', '.join(BLOCK_KEYS)}", (*p, key),
                                                did_you_mean(str(key), BLOCK_KEYS)))
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                problems.append(doc.problem(f"repeat must be a positive integer, got {count!r}", (*p, "repeat")))
                continue
            for r in range(count):
                previous = _expand(doc, item.get("ops"), (*p, "ops"), f"{full}.{r}.", specs, problems,
                                   aliases, dtype, previous)
            local[name] = previous
            aliases[full] = previous
            continue
        spec = _op_spec(doc, item, p, full, scope, dtype, problems)
        if spec is None:
            continue
        if "after" not in item and "from" not in item and previous:
            spec.deps.append((previous, ()))
        specs.append(spec)
        local[name] = full
        aliases[full] = full
        previous = full
    return previous


def _count_ops(doc, items, path) -> int:
    """The operators ``items`` expand to, checked against the ``operators`` limit at each repeat
    block (innermost first) before anything is expanded."""
    if not isinstance(items, list):
        return 0
    total = 0
    for i, item in enumerate(items):
        if not isinstance(item, dict) or "repeat" not in item:
            total += 1
            continue
        count = item["repeat"]
        inner = _count_ops(doc, item.get("ops"), (*path, i, "ops"))
        if isinstance(count, int) and not isinstance(count, bool) and count > 0:
            # an iteration costs work even when its ops are all invalid (an inner repeat: 0)
            size = count * max(inner, 1)
            where = (*path, i, "repeat")
            limits.check("operators", size, file=doc.file, line=doc.line_of(where), path=yamlio.dotted(where))
            total += size
    limits.check("operators", total, file=doc.file, line=doc.line_of(path), path=yamlio.dotted(path))
    return total


def _op_spec(doc, item, p, full, scope, dtype, problems) -> _Spec | None:
    kind = item.get("kind")
    if not isinstance(kind, str) or kind not in OPERATORS:
        if kind is None:
            problems.append(doc.problem("missing field 'kind'", (*p, "kind")))
        else:
            problems.append(doc.problem(f"unknown operator kind '{kind}'; expected one of: "
                                        f"{', '.join(sorted(OPERATORS))}", (*p, "kind"),
                                        did_you_mean(str(kind), OPERATORS)))
        return None
    fields = {k: v for k, v in item.items() if k not in ("name", "kind", "after", "from")}
    cls = OPERATORS[kind]
    if dtype is not None and "dtype" in {f.name for f in dataclasses.fields(cls)} and "dtype" not in fields:
        fields["dtype"] = dtype
    spec = _Spec(full, kind, fields, p, scope=scope)
    after = item.get("after", [])
    if isinstance(after, str):
        after = [after]
    if not isinstance(after, list) or not all(isinstance(a, str) for a in after):
        problems.append(doc.problem("after: expected a name or a list of names", (*p, "after")))
        after = []
    spec.deps += [(a, (*p, "after")) for a in after]
    if "from" in item:
        if not isinstance(item["from"], str):
            problems.append(doc.problem("from: expected the name of one op", (*p, "from")))
        else:
            spec.source = (item["from"], (*p, "from"))
            spec.deps.append(spec.source)
    return spec


def _resolve(ref: str, scope: str, names: dict[str, str]) -> str | None:
    """The full op name ``ref`` means from inside ``scope`` (innermost scope first)."""
    parts = scope.split(".")[:-1] if scope else []
    for cut in range(len(parts), -1, -1):
        prefix = ".".join(parts[:cut])
        candidate = f"{prefix}.{ref}" if prefix else ref
        if candidate in names:
            return names[candidate]
    return None


def _visible(scope: str, names: dict[str, str]) -> list[str]:
    """The names a reference from inside ``scope`` can use (relative to each enclosing scope)."""
    parts = scope.split(".")[:-1] if scope else []
    prefixes = [".".join(parts[:cut]) + "." for cut in range(1, len(parts) + 1)]
    return [*names, *(n[len(p):] for p in prefixes for n in names if n.startswith(p))]


def _build(doc, specs: list[_Spec], graph: Graph) -> None:
    problems: list[Problem] = []
    names: dict[str, str] = {s.name: s.name for s in specs}
    # a block name resolves to its last op: the last spec whose name starts with the block prefix
    for s in specs:
        parts = s.name.split(".")
        for cut in range(1, len(parts) - 1):
            names[".".join(parts[:cut])] = s.name
    by_name = {s.name: s for s in specs}
    deps: dict[str, list[str]] = {}
    dag = nx.DiGraph()
    dag.add_nodes_from(by_name)
    unresolved: set = set()   # (reference, where): a repeated block repeats its bad references
    for s in specs:
        resolved = []
        for ref, where in s.deps:
            target = _resolve(ref, s.scope, names) if where else ref
            if target is None:
                if (ref, where) not in unresolved:
                    unresolved.add((ref, where))
                    problems.append(doc.problem(f"'{ref}' is not an op or block of this workload", where,
                                                did_you_mean(ref, _visible(s.scope, names))))
                continue
            if target == s.name:
                problems.append(doc.problem(f"'{s.name}' depends on itself", where))
                continue
            resolved.append(target)
            dag.add_edge(target, s.name)
        deps[s.name] = resolved
    ops: dict[str, Operator] = {}
    for s in specs:
        try:
            ops[s.name] = make_operator(s.kind, name=s.name, **s.fields)
        except InputError as err:
            for prob in err.problems:
                where = (*s.path, prob.path.split(".")[0]) if prob.path else s.path
                problems.append(doc.problem(prob.message, where, prob.suggestion))
        except TypeError as err:
            problems.append(doc.problem(f"invalid fields: {err}", s.path))
    if problems:
        raise _failure(problems)
    try:
        cycle = nx.find_cycle(dag)
    except nx.NetworkXNoCycle:
        cycle = None
    if cycle:
        chain = " -> ".join([a for a, _ in cycle] + [cycle[0][0]])
        # point at an explicit reference that closes the cycle (implicit "follows the previous op"
        # edges have no line of their own)
        where = by_name[cycle[0][1]].path
        for u, v in cycle:
            explicit = [w for ref, w in by_name[v].deps if w and _resolve(ref, by_name[v].scope, names) == u]
            if explicit:
                where = explicit[0]
                break
        raise doc.error(f"dependency cycle: {chain}", where)
    for s in specs:
        if s.source:
            target = _resolve(s.source[0], s.scope, names)
            _check_shapes(doc, ops[target], ops[s.name], s.source[1], problems)
    if problems:
        raise _failure(problems)
    position = {name: i for i, name in enumerate(by_name)}   # ties keep the file's order
    for name in nx.lexicographical_topological_sort(dag, key=position.__getitem__):
        graph.add(ops[name], deps[name])


def _check_shapes(doc, producer: Operator, consumer: Operator, where, problems) -> None:
    if not producer.outputs or not consumer.inputs:
        return
    out, inp = producer.outputs[0], consumer.inputs[0]
    if out.numel != inp.numel:
        problems.append(doc.problem(
            f"shape mismatch: '{producer.name}' produces {list(out.shape)} ({out.numel} elements) but "
            f"'{consumer.name}' ({consumer.kind}) reads {list(inp.shape)} ({inp.numel} elements)", where))
