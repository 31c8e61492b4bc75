"""The leaderboard's workloads and entries: loading conf/leaderboard/{workload,entry}/NAME.yaml and checking them.

A workload fixes model x dataset x optimizer family x loss x batch size x step budget x evaluation schedule (its
`overrides` of launch.py), the shared eta_trgt grid `lrs`, the seed count and the target test loss of steps to target.
An entry is a named set of launch.py overrides (applied after the workload's) and the optimizer families it applies
to. Entries are also read from DIR/leaderboard/entry/ for each --config-dir DIR: a researcher's own method joins with
one YAML there (and its code registered through the `warmup_bench.methods` entry point group).

Every problem is one line (SpecError), raised before anything runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from bench.runfolder import RULES

ROOT = Path(__file__).resolve().parents[2]  # the checkout: analysis/ sits at its top
CONF = ROOT / "conf"
FAMILIES = ("sgd", "adam")
TIERS = ("cpu", "gpu")
WORKLOAD_KEYS = ("tier", "family", "rule", "overrides", "lrs", "seeds", "target_test_loss")
ENTRY_KEYS = ("families", "overrides")


class SpecError(ValueError):
    """A bad workload, entry or selection: one line, shown as `error: ...`."""


@dataclass(frozen=True)
class Workload:
    name: str
    tier: str
    family: str
    rule: str
    overrides: tuple[str, ...]
    lrs: tuple[float, ...]
    seeds: int
    target_test_loss: float | None  # None: not set yet (a GPU workload before its first run)
    comment: str  # the first line of its YAML's leading comment: the regime it stands for
    path: Path

    def info(self) -> dict:
        """What report.write needs to know of it."""
        keys = ("target_test_loss", "tier", "family", "rule", "comment")
        return {k: getattr(self, k) for k in keys}


@dataclass(frozen=True)
class Entry:
    name: str
    families: tuple[str, ...]
    overrides: tuple[str, ...]
    comment: str
    path: Path

    def applies_to(self, workload: Workload) -> bool:
        return workload.family in self.families


def _comment(text: str) -> str:
    """The first line of the leading comment block (blank lines and `# @package` skipped)."""
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if not line.startswith("#"):
            return ""
        line = line.lstrip("#").strip()
        if line and not line.startswith("@package"):
            return line
    return ""


def _read(path: Path, keys: tuple[str, ...]) -> tuple[dict, str]:
    try:
        text = path.read_text()
        data = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise SpecError(f"{path}: not readable YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise SpecError(f"{path}: not a mapping of {', '.join(keys)}")
    unknown = sorted(set(map(str, data)) - set(keys))
    if unknown:
        raise SpecError(f"{path}: unknown key {unknown[0]!r}: the keys are {', '.join(keys)}")
    missing = [k for k in keys if k not in data]
    if missing:
        raise SpecError(f"{path}: missing key {missing[0]!r}")
    return data, _comment(text)


def _overrides(path: Path, value) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(o, str) and "=" in o for o in value):
        raise SpecError(f"{path}: overrides must be a list of launch.py overrides KEY=VALUE, got {value!r}")
    return tuple(value)


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def load_workload(path: Path) -> Workload:
    d, comment = _read(path, WORKLOAD_KEYS)
    if not comment:
        raise SpecError(f"{path}: no leading comment saying which regime the workload stands for and why")
    for key, choices in (("tier", TIERS), ("family", FAMILIES), ("rule", tuple(RULES))):
        if d[key] not in choices:
            raise SpecError(f"{path}: {key}={d[key]!r}: must be one of {', '.join(choices)}")
    lrs = d["lrs"]
    if not isinstance(lrs, list) or len(lrs) < 2 or not all(_number(x) and x > 0 for x in lrs):
        raise SpecError(f"{path}: lrs must be a list of at least two positive learning rates, got {lrs!r}")
    if sorted(lrs) != lrs or len(set(lrs)) != len(lrs):
        raise SpecError(f"{path}: lrs must be increasing, got {lrs!r}")
    seeds = d["seeds"]
    if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 3:
        raise SpecError(f"{path}: seeds={seeds!r}: must be an integer >= 3")
    target = d["target_test_loss"]
    if not (target is None or (_number(target) and target > 0)):
        why = "a positive number (set once from linear_5pct), or null until then"
        raise SpecError(f"{path}: target_test_loss={target!r}: must be {why}")
    overrides = _overrides(path, d["overrides"])
    fixed = [o for o in overrides if o.split("=")[0].lstrip("+~") in ("optimizer.lr", "seed")]
    if fixed:
        raise SpecError(f"{path}: overrides fix {fixed[0]!r}: the grid (lrs) and seeds set it")
    return Workload(
        path.stem, d["tier"], d["family"], d["rule"], overrides, tuple(map(float, lrs)), seeds,
        None if target is None else float(target),
        comment, path,
    )  # fmt: skip


def load_entry(path: Path) -> Entry:
    d, comment = _read(path, ENTRY_KEYS)
    families = d["families"]
    if not isinstance(families, list) or not families or not set(families) <= set(FAMILIES):
        raise SpecError(f"{path}: families={families!r}: must be a non-empty list of {', '.join(FAMILIES)}")
    return Entry(path.stem, tuple(families), _overrides(path, d["overrides"]), comment, path)


def _yamls(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.yaml")) if folder.is_dir() else []


def load_workloads(conf: Path = CONF) -> dict[str, Workload]:
    return {p.stem: load_workload(p) for p in _yamls(conf / "leaderboard" / "workload")}


def entry_dirs(config_dirs: list[Path] = ()) -> list[Path]:
    """conf/leaderboard/entry/, then DIR/leaderboard/entry/ of each --config-dir DIR."""
    for d in config_dirs:
        if not Path(d).is_dir():
            raise SpecError(f"--config-dir {d}: no such folder")
    return [CONF / "leaderboard" / "entry", *(Path(d) / "leaderboard" / "entry" for d in config_dirs)]


def load_entries(config_dirs: list[Path] = ()) -> dict[str, Entry]:
    entries: dict[str, Entry] = {}
    for folder in entry_dirs(config_dirs):
        for path in _yamls(folder):
            if path.stem in entries:
                raise SpecError(f"entry {path.stem} is defined twice: {entries[path.stem].path} and {path}")
            entries[path.stem] = load_entry(path)
    return entries


def pick(kind: str, names: list[str] | None, known: dict) -> list[str]:
    """The named items (all when `names` is empty), or one line naming the unknown one and the choices."""
    plural = {"entry": "entries"}.get(kind, f"{kind}s")
    for name in names or []:
        if name not in known:
            raise SpecError(f"unknown {kind} {name!r}: the {plural} are {', '.join(sorted(known)) or '(none)'}")
    return list(dict.fromkeys(names)) if names else sorted(known)


def applicable(entry: Entry, workload: Workload) -> None:
    """One line when the entry does not apply to the workload's optimizer family."""
    if not entry.applies_to(workload):
        raise SpecError(
            f"entry {entry.name} applies to {', '.join(entry.families)}, workload {workload.name} is {workload.family}"
        )


def merged_overrides(workload: Workload, entry: Entry, extra: tuple[str, ...] = ()) -> list[str]:
    """The workload's overrides, then the entry's, then `extra`: a later key replaces an earlier one (optimizer=gi_adam
    replaces optimizer=adam; the workload's optimizer.* values stay and apply to the new group)."""
    out: dict[str, str] = {}
    for o in (*workload.overrides, *entry.overrides, *extra):
        out[o.split("=", 1)[0].lstrip("+~")] = o
    return list(out.values())
