"""The documentation site builds with `mkdocs build --strict`: no broken link,
no page missing from the nav, no docstring mkdocstrings cannot read."""

import importlib.util
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.mark.skipif(
    importlib.util.find_spec("mkdocstrings") is None,
    reason="mkdocs and mkdocstrings are not installed (pip install -e '.[docs]')",
)
def test_site_builds_strictly(tmp_path):
    site = tmp_path / "site"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--config-file",
            str(ROOT / "mkdocs.yml"),
            "--site-dir",
            str(site),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    api = (site / "api" / "index.html").read_text()
    for identifier in (
        "kerasnorm.api.apply_normalization",
        "kerasnorm.plan.Plan.to_networkx",
        "kerasnorm.callbacks.SpectralNormMonitorBase",
        "kerasnorm.pictures.plot_plan",
        "kerasnorm.cli.load_model",
    ):
        assert f'id="{identifier}"' in api, identifier
    recipes = sorted(path.name for path in (site / "recipes").iterdir())
    assert "sngan-discriminator" in recipes
