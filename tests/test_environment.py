"""The environment make builds: opencv-contrib-python must be the only OpenCV (another one
shadows it and cv2.ximgproc, which the superpixel divisions need, disappears)."""
from importlib.metadata import distributions

import cv2


def test_opencv_contrib_is_the_only_opencv():
    names = {(d.metadata["Name"] or "").lower() for d in distributions()}
    opencvs = sorted(n for n in names if n.startswith("opencv"))
    assert opencvs == ["opencv-contrib-python"], opencvs
    assert hasattr(cv2, "ximgproc")
