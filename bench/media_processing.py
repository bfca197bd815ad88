"""How long a photo upload's processing takes, per megapixel.

    .venv/bin/python bench/media_processing.py [--runs 3]

Makes synthetic camera photos (a smooth gradient with fine noise on top, which JPEG and
WebP compress about as hard as a real street photo) of 2, 6, 12 and 24 megapixels, saves
each as a quality-90 JPEG, and times ``bulletin.core.images.process`` on it (decode,
orientation, metadata strip, every width in WebP and JPEG) in this process, one core.
Prints the seconds per photo (median of the runs) and per megapixel.
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import sys
import time

from PIL import Image, ImageFilter

from bulletin.core import images

SIZES = ((1600, 1200), (3000, 2000), (4000, 3000), (6000, 4000))


def photo(width: int, height: int) -> bytes:
    """A JPEG of ``width`` x ``height`` that compresses like a photo, not like a flat fill."""
    small = Image.new("RGB", (width // 16, height // 16))
    rng = random.Random(width)
    small.putdata([(rng.randrange(256), rng.randrange(256), rng.randrange(256))
                   for _ in range(small.width * small.height)])
    picture = small.resize((width, height), Image.Resampling.BICUBIC)
    picture = picture.filter(ImageFilter.GaussianBlur(2))
    noise = Image.effect_noise((width, height), 24).convert("RGB")
    picture = Image.blend(picture, noise, 0.15)
    out = io.BytesIO()
    picture.save(out, format="JPEG", quality=90)
    return out.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print("| photo | JPEG bytes | variants | seconds (median of "
          f"{args.runs}) | seconds per megapixel |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for width, height in SIZES:
        data = photo(width, height)
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            result = images.process(data, max_pixels=50_000_000)
            times.append(time.perf_counter() - start)
        median = statistics.median(times)
        megapixels = width * height / 1e6
        print(f"| {width}x{height} ({megapixels:.0f} MP) | {len(data):,} | "
              f"{len(result.variants)} | {median:.2f} | {median / megapixels:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
