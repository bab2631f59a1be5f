"""The `kerasnorm` command: show a plan, rewrite a saved model, run the demo.

    kerasnorm [--backend B] [-q | -v] plan MODEL_FILE --policy P [--role R]
        [--mode M] [--import MODULE ...]
    kerasnorm [--backend B] [-q | -v] apply IN_FILE OUT_FILE --policy P
        [--role R] [--mode M] [--import MODULE ...]
    kerasnorm [--backend B] [-q | -v] demo [--steps N] [--out DIR] [--seed S]

`python -m kerasnorm` is the same command. With no arguments, both run the
demo. A bad argument, or a file that is not a Keras model, ends the command
with one line on stderr and exit status 2; an input file is never
overwritten. The console script starts in `_kerasnorm_launcher`, which sets
TensorFlow's log level before this module (and TensorFlow) is imported.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import io
import json
import logging
import os
import pathlib
import subprocess
import sys
import time
import traceback
import warnings
import zipfile
from collections.abc import Iterator, Sequence

import h5py

import kerasnorm
from kerasnorm import demo
from kerasnorm.adapters import ADAPTERS, TRAINING_BACKENDS, Adapter, keras3_backend
from kerasnorm.errors import KerasNormError, KerasNormValueError, UnsupportedKerasError
from kerasnorm.policies import registered_policies
from kerasnorm.rewrite import rewrite
from kerasnorm.roles import ROLES

# The adapter name of the Keras that writes each major `keras_version`.
_ADAPTER_BY_MAJOR_VERSION = {"3": "keras3", "2": "tf_keras"}
MODEL_SUFFIXES = (".keras", ".h5")
_FILE_HELP = "a model saved by Keras 3 or tf-keras (.keras or .h5)"
QUIET, NORMAL, VERBOSE = -1, 0, 1
# The console script's module, which quiets TensorFlow before importing it.
_LAUNCHER = "_kerasnorm_launcher"
# The classes of a Keras's own in a saved tf-keras config, which records no
# module: found in one of these namespaces.
_KERAS_NAMESPACES = (
    "layers",
    "models",
    "initializers",
    "regularizers",
    "constraints",
    "optimizers",
    "losses",
    "metrics",
    "activations",
)
_KERAS_MODELS = {"Functional", "Sequential", "Model"}


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that reports a bad argument in one line."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def main(argv: Sequence[str] | None = None, prog: str = "kerasnorm") -> int:
    """Runs the `kerasnorm` command.

    Args:
        argv: The arguments, without the program name; defaults to
            `sys.argv[1:]`. No arguments at all run the demo.
        prog: The program name shown in help and errors.

    Returns:
        The exit status: 0, or 2 after a one-line error on stderr for a bad
        argument, a file that is not a Keras model, or an error kerasnorm
        raises (such as a role it cannot decide). With `--verbose`, the
        error's traceback comes before that line.

    Example:

    >>> main(["plan", "missing.keras", "--policy", "sngan"])
    2
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(prog)
    args = parser.parse_args(argv or ["demo"])
    if args.backend is not None and args.backend != keras3_backend():
        return _run_on_backend(args.backend, argv)
    try:
        with _python_logs(args.verbosity):
            args.command(args)
    except KerasNormError as error:
        if args.verbosity >= VERBOSE:
            traceback.print_exc()
        # kerasnorm's messages say what to do in a sentence or two; keep
        # them on one line.
        where = f"{prog} {args.command.__name__.lstrip('_')}"
        message = " ".join(str(error).split())
        print(f"{where}: error: {message} (see '{where} --help')", file=sys.stderr)
        return 2
    return 0


def _run_on_backend(backend: str, argv: list[str]) -> int:
    """Runs the command again in a process whose Keras 3 runs on `backend`.

    Keras fixes its backend when it is first imported, which this process
    has done.
    """
    rest, skip_value = [], False
    for argument in argv:
        if skip_value or argument.startswith("--backend="):
            skip_value = False
        elif argument == "--backend":
            skip_value = True
        else:
            rest.append(argument)
    environment = {**os.environ, "KERAS_BACKEND": backend}
    # Through the launcher when it is installed, so that the new process is
    # as quiet as this one.
    module = "kerasnorm" if importlib.util.find_spec(_LAUNCHER) is None else _LAUNCHER
    command = [sys.executable, "-m", module, *(rest or ["demo"])]
    return subprocess.run(command, env=environment, check=False).returncode


