"""The original SMDL-Attribution's script of this name, run as the task ``original_names.py`` maps it to."""
from .original_names import run_original

if __name__ == "__main__":
    raise SystemExit(run_original(__file__))
