"""Convert the published Keras recognition models (``.h5``) into PyTorch weights, with h5py only.

    python -m submodular_attribution.convert_keras ckpt/keras_model/cub-resnet101.h5 ckpt/cub-resnet101-keras.pth --arch resnet101
    python -m submodular_attribution.convert_keras ckpt/keras_model/keras-ArcFace-R100-Celeb-A.h5 ckpt/celeba-iresnet100.pth --arch iresnet100

Architectures: ``resnet50/101/152``, ``mobilenet_v2``, ``vgg19`` (CUB classifiers; the file
loads with ``--arch keras:<name> --checkpoint OUT``) and ``iresnet18/34/50/100`` (faces; OUT is
the backbone, and the model's identity head, when the file has one, is written beside it as
``<OUT stem>-prototypes.pt`` (ArcFace class centres) or ``<OUT stem>-head.pt`` (a softmax Dense),
or to ``--head-out``). ``efficientnet_v2_m`` is refused (see ``adapters/keras_convert.py``).

What changes between Keras and PyTorch, and how each difference is handled, is documented in
``adapters/keras_h5.py`` (layouts, BatchNorm epsilon, convolution biases),
``adapters/keras_nets.py`` (strides, padding, heads, preprocessing) and
``adapters/keras_convert.py`` (layer names). The converted weights are loaded back into the
target network before anything is written (strictly: every key, every shape); files are written
atomically. Errors are one ``error:`` line naming the file and the layer (exit status 2).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .adapters.face import IRESNETS, WIDTHS, FACE_SIZE, EMBEDDING_DIM, IResNet
from .adapters.keras_convert import CONVERTERS, REFUSED, Converted
from .adapters.keras_h5 import read_keras_h5
from .adapters.keras_nets import RESNETS, build_keras_net
from .common.atomic import atomic_torch_save
from .common.checkpoints import load_state
from .common.errors import InputError, run_reporting_input_errors


def _check_layout(arch: str, converted: Converted, source: Path, any_depth: bool) -> None:
    layout = converted.layout
    if arch.startswith("iresnet"):
        found = (tuple(layout["stages"]), tuple(layout["widths"]), tuple(layout["input_size"]), layout["num_features"])
        wanted = (IRESNETS[arch], WIDTHS, (FACE_SIZE, FACE_SIZE), EMBEDDING_DIM)
        if found != wanted and not any_depth:
            raise InputError(f"{source}: blocks {list(found[0])}, widths {list(found[1])}, input {found[2]}, "
                             f"embedding {found[3]} are not {arch}'s {list(wanted[0])}, {list(wanted[1])}, "
                             f"{wanted[2]}, {wanted[3]} (--arch)")
    elif arch in RESNETS and tuple(layout["stages"]) != RESNETS[arch] and not any_depth:
        raise InputError(f"{source}: blocks per stage {layout['stages']} are not {arch}'s {list(RESNETS[arch])} (--arch)")


def target_network(arch: str, converted: Converted, source: Path, any_depth: bool = False):
    """The PyTorch network the converted weights are for, with them loaded (strictly)."""
    state = converted.state
    if arch.startswith("iresnet"):
        layout = converted.layout
        side = layout["input_size"][0]
        net = IResNet(tuple(layout["stages"]), num_features=layout["num_features"], widths=tuple(layout["widths"]),
                      input_size=side)
    else:
        net = build_keras_net(arch, state, source, check=not any_depth)
    return load_state(net, state, source).eval()


def convert(source: str | Path, arch: str, any_depth: bool = False) -> Converted:
    """Read ``source`` and convert it for ``arch`` (checks the file's depth against it unless
    ``any_depth``); the result is verified by loading it into the target network."""
    arch = arch.removeprefix("keras:")  # the name the classifier tasks load it under works too
    if arch in REFUSED:
        raise InputError(f"--arch {arch}: not converted: {REFUSED[arch]}")
    if arch not in CONVERTERS:
        raise InputError(f"--arch {arch}: unknown (choose from {', '.join([*CONVERTERS, *REFUSED])})")
    source = Path(source)
    converted = CONVERTERS[arch](read_keras_h5(source))
    _check_layout(arch, converted, source, any_depth)
    target_network(arch, converted, source, any_depth)
    return converted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m submodular_attribution.convert_keras",
                                     description="Convert a published Keras .h5 model into PyTorch weights.")
    parser.add_argument("source", metavar="IN.h5", help="Keras model file (model.save(...h5))")
    parser.add_argument("output", metavar="OUT.pt", help="PyTorch state dict to write")
    parser.add_argument("--arch", required=True, help=f"one of: {', '.join([*CONVERTERS, *REFUSED])}")
    parser.add_argument("--head-out", default=None, metavar="PATH",
                        help="faces: where to write the identity head (default: beside OUT)")
    parser.add_argument("--any-depth", action="store_true",
                        help="accept other depths and widths than --arch's (narrow test models)")
    args = parser.parse_args(argv)

    def run() -> int:
        args.arch = args.arch.removeprefix("keras:")
        converted = convert(args.source, args.arch, args.any_depth)
        out = Path(args.output)
        atomic_torch_save(converted.state, out)
        print(f"wrote {out} ({args.arch}, {len(converted.state)} tensors)")
        for kind, tensors in converted.extra.items():
            path = Path(args.head_out) if args.head_out else out.with_name(f"{out.stem}-{kind}.pt")
            atomic_torch_save(tensors["prototypes"] if kind == "prototypes" else tensors, path)
            print(f"wrote {path} (identity {kind}: pass --{'prototypes' if kind == 'prototypes' else 'head'} {path})")
        for note in converted.notes:
            print(f"note: {note}")
        if not args.arch.startswith("iresnet"):
            print(f"use: --arch keras:{args.arch} --checkpoint {out}")
        return 0

    return run_reporting_input_errors(run)


if __name__ == "__main__":
    sys.exit(main())
