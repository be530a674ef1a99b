"""The command line, every subcommand declared here: ``python -m actmatch_lite COMMAND ...`` (or ``actmatch-lite``).

    explain IMAGE... --model NAME --out DIR   explain image files (figure + JSON per image; explain_files)
    demo [--out DIR]                          the bundled inputs: a shape, a Fashion-MNIST item, a canvas, a photo
    bench SUITE | bench sanity SUITE          every method at equal area over seeds; M12 sanity and M13 stability
    ablate SUITE                              what each term is worth, and a λ_area × λ_tv sweep
    instances                                 M10 recall and purity of the multi-instance procedure on canvases
    train NAME                                reproduce a shipped classifier's weights
    amortized {train,evaluate} NAME           reproduce a shipped amortized explainer, or compare it per image
    notebooks {execute,student} NOTEBOOK...   re-execute notebooks in place, or write student copies
    fmnist-subset                             regenerate data/fmnist_test_subset.npz

The other modules expose functions; this one parses arguments, calls them and prints. Bad input (a missing or
unreadable file, an unknown model, preset or class, an unusable ``--out``) ends with one line on stderr and exit
code 2, without a traceback (``--debug`` shows it); Ctrl-C ends with one line and exit code 130.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from actmatch_lite._validate import InputError
from actmatch_lite.checksums import ChecksumError
from actmatch_lite.data.fmnist import SUBSET_FILE, write_fmnist_subset
from actmatch_lite.evaluation import report
from actmatch_lite.evaluation.ablate import ABLATE_N, SWEEP_FACTORS, format_ablate, run_ablate, write_plots
from actmatch_lite.evaluation.amortized import evaluate as evaluate_amortized
from actmatch_lite.evaluation.bench import format_result, run_bench
from actmatch_lite.evaluation.instances import evaluate_instances
from actmatch_lite.evaluation.sanity import format_sanity, run_sanity
from actmatch_lite.evaluation.suites import DEFAULT_SEEDS, SUITES
from actmatch_lite.interface.demo import run_demo
from actmatch_lite.interface.explain_files import explain_files
from actmatch_lite.method.instances import SPLITS
from actmatch_lite.models.amortized import RECIPES as AMORTIZED_RECIPES
from actmatch_lite.models.amortized import train_recipe
from actmatch_lite.models.training import RECIPES as CLASSIFIER_RECIPES
from actmatch_lite.models.training import train_and_save
from actmatch_lite.paths import data_dir

EXIT_USAGE = 2   # argparse's own code for bad usage: bad input on the command line is the same kind of error
EXIT_INTERRUPTED = 130   # 128 + SIGINT: what a shell reports for a program stopped by Ctrl-C
# OSError: missing, unreadable, truncated or unidentifiable files (PIL's UnidentifiedImageError is one)
USER_ERRORS = (InputError, OSError, ValueError, ImportError, ChecksumError)


def explain_command(args) -> None:
    records = explain_files(args.images, args.model, args.out, overwrite=args.overwrite, preset=args.preset,
                            target=args.target, seed=args.seed, steps=args.steps, device=args.device)
    for r in records:
        print(f"{r['image']}: {r['class_name']} p {r['prob_before']:.3f} -> {r['prob_after']:.3f}, area "
              f"{r['area']:.3f}, sufficient {bool(r['sufficiency'])}, necessary {bool(r['necessity'])} -> "
              f"{r['figure'].removesuffix('.png')}.png/.json")


def demo_command(args) -> None:
    start = time.perf_counter()
    rows, table = run_demo(args.out)
    print(table)
    print(f"\n{len(rows)} rows in {time.perf_counter() - start:.0f} s; figures, JSON and summary.md in {args.out}/")


def bench_command(args) -> None:
    if args.suite == "sanity":
        if args.preset:
            raise InputError("bench sanity runs the model's own preset; drop --preset")
        if args.sanity_suite is None:
            raise InputError("bench sanity needs a suite: python -m actmatch_lite bench sanity shapes")
        result = run_sanity(args.sanity_suite, n=args.n, seeds=args.seeds, methods=args.methods, steps=args.steps,
                            progress=not args.no_progress)
        text = format_sanity(result)
    else:
        masks = {} if args.masks else None
        result = run_bench(args.suite, n=args.n, seeds=args.seeds, methods=args.methods, steps=args.steps,
                           batch=args.batch, time_b1=not args.no_b1, progress=not args.no_progress,
                           preset=args.preset, masks=masks, photos=args.photos)
        text = format_result(result)
        if args.masks:
            text += f"\nwrote {report.write_masks(masks, args.masks)}"
    print(text)
    if args.json:
        print(f"wrote {report.write_json(result, args.json)}")


def ablate_command(args) -> None:
    result = run_ablate(args.suite, n=args.n, seeds=args.seeds, steps=args.steps, ablations=not args.sweep_only,
                        sweep=not args.no_sweep, factors=tuple(args.factors), progress=not args.no_progress)
    print(format_ablate(result))
    if args.json:
        print(f"wrote {report.write_json(result, args.json)}")
        for path in write_plots(result, args.json):
            print(f"wrote {path}")


def instances_command(args) -> None:
    print(json.dumps(evaluate_instances(args.n, args.seed, amortized=args.amortized, split=args.split,
                                        exclude_margin=args.exclude_margin)))


def train_command(args) -> None:
    r = train_and_save(args.name, args.out, args.epochs)
    print(f"{r['name']}: {r['parameters']} parameters, {r['seconds']:.0f} s, test accuracy {r['accuracy']:.4f}")
    print(f"saved {r['file']} ({r['bytes']} bytes) sha256 {r['sha256']}")


def amortized_command(args) -> None:
    if args.action == "train":
        start = time.perf_counter()
        amz, path, sha = train_recipe(args.name, args.out)
        params = sum(p.numel() for p in amz.mask_net.parameters())
        print(f"{args.name}: {params} mask-network parameters, {time.perf_counter() - start:.0f} s, final loss "
              f"{amz.meta['final_loss']:.4f}")
        print(f"saved {path} ({path.stat().st_size} bytes) sha256 {sha}")
    else:
        print(json.dumps(evaluate_amortized(args.name, args.n, args.file), indent=1))


def notebooks_command(args) -> None:
    # nbformat and nbclient come with the notebooks extra: imported only when asked for
    from actmatch_lite.interface.notebook_tools import execute_in_place, write_student_copies

    if args.action == "execute":
        rows = execute_in_place(args.notebooks)
        print(f"total: {sum(s for _, s in rows):.0f} s")
    else:
        for path in write_student_copies(args.notebooks, args.out):
            print(f"wrote {path}")


def fmnist_subset_command(args) -> None:
    print("wrote", write_fmnist_subset(data_dir() / SUBSET_FILE))


def _suite_options(p, n_help: str) -> None:
    p.add_argument("--n", type=int, default=None, help=n_help)
    p.add_argument("--seeds", type=int, nargs="+", default=list(DEFAULT_SEEDS), help="data seeds (default 101 102 103)")
    p.add_argument("--steps", type=int, default=None, help="explainer steps (default: the preset's)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--json", default=None, help="write the result to this JSON file (ablate: plots next to it)")
    p.add_argument("--no-progress", action="store_true")


def _add_explain(sub) -> None:
    p = sub.add_parser("explain", help="explain image files with the per-image explainer",
                       description="Explain image files: writes OUT/<stem>.png and OUT/<stem>.json per image. "
                                   "Existing files in OUT are never replaced unless --overwrite is given; an input "
                                   "image never is.")
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    p.add_argument("--model", required=True, help="classifier name (see actmatch_lite.models.available_models)")
    p.add_argument("--out", required=True, type=Path,
                   help="output folder for figures and JSON records (created; checked writable before any work)")
    p.add_argument("--overwrite", action="store_true", help="replace outputs already in --out (default: refuse)")
    p.add_argument("--preset", default=None, help="explainer preset (default: the model's)")
    p.add_argument("--target", type=int, default=None, help="class index to explain (default: the predicted class)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=None, help="maximum optimisation steps (default: the preset's)")
    p.add_argument("--device", default="cpu",
                   help="cpu (default: the same result on every machine), cuda, cuda:N, or auto (a GPU when there "
                        "is one)")
    p.set_defaults(run=explain_command)


def _add_evaluation(sub) -> None:
    p = sub.add_parser("bench", help="benchmark actmatch against the baselines at equal area")
    p.add_argument("suite", choices=[*SUITES, "sanity"], help="a suite, or 'sanity' followed by a suite")
    p.add_argument("sanity_suite", nargs="?", choices=list(SUITES), help="the suite of 'bench sanity SUITE'")
    _suite_options(p, "images per seed (default: the suite's)")
    p.add_argument("--methods", nargs="+", default=None, help="a subset of methods (default: all)")
    p.add_argument("--preset", default=None, help="explainer preset (default: the model's; not for sanity)")
    p.add_argument("--batch", type=int, default=None, help="images per explainer call (default: the suite's)")
    p.add_argument("--no-b1", action="store_true", help="skip the batch-1 timing")
    p.add_argument("--masks", default=None, metavar="FILE.npz",
                   help="also save every method's masks of the first seed (packed bits)")
    p.add_argument("--photos", nargs="+", default=None, metavar="NAME",
                   help="bench photos on these suite photos (benchmarks/photo_suite.md lists them) instead of the first --n")
    p.set_defaults(run=bench_command)
    p = sub.add_parser("ablate", help="ablations of the objective and a λ_area × λ_tv sweep")
    p.add_argument("suite", choices=list(SUITES))
    _suite_options(p, f"images per seed (default {ABLATE_N})")
    p.add_argument("--factors", type=float, nargs="+", default=list(SWEEP_FACTORS), help="sweep factors")
    p.add_argument("--no-sweep", action="store_true", help="only the ablations")
    p.add_argument("--sweep-only", action="store_true", help="only the λ_area × λ_tv sweep")
    p.set_defaults(run=ablate_command)
    p = sub.add_parser("instances", help="M10 instance recall and purity of explain_instances on shapes canvases")
    p.add_argument("--n", type=int, default=48)
    p.add_argument("--seed", type=int, default=2025)
    p.add_argument("--amortized", action="store_true", help="explain with the shipped amortized network")
    p.add_argument("--split", choices=SPLITS, default="components")
    p.add_argument("--exclude-margin", type=int, default=0)
    p.set_defaults(run=instances_command)


def _add_reproduction(sub) -> None:
    p = sub.add_parser("train", help="reproduce a shipped classifier's weights")
    p.add_argument("name", choices=sorted(CLASSIFIER_RECIPES))
    p.add_argument("--out", type=Path, default=None, help="output file (default: data/<name>.pt)")
    p.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs")
    p.set_defaults(run=train_command)
    p = sub.add_parser("amortized", help="train a shipped amortized explainer, or compare it with the per-image regime")
    p.add_argument("action", choices=("train", "evaluate"))
    p.add_argument("name", choices=sorted(AMORTIZED_RECIPES))
    p.add_argument("--out", type=Path, default=None, help="train: output file (default: the shipped file in data/)")
    p.add_argument("-n", type=int, default=256, help="evaluate: held-out images")
    p.add_argument("--file", type=Path, default=None, help="evaluate: an explainer file (default: the shipped one)")
    p.set_defaults(run=amortized_command)
    p = sub.add_parser("notebooks", help="re-execute notebooks in place, or write student copies")
    p.add_argument("action", choices=("execute", "student"))
    p.add_argument("notebooks", nargs="+", type=Path)
    p.add_argument("--out", type=Path, default=Path("student"), help="student: output folder (default student)")
    p.set_defaults(run=notebooks_command)
    p = sub.add_parser("fmnist-subset", help="regenerate data/fmnist_test_subset.npz from the full test split")
    p.set_defaults(run=fmnist_subset_command)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m actmatch_lite", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show the full traceback of errors")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_explain(sub)
    p = sub.add_parser("demo", help="explain the bundled inputs (shape, Fashion-MNIST, canvas, photo)")
    p.add_argument("--out", type=Path, default=Path("demo_out"), help="output folder (default demo_out)")
    p.set_defaults(run=demo_command)
    _add_evaluation(sub)
    _add_reproduction(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``) and run the subcommand; exit code 0, 2 (bad input) or 130 (Ctrl-C)."""
    args = build_parser().parse_args(argv)
    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)
    try:
        args.run(args)
        return 0
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"actmatch_lite {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except USER_ERRORS as err:
        if args.debug:
            raise
        print(f"actmatch_lite {args.command}: error: {' '.join(str(err).split())}", file=sys.stderr)
        return EXIT_USAGE
