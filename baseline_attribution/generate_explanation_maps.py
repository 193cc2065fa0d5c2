"""Saliency maps of one baseline method for every image of an evaluation list.

    python -m baseline_attribution.generate_explanation_maps --method rise --model shapes \\
        --eval-list datasets/shapes/eval_list.txt --save-dir explanation_results/shapes/rise

``--model`` names a per-task configuration (its model flags — ``--checkpoint``, ``--arch``,
``--model-name`` … — and data flags are accepted too). Maps are H×W float32 at the model's
input resolution, saved as ``<save-dir>/<class>/<stem>.npy``; finished images are skipped, and
torchrun ranks share the list like the SMDL scripts. Method options: ``--option key=value``
(Python literals), e.g. ``--option N=4000 --option recalibrate=True``. References: ``eg`` and
``lpi`` draw them from ``--reference-folder`` (LPI clusters the model's outputs on them, once per
run); ``ig2`` uses ``n_refs`` images of other classes from the evaluation list. The maps serve as
baselines in the evaluations and as priors for ``--division prior`` of the SMDL scripts.

Yang et al.'s re-calibration command line (``python main.py -attr_method IG_Uniform -k 5
-bg_size 10 -exp_obj contrast``) maps onto method options (:func:`recalibration_options`):
``-k`` (interpolation points per reference) is ``steps`` of ig / ig-uniform / ig-sg / ig-sq,
``n_alphas`` of lpi and ``max_iter`` of agi; ``-bg_size`` (references per image) is ``n_refs`` of
ig-uniform / ig-sg / ig-sq / ig2, ``n_samples`` of smoothgrad and ``n_classes`` of agi (their
``top_k``); eg draws ``n_samples`` = k·bg_size (reference, α) pairs; ``-exp_obj logit|prob|contrast``
is ``output=logit|probability|contrastive``; ``-est_method valid_ip|vanilla`` is
``recalibrate=True|False``.

The rest of that command line is accepted too (:func:`paper_argv` rewrites it before parsing):
``-attr_method NAME`` is ``--method`` (:data:`PAPER_METHODS`; path methods then default to
``-est_method valid_ip``, their code's default), ``-model resnet34`` (or another torchvision
classifier) is ``--model imagenet_classifier --arch resnet34`` with the weights
``ckpt/resnet34-imagenet.pth`` unless ``--checkpoint``/``--weights`` say otherwise, and
``-dataset ImageNet`` is ``datasets/imagenet_samples.txt`` unless ``--eval-list`` is given
(``-dataset shapes``: the embedded default). ``-metric visualize|DiffID`` evaluates the maps, which
is the evaluation layer's job: the command line is handed to ``python -m evals.recalibration_cli``,
which makes the maps and then draws or scores them.
"""
from __future__ import annotations

import argparse
import ast
import sys
import zlib
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from submodular_attribution.common import paths
from submodular_attribution.common.atomic import ensure_dir
from submodular_attribution.common.distributed import finish_rank
from submodular_attribution.common.errors import InputError, run_reporting_input_errors
from submodular_attribution.common.images import IMAGE_SUFFIXES, image_tensor
from submodular_attribution.common.lists import ListItem, read_eval_list
from submodular_attribution.common.maps import map_path, save_map
from submodular_attribution.common.progress import run_items
from submodular_attribution.common.provenance import write_provenance
from submodular_attribution.frontend import model_parser, prepare
from submodular_attribution.tasks import get_model_task

from .base import REGISTRY, attribute
from .models import attribution_model


