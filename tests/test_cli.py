"""The `kerasnorm` command, end to end in a subprocess, and its errors in-process."""

import os
import shutil
import subprocess
import sys
import textwrap
import uuid
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import tensorflow as tf

import _kerasnorm_launcher as launcher
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


def test_demo_writes_its_pictures_and_report(tmp_path):
    result = run("demo", "--steps", "20", "--out", "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Plan for model 'generator'" in result.stdout
    assert "Plan for model 'discriminator'" in result.stdout
    assert "trained 20 steps of each GAN" in result.stdout
    out = tmp_path / "out"
    files = sorted(path.name for path in out.iterdir())
    assert files == [
        "discriminator.svg",
        "generator.svg",
        "report.txt",
        "samples.png",
        "sigma.svg",
    ]
    for name in ["discriminator.svg", "generator.svg", "sigma.svg"]:
        assert ET.parse(out / name).getroot().tag == "{http://www.w3.org/2000/svg}svg"
    # Two panels of three kernels' lines, 20 points each (19 segments); the
    # grid lines have one segment.
    sigma = ET.parse(out / "sigma.svg").getroot()
    series = [
        path
        for path in sigma.iter("{http://www.w3.org/2000/svg}path")
        if path.get("clip-path") and path.get("d", "").count("L") == 19
    ]
    assert len(series) == 6
    samples = tf.io.decode_png((out / "samples.png").read_bytes())
    assert samples.shape[1] > 2 * samples.shape[0]  # three grids side by side
    report = (out / "report.txt").read_text()
    assert report in result.stdout
    rows = {
        line.split()[0]: line.split()
        for line in report.splitlines()
        if line.split()[:1] in (["conv1"], ["conv2"], ["score"])
    }
    assert sorted(rows) == ["conv1", "conv2", "score"]
    for cells in rows.values():
        # name, then twice: first -> last (largest); without, then with.
        largest_without, last_without = float(cells[4].strip("()")), float(cells[3])
        assert largest_without >= last_without
        assert abs(float(cells[7]) - 1) < 1e-2


def test_help():
    result = run("--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: python -m kerasnorm")
    assert all(command in result.stdout for command in ("plan", "apply", "demo"))


@pytest.mark.skipif(
    shutil.which("kerasnorm") is None, reason="the console script is not installed"
)
def test_console_script_is_quiet_by_default():
    environment = {
        name: value
        for name, value in os.environ.items()
        if name != launcher.LEVEL_VARIABLE
    }
    result = subprocess.run(
        ["kerasnorm", "--version"],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"kerasnorm {kerasnorm.__version__}"
    # TensorFlow's start-up lines, which TF_CPP_MIN_LOG_LEVEL alone does not
    # hide (and an old install, whose script skips the launcher, prints).
    for noise in ("I0000", "oneDNN", "absl::InitializeLog", "cuda"):
        assert noise not in result.stderr, result.stderr


@pytest.mark.parametrize(
    "argv, environ, level",
    [
        (["demo"], {}, "3"),
        (["demo"], {"TF_CPP_MIN_LOG_LEVEL": "1"}, "1"),
        (["-v", "demo"], {"TF_CPP_MIN_LOG_LEVEL": "3"}, "0"),
        (["demo", "--verbose"], {}, "0"),
        (["--quiet", "demo"], {"TF_CPP_MIN_LOG_LEVEL": "0"}, "3"),
        (["plan", "m.keras", "--policy", "sngan", "--", "-v"], {}, "3"),
    ],
)
def test_the_launcher_sets_tensorflows_log_level(argv, environ, level):
    assert launcher.tensorflow_log_level(argv, environ) == level


def test_the_launcher_keeps_what_the_level_does_not_hide():
    lines = [
        "WARNING: All log messages before absl::InitializeLog() is called are "
        "written to STDERR\n",
        "I0000 00:00:1796197401.881722    6974 port.cc:153] oneDNN custom ...\n",
        "W0000 00:00:1796197401.881722    6974 x.cc:1] a warning\n",
        "E0000 00:00:1796197405.391135    6974 cuda_platform.cc:52] failed\n",
        "UserWarning: from Python\n",
    ]
    kept = [line[0] for line in lines if launcher._kept(line, 2)]
    assert kept == ["E", "U"]
    assert [line[0] for line in lines if launcher._kept(line, 3)] == ["U"]


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


# Quiet, verbose, stages.


def test_apply_prints_its_stages(capsys, tmp_path):
    source, target = tmp_path / "d.keras", tmp_path / "d_sn.keras"
    _saved_discriminator(ADAPTERS[0], source)
    assert cli.main(["apply", str(source), str(target), "--policy", "sngan"]) == 0
    captured = capsys.readouterr()
    assert "3 changes (3 ConstrainKernel)" in captured.out
    assert captured.out.endswith(f"saved {target}\n")
    stages = [line.split("] ", 1)[1] for line in captured.err.splitlines()]
    assert stages == [
        f"loading {source}",
        "planning: sngan",
        "rewriting",
        f"saving {target}",
    ]
    assert all(
        line.startswith("[") and " s] " in line for line in captured.err.splitlines()
    )


def test_apply_draws_a_progress_bar_on_a_terminal(capsys, monkeypatch, tmp_path):
    source, target = tmp_path / "d.keras", tmp_path / "d_sn.keras"
    _saved_discriminator(ADAPTERS[0], source)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert cli.main(["apply", str(source), str(target), "--policy", "sngan"]) == 0
    out = capsys.readouterr().out
    # Six layers after the input: each cloned, then its weights copied.
    assert "12/12" in out and "layer" in out
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False)
    again = ["apply", str(source), str(tmp_path / "again.keras"), "--policy", "sngan"]
    assert cli.main(again) == 0
    assert "/12" not in capsys.readouterr().out


@pytest.mark.parametrize("where", ["before", "after"])
def test_quiet_prints_only_the_result(capsys, tmp_path, where):
    source, target = tmp_path / "d.keras", tmp_path / "d_sn.keras"
    _saved_discriminator(ADAPTERS[0], source)
    argv = ["apply", str(source), str(target), "--policy", "sngan"]
    argv = ["--quiet", *argv] if where == "before" else [*argv, "-q"]
    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    assert captured.out == f"saved {target}\n"
    assert captured.err == ""


def test_quiet_demo_prints_one_line(capsys, monkeypatch):
    def run(**kwargs):
        print("a plan, a progress bar")
        return {"conv1": 1.0, "score": 0.9999}

    monkeypatch.setattr(cli.demo, "run", run)
    assert cli.main(["demo", "--quiet", "--steps", "5", "--out", "pics"]) == 0
    assert capsys.readouterr().out == (
        "trained 5 steps; the discriminator kernels' spectral norms are within "
        f"1.0e-04 of 1; pictures in pics{os.sep}\n"
    )


def test_verbose_shows_the_traceback_of_an_error(capsys, tmp_path):
    path = tmp_path / "missing.keras"
    assert cli.main(["plan", str(path), "--policy", "sngan", "--verbose"]) == 2
    stderr = capsys.readouterr().err
    assert "Traceback" in stderr
    assert stderr.splitlines()[-1].startswith("kerasnorm plan: error: No such file")


def test_quiet_and_verbose_exclude_each_other(capsys):
    with pytest.raises(SystemExit):
        cli.main(["demo", "-q", "-v"])
    assert "not allowed with argument" in capsys.readouterr().err


# Models with custom layers, --import.

CUSTOM_LAYER = """
import tensorflow as tf
import {keras}

@{register}(package="{package}")
class ReflectionPadding2D({keras}.layers.Layer):
    def __init__(self, padding=1, **kwargs):
        super().__init__(**kwargs)
        self.padding = padding

    def call(self, x):
        p = self.padding
        return {pad}(x, [[0, 0], [p, p], [p, p], [0, 0]], mode="{mode}")

    def compute_output_shape(self, shape):
        p = self.padding
        return (shape[0], shape[1] + 2 * p, shape[2] + 2 * p, shape[3])

    def get_config(self):
        return {{**super().get_config(), "padding": self.padding}}
"""

# What differs between the Kerases in CUSTOM_LAYER.
CUSTOM_LAYER_NAMES = {
    "keras3": dict(
        keras="keras",
        register="keras.saving.register_keras_serializable",
        pad="keras.ops.pad",
        mode="reflect",
    ),
    "tf_keras": dict(
        keras="tf_keras",
        register="tf_keras.utils.register_keras_serializable",
        pad="tf.pad",
        mode="REFLECT",
    ),
}


def _saved_model_with_a_custom_layer(adapter, folder, suffix, monkeypatch):
    """Saves a CycleGAN-like generator with a registered ReflectionPadding2D.

    Returns the file, the module's name and the registration's package;
    the module is then forgotten and its class unregistered, as in a new
    process.
    """
    module = f"custom_layers_{uuid.uuid4().hex[:8]}"
    package = f"Test{module}"
    names = CUSTOM_LAYER_NAMES[adapter.name]
    saving = adapter.keras.utils if adapter.name == "tf_keras" else adapter.keras.saving
    registry = saving.get_custom_objects()
    (folder / f"{module}.py").write_text(
        textwrap.dedent(CUSTOM_LAYER).format(package=package, **names)
    )
    monkeypatch.syspath_prepend(str(folder))
    layers = __import__(module)
    keras = adapter.keras
    image = keras.Input((8, 8, 3))
    x = layers.ReflectionPadding2D(1, name="pad")(image)
    x = keras.layers.Conv2D(4, 3, name="conv")(x)
    x = keras.layers.LeakyReLU(0.2, name="act")(x)
    x = keras.layers.Conv2D(3, 1, activation="tanh", name="to_rgb")(x)
    path = folder / f"generator{suffix}"
    keras.Model(image, x, name="generator").save(path)
    del sys.modules[module]
    del registry[f"{package}>ReflectionPadding2D"]
    return path, module, package


@pytest.mark.filterwarnings("ignore:You are saving your model as an HDF5")
@pytest.mark.parametrize(
    "adapter, suffix",
    [(ADAPTERS[0], ".keras"), (ADAPTERS[1], ".h5"), (ADAPTERS[1], ".keras")],
    ids=["keras3-keras", "tf_keras-h5", "tf_keras-keras"],
)
def test_import_loads_a_model_with_a_custom_layer(
    capsys, tmp_path, monkeypatch, adapter, suffix
):
    path, module, package = _saved_model_with_a_custom_layer(
        adapter, tmp_path, suffix, monkeypatch
    )
    target = tmp_path / f"generator_pn{suffix}"
    argv = ["apply", str(path), str(target), "--policy", "progan"]
    assert cli.main(argv) == 2
    error = capsys.readouterr().err.splitlines()[-1]
    assert f"'{package}>ReflectionPadding2D'" in error
    assert f"--import {module if suffix == '.keras' else 'my_layers'}" in error
    assert not target.exists()

    assert cli.main([*argv, "--import", module]) == 0
    assert "1 changes (1 InsertPixelNorm)" in capsys.readouterr().out
    loaded = _load(adapter, target)
    assert type(loaded.get_layer("pad")).__name__ == "ReflectionPadding2D"
    assert isinstance(loaded.get_layer("act_pixel_norm"), adapter.PixelNorm)


def test_apply_of_a_missing_file_exits_2(capsys, tmp_path):
    argv = ["apply", str(tmp_path / "absent.keras"), str(tmp_path / "out.keras")]
    assert cli.main([*argv, "--policy", "sngan", "--verbose"]) == 2
    assert "error: No such file" in capsys.readouterr().err.splitlines()[-1]


def test_import_of_a_missing_module_names_it(capsys, tmp_path):
    path = tmp_path / "d.keras"
    _saved_discriminator(ADAPTERS[0], path)
    argv = ["plan", str(path), "--policy", "sngan", "--import", "no_such_module"]
    assert cli.main(argv) == 2
    stderr = capsys.readouterr().err
    assert stderr.count("\n") == 1
    assert "Cannot import module 'no_such_module' given to --import" in stderr