def build_parser(prog: str = "kerasnorm") -> argparse.ArgumentParser:
    """The argument parser of the `kerasnorm` command and its subcommands."""
    parser = _Parser(
        prog=prog,
        description="Rewrite Keras models with the normalizations GAN papers "
        "prescribe. With no arguments, runs the demo.",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {kerasnorm.__version__}"
    )
    parser.add_argument(
        "--backend",
        choices=TRAINING_BACKENDS,
        help="the Keras 3 backend to run on (default: KERAS_BACKEND, or Keras's "
        "own default); tf-keras models need tensorflow",
    )
    _add_verbosity_arguments(parser, default=NORMAL)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    plan = commands.add_parser(
        "plan",
        help="print what a policy would change in a saved model",
        description="Print the plan of a policy for a saved model: every "
        "change, the rule that makes it, and what is skipped. Nothing is "
        "written.",
    )
    plan.add_argument("model_file", metavar="MODEL_FILE", help=_FILE_HELP)
    _add_policy_arguments(plan)
    _add_import_argument(plan)
    _add_verbosity_arguments(plan)
    plan.set_defaults(command=_plan)

    apply = commands.add_parser(
        "apply",
        help="rewrite a saved model and save the result",
        description="Normalize a saved model as a policy prescribes and save "
        "the new model. The input file is never overwritten.",
    )
    apply.add_argument("in_file", metavar="IN_FILE", help=_FILE_HELP)
    apply.add_argument(
        "out_file",
        metavar="OUT_FILE",
        help="where to save the new model: a .keras file, or .h5 for a tf-keras "
        "model; must not be IN_FILE",
    )
    _add_policy_arguments(apply)
    _add_import_argument(apply)
    _add_verbosity_arguments(apply)
    apply.set_defaults(command=_apply)

    demo_parser = commands.add_parser(
        "demo",
        help="normalize and train a small GAN, and draw what happened",
        description=demo.__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo_parser.add_argument(
        "--steps",
        type=_positive_int,
        default=300,
        help="training steps (default: %(default)s)",
    )
    demo_parser.add_argument(
        "--out",
        default="kerasnorm-demo",
        help="the folder to write the pictures into (default: %(default)s)",
    )
    demo_parser.add_argument(
        "--seed", type=int, default=0, help="random seed (default: %(default)s)"
    )
    _add_verbosity_arguments(demo_parser)
    demo_parser.set_defaults(command=_demo)
    return parser


def _add_verbosity_arguments(
    parser: argparse.ArgumentParser, default: object = argparse.SUPPRESS
) -> None:
    """`--quiet` and `--verbose`, before or after the command name.

    Only the main parser has a default: a subparser's default would
    overwrite a flag given before the command.
    """
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "-q",
        "--quiet",
        dest="verbosity",
        action="store_const",
        const=QUIET,
        default=default,
        help="print only errors and the result",
    )
    group.add_argument(
        "-v",
        "--verbose",
        dest="verbosity",
        action="store_const",
        const=VERBOSE,
        default=default,
        help="show TensorFlow's logs, more detail, and tracebacks of errors",
    )


def _add_import_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--import",
        dest="imports",
        action="append",
        default=[],
        metavar="MODULE",
        help="a Python module to import before loading, such as the one that "
        "registers the model's custom layers (searched on sys.path, then in "
        "the current folder); repeat for several",
    )


def _add_policy_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--policy",
        action="append",
        required=True,
        choices=registered_policies(),
        help="the policy to apply; repeat to apply several in order",
    )
    parser.add_argument(
        "--role",
        default="auto",
        choices=("auto", *ROLES),
        help="decide each part's role from its structure and name (auto, the "
        "default), or treat the whole model as a generator or a discriminator",
    )
    parser.add_argument(
        "--mode",
        default="constraint",
        choices=("constraint", "reparam"),
        help="SpectralNorm kernel constraints (the default) or "
        "SpectralNormalization wrappers",
    )


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


@contextlib.contextmanager
def _python_logs(verbosity: int) -> Iterator[None]:
    """Hides TensorFlow's Python warnings unless `--verbose`.

    tf-keras logs through the `tensorflow` logger as it loads a file ("No
    training configuration found in the save file"), and warns that .h5 is
    a legacy format when OUT_FILE, as asked, is one.
    """
    logger = logging.getLogger("tensorflow")
    level = logger.level
    with warnings.catch_warnings():
        if verbosity < VERBOSE:
            logger.setLevel(logging.ERROR)
            warnings.filterwarnings("ignore", "You are saving your model as an HDF5")
        try:
            yield
        finally:
            logger.setLevel(level)


def _plan(args: argparse.Namespace) -> None:
    import_modules(args.imports)
    model = load_model(args.model_file)
    print(kerasnorm.plan(model, args.policy, role=args.role, mode=args.mode))


