"""The `tfrs-userlevel` command: train -> export -> predict -> evaluate, its user errors
(one `error:` line, exit 2, no traceback), a quiet start, and the `datasets` name."""


from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tfrs_userlevel import __version__, cli
from tfrs_userlevel.backend import tf

REPO = Path(__file__).resolve().parents[3]


def _run(argv, capsys):
    """(exit code, stdout, stderr) of the command run in this process."""
    code = cli.main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_installed_command_starts_quietly(tmp_path):
    """A subprocess as a user runs it: no TensorFlow start-up lines, one error line."""
    result = subprocess.run(
        [sys.executable, "-m", "tfrs_userlevel", "train", "--batch-size", "0", "--model-dir",
         str(tmp_path / "x")], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: --batch-size must be >= 1 (given: --batch-size 0)"], result.stderr
    assert result.stdout == ""
    version = subprocess.run([sys.executable, "-m", "tfrs_userlevel", "--version"],
                             capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert version.stdout.strip() == f"tfrs-userlevel {__version__}" and not version.stderr


def test_nothing_takes_the_import_name_datasets(tmp_path):
    """With a package named `datasets` installed (Hugging Face's, here a stand-in), every
    module of tfrs_userlevel imports without touching it, and it stays importable."""
    stand_in = tmp_path / "site" / "datasets"
    stand_in.mkdir(parents=True)
    (stand_in / "__init__.py").write_text("def load_dataset(name):\n    return 'hf:' + name\n")
    code = textwrap.dedent("""\
        import pkgutil, sys, importlib
        import tfrs_userlevel
        for module in pkgutil.walk_packages(tfrs_userlevel.__path__, "tfrs_userlevel."):
            if not module.name.endswith("__main__"):
                importlib.import_module(module.name)
        assert "datasets" not in sys.modules, sys.modules["datasets"]
        import datasets
        assert datasets.load_dataset("x") == "hf:x"
        from tfrs_userlevel import datasets as builders
        assert builders.DATASETS and builders is not datasets
        print("ok")
        """)
    env = {"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin",
           "HOME": str(tmp_path), "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300, cwd=tmp_path, env=env)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]


def test_a_failure_inside_tensorflow_exits_1_with_its_message(tmp_path, capsys, monkeypatch):
    import tfrs_userlevel.cli.export as export_command

    def fail(*args):
        raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor\nmore")

    monkeypatch.setattr(export_command, "export_run", fail)
    code, _, err = _run(["export", "--model-dir", str(tmp_path), "--export-dir",
                         str(tmp_path / "e")], capsys)
    assert code == 1
    assert err.strip() == "error: TensorFlow failed: OOM when allocating tensor; more"
