"""Reading a Keras ``.h5`` model file with h5py alone (no TensorFlow or Keras), and the tensor
layout changes from Keras to PyTorch.

A full-model file (``model.save("x.h5")``, the legacy HDF5 format) holds the architecture as
JSON (``model_config``) and one HDF5 group per layer under ``model_weights``; each weight's name
is ``<layer>/<weight>:0`` as tf.keras 2 wrote it, or ``<weight>`` (no ``:0``, no layer path) as
later writers do. A model nested in another (``keras.applications`` base inside a fine-tuned
classifier) keeps its inner layers' names in the weight paths; both layouts read the same here.

Layouts (Keras channels-last → PyTorch channels-first):

* ``Conv2D`` kernel ``kh×kw×in×out`` (HWIO) → ``out×in×kh×kw`` (OIHW);
* ``DepthwiseConv2D`` kernel ``kh×kw×in×m`` → ``(in·m)×1×kh×kw`` (output channel ``i·m + j``
  in both frameworks);
* ``Dense`` kernel ``in×out`` → ``out×in``; after a ``Flatten`` of an ``h×w×c`` map the input
  order is (h, w, c) in Keras and (c, h, w) in PyTorch, so such a kernel's rows are permuted;
* ``BatchNormalization``: gamma → weight, beta → bias, moving mean/variance → running stats;
  ``scale=False`` / ``center=False`` give weight 1 / bias 0. Keras adds its own epsilon
  (1e-3 by default, 1.001e-5 in keras.applications ResNets, 2e-5 or 1e-5 in insightface ports)
  where PyTorch modules add theirs (1e-5): the difference is folded into the variance,
  ``running_var = moving_variance + eps_keras − eps_torch``, which gives the same
  ``1/sqrt(var + eps)`` exactly (to float32 rounding) without changing the module;
* a convolution bias followed by a BatchNormalization (Keras ResNets have one, torchvision's do
  not) is folded into the running mean: ``running_mean = moving_mean − bias``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..common.errors import InputError

TORCH_BN_EPS = 1e-5


@dataclass
class KerasLayer:
    """One layer: its Keras class, its config, its weights by short name (``kernel``,
    ``gamma``, ``moving_mean``, ... as float32 arrays) and the layers feeding it."""

    name: str
    class_name: str
    config: dict
    weights: dict[str, np.ndarray] = field(default_factory=dict)
    inbound: list[str] = field(default_factory=list)


@dataclass
class KerasModel:
    """A Keras model file read with h5py: ``layers`` in file order (nested models flattened
    into their inner layers), by name."""

    path: Path
    layers: dict[str, KerasLayer]

    def get(self, name: str, class_names: tuple[str, ...] | None = None) -> KerasLayer:
        """The layer ``name``; missing, or of another class than ``class_names``, is an InputError."""
        layer = self.layers.get(name)
        if layer is None:
            raise InputError(f"{self.path}: layer {name!r} not found (the file's layers: {_few(list(self.layers))})")
        if class_names and layer.class_name not in class_names:
            raise InputError(f"{self.path}: layer {name!r} is a {layer.class_name}, expected {' or '.join(class_names)}")
        return layer

    def weight(self, name: str, short: str) -> np.ndarray:
        layer = self.get(name)
        if short not in layer.weights:
            raise InputError(f"{self.path}: layer {name!r} has no weight {short!r} "
                             f"(it has: {', '.join(layer.weights) or 'none'})")
        return layer.weights[short]

    def of_class(self, *class_names: str) -> list[KerasLayer]:
        return [layer for layer in self.layers.values() if layer.class_name in class_names]


def _few(names: list[str], n: int = 6) -> str:
    return ", ".join(names[:n]) + (f" … (+{len(names) - n} more)" if len(names) > n else "")


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _inbound(layer_cfg: dict) -> list[str]:
    """Names of the layers feeding a functional-model layer (tf.keras 2 and Keras 3 node formats)."""
    names: list[str] = []

    def walk(node) -> None:
        if isinstance(node, dict):
            history = node.get("config", {}).get("keras_history") if node.get("class_name") == "__keras_tensor__" else None
            if history:
                names.append(history[0])
            else:
                for value in node.values():
                    walk(value)
        elif isinstance(node, list):
            if len(node) >= 3 and isinstance(node[0], str) and isinstance(node[1], int):
                names.append(node[0])
            else:
                for item in node:
                    walk(item)

    walk(layer_cfg.get("inbound_nodes", []))
    return names


def _collect_configs(model_cfg: dict, out: dict[str, tuple[str, dict, list[str]]]) -> None:
    """Layer name → (class, config, inbound names), descending into nested models."""
    layers = model_cfg.get("config", {}).get("layers", [])
    previous = None
    for layer in layers:
        name = layer.get("config", {}).get("name") or layer.get("name")
        cls = layer.get("class_name", "")
        if cls in ("Functional", "Model", "Sequential"):
            _collect_configs(layer, out)
        inbound = _inbound(layer)
        if not inbound and previous is not None and model_cfg.get("class_name") == "Sequential":
            inbound = [previous]
        out[name] = (cls, layer.get("config", {}), inbound)
        previous = name


def read_keras_h5(path: str | Path) -> KerasModel:
    """Read ``path`` (a full Keras model saved as ``.h5``): configs and weights of every layer.

    Errors (not a file, not HDF5, no ``model_config``, a weight listed but absent) are one
    :class:`InputError` naming the file (and the layer)."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: Keras model file not found")
    try:
        handle = h5py.File(path, "r")
    except OSError as err:
        raise InputError(f"{path}: not an HDF5 file ({str(err).splitlines()[0]})") from None
    with handle as f:
        if "model_config" not in f.attrs:
            raise InputError(f"{path}: no model_config (a weights-only file, or not a Keras model); "
                             "the converter needs a full model saved with model.save(...h5)")
        try:
            model_cfg = json.loads(_text(f.attrs["model_config"]))
        except ValueError:
            raise InputError(f"{path}: model_config is not valid JSON") from None
        configs: dict[str, tuple[str, dict, list[str]]] = {}
        _collect_configs(model_cfg, configs)
        group = f["model_weights"] if "model_weights" in f else f
        layers = {name: KerasLayer(name, cls, cfg, inbound=inbound) for name, (cls, cfg, inbound) in configs.items()}
        for top in (_text(n) for n in group.attrs.get("layer_names", [])):
            if top not in group:
                raise InputError(f"{path}: layer {top!r} is listed but has no weights group")
            sub = group[top]
            for wname in (_text(n) for n in sub.attrs.get("weight_names", [])):
                parts = wname.split("/")
                owner = parts[-2] if len(parts) >= 2 else top
                short = parts[-1].split(":")[0]
                try:
                    data = np.asarray(sub[wname], dtype=np.float64)
                except KeyError:
                    raise InputError(f"{path}: layer {top!r}: weight {wname!r} is listed but absent") from None
                if owner not in layers:  # a nested model written without inner configs
                    layers[owner] = KerasLayer(owner, "", {})
                layers[owner].weights[short] = data
    return KerasModel(path, layers)