def import_modules(names: Sequence[str]) -> None:
    """Imports each module, so that the custom classes it registers load.

    The current folder is searched after `sys.path` (the console script's
    `sys.path` starts with its own folder, not the current one).

    Args:
        names: Module names, such as `"my_layers"` or `"gan.layers"`.

    Raises:
        KerasNormValueError: If a module cannot be imported; the message
            names it and says why.
    """
    here = os.getcwd()
    added = here not in sys.path and "" not in sys.path
    if added:
        sys.path.append(here)
    try:
        for name in names:
            try:
                importlib.import_module(name)
            except Exception as error:
                raise KerasNormValueError(
                    f"Cannot import module {name!r} given to --import: "
                    f"{_one_line(error)}."
                ) from error
    finally:
        if added:
            sys.path.remove(here)


def _one_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def _progress_bar(args: argparse.Namespace, adapter: Adapter):
    """A bar the rewrite redraws in place, on a terminal and unless quiet.

    Returns:
        A `progress(done, total)` callable for `rewrite`, or None.
    """
    if args.verbosity <= QUIET or not sys.stdout.isatty():
        return None
    bar = None

    def update(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = adapter.keras.utils.Progbar(total, unit_name="layer")
        bar.update(done)

    return update


class _Stages:
    """Prints `[  1.2 s] stage` lines on stderr, unless the command is quiet."""

    def __init__(self, verbosity: int):
        self.verbosity = verbosity
        self.start = time.perf_counter()

    def __call__(self, text: str, detail: str = "") -> None:
        if self.verbosity <= QUIET:
            return
        if detail and self.verbosity >= VERBOSE:
            text = f"{text} ({detail})"
        elapsed = time.perf_counter() - self.start
        print(f"[{elapsed:5.1f} s] {text}", file=sys.stderr, flush=True)


def _apply(args: argparse.Namespace) -> None:
    source, target = pathlib.Path(args.in_file), pathlib.Path(args.out_file)
    if target.suffix.lower() not in MODEL_SUFFIXES:
        raise KerasNormValueError(
            f"Cannot save to {str(target)!r}: OUT_FILE must end in .keras (or "
            ".h5 for a tf-keras model)."
        )
    if _same_file(source, target):
        raise KerasNormValueError(
            f"Refusing to overwrite the input file {str(source)!r}: give "
            "another OUT_FILE."
        )
    if not target.parent.is_dir():
        raise KerasNormValueError(
            f"Cannot save to {str(target)!r}: folder {str(target.parent)!r} does "
            "not exist."
        )
    stage = _Stages(args.verbosity)
    import_modules(args.imports)
    size = f"{source.stat().st_size:,} bytes" if source.is_file() else ""
    stage(f"loading {source}", detail=size)
    model = load_model(source)
    adapter = kerasnorm.adapter_for(model)
    if target.suffix.lower() == ".h5" and adapter.name != "tf_keras":
        raise KerasNormValueError(
            f"{str(source)!r} holds a Keras 3 model, which saves to .keras "
            "files only: name OUT_FILE '*.keras'."
        )
    stage(
        f"planning: {' then '.join(args.policy)}",
        detail=f"{adapter.name} model {model.name!r} of {len(model.layers)} "
        f"layers, role={args.role}, mode={args.mode}",
    )
    the_plan = kerasnorm.plan(model, args.policy, role=args.role, mode=args.mode)
    if args.verbosity > QUIET:
        print(the_plan)
    stage("rewriting")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        new_model = rewrite(the_plan, progress=_progress_bar(args, adapter))
    if args.verbosity > QUIET:
        for warning in caught:
            print(f"note: {warning.message}", file=sys.stderr)
    stage(f"saving {target}")
    new_model.save(target)
    print(f"saved {target}")


def _demo(args: argparse.Namespace) -> None:
    if args.verbosity > QUIET:
        demo.run(steps=args.steps, out=args.out, seed=args.seed)
        return
    with contextlib.redirect_stdout(io.StringIO()):
        sigmas = demo.run(steps=args.steps, out=args.out, seed=args.seed)
    worst = max(abs(sigma - 1.0) for sigma in sigmas.values())
    print(
        f"trained {args.steps} steps; the discriminator kernels' spectral norms "
        f"are within {worst:.1e} of 1; pictures in {args.out}{os.sep}"
    )


def _same_file(first: pathlib.Path, second: pathlib.Path) -> bool:
    if first.resolve() == second.resolve():
        return True
    return first.exists() and second.exists() and first.samefile(second)


def load_model(path: str | os.PathLike):
    """Loads a model file with the Keras that saved it.

    A `.keras` file records the version of the Keras that wrote it in its
    `metadata.json`, an `.h5` file in its `keras_version` attribute: 3.x
    files are loaded with Keras 3 (`keras.saving.load_model`), 2.x files
    with tf-keras (`tf_keras.models.load_model`). A file that records no
    version is tried with Keras 3, then tf-keras.

    Args:
        path: A `.keras` or `.h5` file.

    Returns:
        The model, compiled if it was saved compiled.

    Raises:
        KerasNormValueError: If the file does not exist, or is not a model
            file either Keras can load; if loading fails on classes neither
            Keras nor a registration knows, the message names them.
        UnsupportedKerasError: If it is a tf-keras file and Keras 3 runs on
            a backend other than TensorFlow.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise KerasNormValueError(f"No such file: {str(path)!r}.")
    suffix = path.suffix.lower()
    if suffix not in MODEL_SUFFIXES:
        raise KerasNormValueError(
            f"{str(path)!r} is not a Keras model file: expected a .keras or .h5 file."
        )
    try:
        version = _saved_keras_version(path, suffix)
    except (OSError, zipfile.BadZipFile, KeyError, ValueError) as error:
        raise KerasNormValueError(
            f"{str(path)!r} is not a Keras model file ({error})."
        ) from error
    name = _ADAPTER_BY_MAJOR_VERSION.get(version.split(".")[0])
    candidates = [adapter for adapter in ADAPTERS if name in (None, adapter.name)]
    if not candidates:
        raise UnsupportedKerasError(
            f"{str(path)!r} was saved by tf-keras (Keras {version}), which "
            "kerasnorm serves beside Keras 3 on TensorFlow only, but Keras 3 "
            f"runs on the {keras3_backend()!r} backend in this process. Run the "
            "command with --backend tensorflow."
        )
    failures = []
    for candidate in candidates:
        try:
            return candidate.keras.models.load_model(path)
        except Exception as error:
            first_line = str(error).strip().splitlines()[0] if str(error) else ""
            failures.append(f"{candidate.name}: {type(error).__name__} {first_line}")
    # Keras's own message for an unknown class varies with the Keras and the
    # format ("could not be deserialized properly", "'str' object is not
    # callable"): the saved config says which class it was.
    unknown = _unknown_classes(candidates[-1], _saved_config(path, suffix))
    if unknown:
        modules = sorted({module for _, module in unknown if module})
        example = modules[0] if modules else "my_layers"
        names = ", ".join(
            repr(name) + (f" (module {module!r})" if module else "")
            for name, module in unknown
        )
        raise KerasNormValueError(
            f"Cannot load {str(path)!r}: it holds custom classes this process "
            f"does not know: {names}. Import the module that defines and "
            f"registers them with --import, e.g. --import {example}."
        )
    raise KerasNormValueError(
        f"Cannot load {str(path)!r} as a Keras model ({'; '.join(failures)})."
    )


def _saved_keras_version(path: pathlib.Path, suffix: str) -> str:
    """The version of the Keras that saved `path`, or "" if it says none."""
    if suffix == ".keras":
        with zipfile.ZipFile(path) as archive:
            metadata = json.loads(archive.read("metadata.json"))
        return str(metadata.get("keras_version", ""))
    with h5py.File(path, "r") as file:
        if "model_config" not in file.attrs:
            raise ValueError("an HDF5 file without a model config")
        version = file.attrs.get("keras_version", "")
    return version.decode() if isinstance(version, bytes) else str(version)


def _saved_config(path: pathlib.Path, suffix: str) -> object:
    """The model config saved in `path`, or None if it cannot be read."""
    try:
        if suffix == ".keras":
            with zipfile.ZipFile(path) as archive:
                return json.loads(archive.read("config.json"))
        with h5py.File(path, "r") as file:
            config = file.attrs["model_config"]
        return json.loads(config.decode() if isinstance(config, bytes) else config)
    except (OSError, zipfile.BadZipFile, KeyError, ValueError):
        return None


def _unknown_classes(adapter: Adapter, config: object) -> list[tuple[str, str]]:
    """(name, module) of each class in `config` that `adapter`'s Keras lacks.

    A class is a dict with a `class_name`. Keras 3 and tf-keras's `.keras`
    files record its module, `keras...` for Keras's own, and the name it is
    registered under; tf-keras's `.h5` files record only the name, with the
    registration's package before a `>` for a registered class.
    """
    keras = adapter.keras
    registered = keras.saving.get_registered_object
    unknown: dict[str, str] = {}
    for entry in _class_entries(config):
        name = entry.get("registered_name") or entry["class_name"]
        module = entry.get("module") or ""
        if name.startswith("__") or name in unknown or registered(name) is not None:
            continue
        if "module" in entry:
            own = module.split(".")[0] in ("keras", "tf_keras") and ">" not in name
        else:
            own = ">" not in name and (
                name in _KERAS_MODELS
                or any(
                    hasattr(getattr(keras, space, None), name)
                    for space in _KERAS_NAMESPACES
                )
            )
        if not own:
            unknown[name] = module
    return list(unknown.items())


def _class_entries(config: object) -> Iterator[dict]:
    if isinstance(config, dict):
        if isinstance(config.get("class_name"), str):
            yield config
        for value in config.values():
            yield from _class_entries(value)
    elif isinstance(config, list):
        for value in config:
            yield from _class_entries(value)
