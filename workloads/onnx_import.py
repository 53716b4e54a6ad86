"""ONNX import: a shape-inferred ONNX model as an operator graph.

Supported: MatMul/Gemm (initializer operands are weights), Conv (2-D, square kernels), pooling,
elementwise arithmetic and activations, LayerNormalization / RMSNormalization /
SimplifiedLayerNormalization, BatchNormalization (inference), Softmax, Gather from an initializer (embedding lookup), the ONNX
``Attention`` op, and the unfused attention pattern MatMul(Q, K^T) [-> Mul/Div/Add] -> Softmax ->
MatMul(P, V), which becomes one unfused attention operator (scores materialized, as the ONNX graph
computes them). Pure shape ops (Reshape, Flatten, Squeeze, Unsqueeze, Identity, Dropout) cost
nothing; data movement (Transpose, Concat, Split, Slice, Expand, Cast, ...) reads and writes its
tensors with no FLOPs.

Any other op is an error naming the node and its op type, unless ``unknown_ops="elementwise"``,
which treats it as an opaque elementwise op (1 vector FLOP per output element). Dynamic dimensions
take the value of ``batch``. Integer index tensors are counted by byte size (int64 as an 8-byte,
int32 as a 4-byte element).
"""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import networkx as nx

from hwmodels import limits
from hwmodels.errors import InputError

from .graph import Graph
from .importers import IMPORTERS
from .operators import Attention, Conv2d, Elementwise, Embedding, LayerNorm, MatMul, Pool, RMSNorm, Softmax
from .tensors import Tensor

# op type -> (vector FLOPs per output element, special-function evaluations per element)
ELEMENTWISE = {
    "Add": (1, 0), "Sub": (1, 0), "Mul": (1, 0), "Div": (1, 0), "Neg": (1, 0), "Abs": (1, 0),
    "Relu": (1, 0), "LeakyRelu": (2, 0), "Clip": (2, 0), "Max": (1, 0), "Min": (1, 0), "Where": (1, 0),
    "Reciprocal": (1, 0), "Sigmoid": (2, 1), "Tanh": (0, 1), "Erf": (0, 1), "Exp": (0, 1), "Log": (0, 1),
    "Sqrt": (0, 1), "Pow": (0, 1), "Gelu": (8, 1), "Softplus": (2, 1), "HardSigmoid": (3, 0),
    "HardSwish": (4, 0), "Equal": (1, 0), "Less": (1, 0), "Greater": (1, 0), "Not": (1, 0),
}
MOVEMENT = ("Transpose", "Concat", "Split", "Slice", "Expand", "Cast", "Tile", "Pad", "GatherElements")
PASSTHROUGH = ("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout")
UNKNOWN_OPS = ("error", "elementwise")


def _onnx():
    try:
        import onnx
    except ImportError:
        raise InputError("importing ONNX models needs the optional dependency 'onnx' "
                         "(pip install 'ridgeline[onnx]')") from None
    return onnx


@lru_cache(maxsize=1)
def _dtype_table() -> dict[int, str]:
    """ONNX element type -> Ridgeline dtype (fp8 and int4 where this onnx version has them)."""
    T = _onnx().TensorProto
    table = {T.FLOAT: "fp32", T.FLOAT16: "fp16", T.BFLOAT16: "bf16", T.DOUBLE: "fp64", T.INT8: "int8",
             T.UINT8: "int8", T.BOOL: "int8", T.INT64: "fp64", T.INT32: "fp32", T.INT16: "fp16"}
    for name in ("FLOAT8E4M3FN", "FLOAT8E4M3FNUZ", "FLOAT8E5M2", "FLOAT8E5M2FNUZ"):
        if hasattr(T, name):
            table[getattr(T, name)] = "fp8"
    for name in ("INT4", "UINT4"):
        if hasattr(T, name):
            table[getattr(T, name)] = "int4"
    return table


def _dtype(elem_type: int) -> str | None:
    """The Ridgeline dtype of an ONNX element type; None for one without a numeric size (STRING)."""
    T = _onnx().TensorProto
    same_size = {T.UINT16: "fp16", T.UINT32: "fp32", T.UINT64: "fp64", T.COMPLEX64: "fp64"}
    return _dtype_table().get(elem_type) or same_size.get(elem_type)


