"""The wheel carries rules/, templates/, config/ and examples/, and runs from any directory."""

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_ships_data_and_runs_elsewhere(tmp_path: Path):
    # Build the wheel, unpack it away from the checkout, and parse a sample post from another folder.
    out = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("listbot-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for folder in ("rules", "templates", "config", "examples"):
        assert any(n.startswith(f"bot/_data/{folder}/") for n in names), f"{folder}/ is not in the wheel"
    assert "bot/_data/config/example.toml" in names
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    sample = site / "bot" / "_data" / "examples" / "02-call.eml"
    result = subprocess.run(
        [sys.executable, "-m", "bot", "parse", "--json", str(sample)],
        cwd=elsewhere,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert '"2026-12-11' in result.stdout
