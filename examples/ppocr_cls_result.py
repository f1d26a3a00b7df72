"""Print the direction the PP-OCR classifier chose, from `rkc run --output` results."""

import argparse

import numpy as np

LABELS = ("0 degrees", "180 degrees")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("outputs", help="the .npz written by rkc run --output")
    args = parser.parse_args()
    with np.load(args.outputs) as outputs:
        (probabilities,) = outputs.values()
    best = int(np.argmax(probabilities[0]))
    print(f"text direction: {LABELS[best]} (probability {probabilities[0, best]:.4f})")


if __name__ == "__main__":
    main()
