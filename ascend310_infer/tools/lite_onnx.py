"""Prepare an exported ONNX for MindSpore Lite 2.0's converter: src/deploy/lite_onnx.py says what and why.

    python ascend310_infer/tools/lite_onnx.py IN.onnx OUT.onnx
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from src.deploy.lite_onnx import prepare_for_lite  # noqa: E402  (needs the repository root on the path)


def main(argv):
    if len(argv) != 2:
        print("usage: python ascend310_infer/tools/lite_onnx.py IN.onnx OUT.onnx", file=sys.stderr)
        return 2
    resized, copied = prepare_for_lite(*argv)
    print(f"{argv[1]}: {resized} Resize nodes given mode=nearest, {copied} shared initializers copied")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
