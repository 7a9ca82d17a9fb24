"""Model downloads: the persisted queue, resumable transfers, installing, CivitAI access."""

from tsr.downloads.catalog import CivitaiCatalog
from tsr.downloads.manager import DownloadManager

__all__ = ["CivitaiCatalog", "DownloadManager"]
