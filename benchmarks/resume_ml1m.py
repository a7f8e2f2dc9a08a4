"""Exact resume on MovieLens-1M: a deterministic MLP run killed three times ends as if
never interrupted.

    TFRS_USERLEVEL_DATA=/path/to/data python benchmarks/resume_ml1m.py

Runs `tfrs-userlevel train --dataset movielens_1m --backbone mlp --deterministic
--epochs 6` once to the end, then again in another folder killed with SIGKILL three
times (in the middle of epochs 2, 3 and 5, timed from the backup of the epoch before),
each time restarted with the same command; compares the epochs, best epoch and
metrics. Writes results/reliability/resume_ml1m.json.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMMAND = [sys.executable, "-m", "tfrs_userlevel", "train", "--dataset", "movielens_1m",
           "--backbone", "mlp", "--deterministic", "--epochs", "6", "--patience", "10"]
KILL_IN_EPOCH = (2, 3, 5)  # 1-based epochs whose middle the run is killed in


def finished_epochs(model_dir: Path) -> int:
    state = model_dir / "backup" / "callbacks.json"
    try:
        return max(int(k) for k in json.loads(state.read_text())["epochs"])
    except (OSError, ValueError, KeyError):
        return 0


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        start = time.perf_counter()
        subprocess.run([*COMMAND, "--model-dir", str(work / "reference")], check=True,
                       capture_output=True)
        reference_seconds = time.perf_counter() - start
        expected = json.loads((work / "reference" / "metrics.json").read_text())
        epoch_seconds = reference_seconds / (expected["epochs"] + 2)  # a rough epoch
        interrupted = work / "interrupted"
        kills = []
        for epoch in KILL_IN_EPOCH:
            process = subprocess.Popen([*COMMAND, "--model-dir", str(interrupted)],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            while finished_epochs(interrupted) < epoch - 1 and process.poll() is None:
                time.sleep(0.05)
            time.sleep(0.5 * epoch_seconds)
            process.send_signal(signal.SIGKILL)
            process.wait()
            kills.append({"in_epoch": epoch, "backup_after_kill": finished_epochs(interrupted)})
        subprocess.run([*COMMAND, "--model-dir", str(interrupted)], check=True,
                       capture_output=True)
        found = json.loads((interrupted / "metrics.json").read_text())
    difference = max(abs(found[s][m] - expected[s][m]) for s in ("val", "test")
                     for m in expected[s])
    result = {"command": " ".join(COMMAND[2:]), "kills": kills,
              "reference": {k: expected[k] for k in ("epochs", "best_epoch", "val", "test")},
              "resumed": {k: found[k] for k in ("epochs", "best_epoch", "resumed_after_epoch",
                                                "val", "test")},
              "largest_metric_difference": difference}
    print(json.dumps(result, indent=2))
    out = REPO / "results" / "reliability" / "resume_ml1m.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