def get_args_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    parser = model_parser(argv, "python -m baseline_attribution.generate_explanation_maps", __doc__.split("\n\n")[0],
                          save_dir_help="maps root (default: explanation_results/<model>/<method>)")
    group = parser.add_argument_group("baseline")
    group.add_argument("--method", required=True, choices=sorted(REGISTRY), help="attribution method")
    group.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                       help="method keyword argument, a Python literal; repeatable")
    group.add_argument("--reference-folder", default=None,
                       help="eg, lpi: reference images (every image file below it, sorted), at the input size")
    group.add_argument("--num-references", type=int, default=64,
                       help="eg, lpi: use at most this many reference images")
    paper = parser.add_argument_group("re-calibration paper flags (Yang et al., ICLR 2023)",
                                      "their -metric DiffID|visualize: python -m evals.recalibration_cli")
    paper.add_argument("-k", dest="paper_k", type=int, default=None,
                       help="interpolation points per reference (steps / n_alphas / max_iter; eg: k·bg_size samples)")
    paper.add_argument("-bg_size", "--bg-size", dest="paper_bg_size", type=int, default=None,
                       help="references per image (n_refs; smoothgrad: n_samples; agi: n_classes; "
                            "eg: k·bg_size samples)")
    paper.add_argument("-exp_obj", "--exp-obj", dest="paper_exp_obj", choices=tuple(EXP_OBJ), default=None,
                       help="explained output: logit, prob (softmax probability) or contrast (class-contrastive)")
    paper.add_argument("-est_method", "--est-method", dest="paper_est_method", choices=EST_METHODS, default=None,
                       help="valid_ip: re-calibrated (recalibrate=True), vanilla: not; the default with "
                            "-attr_method is valid_ip for the path methods, else the method's own")
    # -attr_method, -model and -dataset are rewritten into --method/--model/... before parsing
    # (paper_argv: -model decides which model flags exist); listed here for --help only.
    for flag, metavar, text in (
            ("-attr_method", "NAME", f"their method name: {', '.join(PAPER_METHODS)} (= --method)"),
            ("-model", "ARCH", "resnet34, vgg16 or another torchvision classifier (ImageNet weights "
                               "ckpt/<ARCH>-imagenet.pth), or a task name"),
            ("-dataset", "NAME", "ImageNet (datasets/imagenet_samples.txt unless --eval-list) or shapes")):
        paper.add_argument(flag, dest=f"paper_{flag[1:]}", metavar=metavar, default=argparse.SUPPRESS, help=text)
    return parser


#: Yang et al.'s ``-k`` and ``-bg_size`` -> our option of each method (see the module docstring).
K_OPTION = {"ig": "steps", "ig-uniform": "steps", "ig-sg": "steps", "ig-sq": "steps", "lpi": "n_alphas",
            "agi": "max_iter"}
BG_SIZE_OPTION = {"ig-uniform": "n_refs", "ig-sg": "n_refs", "ig-sq": "n_refs", "ig2": "n_refs",
                  "smoothgrad": "n_samples", "agi": "n_classes"}  # agi: their top_k = bg_size
EXP_OBJ = {"logit": "logit", "prob": "probability", "contrast": "contrastive"}
#: Their ``-est_method``; ``valid_ref`` (re-calibrated references) has no counterpart here.
EST_METHODS = ("vanilla", "valid_ip")
#: Their ``-attr_method`` names -> our registry (their ``Random`` baseline has no counterpart).
PAPER_METHODS = {"InputGrad": "saliency", "SmoothGrad": "smoothgrad", "FullGrad": "fullgrad", "IntGrad": "ig",
                 "ExpGrad": "eg", "IG_Uniform": "ig-uniform", "IG_SG": "ig-sg", "IG_SQ": "ig-sq", "AGI": "agi",
                 "LPI": "lpi", "GradCAM": "gradcam"}
#: Their ``-dataset`` names (any case, with or without '-') that we have a list for.
PAPER_DATASETS = ("ImageNet", "shapes")
PAPER_IMAGENET_LIST = "imagenet_samples.txt"  # under datasets/


def recalibration_options(method: str, k: int | None, bg_size: int | None, exp_obj: str | None,
                          est_method: str | None = None) -> dict:
    """Method options for Yang et al.'s ``-k``, ``-bg_size``, ``-exp_obj`` and ``-est_method``
    (None: not given)."""
    options = {}
    for flag, value in (("-k", k), ("-bg_size", bg_size)):
        if value is not None and value < 1:
            raise InputError(f"{flag} must be >= 1, got {value}")
    if method == "eg" and (k is not None or bg_size is not None):
        options["n_samples"] = (k or 1) * (bg_size or 1)
    else:
        for flag, value, table in (("-k", k, K_OPTION), ("-bg_size", bg_size, BG_SIZE_OPTION)):
            if value is None:
                continue
            if method not in table:
                raise InputError(f"--method {method}: {flag} does not apply (it sets "
                                 f"{', '.join(sorted(set(table.values())))} of {', '.join(sorted(table))}, eg)")
            options[table[method]] = value
    if exp_obj is not None:
        if "output" not in _parameters(method):
            raise InputError(f"--method {method}: -exp_obj does not apply (the method takes no output= option)")
        options["output"] = EXP_OBJ[exp_obj]
    if est_method is not None:
        if "recalibrate" in _parameters(method):
            options["recalibrate"] = est_method == "valid_ip"
        elif est_method != "vanilla":
            raise InputError(f"--method {method}: -est_method {est_method} does not apply (not a path method)")
    return options


