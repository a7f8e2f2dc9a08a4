"""Mutation check of the math modules with mutmut's mutation operators.

Each mutant of the modules below is written into a scratch copy of the
repository and judged by that module's unit tests, run by pytest in a process
forked from one that has already imported TensorFlow (so a mutant costs its
tests, not a TensorFlow start). A mutant is *killed* when a test fails or the
tests time out, and *survives* when they all pass. Results go to
``results.json`` beside this file (written after every mutant, so a stopped
run resumes where it stopped); ``REPORT.md`` is generated from it and from the
hand-written ``explanations.json`` (one entry per surviving mutant).

    TFRS_USERLEVEL_DATA=../shared/data python tests/mutation/run.py --sample 200
    python tests/mutation/run.py --report-only
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
RESULTS = HERE / "results.json"
EXPLANATIONS = HERE / "explanations.json"
REPORT = HERE / "REPORT.md"

# module -> the pytest arguments that select its unit tests
UNIT_TESTS = {
    "tfrs_userlevel/gprec/groups.py": ["tests/unit/gprec/test_layers.py"],
    "tfrs_userlevel/gprec/individual.py": ["tests/unit/gprec/test_layers.py"],
    "tfrs_userlevel/gprec/strategies.py": ["tests/unit/gprec/test_layers.py"],
    "tfrs_userlevel/udg/gating.py": [
        "tests/unit/udg/test_udg.py"],
    "tfrs_userlevel/metrics.py": ["tests/unit/test_metrics.py"],
}
PYTEST_ARGS = ["-x", "-q", "-o", "addopts=", "-p", "no:cacheprovider", "-m", "not slow"]


def mutant_key(module: str, mutation) -> str:
    """Module, line number, index of the mutation on that line, and the line's text."""
    return f"{module}:{mutation.line_number + 1}|{mutation.index}|{mutation.line.strip()}"


def enumerate_mutants(root: Path) -> list[tuple[str, object]]:
    import mutmut

    mutants = []
    for module in UNIT_TESTS:
        context = mutmut.Context(filename=str(root / module))
        mutants += [(module, m) for m in mutmut.list_mutations(context)]
    return mutants


def mutated_source(root: Path, module: str, mutation) -> str:
    import mutmut

    source, count = mutmut.mutate(mutmut.Context(filename=str(root / module), mutation_id=mutation))
    assert count == 1, (module, mutation)
    return source


def changed_lines(original: str, mutated: str) -> tuple[str, str]:
    old, new = [], []
    for line in difflib.ndiff(original.splitlines(), mutated.splitlines()):
        if line.startswith("- "):
            old.append(line[2:].strip())
        elif line.startswith("+ "):
            new.append(line[2:].strip())
    return " / ".join(old), " / ".join(new)


def scratch_copy(destination: Path) -> Path:
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO,
                           check=True, capture_output=True, text=True).stdout.split()
    for name in files:
        if (REPO / name).is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, target)
    return destination


class _FirstFailure:
    """A pytest plugin that writes the node id of the first failing test to a file."""

    def __init__(self, path: str):
        self.path = path

    def pytest_runtest_logreport(self, report):
        if report.failed and not os.path.exists(self.path):
            with open(self.path, "w") as f:
                f.write(report.nodeid)


def run_tests(root: Path, selection: list[str], timeout: float,
              log: Path) -> tuple[str, str, float]:
    """Runs `selection` in a forked child; returns (status, first failing test, seconds)."""
    failure = str(log) + ".failed"
    if os.path.exists(failure):
        os.remove(failure)
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:  # child: import the package from the scratch copy and run pytest
        try:
            os.chdir(root)
            sys.path.insert(0, str(root))
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            import pytest

            code = pytest.main(PYTEST_ARGS + selection, plugins=[_FirstFailure(failure)])
            import tfrs_userlevel

            if not tfrs_userlevel.__file__.startswith(str(root)):
                code = 99
            os._exit(int(code))
        except BaseException:  # noqa: BLE001  (any crash of the child kills the mutant)
            os._exit(98)
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() - start > timeout:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return "timeout", "", time.monotonic() - start
        time.sleep(0.05)
    seconds = time.monotonic() - start
    code = os.waitstatus_to_exitcode(status)
    if code == 99:
        raise RuntimeError("the child imported tfrs_userlevel from outside the scratch copy")
    killed_by = open(failure).read() if os.path.exists(failure) else ""
    return ("survived" if code == 0 else "killed"), killed_by, seconds


