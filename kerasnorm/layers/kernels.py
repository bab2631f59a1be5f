"""Which weights of which Keras layers are kernels, and how they are laid out.

Both Kerases name their layer classes alike, so one table serves both: the
adapter passes its own `layers` namespace and the names are looked up there.
"""

from __future__ import annotations

import dataclasses
from types import ModuleType


@dataclasses.dataclass(frozen=True)
class KernelSlot:
    """Where a layer keeps one kernel that spectral normalization applies to.

    Attributes:
        attributes: Candidate attribute names holding the kernel variable,
            the first one present wins (the two Kerases name a depthwise
            kernel differently).
        constraint_key: The constructor argument and config key of the
            kernel's constraint.
        layout: The kernel layout, as in `kerasnorm.ops.layouts.LAYOUTS`.
    """

    attributes: tuple[str, ...]
    constraint_key: str
    layout: str

    def variable(self, layer):
        """The kernel variable of a built `layer`."""
        for name in self.attributes:
            value = getattr(layer, name, None)
            if value is not None:
                return value
        raise AttributeError(
            f"Layer {layer.name!r} ({type(layer).__name__}) has none of the "
            f"attributes {self.attributes}; is it built?"
        )


_KERNEL = KernelSlot(("kernel",), "kernel_constraint", "dense")
_DEPTHWISE = KernelSlot(
    ("depthwise_kernel", "kernel"), "depthwise_constraint", "depthwise"
)

# Most specific classes first: in tf-keras, Conv2DTranspose, DepthwiseConv2D
# and SeparableConv2D are subclasses of Conv2D or its base.
_SLOTS_BY_CLASS_NAMES: tuple[tuple[tuple[str, ...], tuple[KernelSlot, ...]], ...] = (
    (
        ("Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose"),
        (KernelSlot(("kernel",), "kernel_constraint", "transpose"),),
    ),
    (("DepthwiseConv1D", "DepthwiseConv2D"), (_DEPTHWISE,)),
    (
        ("SeparableConv1D", "SeparableConv2D"),
        (
            KernelSlot(("depthwise_kernel",), "depthwise_constraint", "depthwise"),
            KernelSlot(("pointwise_kernel",), "pointwise_constraint", "dense"),
        ),
    ),
    (("Conv1D", "Conv2D", "Conv3D", "Dense"), (_KERNEL,)),
    (("Embedding",), (KernelSlot(("embeddings",), "embeddings_constraint", "dense"),)),
)


def kernel_slots(layer, layers_module: ModuleType) -> tuple[KernelSlot, ...]:
    """The kernels of `layer` that spectral normalization applies to.

    Args:
        layer: A Keras layer (built or not).
        layers_module: The `layers` namespace of the layer's Keras.

    Returns:
        A tuple of `KernelSlot`, empty when the layer has no such kernel.
    """
    for class_names, slots in _SLOTS_BY_CLASS_NAMES:
        classes = tuple(
            getattr(layers_module, name)
            for name in class_names
            if hasattr(layers_module, name)
        )
        if isinstance(layer, classes):
            return slots
    return ()
