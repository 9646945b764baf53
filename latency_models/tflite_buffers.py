"""Where a ``.tflite`` file keeps its constants: inside the flatbuffer (each buffer's ``data``) or after it.

The flatbuffer schema lets a buffer give an ``offset`` and ``size`` into the file instead of inline data, so a
model can exceed the flatbuffer's 2 GiB limit. ``litert-quantizer`` writes every constant of 1 KiB or more that
way once they add up to 256 KiB (``model_modifier``, a fixed threshold with no option). LiteRT reads such data;
TFLite Micro never does: it plans those constants as uninitialised arena tensors and computes with whatever
the arena holds. ``inlined`` moves them back inside, which is what the quantizer itself writes below its
threshold.
"""

from __future__ import annotations

import numpy as np
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.tools import flatbuffer_utils

FLATBUFFER_LIMIT = 1 << 31  # flatbuffers' offsets are signed 32-bit: no flatbuffer reaches 2 GiB


def outside_buffers(content: bytes) -> dict[int, tuple[int, int]]:
    """The buffers whose data is stored after the flatbuffer: ``{index: (offset, size)}``."""
    model = schema.Model.GetRootAs(content, 0)
    found = {}
    for index in range(model.BuffersLength()):
        buffer = model.Buffers(index)
        if buffer.Offset() > 1:  # LiteRT's own test: 1 is the quantizer's placeholder before it packs the data
            found[index] = (int(buffer.Offset()), int(buffer.Size()))
    return found


def inlined(content: bytes) -> bytes:
    """``content`` with every constant inside the flatbuffer (unchanged if they already are, or if they cannot
    be: a model of 2 GiB or more, which only LiteRT can read, and ``outside_buffers`` still finds)."""
    outside = outside_buffers(content)
    if not outside or len(content) >= FLATBUFFER_LIMIT:
        return content
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(content, 0))
    for index, (offset, size) in outside.items():
        buffer = model.buffers[index]
        # An ndarray, not bytes: the generated Pack writes an ndarray in one copy, anything else byte by byte.
        buffer.data = np.frombuffer(content, np.uint8, count=size, offset=offset)
        buffer.offset = buffer.size = 0
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))
