"""img2img's init image as A1111 sends it (base64, maybe a `data:` URL), resized as A1111's
`resize_mode` asks when the request names another size."""

from __future__ import annotations

import base64
import binascii
import io

from tsr.errors import BadRequest

#: A1111's resize modes tsr honours: 0 just resize, 1 crop and resize, 3 latent (as 0)
RESIZE_MODES = {0: "just resize", 1: "crop and resize", 3: "just resize (latent upscale)"}


def prepare_init_image(
    images: list[str] | None, width: int | None, height: int | None, resize_mode: int | None
) -> str:
    """The init image to queue (base64 PNG or the image as sent), at `width` x `height` when
    given; BadRequest names what is wrong."""
    from PIL import Image, ImageOps

    if not images:
        raise BadRequest("init_images: send one base64 image (img2img starts from it)")
    if len(images) > 1:
        raise BadRequest("init_images: tsr takes one init image (sd-server uses only the first)")
    encoded = images[0].split(",", 1)[-1] if images[0].startswith("data:") else images[0]
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("init_images: the image is not valid base64") from None
    try:
        with Image.open(io.BytesIO(data)) as opened:
            opened.load()
            size = opened.size
            wanted = (width or size[0], height or size[1])
            if wanted == size:
                return encoded
            mode = 0 if resize_mode is None else resize_mode
            if mode not in RESIZE_MODES:
                raise BadRequest(
                    f"resize_mode {mode} is not supported by tsr; use 0 (just resize) or 1 "
                    "(crop and resize), or send the image at the size asked for"
                )
            image = opened.convert("RGBA" if "A" in opened.getbands() else "RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise BadRequest(
            f"init_images: the image cannot be read ({error}); send a PNG or JPEG"
        ) from None
    if mode == 1:
        resized = ImageOps.fit(image, wanted, Image.Resampling.LANCZOS)
    else:
        resized = image.resize(wanted, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    resized.save(out, "PNG")
    return base64.b64encode(out.getvalue()).decode("ascii")
