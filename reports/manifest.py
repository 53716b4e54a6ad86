"""The reproducibility manifest a result carries: the Ridgeline version, the exact command, the
fully resolved hardware (as ``ridgeline hw show`` prints it), the workload knobs, the seed and the
fingerprint of the calibration the hardware came from, if any."""

from __future__ import annotations

import datetime as _dt
import hashlib
import platform
import shlex
import sys
from pathlib import Path

import yaml

from .output import to_jsonable

# The workload knobs worth repeating (the graph's meta also carries derived figures and warnings).
_SKIP_META = {"warnings", "tokens", "tokens_processed", "kv_bytes_per_token", "family"}


def command_line(args) -> str:
    """``ridgeline ARGS`` as the user typed it (shell-quoted)."""
    argv = getattr(args, "argv", None)
    return "ridgeline " + shlex.join(argv) if argv is not None else "ridgeline " + shlex.join(sys.argv[1:])


def hardware_entry(ref: str) -> dict:
    """``{"ref", "yaml"}``: the hardware reference and its fully resolved YAML."""
    import hwmodels

    from .cli_hw import hardware_view

    hw = hwmodels.load_hardware(ref)
    view = hardware_view(hw)
    if isinstance(hw, hwmodels.System):   # and every kind of device in it, resolved
        view = {**view, "device_specs": {d.id: d.describe() for d in hw.devices.values()}}
    view = to_jsonable(view)
    return {"ref": str(ref), "yaml": yaml.safe_dump(view, sort_keys=False, allow_unicode=True, width=100)}


def calibration_fingerprint(ref: str) -> dict | None:
    """The fingerprint of the calibration that wrote the overlay at ``ref`` (a file with a
    ``fingerprint.json`` beside it): its sha256 and the machine it describes; None otherwise."""
    from calibration.store import FINGERPRINT_NAME

    path = Path(str(ref))
    fp_path = path.parent / FINGERPRINT_NAME
    if not path.is_file() or not fp_path.is_file():
        return None
    import json

    raw = fp_path.read_bytes()
    try:
        fp = json.loads(raw)
    except ValueError:
        fp = {}
    keep = ("device", "taken_utc", "cpu_model", "threads_pinned", "gpu_name", "gpu_driver", "numpy")
    return {"file": str(fp_path), "sha256": hashlib.sha256(raw).hexdigest(),
            **{k: fp.get(k) for k in keep if fp.get(k) is not None}}


def workload_knobs(meta: dict) -> dict:
    """The scalar knobs of a workload graph's ``meta`` (model, phase, batch, lengths, dtypes, parallelism)."""
    return {k: v for k, v in (meta or {}).items()
            if k not in _SKIP_META and isinstance(v, (str, int, float, bool, type(None)))}


def manifest(args, *, hardware: list[str] = (), meta: dict | None = None, seed: int | None = None) -> dict:
    """The manifest of a result made by the command in ``args``."""
    from .html.render import version

    calibrations = [c for c in (calibration_fingerprint(ref) for ref in hardware) if c]
    return {"ridgeline_version": version(), "command": command_line(args),
            "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "python": sys.version.split()[0], "platform": platform.platform(),
            "hardware": [hardware_entry(ref) for ref in hardware], "workload": workload_knobs(meta or {}),
            "seed": seed, "calibration": calibrations[0] if calibrations else None}