# ----------------------------------------------------------------------------- layouts

def conv_kernel(kernel: np.ndarray) -> torch.Tensor:
    """Conv2D ``kh×kw×in×out`` → ``out×in×kh×kw``."""
    return torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))).float()


def depthwise_kernel(kernel: np.ndarray) -> torch.Tensor:
    """DepthwiseConv2D ``kh×kw×in×m`` → ``(in·m)×1×kh×kw``."""
    kh, kw, cin, mult = kernel.shape
    w = kernel.transpose(2, 3, 0, 1).reshape(cin * mult, 1, kh, kw)
    return torch.from_numpy(np.ascontiguousarray(w)).float()


def dense_kernel(kernel: np.ndarray, flatten_from: tuple[int, int, int] | None = None) -> torch.Tensor:
    """Dense ``in×out`` → ``out×in``; ``flatten_from=(h, w, c)`` when the input is a Keras
    ``Flatten`` of an h×w×c map (rows reordered from (h, w, c) to PyTorch's (c, h, w))."""
    if flatten_from is not None:
        h, w, c = flatten_from
        kernel = kernel.reshape(h, w, c, -1).transpose(2, 0, 1, 3).reshape(h * w * c, -1)
    return torch.from_numpy(np.ascontiguousarray(kernel.T)).float()


def batchnorm(layer: KerasLayer, path: Path, torch_eps: float = TORCH_BN_EPS,
              conv_bias: np.ndarray | None = None, axes: tuple[int, ...] = (-1, 3)) -> dict[str, torch.Tensor]:
    """A BatchNormalization layer as ``weight, bias, running_mean, running_var,
    num_batches_tracked`` for a PyTorch BatchNorm with eps ``torch_eps`` (see the module
    docstring for the epsilon and convolution-bias folds). ``axes``: the accepted normalised
    axes, the channels of a channels-last map (-1 or 3; 1 for a B×D vector)."""
    if layer.class_name not in ("BatchNormalization", ""):
        raise InputError(f"{path}: layer {layer.name!r} is a {layer.class_name}, expected BatchNormalization")
    axis = layer.config.get("axis", -1)
    axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
    if axis not in axes:
        raise InputError(f"{path}: layer {layer.name!r}: BatchNormalization over axis {axis} "
                         f"(expected {' or '.join(map(str, axes))}: channels last)")
    try:
        mean, var = layer.weights["moving_mean"], layer.weights["moving_variance"]
    except KeyError:
        raise InputError(f"{path}: layer {layer.name!r}: BatchNormalization without moving statistics") from None
    n = mean.shape[0]
    gamma = layer.weights.get("gamma", np.ones(n))
    beta = layer.weights.get("beta", np.zeros(n))
    eps = float(layer.config.get("epsilon", 1e-3))
    if conv_bias is not None:
        mean = mean - conv_bias
    tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a)).float()  # noqa: E731
    return {"weight": tensor(gamma), "bias": tensor(beta), "running_mean": tensor(mean),
            "running_var": tensor(var + eps - torch_eps), "num_batches_tracked": torch.tensor(0)}


def vector(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array)).float()
