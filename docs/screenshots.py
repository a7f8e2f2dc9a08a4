"""Takes the TensorBoard screenshots of docs/tensorboard.md from a real GPRec run.

Trains GPRec (the recommended preset) on MovieLens-100K for a few epochs with the
`tfrs-userlevel` command, serves its logs with a real TensorBoard server, and
photographs the scalars, the group-mask histograms and the group-similarity image
with headless Chromium (Debian's `chromium` package):

    python docs/screenshots.py --data-dir /path/to/data

The images go to docs/images/ (replaced only when all three were taken).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.helpers import TensorBoardServer  # noqa: E402  (the server the tests use)

# image name -> the dashboard and the tags it shows
DASHBOARDS = {
    "tensorboard-scalars.png": "#scalars&tagFilter=epoch_(auc|loss|gprec_.*)$",
    "tensorboard-histograms.png": "#histograms&tagFilter=gprec/mask_inside",
    "tensorboard-images.png": "#images&tagFilter=gprec/group_similarity",
}
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                  "--window-size=1400,900", "--virtual-time-budget=20000"]


def train(model_dir: Path, data_dir: str | None, epochs: int) -> None:
    command = [sys.executable, "-m", "tfrs_userlevel", "train", "--dataset", "movielens_100k",
               "--user-level", "gprec", "--epochs", str(epochs), "--model-dir", str(model_dir)]
    if data_dir:
        command += ["--data-dir", data_dir]
    subprocess.run(command, check=True)


def screenshot(chromium: str, url: str, path: Path, profile: Path) -> None:
    subprocess.run([chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                    f"--screenshot={path}", url], check=True, capture_output=True,
                   timeout=180)
    if not path.exists() or path.stat().st_size < 10_000:
        raise SystemExit(f"Chromium wrote no usable screenshot of {url}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("TFRS_USERLEVEL_DATA"),
                        help="the MovieLens data root (default: $TFRS_USERLEVEL_DATA)")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--out", default=str(ROOT / "docs" / "images"))
    parser.add_argument("--chromium", default=shutil.which("chromium") or "chromium")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="screenshots-") as work:
        work = Path(work)
        train(work / "gprec", args.data_dir, args.epochs)
        shots = work / "shots"
        shots.mkdir()
        with TensorBoardServer(work / "gprec" / "logs") as server:
            server.until("/data/plugin/images/tags", lambda tags: bool(tags))
            for name, fragment in DASHBOARDS.items():
                screenshot(args.chromium, f"{server.url}/{fragment}", shots / name,
                           work / "profile")
                print(f"took {name}")
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for name in DASHBOARDS:
            shutil.copy(shots / name, out / name)
    print(f"wrote {len(DASHBOARDS)} screenshots to {out}")


if __name__ == "__main__":
    main()
