"""The `posekit` command: `synth` renders a dataset, `predict` runs a trained pipeline, `eval` scores results.

    posekit synth --out data/val --kind scene --num-images 500 --seed 1
    posekit predict --images data/val/images --run bottomup-1a2b3c4d5e --out results.json [--draw drawn/]
    posekit predict --images DIR --run topdown-pose-... --detector-run detector-... --out results.json
    posekit predict --images DIR --zoo td-hrnet --out results.json            # the zoo's top-down models
    posekit eval data/val/annotations.json results.json [--iou-type bbox] [--sigmas ...] [--per-image out.csv]
    posekit train heatmap --steps 2000 --train-size 8192    (a chapter's recipe; several hosts: --coordinator ...)
    posekit zoo list | verify [NAME ...] | train NAME ... [--all]     (the long-trained models; --zoo DIR)
    posekit assign --out assignments [--language ko] [chapters/06_metrics_parts_and_keypoints.ipynb ...]   (teach extra)
    posekit grade submissions/ --autograders assignments/autograder --out scores.csv [--jobs 2]

Bad input (a missing or malformed file, a wrong argument) is one line on stderr naming what was wrong and
exit code 2; no traceback.

Each subcommand imports what it needs when it runs (the one module of posekit that does so): `posekit --help`
answers without loading JAX, and `posekit train` joins the other processes before JAX starts a backend.
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


def _run_folder(name: str | None, path: str | None, what: str):
    """A run folder from --run NAME (in the cache's runs/) or --checkpoint PATH; None when neither is given."""
    from pathlib import Path

    from posekit.book import cache_dir

    if name is not None and path is not None:
        raise ValueError(f"give either --{what}run or --{what}checkpoint, not both")
    if path is not None:
        if not Path(path).exists():
            raise FileNotFoundError(f"--{what}checkpoint {path}: no such file or folder")
        return Path(path)
    if name is None:
        return None
    folder = cache_dir("runs") / name
    if not folder.is_dir():
        runs = sorted(p.name for p in cache_dir("runs").iterdir() if p.is_dir())
        hint = f"; runs here: {', '.join(runs[:8])}{' ...' if len(runs) > 8 else ''}" if runs else "; no runs yet"
        raise FileNotFoundError(f"--{what}run {name}: no such run in {cache_dir('runs')}{hint}")
    return folder


def _predict(args: argparse.Namespace) -> int:
    from posekit import predict
    from posekit.io import atomic_write_json

    pose = _run_folder(args.run, args.checkpoint, "")
    if (pose is None) == (args.zoo is None):
        raise ValueError("give the trained model once: --run NAME (a run of the cache), --checkpoint PATH or "
                         "--zoo NAME (a zoo model: posekit zoo list)")  # fmt: skip
    detector = _run_folder(args.detector_run, args.detector_checkpoint, "detector-")
    zoo = dict(zoo=args.zoo, detector_zoo=args.detector_zoo, zoo_dir=args.zoo_dir,
               detector_flip_test=args.detector_flip, decoder=args.decoder,
               detection_threshold=args.detection_threshold, tag_threshold=args.tag_threshold)  # fmt: skip
    results, images, ids, names = predict.predict_folder(args.images, pose, detector=detector, coco=args.coco,
                                                         batch=args.batch_size, progress=not args.quiet,
                                                         **zoo)  # fmt: skip
    atomic_write_json(args.out, results)
    print(f"{len(results)} poses in {len(images)} images -> {args.out}")
    if args.draw is not None:
        n = predict.draw_results(args.draw, images, ids, names, results)
        print(f"{n} drawn images -> {args.draw}")
    return 0


def _add_predict(sub) -> None:
    p = sub.add_parser(
        "predict",
        help="run a trained top-down or bottom-up pipeline on a folder of images",
        description="Run a trained multi-person pipeline (a run of chapter 4 or 5) on a folder of images or on "
        "the images a COCO file lists; writes a COCO keypoint results JSON that `posekit eval` reads.",
    )
    p.add_argument("--images", required=True, help="folder of images (.png, .jpg)")
    p.add_argument("--coco", default=None, help="a COCO JSON whose images (file names, ids) to run on")
    p.add_argument("--run", default=None, help="a run folder name under the cache's runs/ (e.g. bottomup-1a2b3c4d5e)")
    p.add_argument("--checkpoint", default=None, help="a run folder or its checkpoint.msgpack")
    p.add_argument("--detector-run", default=None, help="top-down: the person detector's run (detector-...)")
    p.add_argument("--detector-checkpoint", default=None, help="top-down: the detector's run folder or checkpoint")
    p.add_argument("--zoo", default=None, metavar="NAME", help="a zoo model instead of a run (e.g. td-hrnet)")
    p.add_argument("--detector-zoo", default=None, metavar="NAME[,NAME]",
                   help="top-down with --zoo: the zoo's detector (default td-detector); several, comma-separated: "
                        "each at its own input, merged by Soft-NMS (chapter 4's multi-scale test)")  # fmt: skip
    p.add_argument("--detector-flip", action="store_true",
                   help="top-down: CenterNet's flip test for the boxes (chapter 4's pipeline uses it)")  # fmt: skip
    p.add_argument("--decoder", choices=["argmax", "dark"], default="argmax",
                   help="top-down: heatmap decoding (default argmax; chapter 4's pipeline uses dark)")  # fmt: skip
    p.add_argument("--detection-threshold", type=float, default=None, metavar="T",
                   help="bottom-up: grouping's detection threshold (default 0.1, the reference's; chapter 5 "
                        "chooses one per model on held-out scenes)")  # fmt: skip
    p.add_argument("--tag-threshold", type=float, default=None, metavar="T",
                   help="bottom-up: grouping's tag threshold (default 1, the reference's; chapter 5 chooses one per "
                        "model on held-out scenes)")  # fmt: skip
    p.add_argument("--zoo-dir", default=None, metavar="DIR", help="the zoo folder (default: $POSEKIT_ZOO or zoo/)")
    p.add_argument("--out", required=True, help="results JSON to write (atomically)")
    p.add_argument("--draw", default=None, metavar="DIR", help="also write each image with its skeletons to DIR")
    p.add_argument("--batch-size", type=int, default=16, help="images per network call")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_predict)


