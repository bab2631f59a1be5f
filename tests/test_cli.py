"""The `kerasnorm` command, end to end in a subprocess, and its errors in-process."""

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import tensorflow as tf

import kerasnorm
from kerasnorm import cli
from kerasnorm.adapters import ADAPTERS
from kerasnorm.demo import build_discriminator, build_generator


def run(*args, cwd=None, command=(sys.executable, "-m", "kerasnorm")):
    return subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        timeout=300,
    )


def assert_one_line_error(result, *fragments):
    """Exit status 2, the message alone on the last line of stderr, no traceback."""
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "error:" in last
    for fragment in fragments:
        assert fragment in last, last


def _saved_discriminator(adapter, path):
    model = build_discriminator(adapter.keras)
    model.save(path)
    return model


def _load(adapter, path):
    if adapter.name == "tf_keras":
        return adapter.keras.models.load_model(path)
    return adapter.keras.saving.load_model(path)


# End to end, in a subprocess.


def test_plan_prints_the_table(tmp_path):
    path = tmp_path / "d.keras"
    _saved_discriminator(ADAPTERS[0], path)
    result = run("plan", str(path), "--policy", "sngan", "--mode", "reparam")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "Plan for model 'discriminator' (mode='reparam')"
    assert lines[-2] == "3 changes (3 WrapSpectral), 0 skipped"
    assert lines[-1] == "kernels: 3 normalized"


def test_backend_runs_the_command_on_that_backend(tmp_path, capfd):
    keras3_file, tf_keras_file = tmp_path / "d.keras", tmp_path / "d.h5"
    _saved_discriminator(ADAPTERS[0], keras3_file)
    _saved_discriminator(ADAPTERS[1], tf_keras_file)
    argv = ["plan", str(keras3_file), "--policy", "sngan"]
    assert cli.main(["--backend", "jax", *argv]) == 0
    assert "3 changes (3 ConstrainKernel)" in capfd.readouterr().out
    # The error names the backend the command ran on.
    argv = ["plan", str(tf_keras_file), "--policy", "sngan"]
    assert cli.main(["--backend=jax", *argv]) == 2
    assert "runs on the 'jax' backend in this process" in capfd.readouterr().err


@pytest.mark.filterwarnings("ignore:You are saving your model as an HDF5")
@pytest.mark.parametrize(
    "adapter, suffix",
    [(ADAPTERS[0], ".keras"), (ADAPTERS[1], ".h5")],
    ids=["keras3-keras", "tf_keras-h5"],
)
def test_apply_saves_the_normalized_model(tmp_path, adapter, suffix):
    source, target = tmp_path / f"d{suffix}", tmp_path / f"d_sn{suffix}"
    original = _saved_discriminator(adapter, source)
    before = source.read_bytes()
    result = run("apply", str(source), str(target), "--policy", "sngan")
    assert result.returncode == 0, result.stderr
    assert "3 changes (3 ConstrainKernel)" in result.stdout
    assert source.read_bytes() == before
    loaded = _load(adapter, target)
    assert isinstance(loaded.get_layer("conv1").kernel_constraint, adapter.SpectralNorm)
    for layer in original.layers:
        for saved, restored in zip(
            layer.weights, loaded.get_layer(layer.name).weights, strict=True
        ):
            np.testing.assert_array_equal(np.asarray(saved), np.asarray(restored))


def test_apply_refuses_to_overwrite_its_input(tmp_path):
    path = tmp_path / "d.keras"
    _saved_discriminator(ADAPTERS[0], path)
    before = path.read_bytes()
    result = run("apply", "d.keras", str(path), "--policy", "sngan", cwd=tmp_path)
    assert_one_line_error(result, "Refusing to overwrite the input file")
    assert path.read_bytes() == before


def test_a_file_that_is_not_a_model_exits_2_with_one_line(tmp_path):
    (tmp_path / "notes.keras").write_text("not a model")
    assert_one_line_error(
        run("plan", str(tmp_path / "notes.keras"), "--policy", "sngan"),
        "is not a Keras model file",
    )


