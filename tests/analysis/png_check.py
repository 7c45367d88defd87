"""Checks that a file is a PNG and reads its pixel size from the IHDR chunk."""

import struct
import zlib

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path):
    """Returns (width, height); raises ValueError if `path` is not a valid PNG.

    Checks the signature, that the first chunk is a 13-byte IHDR with a correct
    CRC, and that the file ends with an IEND chunk.
    """
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != PNG_SIGNATURE:
        raise ValueError("%s: no PNG signature" % path)
    length, kind = struct.unpack(">I4s", data[8:16])
    if kind != b"IHDR" or length != 13:
        raise ValueError("%s: first chunk is %r (length %d), expected IHDR" % (path, kind, length))
    body = data[16:29]
    (crc,) = struct.unpack(">I", data[29:33])
    if zlib.crc32(kind + body) != crc:
        raise ValueError("%s: IHDR CRC mismatch" % path)
    if data[-12:] != b"\x00\x00\x00\x00IEND\xaeB`\x82":
        raise ValueError("%s: does not end with IEND (truncated?)" % path)
    width, height = struct.unpack(">II", body[:8])
    return width, height
