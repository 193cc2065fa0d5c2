"""Figure defaults, in a module of constants so the command line's ``--help`` imports nothing heavy."""

DEFAULT_COLORMAP = "inferno"  # perceptually uniform; bright = early in the ordering / most important
DEFAULT_ALPHA = 0.5  # heat-map opacity over the photo's greyscale copy
MAX_FRAMES = 60  # animation frames at most
