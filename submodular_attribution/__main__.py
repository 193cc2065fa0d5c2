"""``python -m submodular_attribution <task> [flags]``: SMDL on any registered task.

``--help`` lists the tasks (the registry in ``tasks.py``, plus the detection and grounding
command lines); ``python -m submodular_attribution <task> --help`` lists that task's flags, with
its published defaults.
"""
from __future__ import annotations

import sys
from typing import Callable, Sequence


def _tasks() -> dict[str, tuple[str, Callable[[Sequence[str]], int]]]:
    """name → (one-line description, main(argv)), in registry order."""
    from . import cli, detection_cli
    from .tasks import MODEL_TASKS

    tasks = {}
    for name, factory in MODEL_TASKS.items():
        tasks[name] = (factory().description, lambda argv, name=name: cli.main(cli.get_smdl_task(name), argv))
    for kind in (detection_cli.DETECTION, detection_cli.GROUNDING):
        tasks[kind.name] = (kind.description, lambda argv, kind=kind: detection_cli.main(kind, argv))
    return tasks


def usage(tasks: dict) -> str:
    width = max(map(len, tasks))
    lines = ["usage: python -m submodular_attribution <task> [flags]   (<task> --help: its flags and defaults)", "",
             "tasks:"]
    lines += [f"  {name:<{width}}  {description}" for name, (description, _) in tasks.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    tasks = _tasks()
    if not argv or argv[0] in ("-h", "--help"):
        print(usage(tasks), file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    from .tasks import ALIASES
    name = ALIASES.get(argv[0], argv[0])
    if name not in tasks:
        print(f"error: unknown task {argv[0]!r}; choose from {', '.join(tasks)}", file=sys.stderr)
        return 2
    return tasks[name][1](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
