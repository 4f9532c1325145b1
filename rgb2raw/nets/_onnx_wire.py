"""Just enough of the ONNX file format to read a small graph back: nodes and raw initialisers.

The runtime does not need the ``onnx`` package (it is an optional extra), yet
`rgb2raw.nets.pixelwise` wants the constants of a pixel-wise graph it is handed. An ``.onnx``
file is a protocol-buffers message (``ModelProto``); this reads its wire format directly: a key
(field number and wire type) before each value, length-delimited values for strings, bytes
and sub-messages. Only the fields below are read; anything else is skipped.

Field numbers (from onnx.proto): ModelProto producer_name 2, producer_version 3, graph 7;
GraphProto node 1, initializer 5; NodeProto input 1, output 2, op_type 4, attribute 5;
AttributeProto name 1, i 3; TensorProto dims 1, data_type 2, name 8, raw_data 9.
A tensor stored other than as raw little-endian data is refused (ValueError), as is a
malformed file: the caller then falls back to ONNX Runtime.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

# TensorProto.DataType values and the numpy types of the ones read here.
_DTYPES: dict[int, np.dtype] = {1: np.dtype("<f4"), 6: np.dtype("<i4"), 7: np.dtype("<i8")}


@dataclass
class WireNode:
    op_type: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attributes: dict[str, int] = field(default_factory=dict)


@dataclass
class WireModel:
    producer_name: str
    producer_version: str
    nodes: list[WireNode]
    initializers: dict[str, np.ndarray]


def _varint(data: memoryview, pos: int) -> tuple[int, int]:
    result, shift = 0, 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(data: memoryview) -> Iterator[tuple[int, int, int | memoryview]]:
    """(field number, wire type, value) of one message: ints for varints, views otherwise."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        value: int | memoryview
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            size, pos = _varint(data, pos)
            if pos + size > len(data):
                raise ValueError("truncated field")
            value, pos = data[pos: pos + size], pos + size
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, pos = data[pos: pos + size], pos + size
        else:
            raise ValueError(f"unsupported wire type {wire}")
        yield number, wire, value


def _text(value: int | memoryview) -> str:
    if isinstance(value, int):
        raise ValueError("expected a string field")
    return bytes(value).decode("utf-8")


def _node(data: memoryview) -> WireNode:
    node = WireNode("", (), ())
    inputs: list[str] = []
    outputs: list[str] = []
    for number, _, value in _fields(data):
        if number == 1:
            inputs.append(_text(value))
        elif number == 2:
            outputs.append(_text(value))
        elif number == 4:
            node.op_type = _text(value)
        elif number == 5 and isinstance(value, memoryview):
            name, integer = "", None
            for sub, _, item in _fields(value):
                if sub == 1:
                    name = _text(item)
                elif sub == 3 and isinstance(item, int):
                    integer = item - (1 << 64) if item >> 63 else item  # int64, two's complement
            if integer is None:
                raise ValueError(f"attribute {name!r} is not an integer")
            node.attributes[name] = integer
    node.inputs, node.outputs = tuple(inputs), tuple(outputs)
    return node


def _tensor(data: memoryview) -> tuple[str, np.ndarray]:
    dims: list[int] = []
    name: str = ""
    dtype: np.dtype | None = None
    raw: memoryview | None = None
    for number, _, value in _fields(data):
        if number == 1:
            if isinstance(value, int):
                dims.append(value)
            else:  # packed
                pos = 0
                while pos < len(value):
                    dim, pos = _varint(value, pos)
                    dims.append(dim)
        elif number == 2 and isinstance(value, int):
            dtype = _DTYPES.get(value)
            if dtype is None:
                raise ValueError(f"unsupported tensor type {value}")
        elif number == 8:
            name = _text(value)
        elif number == 9 and isinstance(value, memoryview):
            raw = value
        elif number in (4, 5, 7, 13):  # typed or external data: not what the builder writes
            raise ValueError("tensor data not stored raw")
    if dtype is None or raw is None:
        raise ValueError(f"tensor {name!r} has no raw data")
    count = int(np.prod(dims)) if dims else 1
    if count * dtype.itemsize != len(raw):
        raise ValueError(f"tensor {name!r}: size does not match its shape")
    native = dtype.newbyteorder("=")  # raw data is little-endian whatever the machine
    array = np.frombuffer(raw, dtype=dtype).reshape(dims).astype(native)
    return name, array


def read_model(data: bytes) -> WireModel:
    """The producer, nodes and initialisers of a serialised ``ModelProto``; ValueError when the
    bytes are not one (or use encodings the builder never writes)."""
    view = memoryview(data)
    model = WireModel("", "", [], {})
    for number, _, value in _fields(view):
        if number == 2:
            model.producer_name = _text(value)
        elif number == 3:
            model.producer_version = _text(value)
        elif number == 7 and isinstance(value, memoryview):
            for sub, _, item in _fields(value):
                if sub == 1 and isinstance(item, memoryview):
                    model.nodes.append(_node(item))
                elif sub == 5 and isinstance(item, memoryview):
                    name, array = _tensor(item)
                    model.initializers[name] = array
    return model


__all__ = ["WireModel", "WireNode", "read_model"]
