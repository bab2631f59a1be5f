"""kerasnorm: rewrite Keras models with the normalizations GAN papers prescribe.

The layer classes exported here belong to the Keras that `tf.keras` is
when kerasnorm is imported: Keras 3 by default on TensorFlow >= 2.16,
tf-keras under `TF_USE_LEGACY_KERAS=1`. The classes for either Keras are in
`kerasnorm.adapters.keras3` and `kerasnorm.adapters.tf_keras`.
"""

from kerasnorm import actions, callbacks, select
from kerasnorm.actions import (
    ConstrainKernel,
    EqualizeLearningRate,
    InsertAfter,
    InsertBefore,
    InsertPixelNorm,
    SpectralNormalize,
    WrapSpectral,
)
from kerasnorm.adapters import active_adapter, adapter_for
from kerasnorm.api import apply_normalization, normalize
from kerasnorm.errors import (
    KerasNormError,
    KerasNormTypeError,
    KerasNormValueError,
    MissingDependencyError,
    UnsupportedKerasError,
)
from kerasnorm.export import fold
from kerasnorm.graph import to_graph
from kerasnorm.lipschitz import LayerBound, LipschitzReport, lipschitz_bound
from kerasnorm.ops.operators import ConvGeometry
from kerasnorm.pictures import plot_plan
from kerasnorm.plan import Edit, KernelStatus, Plan, plan
from kerasnorm.policies import get_policy, register_policy, registered_policies
from kerasnorm.rules import Rule
from kerasnorm.state import constraint_states

_ACTIVE = active_adapter()
PixelNorm = _ACTIVE.PixelNorm
SpectralNorm = _ACTIVE.SpectralNorm
SpectralNormalization = _ACTIVE.SpectralNormalization
ConstraintChain = _ACTIVE.ConstraintChain
EqualizedLR = _ACTIVE.EqualizedLR

__version__ = "0.1.0"

__all__ = [
    "ConstrainKernel",
    "ConstraintChain",
    "ConvGeometry",
    "Edit",
    "EqualizeLearningRate",
    "EqualizedLR",
    "InsertAfter",
    "InsertBefore",
    "InsertPixelNorm",
    "KerasNormError",
    "KerasNormTypeError",
    "KerasNormValueError",
    "KernelStatus",
    "LayerBound",
    "LipschitzReport",
    "MissingDependencyError",
    "PixelNorm",
    "Plan",
    "Rule",
    "SpectralNorm",
    "SpectralNormalization",
    "SpectralNormalize",
    "UnsupportedKerasError",
    "WrapSpectral",
    "actions",
    "adapter_for",
    "apply_normalization",
    "callbacks",
    "constraint_states",
    "fold",
    "get_policy",
    "lipschitz_bound",
    "normalize",
    "plan",
    "plot_plan",
    "register_policy",
    "registered_policies",
    "select",
    "to_graph",
]
