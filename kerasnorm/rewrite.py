"""`rewrite`: carry out a `Plan`, returning a new model; the input is never touched.

The steps, for the top model and every nested model (innermost first):

1. Copy the model's `ModelIR` and insert the planned layers into the copy.
2. Clone every layer and op from its config, with the planned constraints
   added to the config, and wrap the clones the plan wraps. A layer shared
   by several calls or models gets one clone, so it stays shared.
3. Replay the graph on new inputs through the clones (a Sequential is
   rebuilt as a Sequential from its layers).

Then every clone gets its original's weights, variable by variable (no
numpy copy; a wrapper stores them as it keeps them), and the constraints'
states are created.
"""

from __future__ import annotations

import dataclasses
import inspect
import warnings
from collections.abc import Callable, Iterator

import keras

from kerasnorm.actions import ConstrainKernel, constraint_groups, is_spectral
from kerasnorm.errors import KerasNormTypeError, KerasNormValueError
from kerasnorm.ir import ModelIR, Node, Ref, map_refs
from kerasnorm.layers.kernels import (
    config_value,
    constrained_by,
    find_kernels,
    set_config_value,
)
from kerasnorm.layers.wrapper import KernelWrapperBase
from kerasnorm.plan import Edit, Plan


def rewrite(plan: Plan, progress: Callable[[int, int], None] | None = None):
    """Builds the model `plan` describes.

    Args:
        plan: A `Plan` from `kerasnorm.plan`.
        progress: Called as `progress(done, total)` after each layer is
            cloned and after each layer's weights are copied (`total` is
            twice the layers the model holds), for a progress bar on a
            large model; None for no calls.

    Returns:
        A new model. Its layers keep their originals' names, configs (but
        for the planned constraints) and weights. If the plan's model was
        compiled, the new one is compiled with the same loss and metrics and
        a fresh optimizer of the same configuration (a warning says so).
    """
    new_model = _Rewriter(plan, progress).run()
    _recompile(plan.model, new_model)
    return new_model


def _recompile(original, new_model) -> None:
    """Compiles `new_model` as `original` was, if it was, and warns so."""
    if not getattr(original, "optimizer", None) or not getattr(
        original, "compiled", True
    ):
        return
    config = original.get_compile_config()
    if not config:
        return
    new_model.compile_from_config(config)
    warnings.warn(
        f"Model {original.name!r} was compiled: the normalized model is compiled "
        "with the same loss and metrics and a fresh optimizer of the same "
        "configuration (optimizer state such as Adam moments is not carried over).",
        stacklevel=4,
    )


