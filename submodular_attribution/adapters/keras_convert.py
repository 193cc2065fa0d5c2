"""Keras layer names → our PyTorch module names, per architecture (weights read by
:mod:`.keras_h5`, networks in :mod:`.keras_nets` and :mod:`.face`).

Each ``convert_*`` takes a :class:`~.keras_h5.KerasModel` and returns a :class:`Converted`:
the state dict, the layout found in the file (blocks per stage, widths) and, for faces, the
identity head as a second file. Anything the target network cannot reproduce exactly — an
unknown layer in the head, a pre-activation (v2) ResNet, squeeze-excitation blocks, a pooling or
activation the network does not have — is an :class:`InputError` naming the file and the
layer, never a silent approximation.

Published files and their Keras builders:

* ``cub-resnet101.h5`` — ``keras.applications.ResNet101`` base (layers ``conv1_conv``,
  ``conv{2..5}_block{b}_{0..3}_{conv,bn}``) and a head of Dense layers → ``keras:resnet101``.
* ``cub-mobilenetv2.h5`` — ``keras.applications.MobileNetV2`` (``Conv1``, ``expanded_conv_*``,
  ``block_{i}_{expand,depthwise,project}[_BN]``, ``Conv_1``) → ``keras:mobilenet_v2``.
* ``cub-vgg19.h5`` — ``keras.applications.VGG19`` (``block{b}_conv{k}``) → ``keras:vgg19``.
* ``keras-ArcFace-R100-*.h5`` — keras_insightface's ``r100`` (``0_conv 0_bn 0_prelu``,
  ``stack{s}_block{b}_{1,2,3}_bn``, ``_{1,2}_conv``, ``_2_prelu``, ``_shortcut_{conv,bn}``, output
  "E": ``E_batchnorm E_flatten E_dense pre_embedding``) → our ``IResNet`` (``iresnet100``), with
  its identity head (``NormDense`` class centres → prototypes; a softmax ``Dense`` → linear head).
* ``cub-efficientnetv2m.h5`` is refused: its squeeze-excitation, stochastic-depth and
  preprocessing layers have no faithful counterpart here yet.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np
import torch

from ..common.errors import InputError
from .keras_h5 import KerasLayer, KerasModel, batchnorm, conv_kernel, dense_kernel, depthwise_kernel, vector

KERAS_FACE_INPUT_SCALE = 127.5 / 128.0
HEAD_SKIP = ("Dropout", "InputLayer", "Functional", "Model", "Sequential")


@dataclass
class Converted:
    """state: the network's state dict; layout: what the file holds (e.g. ``{"stages": [3, 13,
    30, 3]}``); extra: side files name → (kind, tensors) (a face model's identity head)."""

    state: dict[str, torch.Tensor]
    layout: dict = field(default_factory=dict)
    extra: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _put_bn(state: dict, prefix: str, layer: KerasLayer, model: KerasModel, conv_bias=None,
            axes: tuple[int, ...] = (-1, 3)) -> None:
    for key, value in batchnorm(layer, model.path, conv_bias=conv_bias, axes=axes).items():
        state[f"{prefix}.{key}"] = value


def _conv(model: KerasModel, name: str, stride: int | None = None, padding: str | None = None,
          depthwise: bool = False) -> KerasLayer:
    layer = model.get(name, ("DepthwiseConv2D",) if depthwise else ("Conv2D",))
    cfg = layer.config
    if stride is not None and tuple(cfg.get("strides", (1, 1))) != (stride, stride):
        raise InputError(f"{model.path}: layer {name!r}: stride {cfg.get('strides')}, expected {stride}")
    if padding is not None and str(cfg.get("padding", "valid")).lower() != padding:
        raise InputError(f"{model.path}: layer {name!r}: padding {cfg.get('padding')!r}, expected {padding!r}")
    if tuple(cfg.get("dilation_rate", (1, 1))) not in ((1, 1), (1,)) or cfg.get("groups", 1) != 1:
        raise InputError(f"{model.path}: layer {name!r}: dilated or grouped convolution is not supported")
    if cfg.get("activation", "linear") != "linear":
        raise InputError(f"{model.path}: layer {name!r}: activation {cfg['activation']!r} inside a convolution is not supported")
    if "kernel" not in layer.weights and "depthwise_kernel" not in layer.weights:
        raise InputError(f"{model.path}: layer {name!r} has no kernel")
    return layer


def _kernel(layer: KerasLayer, flip_rgb: bool = False) -> torch.Tensor:
    if "depthwise_kernel" in layer.weights:
        return depthwise_kernel(layer.weights["depthwise_kernel"])
    kernel = layer.weights["kernel"]
    if flip_rgb:  # the Keras network was fed BGR: reversed input channels make it take RGB
        kernel = kernel[:, :, ::-1, :]
    return conv_kernel(kernel)


def _padding(model: KerasModel, name: str, expected: tuple) -> None:
    layer = model.get(name, ("ZeroPadding2D",))
    if _pads(layer) != expected:
        raise InputError(f"{model.path}: layer {name!r}: padding {layer.config.get('padding')}, expected {expected}")


def _pads(layer: KerasLayer) -> tuple:
    """A ZeroPadding2D's ((top, bottom), (left, right))."""
    pad = layer.config.get("padding", 0)
    if isinstance(pad, int):
        return ((pad, pad), (pad, pad))
    return tuple(tuple(p) if isinstance(p, (list, tuple)) else (p, p) for p in pad)


def _ir_conv(model: KerasModel, name: str, stride: int) -> KerasLayer:
    """A keras_insightface convolution that pads like PyTorch's symmetric ``padding=1`` (3×3)
    or not at all (1×1): 'valid' after a ZeroPadding2D of 1, or 'same' with stride 1."""
    layer = _conv(model, name, stride)
    k = tuple(layer.config.get("kernel_size", ()))
    padding = str(layer.config.get("padding", "valid")).lower()
    if k == (1, 1):
        return layer
    if padding == "same" and stride == 1:
        return layer
    source = model.layers.get(layer.inbound[0]) if layer.inbound else None
    if padding == "valid" and source is not None and source.class_name == "ZeroPadding2D" and _pads(source) == ((1, 1), (1, 1)):
        return layer
    raise InputError(f"{model.path}: layer {name!r}: {k} convolution with stride {stride} and padding {padding!r} "
                     "is not padded like the PyTorch IR-ResNet (symmetric 1)")


def _input_size(model: KerasModel) -> tuple[int, int] | None:
    for layer in model.of_class("InputLayer"):
        shape = layer.config.get("batch_input_shape") or layer.config.get("batch_shape")
        if shape and len(shape) == 4 and shape[1] and shape[2]:
            return int(shape[1]), int(shape[2])
    return None


# ----------------------------------------------------------------------------- the head

def convert_head(model: KerasModel, after: str, channels: int, reduction: int, prefix: str) -> tuple[dict, list[int], list[str]]:
    """Layers after ``after`` (the last layer of the convolutional base, ``channels`` wide, its
    map 1/``reduction`` of the input): global average pooling or a Flatten, Dropout (identity in
    eval), Dense layers and their activations. Returns (state under ``prefix``, hidden
    activation codes for ``keras_head``, notes)."""
    names = list(model.layers)
    if after not in model.layers:
        raise InputError(f"{model.path}: layer {after!r} not found")
    head = [model.layers[n] for n in names[names.index(after) + 1:] if model.layers[n].class_name not in HEAD_SKIP]
    pool, flat_shape, denses, notes = None, None, [], []
    for layer in head:
        cls = layer.class_name
        if cls == "GlobalAveragePooling2D" and pool is None and not layer.config.get("keepdims", False):
            pool = "avg"
        elif cls == "Flatten" and pool is None:
            size = _input_size(model)
            if size is None:
                raise InputError(f"{model.path}: layer {layer.name!r}: a Flatten head needs the model's input size")
            flat_shape = (math.ceil(size[0] / reduction), math.ceil(size[1] / reduction), channels)
            pool = "flatten"
        elif cls == "Flatten":
            continue  # after pooling: a no-op
        elif cls == "Dense" and pool is not None:
            denses.append([layer, layer.config.get("activation", "linear")])
        elif cls in ("Activation", "Softmax", "ReLU") and denses and denses[-1][1] == "linear":
            act = "softmax" if cls == "Softmax" else "relu" if cls == "ReLU" else layer.config.get("activation")
            if cls == "ReLU" and (layer.config.get("max_value") or layer.config.get("negative_slope")):
                raise InputError(f"{model.path}: layer {layer.name!r}: a capped or leaky ReLU in the head is not supported")
            denses[-1][1] = act
        else:
            raise InputError(f"{model.path}: layer {layer.name!r} ({cls}) in the classifier head is not supported "
                             "(global average pooling or Flatten, Dropout, Dense, softmax/ReLU activations)")
    if not denses:
        raise InputError(f"{model.path}: no Dense classifier after {after!r}")
    state, codes = {}, []
    for index, (layer, act) in enumerate(denses):
        last = index == len(denses) - 1
        if last and act not in ("softmax", "linear"):
            raise InputError(f"{model.path}: layer {layer.name!r}: final activation {act!r} (softmax or linear only)")
        if not last:
            if act not in ("relu", "linear"):
                raise InputError(f"{model.path}: layer {layer.name!r}: hidden activation {act!r} (relu or linear only)")
            codes.append(1 if act == "relu" else 0)
        kernel = model.weight(layer.name, "kernel")
        weight = dense_kernel(kernel, flat_shape if index == 0 else None)
        bias = vector(layer.weights["bias"]) if "bias" in layer.weights else torch.zeros(weight.shape[0])
        key = prefix if len(denses) == 1 else f"{prefix}.{2 * index}"
        state[f"{key}.weight"], state[f"{key}.bias"] = weight, bias
        if last and act == "linear":
            notes.append(f"{layer.name}: the Keras model outputs logits; probabilities here are their softmax")
    first_in = state[f"{prefix}.weight" if len(denses) == 1 else f"{prefix}.0.weight"].shape[1]
    expected = channels if pool == "avg" else int(np.prod(flat_shape))
    if first_in != expected:
        raise InputError(f"{model.path}: layer {denses[0][0].name!r}: {first_in} inputs, expected {expected}")
    return state, codes, notes


# ----------------------------------------------------------------------------- ResNet (keras.applications)

def _blocks(model: KerasModel, pattern: str) -> dict[int, list[int]]:
    found: dict[int, set[int]] = {}
    for name in model.layers:
        m = re.fullmatch(pattern, name)
        if m:
            found.setdefault(int(m.group(1)), set()).add(int(m.group(2)))
    return {s: sorted(b) for s, b in sorted(found.items())}


def convert_resnet(model: KerasModel) -> Converted:
    """``keras.applications`` ResNet50/101/152 (v1) → :class:`~.keras_nets.KerasResNet`."""
    if any(name.endswith("_preact_bn") for name in model.layers):
        raise InputError(f"{model.path}: a pre-activation ResNet (v2) is not supported (ResNet v1 only)")
    stages = _blocks(model, r"conv(\d+)_block(\d+)_1_conv")
    if not stages or min(stages) != 2:
        raise InputError(f"{model.path}: no keras.applications ResNet layers (conv2_block1_1_conv, ...)")
    _padding(model, "conv1_pad", ((3, 3), (3, 3)))
    _padding(model, "pool1_pad", ((1, 1), (1, 1)))
    pool = model.get("pool1_pool", ("MaxPooling2D",)).config
    if tuple(pool.get("pool_size", ())) != (3, 3) or tuple(pool.get("strides", ())) != (2, 2):
        raise InputError(f"{model.path}: layer 'pool1_pool': expected a 3×3 max-pool with stride 2")
    state: dict[str, torch.Tensor] = {}
    stem = _conv(model, "conv1_conv", 2, "valid")
    state["conv1.weight"] = _kernel(stem, flip_rgb=True)
    _put_bn(state, "bn1", model.get("conv1_bn"), model, stem.weights.get("bias"))
    widths, last = [], "pool1_pool"
    for s_index, (stage, blocks) in enumerate(stages.items(), start=1):
        if blocks != list(range(1, len(blocks) + 1)):
            raise InputError(f"{model.path}: stage conv{stage}: blocks {blocks} are not numbered 1..n")
        for b in blocks:
            name, prefix = f"conv{stage}_block{b}", f"layer{s_index}.{b - 1}"
            stride = 2 if (b == 1 and s_index > 1) else 1
            for k, (conv_stride, pad) in {1: (stride, "valid"), 2: (1, "same"), 3: (1, "valid")}.items():
                conv = _conv(model, f"{name}_{k}_conv", conv_stride, pad)
                state[f"{prefix}.conv{k}.weight"] = _kernel(conv)
                _put_bn(state, f"{prefix}.bn{k}", model.get(f"{name}_{k}_bn"), model, conv.weights.get("bias"))
            if f"{name}_0_conv" in model.layers:
                conv = _conv(model, f"{name}_0_conv", stride, "valid")
                state[f"{prefix}.downsample.0.weight"] = _kernel(conv)
                _put_bn(state, f"{prefix}.downsample.1", model.get(f"{name}_0_bn"), model, conv.weights.get("bias"))
            elif b == 1:
                raise InputError(f"{model.path}: layer {name}_0_conv missing (first block of a stage needs a projection)")
            last = f"{name}_out"
        widths.append(int(state[f"layer{s_index}.0.conv1.weight"].shape[0]))
    model.get(last)
    head, codes, notes = convert_head(model, last, widths[-1] * 4, 32, "fc")
    state.update(head)
    state["keras_head"] = torch.tensor(codes, dtype=torch.long)
    return Converted(state, {"stages": [len(b) for b in stages.values()], "widths": widths,
                             "stem": int(state["conv1.weight"].shape[0])}, notes=notes)


# ----------------------------------------------------------------------------- MobileNetV2

def convert_mobilenet_v2(model: KerasModel) -> Converted:
    """``keras.applications.MobileNetV2`` (alpha 1: 32 stem filters, 1280 last) →
    torchvision's ``MobileNetV2`` with TensorFlow padding (:func:`~.keras_nets.keras_mobilenet_v2`)."""
    state: dict[str, torch.Tensor] = {}
    stem = _conv(model, "Conv1", 2, "same")
    if stem.weights["kernel"].shape[-1] != 32:
        raise InputError(f"{model.path}: layer 'Conv1' has {stem.weights['kernel'].shape[-1]} filters; "
                         "only alpha = 1 (32) is supported")
    state["features.0.0.weight"] = _kernel(stem)
    _put_bn(state, "features.0.1", model.get("bn_Conv1"), model)
    ids = sorted(int(m.group(1)) for m in (re.fullmatch(r"block_(\d+)_project", n) for n in model.layers) if m)
    if ids != list(range(1, len(ids) + 1)):
        raise InputError(f"{model.path}: MobileNetV2 blocks {ids} are not numbered 1..n")
    setting: list[list[int]] = []
    channels = 32
    for i in range(len(ids) + 1):
        pre = "expanded_conv_" if i == 0 else f"block_{i}_"
        feature = f"features.{i + 1}.conv"
        if i == 0 and f"{pre}expand" in model.layers:
            raise InputError(f"{model.path}: layer {pre}expand: the first block has no expansion in MobileNetV2")
        parts = 0
        expansion = 1
        if i > 0:
            expand = _conv(model, f"{pre}expand", 1, "same")
            state[f"{feature}.0.0.weight"] = _kernel(expand)
            _put_bn(state, f"{feature}.0.1", model.get(f"{pre}expand_BN"), model)
            expansion = expand.weights["kernel"].shape[-1] // channels
            parts = 1
        depth = model.get(f"{pre}depthwise", ("DepthwiseConv2D",))
        stride = int(depth.config.get("strides", (1, 1))[0])
        if stride == 2:
            _padding(model, f"{pre}pad", ((0, 1), (0, 1)))  # correct_pad on an even map = TF "same"
        depth = _conv(model, f"{pre}depthwise", stride, "same" if stride == 1 else "valid", depthwise=True)
        if depth.config.get("depth_multiplier", 1) != 1:
            raise InputError(f"{model.path}: layer {pre}depthwise: depth multiplier ≠ 1 is not supported")
        state[f"{feature}.{parts}.0.weight"] = _kernel(depth)
        _put_bn(state, f"{feature}.{parts}.1", model.get(f"{pre}depthwise_BN"), model)
        project = _conv(model, f"{pre}project", 1, "same")
        state[f"{feature}.{parts + 1}.weight"] = _kernel(project)
        _put_bn(state, f"{feature}.{parts + 2}", model.get(f"{pre}project_BN"), model)
        out = int(project.weights["kernel"].shape[-1])
        if setting and stride == 1 and setting[-1][0] == expansion and setting[-1][1] == out:
            setting[-1][2] += 1
        else:
            setting.append([expansion, out, 1, stride])
        channels = out
    last = _conv(model, "Conv_1", 1)
    if last.weights["kernel"].shape[-1] != 1280:
        raise InputError(f"{model.path}: layer 'Conv_1' has {last.weights['kernel'].shape[-1]} filters, expected 1280")
    state[f"features.{len(ids) + 2}.0.weight"] = _kernel(last)
    _put_bn(state, f"features.{len(ids) + 2}.1", model.get("Conv_1_bn"), model)
    relu = model.get("out_relu", ("ReLU",))
    if relu.config.get("max_value") != 6.0:
        raise InputError(f"{model.path}: layer 'out_relu': expected ReLU6")
    head, codes, notes = convert_head(model, "out_relu", 1280, 32, "classifier")
    state.update(head)
    state["keras_head"] = torch.tensor(codes, dtype=torch.long)
    state["keras_setting"] = torch.tensor(setting, dtype=torch.long)
    return Converted(state, {"setting": setting}, notes=notes)


# ----------------------------------------------------------------------------- VGG19

def convert_vgg(model: KerasModel) -> Converted:
    """``keras.applications.VGG16/19`` → :class:`~.keras_nets.KerasVGG` (torchvision layout)."""
    convs = _blocks(model, r"block(\d+)_conv(\d+)")
    if not convs:
        raise InputError(f"{model.path}: no keras.applications VGG layers (block1_conv1, ...)")
    state: dict[str, torch.Tensor] = {}
    cfg: list[int] = []
    index, last = 0, None
    for block, numbers in convs.items():
        for k in numbers:
            layer = model.get(f"block{block}_conv{k}", ("Conv2D",))
            if layer.config.get("activation") != "relu" or str(layer.config.get("padding")).lower() != "same" \
                    or tuple(layer.config.get("strides", (1, 1))) != (1, 1) or tuple(layer.config.get("kernel_size", ())) != (3, 3):
                raise InputError(f"{model.path}: layer block{block}_conv{k}: expected a 3×3 'same' ReLU convolution with stride 1")
            state[f"features.{index}.weight"] = _kernel(layer, flip_rgb=index == 0)
            state[f"features.{index}.bias"] = vector(layer.weights["bias"])
            cfg.append(int(layer.weights["kernel"].shape[-1]))
            index += 2
            last = f"block{block}_conv{k}"
        pool = f"block{block}_pool"
        if pool in model.layers:
            p = model.get(pool, ("MaxPooling2D",)).config
            if tuple(p.get("pool_size", ())) != (2, 2) or tuple(p.get("strides", ())) != (2, 2):
                raise InputError(f"{model.path}: layer {pool}: expected a 2×2 max-pool with stride 2")
            cfg.append(0)
            index += 1
            last = pool
    pools = cfg.count(0)
    head, codes, notes = convert_head(model, last, cfg[-2] if cfg[-1] == 0 else cfg[-1], 2 ** pools, "classifier")
    state.update(head)
    state["keras_head"] = torch.tensor(codes, dtype=torch.long)
    state["keras_setting"] = torch.tensor(cfg, dtype=torch.long)
    return Converted(state, {"cfg": cfg}, notes=notes)


# ----------------------------------------------------------------------------- IR-ResNet (keras_insightface)

def _activation_slope(model: KerasModel, base: str) -> torch.Tensor | None:
    """PReLU slopes of ``<base>prelu`` (per channel), zeros for ``<base>relu``; None if neither."""
    if f"{base}prelu" in model.layers:
        layer = model.get(f"{base}prelu", ("PReLU",))
        alpha = model.weight(layer.name, "alpha")
        if alpha.size != alpha.shape[-1]:
            raise InputError(f"{model.path}: layer {layer.name!r}: PReLU not shared over height and width")
        return vector(alpha.reshape(-1))
    if f"{base}relu" in model.layers:
        layer = model.get(f"{base}relu")
        if layer.class_name == "Activation" and layer.config.get("activation") != "relu":
            raise InputError(f"{model.path}: layer {layer.name!r}: activation {layer.config.get('activation')!r}")
        return None if layer.class_name not in ("Activation", "ReLU") else torch.zeros(0)
    return None


def _slope(state: dict, key: str, model: KerasModel, base: str, channels: int) -> None:
    slope = _activation_slope(model, base)
    if slope is None:
        raise InputError(f"{model.path}: no activation layer {base}prelu or {base}relu")
    state[key] = slope if slope.numel() else torch.zeros(channels)  # ReLU = PReLU with slope 0


def convert_iresnet(model: KerasModel) -> Converted:
    """keras_insightface ``r18/34/50/100`` with output layer "E" → our ``IResNet`` (face.py),
    plus its identity head. The first convolution is scaled by 127.5/128 (the Keras models'
    input was (pixel − 127.5)/128, the face scorer's is /127.5). PReLU or ReLU activations (ReLU
    becomes a zero PReLU slope); the
    ``E_dense`` kernel's rows are reordered from Keras' (h, w, c) flatten to (c, h, w);
    ``use_bias=False`` gives a zero ``fc.bias``; ``pre_embedding`` without scale gives weight 1."""
    if any("_se_" in name for name in model.layers):
        raise InputError(f"{model.path}: squeeze-excitation blocks (se_r*) are not supported")
    for other in ("GDC_dw", "GAP_dense", "F_dense"):
        if other in model.layers:
            raise InputError(f"{model.path}: layer {other!r}: output layer other than 'E' is not supported")
    stages = _blocks(model, r"stack(\d+)_block(\d+)_1_conv")
    if sorted(stages) != [1, 2, 3, 4]:
        raise InputError(f"{model.path}: no keras_insightface IR-ResNet layers (stack1..4_block1_1_conv, ...)")
    state: dict[str, torch.Tensor] = {}
    stem = _ir_conv(model, "0_conv", 1)
    # The Keras face models were fed (pixel − 127.5) · 0.0078125 = (pixel − 127.5)/128; the face
    # scorer feeds (pixel − 127.5)/127.5: the bias-free first convolution absorbs the ratio.
    state["conv1.weight"] = _kernel(stem) * KERAS_FACE_INPUT_SCALE
    _put_bn(state, "bn1", model.get("0_bn"), model)
    _slope(state, "prelu.weight", model, "0_", stem.weights["kernel"].shape[-1])
    widths = []
    for s, blocks in stages.items():
        for b in blocks:
            name, prefix = f"stack{s}_block{b}", f"layer{s}.{b - 1}"
            stride = 2 if b == 1 else 1
            _put_bn(state, f"{prefix}.bn1", model.get(f"{name}_1_bn"), model)
            conv1 = _ir_conv(model, f"{name}_1_conv", 1)
            state[f"{prefix}.conv1.weight"] = _kernel(conv1)
            _put_bn(state, f"{prefix}.bn2", model.get(f"{name}_2_bn"), model)
            _slope(state, f"{prefix}.prelu.weight", model, f"{name}_2_", conv1.weights["kernel"].shape[-1])
            state[f"{prefix}.conv2.weight"] = _kernel(_ir_conv(model, f"{name}_2_conv", stride))
            _put_bn(state, f"{prefix}.bn3", model.get(f"{name}_3_bn"), model)
            if f"{name}_shortcut_conv" in model.layers:
                state[f"{prefix}.downsample.0.weight"] = _kernel(_ir_conv(model, f"{name}_shortcut_conv", stride))
                _put_bn(state, f"{prefix}.downsample.1", model.get(f"{name}_shortcut_bn"), model)
            elif b == 1:
                raise InputError(f"{model.path}: layer {name}_shortcut_conv missing (max-pool shortcuts are not supported)")
        widths.append(int(state[f"layer{s}.0.conv1.weight"].shape[0]))
    _put_bn(state, "bn2", model.get("E_batchnorm"), model)
    dense = model.get("E_dense", ("Dense",))
    size = _input_size(model)
    if size is None:
        raise InputError(f"{model.path}: the input size is not recorded; needed for layer 'E_dense'")
    side = (size[0] // 16, size[1] // 16)
    state["fc.weight"] = dense_kernel(model.weight("E_dense", "kernel"), (side[0], side[1], widths[-1]))
    state["fc.bias"] = vector(dense.weights["bias"]) if "bias" in dense.weights else torch.zeros(state["fc.weight"].shape[0])
    _put_bn(state, "features", model.get("pre_embedding"), model, axes=(-1, 1))  # on the B×D embedding
    converted = Converted(state, {"stages": [len(stages[s]) for s in sorted(stages)], "widths": widths,
                                  "input_size": list(size), "num_features": int(state["fc.weight"].shape[0])})
    _face_head(model, converted)
    return converted


def _face_head(model: KerasModel, converted: Converted) -> None:
    """The identity head after the ``embedding`` layer, if the file has one: keras_insightface's
    ``NormDense`` (arcface) → ``prototypes`` (C×D, its class centres; the Keras model outputs
    their cosines, the face scorer softmax(64·cos)); a ``Dense`` (softmax) → a linear head."""
    norm = [layer for layer in model.layers.values() if layer.class_name.endswith("NormDense")]
    dense = [layer for layer in model.layers.values() if layer.class_name == "Dense" and layer.name != "E_dense"]
    if len(norm) + len(dense) > 1:
        raise InputError(f"{model.path}: more than one identity head ({', '.join(l.name for l in norm + dense)})")
    if norm:
        layer = norm[0]
        if "norm_dense_w" not in layer.weights:
            raise InputError(f"{model.path}: layer {layer.name!r}: no norm_dense_w (partial-FC heads are not supported)")
        if layer.config.get("loss_top_k", 1) != 1:
            raise InputError(f"{model.path}: layer {layer.name!r}: sub-centre heads (loss_top_k > 1) are not supported")
        converted.extra["prototypes"] = {"prototypes": vector(layer.weights["norm_dense_w"].T)}
        converted.notes.append(f"{layer.name}: the Keras model outputs cosines to the class centres; "
                               "the face scorer uses softmax(64·cos) over them")
    elif dense:
        layer = dense[0]
        head = {"weight": vector(layer.weights["kernel"].T)}
        if "bias" in layer.weights:
            head["bias"] = vector(layer.weights["bias"])
        converted.extra["head"] = head


CONVERTERS = {
    "resnet50": convert_resnet, "resnet101": convert_resnet, "resnet152": convert_resnet,
    "mobilenet_v2": convert_mobilenet_v2, "vgg19": convert_vgg,
    "iresnet18": convert_iresnet, "iresnet34": convert_iresnet, "iresnet50": convert_iresnet, "iresnet100": convert_iresnet,
}
REFUSED = {
    "efficientnet_v2_m": "EfficientNetV2's squeeze-excitation, stochastic-depth and built-in preprocessing "
                         "layers have no faithful PyTorch counterpart here yet",
}