def import_heavy_dependencies() -> None:
    """Imports what every test needs, but not the package, before the first fork."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy  # noqa: F401
    import pyarrow  # noqa: F401
    import pytest  # noqa: F401
    import scipy.stats  # noqa: F401
    import tensorflow  # noqa: F401
    import tensorflow_recommenders  # noqa: F401
    import tf_keras  # noqa: F401

    assert "tfrs_userlevel" not in sys.modules


def load_results() -> dict:
    return json.loads(RESULTS.read_text()) if RESULTS.exists() else {"mutants": {}}


def save_results(results: dict) -> None:
    temporary = RESULTS.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    os.replace(temporary, RESULTS)


def mutate_and_test(sample: int, seed: int) -> None:
    results = load_results()
    with tempfile.TemporaryDirectory(prefix="mutation-") as scratch:
        root = scratch_copy(Path(scratch) / "repo")
        mutants = enumerate_mutants(root)
        totals = {module: 0 for module in UNIT_TESTS}
        for module, _ in mutants:
            totals[module] += 1
        chosen = mutants if sample >= len(mutants) else random.Random(seed).sample(mutants, sample)
        results.update(sample=len(chosen), seed=seed, mutants_per_module=totals,
                       total_mutants=len(mutants),
                       chosen=[mutant_key(module, m) for module, m in chosen])
        import_heavy_dependencies()
        log = Path(scratch) / "pytest.log"
        baseline = {}
        for module in sorted(UNIT_TESTS):
            key = " ".join(UNIT_TESTS[module])
            if key not in baseline:
                status, failed, seconds = run_tests(root, UNIT_TESTS[module], 3600, log)
                if status != "survived":
                    sys.exit(f"the unmutated tests fail ({failed}); see {log}")
                baseline[key] = seconds
                print(f"baseline {key}: {seconds:.1f} s", flush=True)
        results["baseline_seconds"] = baseline
        for number, (module, mutation) in enumerate(chosen, 1):
            key = mutant_key(module, mutation)
            if key in results["mutants"]:
                continue
            path = root / module
            original = path.read_text()
            mutated = mutated_source(root, module, mutation)
            path.write_text(mutated)
            try:
                selection = UNIT_TESTS[module]
                timeout = 3 * baseline[" ".join(selection)] + 30
                status, killed_by, seconds = run_tests(root, selection, timeout, log)
            finally:
                path.write_text(original)
            before, after = changed_lines(original, mutated)
            results["mutants"][key] = dict(module=module, line=mutation.line_number + 1,
                                           original=before, mutant=after, status=status,
                                           killed_by=killed_by, seconds=round(seconds, 1))
            save_results(results)
            print(f"[{number}/{len(chosen)}] {status:8s} {module}:{mutation.line_number + 1} "
                  f"{after!r} ({seconds:.1f} s)", flush=True)


def write_report() -> None:
    results = load_results()
    explanations = json.loads(EXPLANATIONS.read_text()) if EXPLANATIONS.exists() else {}
    mutants = {key: results["mutants"][key] for key in results.get("chosen", [])
               if key in results["mutants"]}
    lines = [
        "# Mutation check of the math modules",
        "",
        "Generated by `python tests/mutation/run.py --report-only` from `results.json` and "
        "`explanations.json`.",
        "The run: `pip install -e \".[mutation]\"`, then `TFRS_USERLEVEL_DATA=../shared/data "
        f"python tests/mutation/run.py --sample {results.get('sample')} --seed "
        f"{results.get('seed')}`: a seeded random sample of the {results.get('total_mutants')} "
        "mutants that mutmut's operators make of these modules (all of them would take "
        "several hours on 2 cores), each judged by its module's unit tests only. A mutant "
        "already judged is not run again; deleting the survivors from `results.json` and "
        "rerunning judges them by the tests as they are now (a killed mutant records the test "
        "that killed it in `killed_by`).",
        "",
        "| module | unit tests | mutants | sampled | killed | timed out | survived |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for module, selection in UNIT_TESTS.items():
        rows = [m for m in mutants.values() if m["module"] == module]
        count = {s: sum(m["status"] == s for m in rows) for s in ("killed", "timeout", "survived")}
        lines.append(f"| `{module}` | `{' '.join(selection)}` | "
                     f"{results['mutants_per_module'][module]} | {len(rows)} | {count['killed']} | "
                     f"{count['timeout']} | {count['survived']} |")
    survivors = {k: m for k, m in mutants.items() if m["status"] == "survived"}
    share = len(survivors) / max(len(mutants), 1)
    lines += [f"| all | | {results.get('total_mutants')} | {len(mutants)} | "
              f"{sum(m['status'] == 'killed' for m in mutants.values())} | "
              f"{sum(m['status'] == 'timeout' for m in mutants.values())} | {len(survivors)} |",
              "", f"Survivors: {len(survivors)} of {len(mutants)} ({share:.1%}).", ""]
    if survivors:
        lines += ["## Surviving mutants", "",
                  "| module:line | original | mutant | why it survives |", "|---|---|---|---|"]
        for key, m in sorted(survivors.items(), key=lambda kv: (kv[1]["module"], kv[1]["line"])):
            why = explanations.get(key, "**not explained**")
            lines.append(f"| `{m['module']}:{m['line']}` | `{m['original']}` | `{m['mutant']}` | "
                         f"{why} |")
    REPORT.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=200,
                        help="how many mutants to try, drawn at random (all when larger)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random sample")
    parser.add_argument("--report-only", action="store_true",
                        help="regenerate REPORT.md from results.json without running")
    args = parser.parse_args(argv)
    if not args.report_only:
        mutate_and_test(args.sample, args.seed)
    write_report()


if __name__ == "__main__":
    main()
