"""The `posekit` command: `posekit synth ...` renders a dataset, `posekit eval ...` scores a results file.

    posekit synth --out data/val --kind scene --num-images 500 --seed 1
    posekit eval data/val/annotations.json results.json [--iou-type bbox] [--sigmas ...] [--per-image out.csv]

Bad input (a missing or malformed file, a wrong argument) is one line on stderr naming what was wrong and
exit code 2; no traceback.
"""

from __future__ import annotations

import argparse
import sys


def _synth(args: argparse.Namespace) -> int:
    from posekit import synth

    knobs = {}
    if args.kind == "scene":
        knobs = {"max_people": args.max_people, "crowd_prob": args.crowd_prob}
    path = synth.write_dataset(args.out, args.kind, args.num_images, args.seed, args.size, not args.quiet, **knobs)
    print(path)
    return 0


def _add_synth(sub) -> None:
    p = sub.add_parser(
        "synth",
        help="render a synthetic COCO-keypoints dataset",
        description="Render synthetic people to DIR/annotations.json and DIR/images/*.png.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--out", required=True, help="output folder (replaced atomically)")
    p.add_argument("--kind", default="single", help="'single' (person crops) or 'scene' (multi-person)")
    p.add_argument("--num-images", type=int, required=True, help="number of images")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--size", type=int, default=None, help="image side in pixels (default 64 single, 256 scene)")
    p.add_argument("--max-people", type=int, default=6, help="scenes: most people per image")
    p.add_argument("--crowd-prob", type=float, default=0.0, help="scenes: probability of an iscrowd region")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_synth)


def _eval(args: argparse.Namespace) -> int:
    from posekit.metrics import coco

    ev = coco.evaluate(args.gt, args.results, iou_type=args.iou_type, sigmas=args.sigmas,
                       keep_matches=args.per_image is not None)  # fmt: skip
    print(coco.format_summary(ev.stats, args.iou_type))
    if args.per_image is not None:
        n = coco.write_per_image_csv(ev, args.per_image)
        print(f"per-image matches: {n} rows in {args.per_image}")
    return 0


def _add_eval(sub) -> None:
    p = sub.add_parser(
        "eval",
        help="COCO AP/AR of a results file, keypoints or boxes (same numbers as pycocotools)",
        description="Evaluate COCO results (a JSON list of {image_id, category_id, keypoints | bbox, score}) "
        "against COCO ground truth; prints the summary exactly as pycocotools does.",
    )
    p.add_argument("gt", help="ground-truth COCO JSON")
    p.add_argument("results", help="results JSON: list of {image_id, category_id, keypoints (3J) | bbox, score}")
    p.add_argument("--iou-type", choices=("keypoints", "bbox"), default="keypoints",
                   help="keypoints (OKS) or bbox (box IoU)")  # fmt: skip
    p.add_argument("--sigmas", type=float, nargs="+", default=None,
                   help="OKS sigma per keypoint (required unless the set has the 17 COCO keypoints)")  # fmt: skip
    p.add_argument("--per-image", metavar="CSV", default=None,
                   help="write each detection's and each ground truth's best match, per image, to CSV")  # fmt: skip
    p.set_defaults(func=_eval)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="posekit", description="Tools of the 2D Human Pose Estimation book.")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_synth(sub)
    _add_eval(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, OSError) as e:  # bad input: one clear line, no traceback
        print(f"posekit {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"posekit {args.command}: interrupted; nothing was left half-written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
