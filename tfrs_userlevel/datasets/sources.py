"""Finds the raw MovieLens files, or says everywhere it looked.

Search order (docs/getting-started.md): the explicit `--data-dir`, then the environment
variable `TFRS_USERLEVEL_DATA`, then TFDS's manual directory, then TFDS's
download manager (GroupLens URL). A data root holds one folder per dataset
(`movielens-1m/`, `movielens-100k/`); the official zip folder names
(`ml-1m/`, `ml-100k/`) and a dataset folder given directly work too.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

ENV_VAR = "TFRS_USERLEVEL_DATA"


class DataNotFoundError(FileNotFoundError):
    """No directory with the dataset's raw files was found."""


def data_root(data_dir: str | os.PathLike | None = None) -> Path | None:
    """The explicit data root, else `$TFRS_USERLEVEL_DATA`, else None."""
    if data_dir:
        return Path(data_dir).expanduser()
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    return None


def _candidates(base: Path, folder_names: Sequence[str]) -> list[Path]:
    return [base / name for name in folder_names] + [base]


def find_raw_dir(
    dataset: str,
    folder_names: Sequence[str],
    is_complete: Callable[[Path], str | None],
    data_dir: str | os.PathLike | None,
    manual_dir: Callable[[], Path | None] | None = None,
    download: Callable[[], Path] | None = None,
    instructions: str = "",
) -> Path:
    """Returns the first directory holding the dataset's raw files.

    Args:
      dataset: Dataset name for messages.
      folder_names: Folder names to try under each root.
      is_complete: Returns None when a directory holds the files, else a
        short reason ("no ratings.dat or ratings.csv.gz").
      data_dir: Explicit root (`--data-dir`); `$TFRS_USERLEVEL_DATA` otherwise.
      manual_dir: Returns TFDS's manual directory, or None if there is none.
      download: Downloads and extracts the official archive, returning its
        directory; it may raise when the internet cannot be reached.
      instructions: How to provide the files, appended to the error.

    Raises:
      DataNotFoundError: listing every place looked at and why it failed.
    """
    looked: list[str] = []
    roots: list[tuple[str, Path]] = []
    root = data_root(data_dir)
    if root is not None:
        roots.append(("--data-dir" if data_dir else f"${ENV_VAR}", root))
    else:
        looked.append(f"--data-dir: not given; ${ENV_VAR}: not set")
    if manual_dir is not None:
        try:
            path = manual_dir()
        except Exception as error:  # TFDS raises when the folder is absent
            path = None
            looked.append(f"TFDS manual dir: {str(error).splitlines()[0]}")
        if path is not None:
            roots.append(("TFDS manual dir", Path(path)))
    for label, root in roots:
        if root.exists() and not root.is_dir():
            looked.append(f"{label}: {root} (a file, not a folder)")
            continue
        for candidate in _candidates(root, folder_names):
            if not candidate.is_dir():
                looked.append(f"{label}: {candidate} (no such directory)")
                continue
            if not os.access(candidate, os.R_OK | os.X_OK):
                looked.append(f"{label}: {candidate} (not readable)")
                continue
            reason = is_complete(candidate)
            if reason is None:
                return candidate
            looked.append(f"{label}: {candidate} ({reason})")
    if download is not None:
        try:
            path = Path(download())
        except Exception as error:  # no network, bad checksum, ...
            reason = str(error).splitlines()[0][:200] if str(error) else ""
            looked.append(f"download: failed ({type(error).__name__}: {reason})")
        else:
            for candidate in _candidates(path, folder_names):
                if candidate.is_dir() and is_complete(candidate) is None:
                    return candidate
            looked.append(f"download: {path} (archive lacks the expected files)")
    message = [f"Could not find the raw files of {dataset}. Looked at:"]
    message += [f"  - {line}" for line in looked]
    if instructions:
        message.append(instructions)
    raise DataNotFoundError("\n".join(message))