def _train(args: argparse.Namespace) -> int:
    import os

    from posekit import parallel

    if args.cache is not None:
        os.environ["POSEKIT_CACHE"] = args.cache
    # first, before JAX starts a backend: join the other processes when there are any
    process, processes = parallel.initialize(args.coordinator, args.num_processes, args.process_id)
    from posekit.book import enable_compilation_cache
    from posekit.experiments.recipes import train_recipe

    enable_compilation_cache()
    lead = process == 0
    if lead and not args.quiet:
        print(parallel.describe(), flush=True)
    run, history = train_recipe(args.recipe, steps=args.steps, train_size=args.train_size, seed=args.seed,
                                variant=args.variant, input_size=args.input_size, batch_size=args.batch_size,
                                lr=args.lr, progress=lead and not args.quiet,
                                data_shards=processes if args.data_shards is None else args.data_shards)  # fmt: skip
    if lead:
        loss = history["loss"][-1] if len(history["loss"]) else float("nan")
        print(f"{args.recipe}: {int(history['step'][-1]) + 1 if len(history['step']) else 0} steps, "
              f"final loss {loss:.4g} ({processes} process(es)) -> {run}")  # fmt: skip
    return 0


def _input_size(text: str):
    """--input-size: "64" -> 64, "128x96" -> (128, 96); a clear error otherwise."""
    parts = text.lower().split("x")
    if not 1 <= len(parts) <= 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(f"expected S or HxW in pixels (e.g. 64 or 128x96), found {text!r}")
    return int(parts[0]) if len(parts) == 1 else (int(parts[0]), int(parts[1]))


