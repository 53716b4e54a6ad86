"""Bounds on every size a user controls, checked before anything of that size is built.

A size a user writes (a system's device count, a model's layer count, the operators a workload
YAML expands to, an elementwise operator's operand count, ...) decides how much Ridgeline builds:
one graph node per device, one set of operators per layer. Unbounded, a typo (``count: 1e9``,
``num_hidden_layers: 100000``, sixty nested ``repeat: 2`` blocks) is a hang or runaway memory
instead of an error. Each bound here is far above any real machine or model, is checked where the
size is read (before building), and the error names the limit and the environment variable that
raises it::

    RIDGELINE_MAX_DEVICES=100000 ridgeline hw validate huge-cluster.yaml

Other layers add their own sizes (requests of a serving trace, points of a sweep) with
:func:`define` next to the code that reads them; ``docs/limits.md`` lists them all (a test keeps
it in step with :data:`LIMITS`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from .errors import InputError
from .registry import Registry


@dataclass(frozen=True)
class Limit:
    """The largest accepted value of one user-controlled size."""

    name: str
    default: int
    what: str      # the noun counted, e.g. "devices in a system"

    @property
    def env(self) -> str:
        """The environment variable that overrides the default."""
        return "RIDGELINE_MAX_" + self.name.upper()

    @property
    def value(self) -> int:
        """The bound in force: the environment variable when set to a positive integer, else the default."""
        text = os.environ.get(self.env, "").strip()
        if text.isdigit() and int(text) > 0:
            return int(text)
        return self.default


LIMITS: Registry[Limit] = Registry("size limit")


def define(name: str, default: int, what: str) -> Limit:
    """Register the limit ``name`` (``what`` it counts, its ``default`` bound) and return it."""
    limit = Limit(name, default, what)
    LIMITS.register(name, limit, help=f"{what} (default {default:,})")
    return limit


def check(name: str, value: int | float, **where) -> None:
    """Raise an InputError naming the limit and how to raise it when ``value`` exceeds limit ``name``.

    ``where`` (file=, line=, path=) locates the size in the user's input."""
    limit = LIMITS.get(name)
    bound = limit.value
    if value > bound:
        if isinstance(value, int):
            shown = f"{value:,}" if value < 10**30 else f"a {len(str(value))}-digit number"
        else:
            shown = f"{value:.3g}"
        raise InputError(f"{limit.what}: {shown} is above the limit of {bound:,} (set the environment "
                         f"variable {limit.env} to raise it)", **where)


# The sizes the hardware, workload and simulator layers read. Real systems and models sit far
# below each bound (the largest bundled model has 126 layers; the largest NVLink domain 576 GPUs).
define("devices", 65_536, "devices in a system")
define("edges", 1_000_000, "links in a system")
define("layers", 1_024, "layers in a model")
define("operators", 50_000, "operators in a workload")
define("operands", 1_024, "operands of one operator")
define("simulated_operators", 200_000, "operator runs in one simulation (operators x ranks x micro-batches)")
define("stages", 65_536, "pipeline stages")
define("microbatches", 4_096, "micro-batches")
define("spec_tokens", 1_024, "speculative tokens per step")
define("requests", 1_000_000, "requests in a serving run")
define("json_depth", 256, "levels of nesting in a JSON file")
# Every integer dimension (a GEMM's m, a batch, a context length): above 2**53 a float can no
# longer hold it exactly, and products of a few such numbers overflow to inf.
define("dimension", 2**53, "an integer dimension")