def _flag_value(argv: list[str], flag: str) -> tuple[str | None, list[str]]:
    """The value of a single-dash ``flag`` (``-flag V`` or ``-flag=V``) and ``argv`` without it."""
    value, rest, i = None, [], 0
    while i < len(argv):
        arg = argv[i]
        if arg == flag:
            if i + 1 >= len(argv):
                raise InputError(f"{flag} needs a value")
            value, i = argv[i + 1], i + 2
            continue
        if arg.startswith(flag + "="):
            value = arg.split("=", 1)[1]
        else:
            rest.append(arg)
        i += 1
    return value, rest


def _given(argv: list[str], *flags: str) -> bool:
    return any(a == f or a.startswith(f + "=") for a in argv for f in flags)


def paper_method(name: str) -> str:
    """Our method for their ``-attr_method`` name (any case); unknown: an InputError listing them."""
    by_case = {k.lower(): v for k, v in PAPER_METHODS.items()}
    if name.lower() not in by_case:
        raise InputError(f"-attr_method {name}: unknown; choose from {', '.join(PAPER_METHODS)} "
                         f"(or --method with one of ours)")
    return by_case[name.lower()]


def paper_argv(argv: Sequence[str], metric_ok: bool = False) -> list[str]:
    """``argv`` with Yang et al.'s ``-attr_method``, ``-model`` and ``-dataset`` rewritten into our
    flags (see the module docstring); ``-metric`` is left for the caller when ``metric_ok``, else
    an InputError pointing to ``evals.recalibration_cli``."""
    from submodular_attribution.tasks import ALIASES, TASK_NAMES

    argv = list(argv)
    if not metric_ok and _given(argv, "-metric"):
        raise InputError("-metric evaluates the maps: run python -m evals.recalibration_cli with the same flags")
    attr, argv = _flag_value(argv, "-attr_method")
    model, argv = _flag_value(argv, "-model")
    dataset, argv = _flag_value(argv, "-dataset")
    out = []
    if attr is not None:
        if _given(argv, "--method"):
            raise InputError("give --method or -attr_method, not both")
        method = paper_method(attr)
        out += ["--method", method]
        if not _given(argv, "-est_method", "--est-method") and "recalibrate" in _parameters(method) \
                and not any(o.removeprefix("--option=").startswith("recalibrate=") for o in argv):
            out += ["-est_method", "valid_ip"]  # their code's default: re-calibrated
    if model is None and dataset is None:
        return argv + out
    if _given(argv, "--model"):
        raise InputError("give --model or -model/-dataset, not both")
    data = None if dataset is None else dataset.lower().replace("-", "")
    if data is not None and data not in [d.lower() for d in PAPER_DATASETS]:
        raise InputError(f"-dataset {dataset}: not offered here; choose from {', '.join(PAPER_DATASETS)}")
    if data == "shapes" or (data is None and model in (*TASK_NAMES, *ALIASES)):
        if data == "shapes" and model not in (None, "shapes", "default"):
            raise InputError(f"-dataset shapes goes with the embedded shapes CNN, not -model {model}")
        return argv + out + ["--model", model or "shapes"]
    arch = model or "resnet34"  # their default model
    if arch in (*TASK_NAMES, *ALIASES):
        raise InputError(f"-dataset {dataset} needs an ImageNet classifier, not -model {arch}")
    out += ["--model", "imagenet_classifier", "--arch", arch]
    if not _given(argv, "--checkpoint", "--weights", "--pretrained"):
        out += ["--checkpoint", str(paths.ckpt_dir() / f"{arch}-imagenet.pth")]
    if not _given(argv, "--eval-list"):
        out += ["--eval-list", str(paths.datasets_dir() / PAPER_IMAGENET_LIST)]
    return argv + out


def _parameters(method: str):
    import inspect

    return inspect.signature(REGISTRY[method]).parameters


def parse_options(pairs: Sequence[str]) -> dict:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.isidentifier():
            raise InputError(f"--option {pair!r}: expected KEY=VALUE")
        try:
            options[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            options[key] = value  # a bare word, e.g. output=probability
    return options


FOLDER_REFERENCES = {"eg": "references", "lpi": "reference_images"}


def _folder_references(args: argparse.Namespace, load) -> torch.Tensor:
    """EG's and LPI's reference set: the first ``--num-references`` images below ``--reference-folder``."""
    if not args.reference_folder:
        raise InputError(f"--method {args.method} needs --reference-folder DIR (images to draw references from)")
    folder = Path(args.reference_folder)
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES) if folder.is_dir() else []
    if not files:
        raise InputError(f"{folder}: no images found for --reference-folder")
    return torch.stack([load(p) for p in files[: args.num_references]])


