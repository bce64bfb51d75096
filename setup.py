"""shotfill packaging.

The design card's folders map onto namespaced import names, so nothing installs
a top-level ``core`` or ``plugin``:

    core/       -> shotfill            (engine side: numpy, torch, OpenEXR, OTIO, OCIO)
    plugin/     -> shotfill_plugin     (host side: standard library and the host's Qt only)
    resources/  -> shotfill.resources  (shipped data: presets, templates, checkpoints)
"""
from setuptools import find_packages, setup

setup(
    name="shotfill",
    version="0.1.0",
    description="Generative shot extension, bridging and fill for film post-production (EXR, OTIO)",
    python_requires=">=3.10",
    packages=[
        "shotfill", *(f"shotfill.{name}" for name in find_packages("core")),
        "shotfill.resources",
        "shotfill_plugin", *(f"shotfill_plugin.{name}" for name in find_packages("plugin")),
    ],
    package_dir={
        "shotfill": "core",
        "shotfill.resources": "resources",
        "shotfill_plugin": "plugin",
    },
    package_data={"shotfill.resources": ["*.json", "*.yaml", "*.md", "**/*"]},
    include_package_data=False,
    install_requires=[
        "numpy>=1.26",
        "OpenEXR==3.5.3",
        "opentimelineio==0.18.1",
        "opentimelineio-plugins==0.18.1",
        "otio-fcpx-xml-adapter==1.0.0",
        "opencolorio==2.6.0",
        "opencv-python-headless==5.0.0.93",
        "av==18.1.0",
        "pillow>=10",
        "tifffile>=2024.1.1",
    ],
    extras_require={
        # the generative engines; `pip install torch==2.13.0` first on CPU machines
        "dit": ["torch>=2.4", "diffusers==0.42.1", "safetensors>=0.4"],
        # the pretrained engines (wan-vace, ltx): their text encoders, tokenizers and offloading
        "pretrained": ["transformers==5.24.0", "tokenizers>=0.22", "sentencepiece==0.2.3", "ftfy==6.3.1",
                       "accelerate==1.15.0"],
        "panel": ["PySide6-Essentials==6.11.3"],  # 6.12.0 leaks references to None on Python 3.11 and aborts
        "farm": ["openjd-cli==0.8.*", "PyYAML>=6"],
        "test": ["pytest>=8", "pytest-qt==4.5.0", "hypothesis>=6.100"],
    },
    entry_points={
        "console_scripts": [
            "shotfill=shotfill.cli:main",
            "shotfill-panel=shotfill_plugin.app:main",
        ],
    },
)
