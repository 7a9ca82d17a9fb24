"""Run by the crash test: saves, trashes and restores images in a loop until it is killed."""

from __future__ import annotations

import io
import random
import sys
from pathlib import Path

from PIL import Image

from tsr.db.database import init_database
from tsr.gallery import GalleryStore
from tsr.schemas.images import ImageParams, LoraUse


def main(root: Path, database: Path) -> None:
    """Write forever: each loop saves a noisy PNG, and now and then trashes or restores one."""
    init_database(database)
    store = GalleryStore(root)
    rng = random.Random()
    saved: list[int] = []
    while True:
        buffer = io.BytesIO()
        Image.effect_noise((96, 96), rng.uniform(10, 90)).convert("RGB").save(buffer, "PNG")
        params = ImageParams(
            prompt=f"crash test {len(saved)}, a castle",
            checkpoint="crash",
            loras=[LoraUse(name="detail", weight=0.5)],
            seed=rng.getrandbits(32),
        )
        saved.append(store.save(buffer.getvalue(), params).id)
        if len(saved) % 3 == 0:
            store.trash(rng.sample(saved, 2))
        if len(saved) % 5 == 0:
            store.restore(rng.sample(saved, 2))
        if len(saved) % 7 == 0:
            store.undo()
        print(saved[-1], flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
