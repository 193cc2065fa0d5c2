"""Keras .h5 → PyTorch conversion against Keras' own outputs.

The fixtures (tests/fixtures/keras/, made by make_fixtures.py with TensorFlow 2.15 in a separate
environment) are small models with the layer layout and names of the published ones and random
weights, BatchNorm statistics, convolution biases and PReLU slopes; each .npz holds 8-bit images
and what Keras computed on them after the model's own preprocessing. Converted with the command
line, loaded by the loaders the tasks use, run on the same images through our preprocessing, the
PyTorch models must agree with Keras to 1e-4.
"""
import gzip
import json
import re
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from submodular_attribution import convert_keras
from submodular_attribution.adapters.classifier import find_classifier_layer
from submodular_attribution.adapters.face import FaceScorer, IResNet, PrototypeHead
from submodular_attribution.adapters.keras_nets import RESNETS, KerasResNet, keras_mobilenet_v2, load_keras_classifier
from submodular_attribution.common.checkpoints import load_weights, read_state_dict
from submodular_attribution.common.errors import InputError
from submodular_attribution.models import ClassifierScorer

FIXTURES = Path(__file__).parent / "fixtures" / "keras"
CLASSIFIERS = [("resnet_tiny", "resnet101"), ("mobilenet_v2_tiny", "mobilenet_v2"), ("vgg_tiny", "vgg19")]
TOL = dict(rtol=1e-4, atol=1e-4)

torch.set_num_threads(1)


def _h5(name: str, folder: Path) -> Path:
    path = folder / f"{name}.h5"
    if not path.exists():
        with gzip.open(FIXTURES / f"{name}.h5.gz") as src, open(path, "wb") as dst:
            shutil.copyfileobj(src, dst)
    return path


def _reference(name: str) -> tuple[torch.Tensor, dict]:
    data = np.load(FIXTURES / f"{name}.npz")
    images = torch.from_numpy(data["pixels"]).permute(0, 3, 1, 2).float() / 255.0
    return images, {k: torch.from_numpy(data[k]) for k in ("embedding", "output")}