class _Rewriter:
    def __init__(self, plan: Plan, progress: Callable[[int, int], None] | None):
        graph = plan.graph
        self.adapter = graph.graph["adapter"]
        self.top = graph.graph["ir"]
        self.layer_edits: dict[int, tuple] = {}
        self.insertions: dict[tuple[int, str], list[Edit]] = {}
        for edit in plan.changes:
            data = graph.nodes[edit.node]
            if edit.kind == "changed":
                kernels = [k for k in data["kernels"] if k.path in edit.kernels]
                self.layer_edits[id(data["op"])] = (edit.action, kernels, edit.node)
            else:
                self.insertions.setdefault(edit.call, []).append(edit)
        self.graph = graph
        self.names = _all_names(self.top)
        self.clones: dict[int, object] = {}
        self.models: dict[int, object] = {}
        self.pairs: list[tuple[object, object]] = []
        self.progress = progress
        self.done, self.total = 0, 2 * _layer_count(self.top)

    def run(self):
        model = self._build(self.top)
        for original, clone in self.pairs:
            _copy_weights(original, clone, self.adapter)
            kernels = find_kernels(clone, self.adapter)
            self._check_constrained(original, kernels)
            self._prepare_spectral_state(kernels)
            self._advance()
        return model

    def _advance(self) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total)

    def _check_constrained(self, original, kernels) -> None:
        """Raises unless every kernel the plan constrains got its constraint.

        A constraint reaches a kernel through the layer's config; a custom
        layer may take the argument and still not pass it to the weight.
        """
        action, planned, _ = self.layer_edits.get(id(original), (None, (), None))
        if not isinstance(action, ConstrainKernel):
            return
        got = {kernel.path: is_spectral(constrained_by(kernel)) for kernel in kernels}
        missing = [kernel for kernel in planned if not got.get(kernel.path)]
        if missing:
            kernel = missing[0]
            where = ".".join(map(str, kernel.constraint_key))
            raise KerasNormValueError(
                f"Layer {original.name!r} ({type(original).__name__}) took a "
                f"SpectralNorm in its config at {where!r}, but its kernel "
                f"{kernel.path!r} did not get it: the layer does "
                "not pass that argument to the weight. Pass it to add_weight("
                "constraint=...), or use mode='reparam'."
            )

    def _prepare_spectral_state(self, kernels) -> None:
        """Creates the constraints' states now, under the strategy in scope.

        States start empty and are solved exactly at their first use.
        """
        ours = (self.adapter.SpectralNorm, self.adapter.ConstraintChain)
        for kernel in kernels:
            constraint = constrained_by(kernel)
            if isinstance(constraint, ours):
                constraint.build(kernel.variable, kernel.owner)

    def _build(self, ir: ModelIR):
        if id(ir.model) in self.models:
            return self.models[id(ir.model)]
        ir = self._with_insertions(ir)
        if ir.sequential:
            (input_ref,) = keras.tree.flatten(ir.inputs)
            model = self.adapter.make_model(
                ir.name,
                self.adapter.make_input(ir.nodes[input_ref.node].op),
                None,
                sequential_layers=[
                    self._op_for(node) for node in ir if not node.is_input
                ],
            )
        else:
            model = self._replay(ir)
        if not ir.model.trainable:
            # Setting the flag reaches every layer: set it only to freeze.
            model.trainable = False
        self.models[id(ir.model)] = model
        return model

    def _replay(self, ir: ModelIR):
        tensors: dict[Ref, object] = {}
        for node in ir:
            if node.is_input:
                tensors[Ref(node.name, 0)] = self.adapter.make_input(node.op)
                continue
            args, kwargs = map_refs((node.args, node.kwargs), tensors.__getitem__)
            op = self._op_for(node)
            if isinstance(op, KernelWrapperBase):
                args, kwargs = _inputs_by_keyword(op.layer, args, kwargs)
            outputs = op(*args, **kwargs)
            for index, tensor in enumerate(keras.tree.flatten(outputs)):
                tensors[Ref(node.name, index)] = tensor
        return self.adapter.make_model(
            ir.name,
            map_refs(ir.inputs, tensors.__getitem__),
            map_refs(ir.outputs, tensors.__getitem__),
        )

    def _with_insertions(self, ir: ModelIR) -> ModelIR:
        """A copy of `ir` with the planned layers inserted."""
        edited = dataclasses.replace(
            ir,
            nodes={name: dataclasses.replace(node) for name, node in ir.nodes.items()},
        )
        for node in ir:
            for edit in self.insertions.get(ir.call_key(node.name), []):
                if edit.action.position == "after":
                    for index, info in enumerate(node.outputs):
                        new = self._new_node(edit, (Ref(node.name, index),), info)
                        edited.insert_after(Ref(node.name, index), new)
                else:
                    # The input may itself have just got an insertion after it.
                    for ref in dict.fromkeys(edited.nodes[node.name].refs()):
                        info = edited.nodes[ref.node].outputs[ref.index]
                        new = self._new_node(edit, (ref,), info)
                        edited.insert_before(node.name, ref, new)
        return edited

    def _new_node(self, edit: Edit, args, info) -> Node:
        name = _unique(edit.inserted, self.names)
        layer = edit.action.new_layer(self.graph, edit.node, name)
        self.clones[id(layer)] = layer
        return Node(name, layer, args=args, outputs=(info,))

    def _op_for(self, node: Node):
        """The operation the rebuilt graph calls in place of `node.op`."""
        op = node.op
        if id(op) in self.clones:
            return self.clones[id(op)]
        if node.submodel is not None:
            clone = self._build(node.submodel)
        else:
            clone = self._clone(op)
            self.pairs.append((op, clone))
            self._advance()
        self.clones[id(op)] = clone
        return clone

    def _clone(self, op):
        action, kernels, node = self.layer_edits.get(id(op), (None, (), None))
        config = op.get_config()
        if isinstance(action, ConstrainKernel):
            constraints = self.adapter.keras.constraints
            for key, group in constraint_groups(kernels).items():
                existing = config_value(config, key)
                if existing is not None and not isinstance(existing, dict):
                    existing = constraints.serialize(existing)
                # A fresh copy of the user's constraint, chained before SN.
                existing = None if existing is None else constraints.get(existing)
                geometry = action.geometry(self.graph, node, group[0])
                constraint = action.constraint_for(
                    self.adapter, group, existing, geometry
                )
                # Nested layer configs are deserialized by Keras: give them
                # the constraint's config, not the object.
                set_config_value(
                    config,
                    key,
                    constraint if len(key) == 1 else constraints.serialize(constraint),
                )
        try:
            clone = self.adapter.clone_layer(op, config)
        except Exception as error:
            raise KerasNormTypeError(
                f"Cannot clone layer {op.name!r} ({type(op).__name__}) from its "
                f"config: {error}. Give the class a get_config() that returns its "
                "constructor arguments and register it with "
                "keras.saving.register_keras_serializable(), or keep the layer "
                "out of the model you rewrite."
            ) from error
        if hasattr(action, "wrap"):
            # The wrapper finds the kernels of a built layer.
            self.adapter.build_like(clone, op)
            # The wrapper computes as the layer it wraps (mixed precision).
            clone = action.wrap(self.adapter, clone, op.name, op.dtype_policy)
        return clone


