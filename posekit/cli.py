"""The `posekit` command: `posekit synth ...` and `posekit eval ...`.

Each subcommand is registered by its own module (`synth.add_cli`, `metrics.add_cli`)
so the argument parsing sits next to the code it drives.
"""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="posekit", description="Tools of the 2D Human Pose Estimation book.")
    sub = parser.add_subparsers(dest="command", required=True)
    from posekit import metrics, synth

    synth.add_cli(sub)
    metrics.add_cli(sub)
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