class _Importer:
    def __init__(self, model, file: str, unknown_ops: str, batch: int | None):
        self.file, self.unknown_ops, self.batch = file, unknown_ops, batch
        g = model.graph
        self.inits = {t.name: t for t in g.initializer}
        self.info: dict[str, tuple[tuple[int, ...], str]] = {}
        for t in g.initializer:
            self.info[t.name] = (self._shape((int(d) for d in t.dims), t.name), _dtype(t.data_type))
        for vi in (*g.input, *g.value_info, *g.output):
            if vi.name in self.info or not vi.type.HasField("tensor_type"):
                continue
            tt = vi.type.tensor_type
            if not tt.HasField("shape"):
                continue
            self.info[vi.name] = (self._shape((self._dim(d, vi.name) for d in tt.shape.dim), vi.name),
                                  _dtype(tt.elem_type))
        self.producer: dict[str, str] = {}   # tensor -> op name that wrote it
        self.nodes = list(g.node)
        self.consumers: dict[str, list] = {}
        for node in self.nodes:
            for name in node.input:
                self.consumers.setdefault(name, []).append(node)
        self.graph = Graph(Path(file).stem, meta={"model": Path(file).stem, "phase": "inference",
                                                  "batch": batch or 1, "tokens": 0, "tp": 1, "pp": 1,
                                                  "ep": 1, "microbatches": 1, "source": file})
        self.by_output = {out: n for n in self.nodes for out in n.output}

    def _shape(self, dims, tensor: str) -> tuple[int, ...]:
        """A tensor's shape; a dimension of size 0 (or less) is refused: costs of empty tensors
        mean nothing, and a zero-size heads dimension would divide by zero."""
        shape = tuple(dims)
        for size in shape:
            if size < 1:
                raise InputError(f"tensor '{tensor}' has a dimension of size {size} (shape {list(shape)}); "
                                 "only non-empty tensors are modelled", file=self.file, path=tensor)
            limits.check("dimension", size, file=self.file, path=tensor)
        return shape

    def _dim(self, d, tensor: str) -> int:
        if d.HasField("dim_value"):
            return int(d.dim_value)
        if self.batch is None:
            label = d.dim_param or "?"
            raise InputError(f"tensor '{tensor}' has a dynamic dimension '{label}'; give batch=N "
                             "(--batch N) to fix it", file=self.file)
        return self.batch

    def tensor(self, name: str, node) -> Tensor:
        if name not in self.info:
            raise InputError(f"node '{node.name}' ({node.op_type}): no shape known for tensor '{name}' "
                             "after shape inference", file=self.file)
        shape, dtype = self.info[name]
        if dtype is None:
            raise InputError(f"node '{node.name}' ({node.op_type}): tensor '{name}' has an element type "
                             "without a numeric size (STRING or undefined)", file=self.file, path=node.name)
        return Tensor(name, shape, dtype, "weight" if name in self.inits else "activation")

    def deps(self, names) -> list[str]:
        return list(dict.fromkeys(self.producer[n] for n in names if n in self.producer))

    def add(self, op, node_inputs, node_outputs) -> None:
        self.graph.add(op, self.deps(node_inputs))
        for out in node_outputs:
            self.producer[out] = op.name

    @staticmethod
    def attr(node, name: str, default=None):
        for a in node.attribute:
            if a.name == name:
                onnx = _onnx()
                return onnx.helper.get_attribute_value(a)
        return default

    # -- main loop ----------------------------------------------------------------------------
    def run(self) -> Graph:
        if not self.nodes:
            raise InputError("the ONNX model has no nodes (an empty or truncated file?)", file=self.file)
        limits.check("operators", len(self.nodes), file=self.file)
        for i, node in enumerate(self.nodes):
            if not node.name:
                node.name = f"{node.op_type}_{i}"
        self.nodes = self.in_order()
        absorbed: set[str] = set()
        fused_at: dict[str, tuple] = {}   # PV MatMul name -> (QK^T MatMul, softmax)
        for node in self.nodes:
            found = self.find_attention(node) if node.op_type == "Softmax" else None
            if found:
                qk, chain, pv = found
                absorbed.update(n.name for n in (qk, *chain, node, pv))
                fused_at[pv.name] = (qk, node)
        for node in self.nodes:
            try:
                self.convert(node, fused_at, absorbed)
            except InputError:
                raise
            except (IndexError, KeyError, TypeError, AttributeError, ArithmeticError, ValueError) as exc:
                # a node missing inputs or attributes its op type needs
                raise InputError(f"node '{node.name}' ({node.op_type}) is malformed: {type(exc).__name__}: "
                                 f"{exc}", file=self.file, path=node.name) from None
        return self.graph

    def in_order(self) -> list:
        """The nodes in an order where each follows the nodes whose outputs it reads (ONNX asks
        for that order; a file may break it). A cycle is an error naming it."""
        dag = nx.DiGraph()
        dag.add_nodes_from(range(len(self.nodes)))
        made_by = {out: i for i, n in enumerate(self.nodes) for out in n.output if out}
        for i, node in enumerate(self.nodes):
            for name in node.input:
                if name in made_by:
                    dag.add_edge(made_by[name], i)
        try:
            cycle = nx.find_cycle(dag)
        except nx.NetworkXNoCycle:
            return [self.nodes[i] for i in nx.lexicographical_topological_sort(dag)]
        chain = " -> ".join(self.nodes[u].name for u, _ in cycle) + f" -> {self.nodes[cycle[0][0]].name}"
        raise InputError(f"the graph has a cycle: {chain}", file=self.file, path=self.nodes[cycle[0][0]].name)

    def convert(self, node, fused_at: dict, absorbed: set) -> None:
        """Add the operator(s) of one node."""
        handler = getattr(self, f"op_{node.op_type}", None)
        if node.name in fused_at:
            self.emit_attention(*fused_at[node.name], node)
        elif node.name in absorbed:
            return
        elif handler is not None:
            handler(node)
        elif node.op_type in ELEMENTWISE:
            self.elementwise(node, *ELEMENTWISE[node.op_type])
        elif node.op_type in MOVEMENT:
            self.elementwise(node, 0, 0)
        elif node.op_type in PASSTHROUGH:
            for out in node.output:
                if node.input and node.input[0] in self.producer:
                    self.producer[out] = self.producer[node.input[0]]
                if node.input and node.input[0] in self.info and out not in self.info:
                    self.info[out] = self.info[node.input[0]]
        elif node.op_type == "Constant":
            return
        elif self.unknown_ops == "elementwise":
            self.elementwise(node, 1, 0)
        else:
            raise InputError(f"unsupported ONNX op '{node.op_type}' at node '{node.name}'; pass "
                             "unknown_ops='elementwise' (--unknown-ops elementwise) to treat unknown "
                             "ops as opaque elementwise work", file=self.file, path=node.name)

    def ins(self, node) -> list[Tensor]:
        return [self.tensor(n, node) for n in node.input if n]

    def outs(self, node) -> list[Tensor]:
        return [self.tensor(n, node) for n in node.output if n]

    def elementwise(self, node, vector: float, special: float) -> None:
        outs = self.outs(node)
        numel = max(1, outs[0].numel) if outs else 1
        op = Elementwise(name=node.name, numel=numel, flops_per_element=float(vector), special=special > 0,
                         special_per_element=float(special) or 1.0, operands=max(1, len(node.input)),
                         dtype=outs[0].dtype if outs else "fp32", inputs=self.ins(node), outputs=outs)
        self.add(op, node.input, node.output)

    def op_MatMul(self, node) -> None:
        a, b = self.tensor(node.input[0], node), self.tensor(node.input[1], node)
        out = self.tensor(node.output[0], node)
        if len(a.shape) < 2 or len(b.shape) < 2:
            raise InputError(f"node '{node.name}' (MatMul): 1-D operands are not supported", file=self.file)
        k, n = b.shape[-2], b.shape[-1]
        if b.role == "weight" and len(b.shape) == 2:
            m, batch = math.prod(a.shape[:-1]), 1
        else:
            m, batch = a.shape[-2], max(1, math.prod(out.shape[:-2]))
        op = MatMul(name=node.name, m=m, n=n, k=k, batch=batch, dtype=a.dtype, weight_dtype=b.dtype,
                    b_role="weight" if b.role == "weight" else "activation", inputs=[a, b], outputs=[out])
        self.add(op, node.input, node.output)

    def op_Gemm(self, node) -> None:
        a, b = self.tensor(node.input[0], node), self.tensor(node.input[1], node)
        ta, tb = self.attr(node, "transA", 0), self.attr(node, "transB", 0)
        m, k = (a.shape[1], a.shape[0]) if ta else a.shape
        n = b.shape[0] if tb else b.shape[1]
        ins = self.ins(node)
        op = MatMul(name=node.name, m=m, n=n, k=k, dtype=a.dtype, weight_dtype=b.dtype, bias=len(ins) > 2,
                    b_role="weight" if b.role == "weight" else "activation", inputs=ins, outputs=self.outs(node))
        self.add(op, node.input, node.output)

    def op_Conv(self, node) -> None:
        x, w = self.tensor(node.input[0], node), self.tensor(node.input[1], node)
        if len(x.shape) != 4 or w.shape[2] != w.shape[3]:
            raise InputError(f"node '{node.name}' (Conv): only 2-D convolutions with square kernels are "
                             f"supported (input {list(x.shape)}, weight {list(w.shape)})", file=self.file)
        strides = self.attr(node, "strides", [1, 1])
        pads = self.attr(node, "pads", [0, 0, 0, 0])
        op = Conv2d(name=node.name, batch=x.shape[0], in_channels=x.shape[1], out_channels=w.shape[0],
                    height=x.shape[2], width=x.shape[3], kernel=w.shape[2], stride=int(strides[0]),
                    padding=int(pads[0]), groups=int(self.attr(node, "group", 1)), bias=len(node.input) > 2,
                    dtype=x.dtype, inputs=self.ins(node), outputs=self.outs(node))
        self.add(op, node.input, node.output)

    def _pool(self, node, mode: str, global_pool: bool) -> None:
        x = self.tensor(node.input[0], node)
        if len(x.shape) != 4:
            raise InputError(f"node '{node.name}' ({node.op_type}): only 2-D pooling is supported", file=self.file)
        if global_pool:
            kernel, stride, pad = x.shape[2], x.shape[2], 0
        else:
            shape = self.attr(node, "kernel_shape")
            kernel = int(shape[0])
            stride = int((self.attr(node, "strides") or [kernel])[0])
            pad = int((self.attr(node, "pads") or [0])[0])
        op = Pool(name=node.name, batch=x.shape[0], in_channels=x.shape[1], height=x.shape[2],
                  width=x.shape[3], kernel=kernel, stride=stride, padding=pad, mode=mode, dtype=x.dtype,
                  inputs=self.ins(node), outputs=self.outs(node))
        self.add(op, node.input, node.output)

    def op_MaxPool(self, node):
        self._pool(node, "max", False)

    def op_AveragePool(self, node):
        self._pool(node, "avg", False)

    def op_GlobalAveragePool(self, node):
        self._pool(node, "avg", True)

    def op_GlobalMaxPool(self, node):
        self._pool(node, "max", True)

    def _rows_cols(self, node, default_axis: int) -> tuple[int, int, Tensor]:
        x = self.tensor(node.input[0], node)
        axis = int(self.attr(node, "axis", default_axis))
        axis = axis + len(x.shape) if axis < 0 else axis
        return math.prod(x.shape[:axis]), math.prod(x.shape[axis:]), x

    def op_Softmax(self, node) -> None:
        rows, cols, x = self._rows_cols(node, -1)
        self.add(Softmax(name=node.name, rows=rows, cols=cols, dtype=x.dtype, inputs=self.ins(node),
                         outputs=self.outs(node)), node.input, node.output)

    def op_LayerNormalization(self, node) -> None:
        rows, cols, x = self._rows_cols(node, -1)
        self.add(LayerNorm(name=node.name, rows=rows, cols=cols, dtype=x.dtype, bias=len(node.input) > 2,
                           inputs=self.ins(node), outputs=self.outs(node)[:1]), node.input, node.output)

    def op_RMSNormalization(self, node) -> None:
        rows, cols, x = self._rows_cols(node, -1)
        self.add(RMSNorm(name=node.name, rows=rows, cols=cols, dtype=x.dtype, inputs=self.ins(node),
                         outputs=self.outs(node)[:1]), node.input, node.output)

    op_SimplifiedLayerNormalization = op_RMSNormalization

    def op_BatchNormalization(self, node) -> None:
        """Inference-mode batch norm: scale, bias, running mean and variance fold into one
        multiply-add per element (the per-channel folding is negligible and not counted); its four
        per-channel vectors are weights."""
        if any(node.output[1:]) or int(self.attr(node, "training_mode", 0)):
            raise InputError(f"node '{node.name}' (BatchNormalization): training mode is not modelled; "
                             "export the model for inference", file=self.file, path=node.name)
        self.elementwise(node, 2, 0)

    def op_Gather(self, node) -> None:
        data = self.tensor(node.input[0], node)
        if data.role != "weight" or len(data.shape) != 2 or int(self.attr(node, "axis", 0)) != 0:
            self.elementwise(node, 0, 0)
            return
        idx = self.tensor(node.input[1], node)
        vocab, hidden = data.shape
        tokens = max(1, idx.numel)
        rows = Tensor(data.name, (min(tokens, vocab), hidden), data.dtype, "weight")
        op = Embedding(name=node.name, tokens=tokens, hidden=hidden, vocab=vocab, dtype=data.dtype,
                       param_prefix=data.name.removesuffix(".weight"), inputs=[rows, idx],
                       outputs=self.outs(node))
        self.add(op, node.input, node.output)

    def op_Attention(self, node) -> None:
        q, k, v = (self.tensor(n, node) for n in node.input[:3])
        if len(q.shape) != 4:
            raise InputError(f"node '{node.name}' (Attention): only 4-D (batch, heads, seq, head_dim) "
                             "inputs are supported", file=self.file)
        op = Attention(name=node.name, batch=q.shape[0], heads=q.shape[1], kv_heads=k.shape[1],
                       q_len=q.shape[2], kv_len=k.shape[2], head_dim=q.shape[3], v_head_dim=v.shape[3],
                       causal=bool(self.attr(node, "is_causal", 0)), dtype=q.dtype,
                       inputs=[q, k, v], outputs=self.outs(node)[:1])
        self.add(op, node.input[:3], node.output[:1])

    # -- the unfused attention pattern ----------------------------------------------------------
    def find_attention(self, softmax) -> tuple | None:
        """(QK^T MatMul, scale/mask nodes, PV MatMul) around ``softmax``, or None."""
        chain, name = [], softmax.input[0]
        while name in self.by_output:
            n = self.by_output[name]
            if n.op_type not in ("Mul", "Div", "Add") or len(self.consumers.get(name, [])) != 1:
                break
            acts = [x for x in n.input if x in self.by_output and self.by_output[x].op_type != "Constant"]
            if len(acts) != 1:
                return None
            chain.append(n)
            name = acts[0]
        qk = self.by_output.get(name)
        users = self.consumers.get(softmax.output[0], [])
        if (qk is None or qk.op_type != "MatMul" or len(self.consumers.get(name, [])) != 1
                or len(users) != 1 or users[0].op_type != "MatMul" or users[0].input[0] != softmax.output[0]):
            return None
        pv = users[0]
        if any(x in self.inits for x in (*qk.input, pv.input[1])):
            return None
        return qk, chain, pv

    def emit_attention(self, qk, softmax, pv) -> None:
        q, kt, v = (self.tensor(n, softmax) for n in (qk.input[0], qk.input[1], pv.input[1]))
        if len(q.shape) < 3:
            raise InputError(f"node '{qk.name}' (MatMul): attention needs (..., seq, head_dim) operands",
                             file=self.file)
        lead = q.shape[:-2]
        heads = lead[-1] if len(lead) >= 2 else 1
        scores = self.tensor(softmax.input[0], softmax)
        probs = self.tensor(softmax.output[0], softmax)
        op = Attention(name=softmax.name, batch=math.prod(lead) // heads, heads=heads, kv_heads=heads,
                       q_len=q.shape[-2], kv_len=kt.shape[-1], head_dim=q.shape[-1], v_head_dim=v.shape[-1],
                       causal=False, fused=False, dtype=q.dtype, inputs=[q, kt, v, scores, probs],
                       outputs=[self.tensor(pv.output[0], pv), scores, probs])
        self.add(op, [qk.input[0], qk.input[1], pv.input[1]], pv.output)


@IMPORTERS.register(".onnx", help="ONNX model graph (needs the onnx package); knobs: unknown_ops, batch")
def import_onnx(path: str | Path, unknown_ops: str = "error", batch: int | None = None) -> Graph:
    """The operator graph of the ONNX model at ``path`` (see the module doc for what is supported)."""
    onnx = _onnx()
    file = str(path)
    if unknown_ops not in UNKNOWN_OPS:
        raise InputError(f"unknown_ops must be one of: {', '.join(UNKNOWN_OPS)}", path="unknown_ops")
    if batch is not None and (isinstance(batch, bool) or not isinstance(batch, int) or batch < 1):
        raise InputError(f"batch must be a positive integer, got {batch!r}", path="batch")
    if not Path(file).is_file():
        raise InputError("file not found", file=file)
    if Path(file).stat().st_size == 0:
        raise InputError("the file is empty; expected an ONNX model", file=file)
    try:
        model = onnx.load(file)
        model = onnx.shape_inference.infer_shapes(model)
    except Exception as exc:  # onnx raises DecodeError, ValidationError, InferenceError, ...
        raise InputError(f"cannot read the ONNX model: {exc}", file=file) from None
    return _Importer(model, file, unknown_ops, batch).run()
