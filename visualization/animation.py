"""An ordering as an animation: its regions revealed in order on a black canvas, beside the
insertion curve growing with them.

Frame k shows the first ``counts[k]`` regions of the ordering (:func:`frame_counts`: one
frame per region, or per few regions when N exceeds ``max_frames``) at an integer upscale
(nearest neighbour, so the photo's pixels are kept as they are), and on the right the
insertion curve up to that step over the whole curve in grey. GIFs are written with Pillow;
MP4 needs an ffmpeg executable (``imageio-ffmpeg`` or ``ffmpeg`` on PATH).
"""
from __future__ import annotations

import math
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from submodular_attribution.common.atomic import atomic_write
from submodular_attribution.common.curves import insertion_curve
from submodular_attribution.common.results import LoadedResult, rank_map_saliency, result_rank_map

from .canvas import colorize
from .defaults import DEFAULT_COLORMAP, MAX_FRAMES
MIN_HEIGHT = 288  # canvases smaller than this are upscaled by an integer factor
FRAME_MS = 150
HOLD_MS = 1500  # the last frame stays this long before the loop restarts


def frame_counts(num_regions: int, max_frames: int = MAX_FRAMES) -> list[int]:
    """Regions revealed in each frame: 1, 2, …, N when N ≤ ``max_frames``; otherwise every
    s-th count, s = ⌈N / max_frames⌉, with N last (at most ``max_frames`` frames)."""
    if num_regions < 1 or max_frames < 1:
        raise ValueError(f"need at least one region and one frame, got {num_regions} and {max_frames}")
    step = math.ceil(num_regions / max_frames)
    counts = list(range(step, num_regions + 1, step))
    if counts[-1] != num_regions:
        counts.append(num_regions)
    return counts


def animation_frames(photo: np.ndarray | None, result: LoadedResult, title: str | None = None,
                     max_frames: int = MAX_FRAMES, colormap: str = DEFAULT_COLORMAP) -> list[np.ndarray]:
    """The frames of one image's animation, each h×w×3 uint8 RGB of one size.

    photo: H×W×3 uint8 RGB at the regions' size, or None (the ordering heat-map through
    ``colormap`` is revealed instead). The left part of each frame is the canvas, H·s × W·s
    with s = max(1, ⌈MIN_HEIGHT / H⌉); the last frame's canvas is the whole photo."""
    ranks = result_rank_map(result)
    n = len(result.areas)
    source = colorize(rank_map_saliency(ranks, n), colormap) if photo is None else np.asarray(photo, dtype=np.uint8)
    if source.shape != ranks.shape + (3,):
        raise ValueError(f"{result.json_path}: photo of shape {source.shape} does not match regions {ranks.shape}")
    scale = max(1, math.ceil(MIN_HEIGHT / ranks.shape[0]))
    height = ranks.shape[0] * scale
    x, y = insertion_curve(result)

    dpi = 100
    fig = Figure(figsize=(1.3 * height / dpi, height / dpi), dpi=dpi)
    font = float(np.clip(height / 36, 7, 14))
    ax = fig.add_subplot()
    fig.subplots_adjust(left=0.16, right=0.96, bottom=0.15, top=0.8 if title else 0.86)
    ax.plot(x, y, color="0.82", linewidth=1)
    (grown,) = ax.plot([], [], color="C1", linewidth=2)
    (point,) = ax.plot([], [], "o", color="C1", markersize=font / 2)
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.05)
    ax.set_xlabel("fraction of image area inserted", fontsize=font)
    ax.set_ylabel("target class probability", fontsize=font)
    ax.set_title(" ", fontsize=font)  # keeps its room in the layout; the text is drawn per frame
    ax.tick_params(labelsize=font * 0.85)
    ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=font)

    # Blitting: the axes, grid and grey curve are drawn once; each frame redraws only the
    # growing curve, its end point and the title over a copy of that background.
    canvas_agg = FigureCanvasAgg(fig)
    canvas_agg.draw()
    background = canvas_agg.copy_from_bbox(fig.bbox)
    frames = []
    for count in frame_counts(n, max_frames):
        revealed = np.where((ranks < count)[..., None], source, 0).astype(np.uint8)
        revealed = revealed.repeat(scale, axis=0).repeat(scale, axis=1)
        canvas_agg.restore_region(background)
        grown.set_data(x[: count + 1], y[: count + 1])
        point.set_data([x[count]], [y[count]])
        ax.title.set_text(f"{count}/{n} regions · area {x[count]:.0%} · p = {y[count]:.3f}")
        for artist in (grown, point, ax.title):
            ax.draw_artist(artist)
        panel = np.asarray(canvas_agg.buffer_rgba())[..., :3]
        frames.append(np.concatenate([revealed, _fit_height(panel, height)], axis=1))
    return frames


def _fit_height(panel: np.ndarray, height: int) -> np.ndarray:
    """Crop or pad (white) a rendered panel to exactly ``height`` rows (dpi rounding)."""
    if panel.shape[0] >= height:
        return panel[:height]
    pad = np.full((height - panel.shape[0],) + panel.shape[1:], 255, dtype=np.uint8)
    return np.concatenate([panel, pad], axis=0)


def save_gif(frames: Sequence[np.ndarray], out_path: str | Path, frame_ms: int = FRAME_MS,
             hold_ms: int = HOLD_MS) -> Path:
    """Frames (h×w×3 uint8 RGB) as a looping GIF, written atomically; the last one held ``hold_ms``."""
    from PIL import Image

    if not frames:
        raise ValueError("no frames to write")
    images = [Image.fromarray(np.ascontiguousarray(frame)) for frame in frames]
    durations = [frame_ms] * (len(images) - 1) + [hold_ms]
    atomic_write(out_path, lambda handle: images[0].save(handle, format="GIF", save_all=True,
                                                         append_images=images[1:], duration=durations, loop=0))
    return Path(out_path)


def ffmpeg_executable() -> str | None:
    """imageio-ffmpeg's bundled ffmpeg, else ``ffmpeg`` on PATH, else None."""
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError):
        return shutil.which("ffmpeg")


def save_mp4(frames: Sequence[np.ndarray], out_path: str | Path, ffmpeg: str, frame_ms: int = FRAME_MS,
             hold_ms: int = HOLD_MS) -> Path:
    """Frames as an H.264 MP4 (yuv420p; sides padded to even) through ``ffmpeg``, written
    atomically; the last frame repeated to last ``hold_ms``. A failing ffmpeg raises RuntimeError."""
    if not frames:
        raise ValueError("no frames to write")
    height, width = frames[0].shape[:2]
    even_h, even_w = height + height % 2, width + width % 2
    fps = 1000.0 / frame_ms
    frames = list(frames) + [frames[-1]] * max(0, round(hold_ms / frame_ms) - 1)
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "animation.mp4"
        command = [ffmpeg, "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
                   "-s", f"{even_w}x{even_h}", "-r", f"{fps:g}", "-i", "-", "-c:v", "libx264",
                   "-pix_fmt", "yuv420p", str(target)]
        data = b"".join(np.pad(f, ((0, even_h - height), (0, even_w - width), (0, 0))).tobytes() for f in frames)
        done = subprocess.run(command, input=data, capture_output=True)
        if done.returncode != 0:
            reason = done.stderr.decode(errors="replace").strip().splitlines()
            raise RuntimeError(f"ffmpeg failed: {reason[-1] if reason else done.returncode}")
        atomic_write(out_path, lambda handle: handle.write(target.read_bytes()))
    return Path(out_path)
