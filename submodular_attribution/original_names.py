"""The original SMDL-Attribution's script names, run as our tasks.

Each ``python -m submodular_attribution.<original name>`` is a shim file that calls
:func:`run_original`; the table below says which task it runs and with which of our flags
(prepended, so the user's own flags win). The task's defaults are ours; what differs from the
original script is in :attr:`OriginalCommand.differs` and in docs/original_code.md.

The original's flags that have an equal here are plain aliases on every command (``--Datasets``,
``--sam-mask-dir``, ``--explanation-method``, ``--grad-partition-size``,
``--grad-number-per-set``, ``--superpixel-algorithm``); those of its older scripts that mean
nothing here are dropped with one warning line each (:data:`DROPPED_FLAGS`).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

_BIDIRECTIONAL = ("--search", "bidirectional")
_FAIR = ("the 'fair' scripts differ only in their list (datasets/CUB/eval_fair-resnet.txt) and result folder "
         "(cub-fair): pass them with --eval-list and --save-dir")


@dataclass(frozen=True)
class OriginalCommand:
    """An original script: the task it is here, our flags that give its setting, what differs."""

    task: str | None
    flags: tuple[str, ...] = ()
    differs: str = ""

    def command(self) -> str:
        return " ".join(["python -m submodular_attribution", str(self.task), *self.flags])


ORIGINAL_COMMANDS: dict[str, OriginalCommand] = {
    "smdl_explanation_imagenet_clip_superpixel": OriginalCommand("imagenet_clip"),
    "efficientv1-smdl_explanation_imagenet_clip_superpixel": OriginalCommand(
        "imagenet_clip", _BIDIRECTIONAL,
        "its 'V1' chose the removed region with the added images' consistency scores; LIMA's V2 search runs instead"),
    "smdl_explanation_imagenet_imagebind_superpixel": OriginalCommand("imagenet_imagebind"),
    "efficientv2-smdl_explanation_imagenet_imagebind_superpixel": OriginalCommand("imagenet_imagebind", _BIDIRECTIONAL),
    "smdl_explanation_imagenet_languagebind_superpixel": OriginalCommand("imagenet_languagebind"),
    "efficientv2-smdl_explanation_imagenet_languagebind_superpixel": OriginalCommand(
        "imagenet_languagebind", _BIDIRECTIONAL),
    "smdl_explanation_lung_quilt_superpixel": OriginalCommand("quilt"),
    "efficientv2-smdl_explanation_lung_quilt_superpixel": OriginalCommand("quilt", _BIDIRECTIONAL),
    "smdl_explanation_celeba_superpixel": OriginalCommand("celeba"),
    "smdl_explanation_cub-superpixel": OriginalCommand("cub"),
    "smdl_explanation_cub-sam": OriginalCommand("cub", ("--division", "sam")),
    "smdl_explanation_cub_fair": OriginalCommand("cub", ("--division", "prior"), _FAIR),
    "smdl_explanation_cub_fair-superpixel": OriginalCommand("cub", (), _FAIR),
    "smdl_explanation_cub_fair-sam": OriginalCommand("cub", ("--division", "sam"), _FAIR),
    "smdl_explanation_vgg": OriginalCommand("vggface2", ("--division", "prior")),
    "smdl_explanation_vgg_superpixel": OriginalCommand("vggface2"),
    "vggsound_imagebind": OriginalCommand("vggsound_imagebind"),
    "vggsound_languagebind": OriginalCommand(
        None, differs="LanguageBind's audio tower is not supported here; vggsound_imagebind explains sounds"),
}

#: The original's ``scripts/<name>.sh`` launchers → the script they ran (a key of ORIGINAL_COMMANDS).
ORIGINAL_LAUNCHERS: dict[str, str] = {
    "clip_multigpu": "smdl_explanation_imagenet_clip_superpixel",
    "imagebind_multigpu": "smdl_explanation_imagenet_imagebind_superpixel",
    "languagebinb_multigpu": "smdl_explanation_imagenet_languagebind_superpixel",  # sic
    "efficientv2-imagebind_multigpu": "efficientv2-smdl_explanation_imagenet_imagebind_superpixel",
    "efficientv2-imagebind_multigpu_debug": "efficientv2-smdl_explanation_imagenet_imagebind_superpixel",
    "efficientv2-languagebind_multigpu": "efficientv2-smdl_explanation_imagenet_languagebind_superpixel",
    "efficientv2-languagebind_multigpu_debug": "efficientv2-smdl_explanation_imagenet_languagebind_superpixel",
}


def launcher_text(name: str) -> str:
    """The committed ``scripts/<name>.sh`` of an original launcher (tests hold the files to this)."""
    entry = ORIGINAL_COMMANDS[ORIGINAL_LAUNCHERS[name]]
    flags = "".join(f" {flag}" for flag in entry.flags)
    return (f"#!/usr/bin/env bash\n"
            f"# The original SMDL-Attribution's launcher of this name: {entry.task}{flags} on every GPU of this machine\n"
            f"# (NPROC etc. as for torchrun_task.sh; what differs from the original: docs/original_code.md).\n"
            f"echo \"scripts/{name}.sh is the original's name of: scripts/multigpu.sh {entry.task}{flags}\" >&2\n"
            f"exec \"$(dirname \"$0\")/torchrun_task.sh\" {entry.task}{flags} \"$@\"\n")


#: The original's flags with no meaning here (its TensorFlow configs, its region-count knobs).
DROPPED_FLAGS: dict[str, tuple[bool, str]] = {  # flag → (takes a value, why it is dropped)
    "--cfg": (True, "the original's TensorFlow model config; the model comes from --checkpoint"),
    "--sub-n": (True, "every region is ordered here"),
    "--sub-k": (True, "every region is ordered here"),
    "--pixel-partition-number": (True, "use --division grid --region-size"),
    "--random-patch": (True, "no random patches here"),
    "--random-patch-number": (True, "no random patches here"),
}
#: ``--partition grad|pixel`` of the original's older scripts.
PARTITIONS = {"grad": "prior", "pixel": "grid"}


def translate(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """The original's flags → ours: ``(argv, warnings)``; dropped flags leave one warning each."""
    out, warnings, rest = [], [], list(argv)
    while rest:
        arg = rest.pop(0)
        name, has_value, value = arg.partition("=")
        if name in DROPPED_FLAGS:
            takes_value, why = DROPPED_FLAGS[name]
            if takes_value and not has_value and rest:
                rest.pop(0)
            warnings.append(f"warning: {name} ignored: {why}")
        elif name == "--partition":
            value = value if has_value else (rest.pop(0) if rest else "")
            out += ["--division", PARTITIONS.get(value, value)]
        else:
            out.append(arg)
    return out, warnings


def run_original(shim_file: str, argv: Sequence[str] | None = None) -> int:
    """Run the task behind the original script ``shim_file`` (its file name is the original's)."""
    name = Path(shim_file).stem
    entry = ORIGINAL_COMMANDS[name]
    if entry.task is None:
        print(f"error: {name}: {entry.differs}", file=sys.stderr)
        return 2
    args, warnings = translate(sys.argv[1:] if argv is None else argv)
    differs = f" ({entry.differs})" if entry.differs else ""
    print(f"{name} is the original's name of: {entry.command()}{differs}", file=sys.stderr)
    for line in warnings:
        print(line, file=sys.stderr)
    from . import cli

    return cli.main(cli.get_smdl_task(entry.task), [*entry.flags, *args])