def _add_train(sub) -> None:
    from posekit.experiments.recipes import RECIPES, describe

    p = sub.add_parser(
        "train",
        help="train one of the book's models with its chapter's recipe, on every device, on one or several hosts",
        description="Train (or resume, or load when finished) a chapter's model, as the chapter would: the same "
        "data, loss and schedule, cached under the same run folder, which it prints. Uses every device JAX finds "
        "(a data-parallel mesh). Several hosts: start one process per host with the same arguments plus "
        "--coordinator HOST:PORT --num-processes N --process-id I (or JAX_COORDINATOR_ADDRESS, "
        "JAX_NUM_PROCESSES, JAX_PROCESS_ID); each process reads only its shard of the training data (--data-shards) "
        "and builds only its rows of every batch, process 0 writes the checkpoint. Recipes: " + describe(),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("recipe", choices=list(RECIPES), metavar="RECIPE", help="what to train (see above)")
    p.add_argument("--steps", type=int, required=True, help="optimizer steps")
    p.add_argument("--train-size", type=int, required=True, help="training crops (single-person) or scenes")
    p.add_argument("--seed", type=int, default=0, help="data order, augmentation and initialization")
    p.add_argument("--variant", default=None, help="model size (default: the recipe's, e.g. tiny or lite)")
    p.add_argument("--input-size", type=_input_size, default=None, help="S or HxW (default: the recipe's)")
    p.add_argument("--batch-size", type=int, default=None, help="the global batch (default: the recipe's)")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate (default: the recipe's)")
    p.add_argument("--cache", default=None, help="cache folder for runs (default: $POSEKIT_CACHE or .cache)")
    p.add_argument("--coordinator", default=None, help="several hosts: process 0's HOST:PORT")
    p.add_argument("--num-processes", type=int, default=None, help="several hosts: how many processes")
    p.add_argument("--process-id", type=int, default=None, help="several hosts: this process's index, 0..N-1")
    p.add_argument("--data-shards", type=int, default=None,
                   help="read the training set in this many shards, each process only its own (a multiple of the "
                   "process count; default: one per process). 1: every process reads all of it and the run is "
                   "exactly a one-process run; N on one process reproduces a run on N hosts")  # fmt: skip
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_train)


def _zoo(args: argparse.Namespace) -> int:
    from posekit import zoo

    if args.zoo_command == "list":
        rows = zoo.table_rows(args.zoo)
        header = ["name", "chapter", "metric", "steps", "size"]
        widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
        for r in [header, *rows]:
            print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
        total = sum(e["bytes"] for e in zoo.read_manifest(args.zoo)["models"].values())
        print(f"{len(rows)} models, {total / 1e6:.1f} MB in {zoo.zoo_dir(args.zoo)}")
        return 0
    if args.zoo_command == "verify":
        from posekit.book import enable_compilation_cache

        enable_compilation_cache()
        names = args.names or list(zoo.read_manifest(args.zoo)["models"])
        if not names:
            raise zoo.ZooError(f"zoo: {zoo.zoo_dir(args.zoo) / zoo.MANIFEST}: no models to verify")
        failed = []
        for name in names:
            try:
                got = zoo.verify(name, args.zoo)
            except zoo.ZooError as e:
                failed.append(name)
                print(f"FAILED {e}", flush=True)
                continue
            print(f"ok     {name}: sha256, config, " + ", ".join(f"{k} {v:.4f}" for k, v in got.items()), flush=True)
        if failed:
            raise zoo.ZooError(f"{len(failed)} of {len(names)} models failed verification: {', '.join(failed)}")
        return 0
    from posekit.book import enable_compilation_cache

    enable_compilation_cache()
    names = list(zoo.ENTRIES) if args.all else args.names
    if not names:
        raise ValueError("zoo train: give NAME ... or --all")
    for name in names:
        zoo.entry_of(name)  # unknown names fail before any training
    for name in names:
        record = zoo.export(name, args.zoo, progress=not args.quiet)
        value, where = record["metrics"][record["metric"]], zoo.zoo_dir(args.zoo) / record["file"]
        print(f"{name}: {record['metric']} {value:.4f} after {record['steps']:,} steps "
              f"({record['train_seconds'] / 60:.1f} min) -> {where}", flush=True)  # fmt: skip
    return 0


def _add_zoo(sub) -> None:
    p = sub.add_parser(
        "zoo",
        help="the model zoo: list, verify or retrain the long-trained models the chapters load",
        description="The book's zoo: models trained long with the chapters' own recipes, stored with a manifest "
        "(config, steps, training time and machine, commit, sha256, validation curve, metrics). The folder is "
        "--zoo DIR, else $POSEKIT_ZOO, else the repository's zoo/.",
    )
    zsub = p.add_subparsers(dest="zoo_command", required=True)
    for name, text in [("list", "a table: name, chapter, metric, steps, size"),
                       ("verify", "check each file's sha256 and config, and re-evaluate it against the manifest"),
                       ("train", "retrain from the recipe (resumes an interrupted run), then write the file and "
                                 "its manifest entry")]:  # fmt: skip
        q = zsub.add_parser(name, help=text, description=text)
        q.add_argument("--zoo", default=None, metavar="DIR", help="the zoo folder (default $POSEKIT_ZOO or zoo/)")
        if name != "list":
            q.add_argument("names", nargs="*", metavar="NAME", help="zoo models (default for verify: all)")
        if name == "train":
            q.add_argument("--all", action="store_true", help="every recipe of the zoo (what `make zoo` runs)")
            q.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_zoo)


