"""Turn a text-line image into the PP-OCR direction classifier's input (1x3x48x192).

PaddleOCR's preprocessing: resize to height 48 keeping the aspect ratio (width at most
192), scale to [-1, 1] with (x / 255 - 0.5) / 0.5, pad the right side with zeros.
With --raw the pixels stay 0..255 (padding 127.5, i.e. 0 after scaling): the input of a
model compiled with `--mean 127.5 --std 127.5`, which scales inside.
"""

import argparse
import math

import numpy as np
from PIL import Image

HEIGHT, WIDTH = 48, 192


def preprocess(path: str, rotate: int = 0, raw: bool = False) -> np.ndarray:
    image = Image.open(path).convert("RGB").rotate(rotate, expand=True)
    width = min(WIDTH, math.ceil(HEIGHT * image.width / image.height))
    resized = np.asarray(image.resize((width, HEIGHT), Image.BILINEAR), dtype=np.float32)
    chw = (resized if raw else (resized / 255.0 - 0.5) / 0.5).transpose(2, 0, 1)
    out = np.full((1, 3, HEIGHT, WIDTH), 127.5 if raw else 0.0, dtype=np.float32)
    out[0, :, :, :width] = chw
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("image")
    parser.add_argument("-o", "--output", required=True, help="where to write the .npy")
    parser.add_argument("--rotate", type=int, default=0, help="rotate the image first (degrees)")
    parser.add_argument("--raw", action="store_true",
                        help="keep pixels in 0..255 (for a model that normalises inside)")
    args = parser.parse_args()
    np.save(args.output, preprocess(args.image, args.rotate, args.raw))
    print(f"wrote {args.output} (1x3x{HEIGHT}x{WIDTH}, from {args.image})")


if __name__ == "__main__":
    main()
