"""The image gallery: atomic PNGs with A1111 parameters, a DB index, thumbnails, trash, undo."""

from tsr.gallery.parameters import build_parameters, parse_parameters
from tsr.gallery.store import GalleryStore

__all__ = ["GalleryStore", "build_parameters", "parse_parameters"]
