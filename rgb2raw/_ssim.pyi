# Types of the C extension built from _ssim.c (see rgb2raw.metrics for how it is called).
from typing_extensions import Buffer

def ssim(x: Buffer, y: Buffer, kind: str, height: int, width: int, channels: int,
         kernel: tuple[float, float, float, float, float, float, float], c1: float,
         c2: float) -> float: ...
def squared_error(x: Buffer, y: Buffer, kind: str) -> float: ...
