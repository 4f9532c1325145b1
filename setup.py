"""The one build step pyproject.toml cannot declare stably: the optional C extension.

rgb2raw._ssim computes the official SSIM in one pass per image (see rgb2raw/_ssim.c). It is
optional: without a C compiler the install still succeeds, and rgb2raw.metrics computes the
same numbers through OpenCV, about 2.5x as slowly.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("rgb2raw._ssim", sources=["rgb2raw/_ssim.c"], optional=True)])
