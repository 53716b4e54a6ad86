"""Ridgeline's own fuzz suite: hypothesis strategies for every input surface.

:mod:`fuzz.harness` runs one case and says what happened (accepted, clean error, traceback,
time-out, non-finite figure); :mod:`fuzz.surfaces` registers one :class:`~fuzz.harness.Surface`
per kind of input (CLI arguments, hardware YAML, config.json, workload YAML, ONNX). The test
module runs each at a small example count in CI; ``python tests/fuzz/run.py`` (``make fuzz``)
runs thousands of cases and prints the counts per surface.
"""
