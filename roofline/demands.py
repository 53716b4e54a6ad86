"""What one operator asks of one device: work per resource, the rate it gets, fixed latency.

A :class:`Demands` is the whole interface between the cost model and everything that uses
it (the analyzer, the simulator, sweeps). It is deliberately a plain structure:

* ``work[key]`` is an amount of a resource: ``"compute:<engine>"`` in FLOPs,
  ``"memory:<level>"`` in bytes, ``"link:<name>"`` in bytes;
* ``rates[key]`` is the effective rate this operator gets from that resource when alone
  (peak x efficiency for its size and shape), in units per second;
* ``fixed_s`` is time that no bandwidth can shorten (kernel launch, memory and link latency);
* ``energy_j`` is the dynamic energy of the work (static power is the simulator's business).

The resources overlap perfectly (a GEMM streams operands while it multiplies), so the analytic
time is ``max(work / rate) + fixed_s`` and the resource that sets the max is the bound. The
simulator plays these amounts over shared resources; alone on a device it reproduces
``time_s`` exactly.

Several dtypes on one engine (a dequantizing GEMM runs bf16 MACs and int4 unpacking on the
same vector unit, or fp8 and bf16 parts of one op on the tensor cores) are one key
``"compute:<engine>"`` whose work is the total FLOPs and whose rate is the FLOP-weighted
harmonic combination ``sum(F_d) / sum(F_d / r_d)``: the engine runs the parts one after the
other, so the time on that key is the sum of the parts' times.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# The bound reported when fixed latency exceeds every resource's time (or there is no work).
LATENCY_BOUND = "latency"


@dataclass
class Demands:
    """Work per resource of one operator on one device, and the rate each resource gives it.

    ``flops_by_dtype`` (FLOPs per operator dtype) and ``peak_rates`` (the nominal peak behind each
    key: engine FLOP/s at the dtypes run, level and link bandwidth) are the detail behind the keys
    for reports and roofline plots; ``kind`` is the operator kind. They do not enter the time.
    """

    op: str
    work: dict[str, float] = field(default_factory=dict)
    rates: dict[str, float] = field(default_factory=dict)
    fixed_s: float = 0.0
    energy_j: float = 0.0
    kind: str = ""
    flops_by_dtype: dict[str, float] = field(default_factory=dict)
    peak_rates: dict[str, float] = field(default_factory=dict)

    def times(self) -> dict[str, float]:
        """Seconds each resource alone would need: ``work / rate`` per key."""
        return {key: amount / self.rates[key] for key, amount in self.work.items() if amount > 0}

    @property
    def time_s(self) -> float:
        """Analytic time: the slowest resource plus the fixed latency."""
        times = self.times()
        return (max(times.values()) if times else 0.0) + self.fixed_s

    @property
    def bound(self) -> str:
        """The resource key that sets ``time_s`` (``"latency"`` when fixed time dominates)."""
        times = self.times()
        if not times:
            return LATENCY_BOUND
        key = max(times, key=times.__getitem__)
        return key if times[key] >= self.fixed_s else LATENCY_BOUND

    @property
    def regime(self) -> str:
        """``compute-bound``, ``memory-bound`` (a memory level or link) or ``overhead-bound``
        (fixed time): the class of :attr:`bound` (:func:`regime_of`)."""
        return regime_of({self.bound: 1.0})

    @property
    def flops(self) -> float:
        """All FLOPs of the operator, over every engine."""
        return sum(v for k, v in self.work.items() if k.startswith("compute:"))

    def nominal_time_s(self) -> float:
        """The textbook roofline time: max over resources of work / nominal peak (no efficiencies,
        no latency)."""
        return max((a / self.peak_rates[k] for k, a in self.work.items() if a > 0), default=0.0)

    @property
    def peak_flops(self) -> float:
        """The compute ceiling of this operator: its FLOPs over the time its engines need at peak
        (engines run in parallel; dtypes on one engine in turn)."""
        busy = max((a / self.peak_rates[k] for k, a in self.work.items() if k.startswith("compute:")),
                   default=0.0)
        return self.flops / busy if busy > 0 else 0.0

    @property
    def attainable_flops(self) -> float:
        """The hierarchical roofline: FLOPs over the nominal time, i.e. min(peak FLOP/s, intensity
        x bandwidth at every memory level and link)."""
        nominal = self.nominal_time_s()
        return self.flops / nominal if nominal > 0 else 0.0

    @property
    def achieved_flops(self) -> float:
        """FLOP/s at the modelled time (effective rates and fixed latency)."""
        t = self.time_s
        return self.flops / t if t > 0 else 0.0

    def intensity(self) -> dict[str, float]:
        """Arithmetic intensity (FLOP per byte) at every memory level and link with traffic."""
        flops = self.flops
        return {k: flops / a for k, a in self.work.items() if not k.startswith("compute:") and a > 0}

    def bytes_at(self, level: str) -> float:
        """Bytes moved at memory level ``level`` (0 when it is not touched)."""
        return self.work.get(f"memory:{level}", 0.0)

    def copy(self, op: str | None = None) -> Demands:
        """An independent copy (named ``op`` if given): its dicts can be modified freely."""
        return Demands(self.op if op is None else op, dict(self.work), dict(self.rates), self.fixed_s,
                       self.energy_j, self.kind, dict(self.flops_by_dtype), dict(self.peak_rates))

    def to_dict(self) -> dict:
        """A JSON-ready summary: time, bound, work, rates and per-resource times."""
        return {"op": self.op, "kind": self.kind, "time_s": self.time_s, "bound": self.bound,
                "fixed_s": self.fixed_s, "energy_j": self.energy_j, "work": dict(self.work),
                "rates": dict(self.rates), "times_s": self.times(),
                "flops_by_dtype": dict(self.flops_by_dtype)}


REGIMES = ("compute-bound", "memory-bound", "overhead-bound")


def regime_of(seconds: dict[str, float]) -> str:
    """The regime of a time split by resource key (``compute:*``, ``memory:*``, ``link:*``, and
    ``latency`` for fixed times): the one of :data:`REGIMES` owning the most seconds (bytes
    moved over a link count as memory-bound; ties go to the first)."""
    owned = dict.fromkeys(REGIMES, 0.0)
    for key, t in seconds.items():
        owned["compute-bound" if key.startswith("compute:") else
              "overhead-bound" if key == LATENCY_BOUND else "memory-bound"] += t
    return max(REGIMES, key=owned.__getitem__)