def test_demo_writes_its_pictures(tmp_path):
    result = run("demo", "--steps", "20", "--out", "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Plan for model 'generator'" in result.stdout
    assert "Plan for model 'discriminator'" in result.stdout
    assert "trained 20 steps" in result.stdout
    assert "largest deviation from 1" in result.stdout
    out = tmp_path / "out"
    files = sorted(path.name for path in out.iterdir())
    assert files == ["discriminator.svg", "generator.svg", "samples.png", "sigma.svg"]
    for name in ["discriminator.svg", "generator.svg", "sigma.svg"]:
        assert ET.parse(out / name).getroot().tag == "{http://www.w3.org/2000/svg}svg"
    sigma = ET.parse(out / "sigma.svg").getroot()
    lines = [
        line
        for line in sigma.iter("{http://www.w3.org/2000/svg}polyline")
        if line.get("stroke") != "black"
    ]
    assert [len(line.get("points").split()) for line in lines] == [20, 20, 20]
    samples = tf.io.decode_png((out / "samples.png").read_bytes())
    assert samples.shape[-1] == 3 and samples.shape[0] > 8 * 16


def test_help():
    result = run("--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: python -m kerasnorm")
    assert all(command in result.stdout for command in ("plan", "apply", "demo"))


@pytest.mark.skipif(
    shutil.which("kerasnorm") is None, reason="the console script is not installed"
)
def test_console_script():
    result = run("--version", command=("kerasnorm",))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"kerasnorm {kerasnorm.__version__}"


# The same errors, in-process.


def test_no_arguments_run_the_demo(monkeypatch):
    calls = []
    monkeypatch.setattr(cli.demo, "run", lambda **kwargs: calls.append(kwargs))
    assert cli.main([]) == 0
    assert calls == [{"steps": 300, "out": "kerasnorm-demo", "seed": 0}]


@pytest.mark.parametrize("command", ["plan", "apply", "demo"])
def test_help_of_each_command(capsys, command):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command, "--help"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: kerasnorm {command}")


@pytest.mark.parametrize(
    "argv, message",
    [
        (["plan", "m.keras"], "the following arguments are required: --policy"),
        (["plan", "m.keras", "--policy", "nope"], "invalid choice: 'nope'"),
        (["demo", "--steps", "0"], "expected a positive integer, got '0'"),
        (["demo", "--steps", "many"], "expected a positive integer"),
        (["plan", "m.keras", "--policy", "sngan", "--role", "critic"], "critic"),
        (["plan", "m.keras", "--policy", "sngan", "--mode", "wrap"], "wrap"),
        (["apply", "m.keras", "--policy", "sngan"], "OUT_FILE"),
        (["bogus"], "invalid choice: 'bogus'"),
    ],
)
def test_bad_arguments(capsys, argv, message):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    stderr = capsys.readouterr().err
    assert stderr.count("\n") == 1 and message in stderr


def test_files_that_are_not_models(capsys, tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "notes.keras").write_text("hello")
    (tmp_path / "weights.h5").write_bytes(b"")  # not HDF5 either
    cases = {
        "missing.keras": "No such file",
        "notes.txt": "expected a .keras or .h5 file",
        "notes.keras": "is not a Keras model file",
        "weights.h5": "is not a Keras model file",
    }
    for name, message in cases.items():
        code = cli.main(["plan", str(tmp_path / name), "--policy", "sngan"])
        stderr = capsys.readouterr().err
        assert code == 2
        assert stderr.count("\n") == 1 and message in stderr, stderr


def test_apply_errors(capsys, tmp_path):
    source = tmp_path / "d.keras"
    _saved_discriminator(ADAPTERS[0], source)
    (tmp_path / "link.keras").symlink_to(source)
    cases = [
        ("link.keras", "Refusing to overwrite the input file"),
        ("d.h5", "Keras 3 model, which saves to .keras files only"),
        ("d.txt", "OUT_FILE must end in .keras"),
        ("missing/d.keras", "does not exist"),
    ]
    for target, message in cases:
        code = cli.main(
            ["apply", str(source), str(tmp_path / target), "--policy", "sngan"]
        )
        stderr = capsys.readouterr().err
        assert code == 2 and message in stderr, stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["d.keras", "link.keras"]


def test_apply_reads_a_tf_keras_keras_file(capsys, tmp_path):
    """A .keras file written by tf-keras is loaded, and saved, by tf-keras."""
    adapter = ADAPTERS[1]
    source, target = tmp_path / "g.keras", tmp_path / "g_pn.keras"
    build_generator(adapter.keras).save(source)
    assert cli.main(["apply", str(source), str(target), "--policy", "progan"]) == 0
    assert "4 changes (4 InsertPixelNorm)" in capsys.readouterr().out
    loaded = _load(adapter, target)
    assert isinstance(loaded.get_layer("act1_pixel_norm"), adapter.PixelNorm)


def test_an_undecidable_role_asks_for_one(capsys, tmp_path):
    keras = ADAPTERS[0].keras
    inputs = keras.Input((4,))
    path = tmp_path / "model.keras"
    keras.Model(inputs, keras.layers.Dense(2)(inputs), name="model").save(path)
    assert cli.main(["plan", str(path), "--policy", "sngan"]) == 2
    stderr = capsys.readouterr().err
    assert "Cannot tell whether model 'model'" in stderr
    assert stderr.count("\n") == 1
    assert (
        cli.main(["plan", str(path), "--policy", "sngan", "--role", "discriminator"])
        == 0
    )
    assert "1 changes (1 ConstrainKernel)" in capsys.readouterr().out