def _other_class_images(items: list[ListItem], item: ListItem, root: Path, load, seed: int, count: int = 5):
    """IG²'s references for one image: ``count`` images of other classes from the list, chosen
    reproducibly per image (independent of sharding)."""
    others = [i for i in items if i.label != item.label]
    if not others:
        raise InputError("--method ig2 needs images of at least two classes in the list (its references)")
    rng = np.random.default_rng([seed, zlib.crc32(item.path.encode())])
    picks = rng.choice(len(others), size=min(count, len(others)), replace=False)
    return torch.stack([load(root / others[i].path) for i in sorted(picks)])


def run(args: argparse.Namespace) -> int:
    task = get_model_task(args.model)
    options = parse_options(args.option)
    paper = recalibration_options(args.method, args.paper_k, args.paper_bg_size, args.paper_exp_obj,
                                  args.paper_est_method)
    clash = sorted(set(paper) & set(options))
    if clash:
        raise InputError(f"--option {', '.join(clash)}: also set by -k/-bg_size/-exp_obj/-est_method; give it once")
    options.update(paper)
    save_dir = maps_dir(args)
    ensure_dir(save_dir)
    ready = prepare(task, args)
    model = attribution_model(ready.scorer, batch_size=args.batch_size)
    write_provenance(save_dir, {**vars(args), "save_dir": str(save_dir), "rank": ready.worker.rank})
    size = tuple(args.input_size)
    load = lambda path: image_tensor(task.read_input(path, size))  # noqa: E731
    if args.method in FOLDER_REFERENCES:
        options[FOLDER_REFERENCES[args.method]] = _folder_references(args, load).to(model.device)
    all_items = read_eval_list(args.eval_list)  # IG²'s references: other-class images of the whole list
    todo = [i for i in ready.items if not map_path(save_dir, str(i.label), i.stem).is_file()]
    print(f"{save_dir}: {len(ready.items) - len(todo)} of {len(ready.items)} maps already done", file=sys.stderr)

    def explain_item(item: ListItem) -> None:
        x = load(ready.root / item.path)[None].to(model.device)
        item_options = dict(options)
        if args.method == "ig2":
            count = options.get("n_refs") or 5
            item_options["references"] = _other_class_images(all_items, item, ready.root, load, args.seed,
                                                             count).to(model.device)
        target = int(model.batched_probs(x).argmax()) if args.target == "prediction" else item.label
        saliency = attribute(args.method, model, x, [target], numpy=True, **item_options)[0]
        save_map(save_dir, str(item.label), item.stem, saliency)

    _check_options(args.method, model, options)
    report = run_items(todo, explain_item, run_dir=save_dir, desc=args.method, strict=args.strict,
                       show=ready.worker.is_main)
    return finish_rank(report.exit_status, ready.worker)


def maps_dir(args: argparse.Namespace) -> Path:
    """``--save-dir``, or ``explanation_results/<task>/<method>``."""
    if args.save_dir:
        return Path(args.save_dir)
    return paths.explanations_dir() / get_model_task(args.model).name / args.method


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The parsed flags, the re-calibration paper's rewritten first (:func:`paper_argv`, whose
    InputErrors are bad command lines)."""
    argv = paper_argv(sys.argv[1:] if argv is None else argv)
    return get_args_parser(argv).parse_args(argv)


def _check_options(method: str, model, options: dict) -> None:
    """An unknown ``--option`` is a bad command line, not a per-image failure: try the method's
    signature before the loop."""
    import inspect

    fn = REGISTRY[method]
    params = inspect.signature(fn).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    unknown = sorted(set(options) - set(params) - {"references", "reference_images"})
    if unknown:
        raise InputError(f"--method {method}: unknown option(s) {', '.join(unknown)}; "
                         f"it takes {', '.join(p for p in params if p not in ('model', 'images', 'targets'))}")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if _given(argv, "-metric"):
        # The paper's command makes the maps and evaluates them: evaluation is a layer above
        # this module, so the whole command line goes to the evaluation layer's entry point.
        import subprocess

        print("-metric: running python -m evals.recalibration_cli with this command line", file=sys.stderr)
        return subprocess.run([sys.executable, "-m", "evals.recalibration_cli", *argv]).returncode
    return run_reporting_input_errors(lambda: run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
