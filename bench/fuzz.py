"""Long mutation-fuzzing run of ``probe``, ``VideoReader`` and ``load_audio`` (issue 8, hardening).

Mutates the real media bundled with the repo (``tests/data/media``,
``resources/samples``; their bytes are copied, never modified) with the same
generator and mutators as the bounded test ``tests/hardening/test_fuzz.py``
(:mod:`bench.fuzzlib`), runs every selected target on each mutant in a worker
process with a timeout, and reports:

* inputs/s and target calls/s;
* the number of outcomes per target and outcome class (``ok``, each
  ``EvidenceError`` subclass, ``crash:<Exception>``, ``hang``, ``died``, ``memory``);
* every distinct failure, saved in ``--out`` as ``<n>.<target>.<label><ext>``
  (the mutated bytes) plus ``<n>.<target>.<label>.json`` (seed file, recipe,
  message, traceback): the recipe recreates the input from the seed, see
  :func:`bench.fuzzlib.apply_recipe`.

Usage::

    python bench/fuzz.py --minutes 5 --seed 1 [--targets probe,video,audio]
                         [--seeds mp4,mts] [--out DIR] [--timeout 30]

Exit status 1 when a failure was found.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.fuzzlib import TARGETS, Crasher, Runner, apply_recipe, draw_recipe, seed_files  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def _out_dir(arg: str | None) -> Path:
    if arg is None:
        return Path(tempfile.mkdtemp(prefix="forensic-fuzz-"))
    out = Path(arg).resolve()
    for forbidden in (REPO / "resources", REPO / "tests"):
        if out == forbidden or forbidden in out.parents:
            raise SystemExit(f"--out {out}: refusing to write crashers inside {forbidden}")
    out.mkdir(parents=True, exist_ok=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=5.0, help="wall-clock budget (default 5)")
    ap.add_argument("--seed", type=int, default=0, help="random seed of the mutation generator")
    ap.add_argument("--targets", default=",".join(TARGETS), help=f"comma-separated subset of {','.join(TARGETS)}")
    ap.add_argument("--seeds", default="", help="only seed files whose name ends with one of these "
                    "comma-separated suffixes (e.g. mp4,mts); default all")
    ap.add_argument("--max-ops", type=int, default=4, help="most mutation ops per input (default 4)")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds per target call before it is a hang")
    ap.add_argument("--out", default=None, help="folder for crashers (default: a new temp folder)")
    args = ap.parse_args(argv)

    targets = [t for t in args.targets.split(",") if t]
    bad = set(targets) - set(TARGETS)
    if bad:
        ap.error(f"unknown targets {sorted(bad)}; choose from {TARGETS}")
    seeds = seed_files()
    if args.seeds:
        wanted = tuple(s.lower().lstrip(".") for s in args.seeds.split(",") if s)
        seeds = [p for p in seeds if p.name.lower().endswith(wanted)]
    if not seeds:
        ap.error("no seed file selected")
    seed_bytes = {p.name: p.read_bytes() for p in seeds}
    out = _out_dir(args.out)
    rng = random.Random(args.seed)
    stats: Counter = Counter()
    seen: set[tuple] = set()
    crashers: list[Crasher] = []
    n_inputs = n_calls = 0
    print(f"fuzzing {', '.join(targets)} on {len(seeds)} seed files for {args.minutes:g} min "
          f"(seed {args.seed}); crashers -> {out}", flush=True)
    t0 = time.monotonic()
    deadline = t0 + 60 * args.minutes
    last_report = t0
    with Runner(timeout_s=args.timeout) as runner, tempfile.TemporaryDirectory(prefix="fuzz-in-") as tmp:
        while time.monotonic() < deadline:
            seed = rng.choice(seeds)
            recipe = draw_recipe(rng.randint, args.max_ops)
            data = apply_recipe(seed_bytes[seed.name], recipe)
            path = Path(tmp) / f"mutant{seed.suffix}"
            path.write_bytes(data)
            n_inputs += 1
            for target in targets:
                o = runner.run(path, target)
                n_calls += 1
                stats[(target, o.label)] += 1
                if o.fine:
                    continue
                tb_last = o.traceback.strip().splitlines()[-3:-1] if o.traceback else []
                key = (target, o.label, tuple(tb_last))
                if key in seen:
                    continue
                seen.add(key)
                c = Crasher(seed.name, recipe, o)
                crashers.append(c)
                stem = f"{len(crashers):03d}.{target}.{o.label.replace(':', '-')}"
                (out / f"{stem}{seed.suffix}").write_bytes(data)
                (out / f"{stem}.json").write_text(json.dumps(
                    {"seed": seed.name, "recipe": recipe, "target": target, "kind": o.kind, "error": o.error,
                     "message": o.message, "traceback": o.traceback, "seconds": o.seconds}, indent=2))
                print(f"FAILURE {stem}: {c.describe()}", flush=True)
            now = time.monotonic()
            if now - last_report >= 30:
                last_report = now
                print(f"  {now - t0:5.0f} s: {n_inputs} inputs, {n_inputs / (now - t0):.1f} inputs/s, "
                      f"{len(crashers)} failures", flush=True)
        restarts = runner.restarts
    elapsed = time.monotonic() - t0
    print(f"\n{n_inputs} inputs, {n_calls} target calls in {elapsed:.0f} s: "
          f"{n_inputs / elapsed:.2f} inputs/s, {n_calls / elapsed:.2f} calls/s; worker restarts {restarts}")
    print(f"{'target':8s} {'outcome':28s} {'count':>7s}")
    for (target, label), count in sorted(stats.items()):
        print(f"{target:8s} {label:28s} {count:7d}")
    print(f"distinct failures: {len(crashers)}" + (f" (saved in {out})" if crashers else ""))
    return 1 if crashers else 0


if __name__ == "__main__":
    raise SystemExit(main())
