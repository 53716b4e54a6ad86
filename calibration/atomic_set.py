"""A calibration's output folder as one set: staged beside it, then swapped into place.

The overlay, the measurements, the fingerprint and the fit summary describe one run together;
a reader that found the overlay of one run beside the measurements of another would validate
the wrong thing. So the whole set is written into a staging folder next to the output folder
(same file system) and moved into place in one step:

* a new output folder: one ``rename`` of the staging folder;
* an existing one: Linux swaps the two folders atomically (``renameat2(RENAME_EXCHANGE)``);
  elsewhere the old folder is renamed aside and the new one renamed in, so for an instant
  there is no folder (never a mixed one). Entries of the old folder that are not part of a
  calibration (a validation report the user put there) are then moved into the new one.

A run killed at any point leaves the old set or the new one, plus a hidden sibling folder
(``.<name>.ridgeline-staging-<pid>-*`` or ``.<name>.ridgeline-old-<pid>-*``);
:func:`clean_stale` removes those of dead processes at the start of the next run, after moving
back any entry of the user's that was on its way, and restoring the old folder when a kill
came between the two renames.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

from hwmodels.errors import InputError

from .store import FINGERPRINT_NAME, FIT_SUMMARY_NAME, MEASUREMENTS_STEM

STAGING = "staging"
RETIRED = "old"
HOLD_ENV = "RIDGELINE_CALIBRATE_HOLD"   # fault injection for tests: "POINT" or "POINT:SECONDS"
HOLD_S = 60.0
_LEFTOVER = re.compile(r"^\.(?P<name>.+)\.ridgeline-(?P<kind>staging|old)-(?P<pid>\d+)-[^/]+$")
# hidden per-file temporaries of earlier versions, which wrote each file in place
_OLD_TMP = re.compile(r"^\.(measurements\.(parquet|csv)|fingerprint\.json|fit\.json|[\w-]+\.yaml)\..+\.tmp$")


def is_set_entry(name: str) -> bool:
    """Whether ``name`` in an output folder belongs to a calibration set (replaced as a whole)."""
    return (name in (FINGERPRINT_NAME, FIT_SUMMARY_NAME, f"{MEASUREMENTS_STEM}.parquet",
                     f"{MEASUREMENTS_STEM}.csv")
            or re.fullmatch(r"(host|cuda\d+)\.yaml", name) is not None
            or _OLD_TMP.match(name) is not None)


def hold(point: str) -> None:
    """Pause at ``point`` when the environment asks for it (tests kill the process there)."""
    name, _, seconds = os.environ.get(HOLD_ENV, "").partition(":")
    if name == point:
        print(f"hold: {point}", file=sys.stderr, flush=True)
        time.sleep(float(seconds or HOLD_S))


@contextlib.contextmanager
def interrupts_deferred():
    """Ctrl-C (SIGINT) during the block is held back and raised after it, so a swap once begun
    is finished. (A handler that records it, rather than a blocked signal mask: the BLAS
    library's threads would receive a signal the main thread blocks.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught:
        raise KeyboardInterrupt


def check_out_dir(path: str | Path) -> Path:
    """The output folder ``path`` (absolute), refused when the swap could not be safe.

    Refused: an empty name; a file; the current folder or a folder above it (the swap would
    pull it from under this process and its shell); a folder that holds other things and no
    calibration (the set replaces the folder, so give a new or empty folder, or one an
    earlier calibration wrote); a parent where the staging folder cannot be made.
    """
    if not str(path).strip():
        raise InputError("the output folder is empty; name a folder (it is created if needed)", path="--out")
    out = Path(path).expanduser().absolute()
    if out.is_symlink():
        out = out.resolve()     # the swap replaces the folder the link points to, not the link
    if out.parent == out:
        raise InputError("the root folder cannot be an output folder", file=str(out), path="--out")
    if Path.cwd().resolve().is_relative_to(out.resolve()):
        raise InputError("the output folder is the current folder or holds it; the calibration replaces "
                         "the folder as a whole, so name a folder below this one (e.g. --out calibration)",
                         file=str(out), path="--out")
    if out.exists() and not out.is_dir():
        raise InputError("exists and is not a folder", file=str(out), path="--out")
    if out.is_dir():
        entries = [e.name for e in out.iterdir()]
        if entries and FINGERPRINT_NAME not in entries and not all(is_set_entry(e) for e in entries):
            shown = ", ".join(sorted(entries)[:3]) + (", ..." if len(entries) > 3 else "")
            raise InputError(f"the folder holds other files ({shown}) and no calibration; the calibration "
                             "replaces the whole folder, so name a new or empty one", file=str(out), path="--out")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        probe = Path(tempfile.mkdtemp(prefix=f".{out.name}.ridgeline-probe-", dir=out.parent))
        probe.rmdir()
    except OSError as exc:
        raise InputError(f"cannot write to output folder: {exc.strerror or exc} (the set is staged in the "
                         "folder above it)", file=str(out), path="--out") from None
    return out


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True     # exists, owned by someone else
    return True


def _move_back(leftover: Path, out: Path) -> None:
    """Entries of the user's in ``leftover`` (not part of a set) go back into ``out``."""
    for entry in leftover.iterdir():
        if not is_set_entry(entry.name) and not (out / entry.name).exists():
            os.rename(entry, out / entry.name)


def clean_stale(out: Path) -> list[str]:
    """Remove what killed runs left beside ``out`` (see the module doc); names of what was done."""
    done = []
    if out.is_dir():
        for entry in out.iterdir():
            if _OLD_TMP.match(entry.name):
                entry.unlink()
                done.append(f"removed {entry.name}")
    if not out.parent.is_dir():
        return done
    for entry in sorted(out.parent.iterdir()):
        m = _LEFTOVER.match(entry.name)
        if not m or m["name"] != out.name or not entry.is_dir() or _alive(int(m["pid"])):
            continue
        if not out.exists() and m["kind"] == RETIRED:
            os.rename(entry, out)              # killed between the two renames: the old set returns
            done.append(f"restored {out.name} from {entry.name}")
            continue
        if out.is_dir():
            _move_back(entry, out)
        shutil.rmtree(entry)
        done.append(f"removed {entry.name}")
    return done


def staging_dir(out: Path) -> Path:
    """A new, empty staging folder beside ``out`` (same file system, so the swap is a rename)."""
    return Path(tempfile.mkdtemp(prefix=f".{out.name}.ridgeline-{STAGING}-{os.getpid()}-", dir=out.parent))


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _exchange(a: Path, b: Path) -> bool:
    """Swap folders ``a`` and ``b`` atomically (Linux renameat2); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (22, 38, 95):      # EINVAL, ENOSYS, EOPNOTSUPP: a file system or kernel without it
        return False
    raise OSError(err, os.strerror(err), str(b))


def commit(staging: Path, out: Path) -> None:
    """Move the complete set in ``staging`` into place as ``out`` (see the module doc)."""
    for entry in staging.iterdir():
        with contextlib.suppress(OSError), open(entry, "rb") as fh:
            os.fsync(fh.fileno())
    _fsync_dir(staging)
    hold("staged")
    if not out.exists():
        os.rename(staging, out)
        _fsync_dir(out.parent)
        return
    if _exchange(staging, out):
        retired = staging                     # the old set now sits under the staging name
        hold("swapped")
    else:
        retired = out.parent / f".{out.name}.ridgeline-{RETIRED}-{os.getpid()}-{secrets.token_hex(4)}"
        os.rename(out, retired)
        hold("retired")
        os.rename(staging, out)
    _fsync_dir(out.parent)
    _move_back(retired, out)
    shutil.rmtree(retired)
