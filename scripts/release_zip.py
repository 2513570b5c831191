"""Writes a release zip whose bytes depend only on the binary: one entry, a fixed time (the
commit's), fixed permissions (0755, Unix), fixed compression. Python's zipfile rather than the
zip tool, so that the tool's version cannot change the bytes.

    release_zip.py BINARY ENTRY_NAME OUT.zip SOURCE_DATE_EPOCH
"""

import os
import sys
import time
import zipfile


def main() -> None:
    binary, entry_name, out, epoch = sys.argv[1:5]
    # A zip entry holds a local time from 1980 on with two-second steps: use UTC, clamp to 1980.
    stamp = max(int(epoch), 315532800)
    info = zipfile.ZipInfo(entry_name, date_time=time.gmtime(stamp)[:6])
    info.create_system = 3  # Unix, so that external_attr carries the mode
    info.external_attr = (0o100755 & 0xFFFF) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    with open(binary, "rb") as f:
        data = f.read()
    tmp = out + ".tmp"
    with zipfile.ZipFile(tmp, "w") as archive:
        archive.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    os.replace(tmp, out)


if __name__ == "__main__":
    main()
