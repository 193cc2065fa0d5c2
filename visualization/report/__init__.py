"""An offline HTML report of SMDL run folders: ``python -m visualization --explanation-dir RUN
[RUN2 ...] --html OUT``, or :func:`build_report`.

``OUT/index.html`` opens from ``file://`` with no server and no network: the page is our own
vanilla JS and CSS (``report.js``, ``report.css``) beside it, its data in ``data.js``. It shows
each run's summary (images, mean insertion/deletion AUC ± standard error, forwards per image,
settings, failures), the worst and best images by insertion AUC as thumbnails, a paged table
of every image sortable by each column (with run k − run 1 differences when several runs are
given), and per image the ordering, a slider over k compositing the first k regions kept
(insertion) and removed (deletion) with the scores at k, and both curves.

Files beside the page: ``thumbs/<run>/<class>/<stem>.jpg``, ``details/<class>/<stem>.js`` (one
image's curves, order, photo and rank maps, loaded when it is opened) and ``manifest.json``
(what each image was built from, so a rebuild redraws only changed images).
"""
from importlib import import_module

__all__ = ["build_report"]


def __getattr__(name: str):
    if name in __all__:
        return getattr(import_module(".build", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