def _convert(name: str, arch: str, folder: Path, capsys, *extra: str) -> Path:
    out = folder / f"{name}.pt"
    assert convert_keras.main([str(_h5(name, folder)), str(out), "--arch", arch, "--any-depth", *extra]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    return out


@pytest.mark.parametrize("name, arch", CLASSIFIERS)
def test_converted_classifier_matches_keras(name, arch, tmp_path, capsys):
    out = _convert(name, arch, tmp_path, capsys)
    net, prep = load_keras_classifier(f"keras:{arch}", out, num_classes=5, any_depth=True)
    scorer = ClassifierScorer(net, prep["mean"], prep["std"], num_classes=5,
                              embedding_layer=find_classifier_layer(net, 5))
    images, keras = _reference(name)
    with torch.inference_mode():
        result = scorer(images)
    # probabilities: Keras' softmax output; embeddings: its "dense" layer (ReLU'd) or pooled features
    torch.testing.assert_close(result.probs, keras["output"], **TOL)
    torch.testing.assert_close(result.embeddings, keras["embedding"], **TOL)
    assert prep["input_size"] == (224, 224)


def test_converted_face_model_and_arcface_head_match_keras(tmp_path, capsys):
    out = _convert("iresnet_tiny", "iresnet100", tmp_path, capsys)
    protos = tmp_path / "iresnet_tiny-prototypes.pt"
    assert protos.is_file()
    state = read_state_dict(out)
    backbone = IResNet((2, 1, 1, 1), num_features=16, widths=(4, 8, 8, 8), input_size=32)  # iresnet100's class
    load_weights(backbone, out)
    head = PrototypeHead(torch.load(protos), scale=64.0)
    scorer = FaceScorer(backbone, head, input_size=32)
    images, keras = _reference("iresnet_tiny")
    with torch.inference_mode():
        result = scorer(images)
    torch.testing.assert_close(result.embeddings, keras["embedding"], **TOL)
    # the Keras ArcFace head outputs cosines; the face scorer turns 64·cos into probabilities
    torch.testing.assert_close(result.probs, (64.0 * keras["output"]).softmax(-1), **TOL)
    assert torch.count_nonzero(state["fc.bias"]) == 0  # E_dense has no bias


def test_weight_names_without_suffix_or_layer_path_read_the_same(tmp_path):
    """Later writers name weights ``kernel`` instead of tf.keras 2's ``<layer>/kernel:0``."""
    original = _h5("vgg_tiny", tmp_path)
    renamed = tmp_path / "renamed.h5"
    shutil.copy(original, renamed)
    with h5py.File(renamed, "r+") as f:
        group = f["model_weights"]
        for layer in group:
            sub = group[layer]
            names = [n.decode() if isinstance(n, bytes) else n for n in sub.attrs.get("weight_names", [])]
            short = [n.split("/")[-1].split(":")[0] for n in names]
            for long_name, new in zip(names, short):
                sub.move(long_name, new)
            for key in [k for k in sub if isinstance(sub[k], h5py.Group)]:
                del sub[key]  # the now-empty inner groups
            sub.attrs["weight_names"] = np.array(short, dtype="S")
    a = convert_keras.convert(original, "vgg19", any_depth=True).state
    b = convert_keras.convert(renamed, "vgg19", any_depth=True).state
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _edit_config(path: Path, edit) -> None:
    with h5py.File(path, "r+") as f:
        cfg = json.loads(f.attrs["model_config"])
        edit(cfg)
        f.attrs["model_config"] = json.dumps(cfg)


def test_errors_are_one_line_naming_the_file_and_layer(tmp_path, capsys):
    h5 = _h5("resnet_tiny", tmp_path)
    text = tmp_path / "notes.h5"
    text.write_text("not hdf5")
    cases = [
        ([str(text), "o.pt", "--arch", "resnet101"], r"notes\.h5: not an HDF5 file"),
        ([str(h5), "o.pt", "--arch", "resnet18"], r"--arch resnet18: unknown"),
        ([str(h5), "o.pt", "--arch", "efficientnet_v2_m"], r"--arch efficientnet_v2_m: not converted: EfficientNetV2"),
        ([str(h5), "o.pt", "--arch", "resnet101"], r"resnet_tiny\.h5: blocks per stage \[2, 1\] are not resnet101's"),
        ([str(h5), "o.pt", "--arch", "mobilenet_v2"], r"resnet_tiny\.h5: layer 'Conv1' not found"),
    ]
    for argv, pattern in cases:
        assert convert_keras.main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error: "), err
        assert re.search(pattern, err), err
    assert not (tmp_path / "o.pt").exists()

    sigmoid = tmp_path / "sigmoid.h5"
    shutil.copy(h5, sigmoid)
    _edit_config(sigmoid, lambda cfg: cfg["config"]["layers"][-1]["config"].update(activation="sigmoid"))
    with pytest.raises(InputError, match=r"sigmoid\.h5: layer 'dense_1': final activation 'sigmoid'"):
        convert_keras.convert(sigmoid, "resnet101", any_depth=True)

    maxpool = tmp_path / "maxpool.h5"
    shutil.copy(h5, maxpool)
    _edit_config(maxpool, lambda cfg: [layer.update(class_name="GlobalMaxPooling2D") for layer in cfg["config"]["layers"]
                                       if layer["class_name"] == "GlobalAveragePooling2D"])
    with pytest.raises(InputError, match=r"maxpool\.h5: layer 'global_average_pooling2d' \(GlobalMaxPooling2D\) in the classifier head"):
        convert_keras.convert(maxpool, "resnet101", any_depth=True)

    missing = tmp_path / "missing.h5"
    shutil.copy(h5, missing)
    with h5py.File(missing, "r+") as f:
        del f["model_weights/resnet_tiny/conv2_block2_3_bn/moving_variance:0"]
    with pytest.raises(InputError, match=r"missing\.h5: layer 'resnet_tiny': weight 'conv2_block2_3_bn/moving_variance:0' is listed but absent"):
        convert_keras.convert(missing, "resnet101", any_depth=True)

    weights_only = tmp_path / "weights.h5"
    with h5py.File(weights_only, "w") as f:
        f.attrs["layer_names"] = np.array([b"dense"])
    with pytest.raises(InputError, match=r"weights\.h5: no model_config"):
        convert_keras.convert(weights_only, "resnet101")


def test_converted_file_refuses_the_plain_torchvision_architecture(tmp_path, capsys):
    out = _convert("resnet_tiny", "resnet101", tmp_path, capsys)
    state = read_state_dict(out)
    assert state["keras_head"].tolist() == [1]  # one hidden Dense with ReLU
    plain = tmp_path / "plain.pt"
    torch.save({k: v for k, v in state.items() if k != "keras_head"}, plain)
    with pytest.raises(InputError, match=r"plain\.pt: not a converted Keras model"):
        load_keras_classifier("keras:resnet101", plain, any_depth=True)
    with pytest.raises(InputError, match=r"resnet_tiny\.pt: blocks per stage \[2, 1\]"):
        load_keras_classifier("keras:resnet101", out)  # the full depth is checked by default
    with pytest.raises(InputError, match=r"has 5 classes, not 200"):
        load_keras_classifier("keras:resnet101", out, num_classes=200, any_depth=True)


def test_full_architectures_keep_torchvision_names_with_keras_strides_and_padding():
    import torchvision

    net = KerasResNet(RESNETS["resnet101"], [2048, 200], [])
    reference = torchvision.models.resnet101(num_classes=200)
    assert set(net.state_dict()) - {"keras_head"} == set(reference.state_dict())
    assert net.layer2[0].conv1.stride == (2, 2) and net.layer2[0].conv2.stride == (1, 1)
    assert net.layer1[0].conv1.stride == (1, 1)
    mobile = keras_mobilenet_v2([1280, 200], [])
    reference = torchvision.models.mobilenet_v2(num_classes=200)
    features = lambda keys: {k for k in keys if k.startswith("features.")}  # noqa: E731 (heads are Keras')
    assert features(mobile.state_dict()) == features(reference.state_dict())
    # a stride-2 convolution on an even map pads only bottom/right, as TensorFlow's "same"
    conv = mobile.features[0][0]
    x = torch.zeros(1, 3, 4, 4)
    x[0, :, 0, 0] = 1.0  # a pixel only a top/left padding would bring under the first window's centre
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[:, :, 0, 0] = 1.0  # reads the window's top-left tap
        out = conv(x)
    assert out.shape[-2:] == (2, 2)
    assert out[0, 0, 0, 0] == 3.0 and out[0, 0, 1, 1] == 0.0  # top-left tap of window (0, 0) is pixel (0, 0)
    expected = F.conv2d(F.pad(x, (0, 1, 0, 1)), conv.weight, stride=2)
    torch.testing.assert_close(out, expected)


def test_face_variants_relu_activations_and_softmax_head(tmp_path):
    """keras_insightface models trained with ReLU (a PReLU of slope 0 here) and with a softmax
    ``Dense`` head instead of ArcFace's NormDense (a linear head file)."""
    from submodular_attribution.adapters.face import load_linear_head
    from submodular_attribution.adapters.keras_convert import convert_iresnet
    from submodular_attribution.adapters.keras_h5 import KerasLayer, read_keras_h5

    model = read_keras_h5(_h5("iresnet_tiny", tmp_path))
    prelus = [name for name in model.layers if name.endswith("prelu")]
    layers = {}
    for name, layer in model.layers.items():
        if name in prelus:
            name = name[:-len("prelu")] + "relu"
            layer = KerasLayer(name, "Activation", {"activation": "relu"})
        elif name == "arcface":
            kernel = np.random.default_rng(0).standard_normal((16, 7))
            layer = KerasLayer("softmax_logits", "Dense", {"activation": "linear", "use_bias": False}, {"kernel": kernel})
            layers[layer.name] = layer
            layer = KerasLayer("softmax", "Activation", {"activation": "softmax"})
        layers[layer.name] = layer
    model.layers = layers
    converted = convert_iresnet(model)
    slopes = [k for k in converted.state if k.endswith("prelu.weight")]
    assert len(slopes) == len(prelus) == 6 and all(not converted.state[k].any() for k in slopes)
    head = converted.extra["head"]
    torch.testing.assert_close(head["weight"], torch.from_numpy(kernel.T).float())
    assert "prototypes" not in converted.extra and "bias" not in head
    padded = {"weight": torch.zeros(7, 512)}  # the face loader reads heads on 512-d embeddings
    padded["weight"][:, :16] = head["weight"]
    torch.save(padded, tmp_path / "head.pt")
    assert load_linear_head(tmp_path / "head.pt").out_features == 7
