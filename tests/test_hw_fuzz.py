"""Random mutations of valid catalog YAML give a valid model or a clean InputError, nothing else."""

import itertools
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hwmodels
from hwmodels.errors import InputError
from hwmodels.loader import CATALOG_DIR

FILES = sorted(CATALOG_DIR.glob("*.yaml"))
_counter = itertools.count()

# Replacement values: wrong types, wrong units, odd numbers, YAML syntax fragments.
JUNK = ["", "0", "-1", ".nan", ".inf", "null", "true", "[]", "{}", "[1, 2]", "{a: 1}", "'3 TB'", "3 TB/s",
        "80 GiB", "700 W", "1.98 GHz", "250 ns", "5 pJ/B", "1 TFLOP/s", "nan W", "-5 W", "0 s", "1/0 B/s",
        "3 TB/s; 2", "!!python/object:os.system", "*undefined", "&a x", "h100-sxm", "self.yaml",
        "\"\\x00\"", "[unclosed", "{bad: [", "é", "1e400 B", "gpu", "system", "~"]


def mutate(text: str, rnd: random.Random) -> str:
    lines = text.splitlines()
    for _ in range(rnd.randint(1, 3)):
        i = rnd.randrange(len(lines))
        line = lines[i]
        op = rnd.randrange(6)
        if op == 0 and ":" in line:                       # replace a value
            key = line.split(":", 1)[0]
            lines[i] = f"{key}: {rnd.choice(JUNK)}"
        elif op == 1:                                     # drop a line
            del lines[i]
            if not lines:
                lines = [""]
        elif op == 2 and ":" in line:                     # misspell a key
            key, rest = line.split(":", 1)
            stripped = key.strip()
            if len(stripped) > 1:
                j = rnd.randrange(len(stripped))
                typo = stripped[:j] + stripped[j + 1:]
                lines[i] = key.replace(stripped, typo) + ":" + rest
        elif op == 3:                                     # duplicate a line
            lines.insert(i, line)
        elif op == 4:                                     # change the indentation
            lines[i] = ("  " + line) if rnd.random() < 0.5 else line.lstrip()
        else:                                             # flip one character
            if line:
                j = rnd.randrange(len(line))
                lines[i] = line[:j] + rnd.choice(" :-[]{}#&*!|>'\"0x%") + line[j + 1:]
    return "\n".join(lines) + "\n"


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(index=st.integers(0, len(FILES) - 1), seed=st.integers(0, 2**32 - 1))
def test_mutated_catalog_yaml_is_valid_or_an_input_error(tmp_path, index, seed):
    source = FILES[index]
    text = mutate(source.read_text(), random.Random(seed))
    path = tmp_path / f"m{next(_counter)}-{source.name}"
    path.write_text(text)
    try:
        hw = hwmodels.load_hardware(path)
    except InputError as err:
        assert err.problems and all(str(p) for p in err.problems)
        # each problem names the file it is in (this one, or a file this one extends)
        assert all(p.file for p in err.problems), [str(p) for p in err.problems]
    else:
        assert hw.id


@settings(max_examples=40, deadline=None)
@given(path=st.sampled_from(["memory.hbm.bandwidth", "power.tdp", "engines.tensor.peak.bf16",
                             "links.nvlink.ports", "memory.hbm", "engines", "kind", "memory.new.kind"]),
       value=st.one_of(st.sampled_from(JUNK), st.integers(), st.floats(), st.none(), st.booleans(),
                       st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.text(max_size=5),
                                                                              max_size=2)))
def test_random_overrides_are_valid_or_an_input_error(path, value):
    device = hwmodels.load_device("h100-sxm")
    try:
        device.with_overrides({path: value})
    except InputError as err:
        assert err.problems