def _assign(args: argparse.Namespace) -> int:
    from posekit import coursework

    chapters = args.chapters or coursework.chapters_with_exercises(args.chapter_dir)
    made = coursework.assign(chapters, args.out, quiet=args.quiet, language=args.language)
    if not args.quiet:
        n = sum(len(d["questions"]) for d in made.values())
        print(f"{len(made)} chapters, {n} questions: hand out {args.out}/student/, keep {args.out}/autograder/")
    return 0


def _add_assign(sub) -> None:
    p = sub.add_parser(
        "assign",
        help="write student notebooks and otter-grader autograders from the chapters' coding exercises",
        description="For each chapter with coding exercises: OUT/student/<chapter>.ipynb (solutions removed, public "
        "tests), OUT/solutions/<chapter>.ipynb and OUT/autograder/<chapter>.zip (hidden tests). Needs otter-grader "
        '(pip install -e ".[teach]").',
    )
    p.add_argument("chapters", nargs="*", help="chapter notebooks (default: every chapter with coding exercises)")
    p.add_argument("--out", default="assignments", help="output folder, replaced when all is written")
    p.add_argument("--chapter-dir", default="chapters", help="where to look for chapters when none are given")
    p.add_argument(
        "--language",
        default="en",
        choices=["en", "ko"],
        help="the notebooks' text: en, or ko (Korean, from book/locales; same code, tests and autograders)",
    )
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_assign)


def _grade(args: argparse.Namespace) -> int:
    from posekit import coursework

    coursework.grade(args.submissions, args.autograders, args.out, jobs=args.jobs, quiet=args.quiet)
    if not args.quiet:
        print(f"wrote {args.out}")
    return 0


def _add_grade(sub) -> None:
    p = sub.add_parser(
        "grade",
        help="grade a folder of returned student notebooks; write a CSV of scores per student and question",
        description="Grades every .ipynb under SUBMISSIONS (one folder per student, or files named by student) with "
        "otter run, against the autograder of the chapter each notebook belongs to.",
    )
    p.add_argument("submissions", help="folder of returned notebooks")
    p.add_argument("--autograders", default="assignments/autograder", help="the autograder/ folder of posekit assign")
    p.add_argument("--out", default="scores.csv", help="CSV to write (atomically)")
    p.add_argument("--jobs", type=int, default=2, help="notebooks graded at once")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_grade)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="posekit", description="Tools of the 2D Human Pose Estimation book.")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_synth(sub)
    _add_predict(sub)
    _add_eval(sub)
    _add_train(sub)
    _add_zoo(sub)
    _add_assign(sub)
    _add_grade(sub)
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