def _inputs_by_keyword(layer, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
    """`args` after the first passed by the names `layer.call` gives them.

    A wrapper's call takes `(inputs, *args, **kwargs)`; tf-keras saves the
    arguments of a call in a model's config by name, and drops positional
    ones it cannot name (MultiHeadAttention's `value`, passed to the wrapper).
    """
    if len(args) <= 1:
        return args, kwargs
    names = [
        p.name
        for p in inspect.signature(layer.call).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if len(names) < len(args):
        return args, kwargs
    return args[:1], {**dict(zip(names[1:], args[1:], strict=False)), **kwargs}


def _models(ir: ModelIR) -> Iterator[ModelIR]:
    """`ir` and the `ModelIR` of every model nested in it, at any depth."""
    stack = [ir]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(node.submodel for node in current if node.submodel is not None)


def _layer_count(ir: ModelIR) -> int:
    """The layers a rewrite of `ir` clones: each once, however often called."""
    return len(
        {
            id(node.op)
            for model in _models(ir)
            for node in model
            if node.submodel is None and not node.is_input
        }
    )


def _all_names(ir: ModelIR) -> set[str]:
    names = set()
    for model in _models(ir):
        names.add(model.name)
        names.update(node.op.name for node in model)
    return names


def _unique(base: str, taken: set[str]) -> str:
    name, count = base, 0
    while name in taken:
        count += 1
        name = f"{base}_{count}"
    taken.add(name)
    return name


def _copy_weights(original, clone, adapter) -> None:
    """Assigns each weight of `original` to the matching weight of `clone`.

    A clone the plan wrapped takes them through its wrapper, which stores
    them as it keeps them (`KernelWrapperBase.adopt`).
    """
    wrapped = _is_new_wrapper(original, clone)
    target = clone.layer if wrapped else clone
    sources = getattr(original, "weights", [])
    targets = getattr(target, "weights", [])
    if len(sources) != len(targets) or any(
        tuple(s.shape) != tuple(t.shape) for s, t in zip(sources, targets, strict=True)
    ):
        raise KerasNormValueError(
            f"Layer {original.name!r}: its clone has weights "
            f"{[tuple(t.shape) for t in targets]}, the original "
            f"{[tuple(s.shape) for s in sources]}. The layer's get_config() does "
            "not describe it fully."
        )
    if wrapped:
        clone.adopt(original)
        return
    for source, destination in zip(sources, targets, strict=True):
        adapter.copy_weight(source, destination)


def _is_new_wrapper(original, clone) -> bool:
    return type(original) is not type(clone) and hasattr(clone, "layer")
