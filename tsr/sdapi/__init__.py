"""sd-server (stable-diffusion.cpp) client: native async jobs and the A1111-style API."""

from __future__ import annotations

from tsr.sdapi.client import DEFAULT_URL, SdServerClient
from tsr.sdapi.failures import JobCancelled, JobExpired
from tsr.sdapi.models import (
    Capabilities,
    GeneratedImage,
    GenerationParams,
    GenerationResult,
    Limits,
    LoadedModel,
    LoraEntry,
    LoraRef,
    NativeError,
    NativeImage,
    NativeJob,
    NativeResult,
    ServerOptions,
    Txt2ImgInfo,
    Txt2ImgResult,
)
from tsr.sdapi.pngtext import SdcppInfotext, parse_sdcpp_infotext, png_size, png_text_chunks
from tsr.sdapi.validation import (
    build_native_request,
    check_init_image,
    check_sdapi_init_images,
    check_size,
)

__all__ = [
    "DEFAULT_URL",
    "Capabilities",
    "GeneratedImage",
    "GenerationParams",
    "GenerationResult",
    "JobCancelled",
    "JobExpired",
    "Limits",
    "LoadedModel",
    "LoraEntry",
    "LoraRef",
    "NativeError",
    "NativeImage",
    "NativeJob",
    "NativeResult",
    "SdServerClient",
    "SdcppInfotext",
    "ServerOptions",
    "Txt2ImgInfo",
    "Txt2ImgResult",
    "build_native_request",
    "check_init_image",
    "check_sdapi_init_images",
    "check_size",
    "parse_sdcpp_infotext",
    "png_size",
    "png_text_chunks",
]
