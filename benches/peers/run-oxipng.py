"""Optimise PNG files in place, for benches/peers.sh:  python run-oxipng.py FILE...

Used when no oxipng command is installed: pyoxipng (the oxipng library, pinned in
requirements.txt) with what `oxipng -o 2 --strip safe` does: preset level 2 and metadata
stripped except what affects rendering. oxipng writes a file only when it found a smaller
encoding. A file that fails is left as it was and named on stdout as "FILE<TAB>message".
"""

import sys

import oxipng

for path in sys.argv[1:]:
    try:
        oxipng.optimize(path, level=2, strip=oxipng.StripChunks.safe())
    except Exception as e:  # noqa: BLE001 - reported, the file stays as it was
        message = (str(e).splitlines() or [type(e).__name__])[0][:200]
        print(f"{path}\t{message}", flush=True)
