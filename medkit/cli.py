"""The command line: parse, validate, call one library function per command, print its result.

Defaults come from the library (the config dataclasses, the workflows' schedules and function
signatures), never from numbers written here. Every user mistake ends in one line
``medkit COMMAND: error: ...`` and exit code 2.
"""
from __future__ import annotations

import argparse
import inspect
import json
import re
import sys
import time
from dataclasses import fields, replace
from pathlib import Path

from medkit.data.datasets import DataConfig
from medkit.engine.config import TrainConfig
from medkit.engine.spec import RunSpec
from medkit.errors import MedkitError
from medkit.workflows import schedules

SPLITS = ("auto", "acdc", "random")
EVAL_PROTOCOLS = ("linear", "finetune", "consistency")  # as medkit.eval.probes (a test keeps them equal)
TRANSFERS = ("all", "encoder")


def _default(fn, name: str):
    """The default of parameter ``name`` of library function ``fn``."""
    return inspect.signature(fn).parameters[name].default


def _given(a: argparse.Namespace, *names: str) -> dict:
    """The options among ``names`` that the user gave (the others keep the library's default)."""
    return {n: getattr(a, n) for n in names if getattr(a, n, None) is not None}


def _int(opt: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise MedkitError(f"{opt} takes an integer, got {text!r}") from None


def _crop(text: str | None):
    if text is None:
        return DataConfig.crop
    return "auto" if text == "auto" else (None if text == "none" else _int("--crop", text))


def _seeds(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    seeds = tuple(_int("--seeds", t.strip()) for t in text.split(",") if t.strip())
    if not seeds or len(set(seeds)) != len(seeds):
        raise MedkitError(f"--seeds takes distinct comma-separated integers, got {text!r}")
    return seeds


def _sets(items: list[str] | None) -> dict[str, str]:
    out = {}
    for item in items or []:
        if "=" not in item:
            raise MedkitError(f"--set takes key=value, got {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def _schedule(a: argparse.Namespace, base: TrainConfig) -> TrainConfig:
    """``base`` with the schedule options the user gave."""
    given = _given(a, "steps", "batch_size", "lr", "head_lr", "warmup", "val_every", "ckpt_every", "seed", "device",
                   "compile")
    if a.no_amp:
        given["amp"] = False
    if a.no_channels_last:
        given["channels_last"] = False
    return replace(base, **given)


def _spec(a: argparse.Namespace, schedule: TrainConfig, method: str = "") -> RunSpec:
    """The run spec of a training command: data (seeded like the schedule), schedule and method options."""
    train = _schedule(a, schedule)
    data = DataConfig(a.data, crop=_crop(a.crop), seed=train.seed,
                      **_given(a, "image_size", "frames", "split", "pool_frames"))
    return RunSpec(data, train, method, _sets(getattr(a, "set", None)))


def _few(a: argparse.Namespace) -> FewLabelConfig:
    from medkit.workflows.supervised import FewLabelConfig, parse_labelled
    return FewLabelConfig(tuple(parse_labelled(a.labelled)), a.combos, _seeds(a.seeds))


def _phantom(a: argparse.Namespace) -> int:
    from medkit.workflows.phantom import write_phantom
    n = write_phantom(a.dir, **_given(a, "cases", "seed", "frames", "size"))
    print(f"wrote {n} volumes to {a.dir}")
    return 0


def _data_check(a: argparse.Namespace) -> int:
    from medkit.data.volumes import check_folder
    rows, problems = check_folder(a.dir)
    for r in rows:
        print(f"{r['case']:<28} shape (S,H,W) {str(r['shape']):<16} spacing {tuple(round(s, 3) for s in r['spacing'])}"
              f"  labels {r['labels']}")
    print(f"{len(rows)} readable case(s), {len(problems)} problem(s)")
    for p in problems:
        print(f"problem: {p}")
    return 1 if problems else 0


def _supervised(a: argparse.Namespace) -> int:
    from medkit.workflows.supervised import format_table, run_supervised
    t0 = time.perf_counter()
    m = run_supervised(_spec(a, schedules.FEW_LABEL), _few(a), a.out, model=a.model, resume=a.resume,
                       progress=not a.quiet)
    print(format_table(m))
    print(f"wall time {time.perf_counter() - t0:.0f} s; results in {a.out}/metrics.json")
    return 0


def _pretrain(a: argparse.Namespace) -> int:
    from medkit.engine.distributed import is_main
    from medkit.workflows.pretrain import pretrain
    t0 = time.perf_counter()
    run = pretrain(_spec(a, schedules.PRETRAIN, a.method), a.out, resume=a.resume, progress=not a.quiet)
    if is_main():
        print(f"pretrained {a.method} in {time.perf_counter() - t0:.0f} s; run folder {run}")
    return 0


def _evaluate(a: argparse.Namespace) -> int:
    from medkit.workflows.supervised import format_table
    from medkit.workflows.evaluate import Transfer, run_evaluation
    t0 = time.perf_counter()
    how = Transfer(a.eval_protocol, a.transfer or Transfer.transfer)
    m = run_evaluation(a.checkpoint, _spec(a, schedules.FEW_LABEL), _few(a), how, a.out, resume=a.resume,
                       progress=not a.quiet)
    print(format_table(m))
    print(f"wall time {time.perf_counter() - t0:.0f} s; results in {a.out}/metrics.json")
    return 0


def _diagnose(a: argparse.Namespace) -> int:
    from medkit.engine.runs import check_below_folder
    from medkit.workflows.diagnose import diagnose
    if a.reference:
        check_below_folder(a.reference, "--reference")
    out = diagnose(a.checkpoint, a.data, a.out, resume=a.resume, **_given(a, "max_n", "device"))
    for name, r in (out["runs"] if "runs" in out else {"": out}).items():
        print(name)
        for key in ("h", "z", "pixels"):
            if key in r:
                print(f"{key:>8}: RankMe {r[key]['rankme']:.1f} / {r[key]['d']}, covariance rank "
                      f"{r[key]['erank_cov']:.1f}, collapsed {r[key]['collapsed_fraction']:.0%}")
        print(json.dumps({k: v for k, v in r.items() if k in ("clusters",) or k.startswith("alignment")}))
    where = "summary.json and <run>/diagnostics.json" if len(a.checkpoint) > 1 else "diagnostics.json"
    print(f"measures in {a.out}/{where}, figures in {a.out}/figures/")
    if a.reference:
        from medkit.workflows.reference import export_spectra
        command = "python -m medkit diagnose " + " ".join(f"--checkpoint {c}" for c in a.checkpoint) + \
            f" --data {a.data} --out {a.out} --reference {a.reference}"
        print(f"reference spectra and ranks in {export_spectra(a.out, a.reference, command)}")
    return 0


def _calibrate(a: argparse.Namespace) -> int:
    from medkit.engine.runs import check_below_folder
    from medkit.workflows.calibrate import calibration_runs, export_calibration, format_calibration, run_calibration
    from medkit.workflows.supervised import parse_labelled
    labelled = parse_labelled(a.labelled)
    if any(not isinstance(k, int) for k in labelled):
        raise MedkitError(f"--labelled {a.labelled}: give numbers of volumes (the two data sets differ in size)")
    if a.reference:
        check_below_folder(a.reference, "--reference")
    cfg = _schedule(a, schedules.FEW_LABEL)
    table = run_calibration(a.real, a.out, cfg, labelled, a.image_size, combos=a.combos, resume=a.resume,
                            progress=not a.quiet)
    real = Path(a.real).name
    print(format_calibration(table, real))
    if a.reference:
        options = {k: v for k, v in vars(a).items() if k not in ("func", "command") and v not in (None, False)}
        command = "python -m medkit calibrate " + " ".join(
            f"--{k.replace('_', '-')}" + ("" if v is True else f" {v}") for k, v in options.items())
        out = export_calibration(table, a.reference, command, cfg, a.image_size, a.real,
                                 calibration_runs(a.real, a.out))
        print(f"calibration table in {out}/calibration.csv")
    return 0


def _study(a: argparse.Namespace) -> int:
    from medkit.workflows.study import run_study
    table = run_study(a.file, overrides=_sets(a.set) or None, **_given(a, "root", "workers", "changed"))
    print(table.to_string(index=False))
    failed = int((table["status"] == "failed").sum())
    print(f"{len(table)} run(s), {failed} failed; summary in {table.attrs.get('summary', 'summary.csv')}")
    return 1 if failed else 0


def _bench(a: argparse.Namespace) -> int:
    from medkit.workflows.bench import machine, run_bench
    print("machine:", machine())
    sizes = tuple(_int("--sizes", t) for t in a.sizes.split(",")) if a.sizes else None
    options = {**_given(a, "repeats"), **({"sizes": sizes} if sizes else {}),
               **({"batch": a.batch_size} if a.batch_size is not None else {})}
    if a.lightly:
        from medkit.workflows.bench_lightly import run_comparison
        run_comparison(a.out, **options)
    else:
        if a.methods and a.methods != "all":
            options["methods"] = tuple(a.methods.split(","))
        run_bench(a.out, **options)
    print(f"written {a.out}.json and {a.out}.md")
    return 0


def _compare(a: argparse.Namespace) -> int:
    from medkit.workflows.compare import compare_runs, format_comparison
    table = compare_runs(a.runs[0], a.runs[1:], out=a.out)
    print(format_comparison(table))
    per_class = sorted(m for m in table["metric"].unique() if m != "dice_mean")
    for m in per_class:
        print(f"\n{m}:\n" + format_comparison(table, m))
    if a.out:
        print(f"table in {a.out}; per-pair differences beside it")
    return 0


ALIASES = {"overrides": "--set"}  # library parameters whose flag is named otherwise


def _flag_names(p: argparse.ArgumentParser) -> dict[str, str]:
    """Each library parameter name (an option's dest) with its flag, over every command."""
    out = dict(ALIASES)
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                out.update(_flag_names(sub))
        elif action.option_strings and action.option_strings[-1].startswith("--") and action.dest != "help":
            out.setdefault(action.dest, next(o for o in action.option_strings if o.startswith("--")))
    return out


def as_flags(message: str, flags: dict[str, str]) -> str:
    """A library error as the command line says it: the one place where parameter names become
    flags. A name is translated where it opens the message (``batch_size 1 is too small``),
    where it is followed by ``=`` (``combos=N`` -> ``--combos N``, ``resume=True`` -> ``--resume``),
    and anywhere when it holds an underscore (no word of prose does), except as ``name:``, a field of
    a file (``params.json: image_size: ...``)."""
    def flag(m: re.Match) -> str:
        name, eq = m.group(1), m.group(2)
        field = m.start() > 0 and message[m.end():m.end() + 1] == ":"  # "params.json: image_size: ..."
        if name not in flags or field or not (m.start() == 0 or eq or "_" in name):
            return m.group(0)
        return flags[name] + (" " if eq == "=" else "")
    return re.sub(r"(?<![\w./-])([a-z][a-z0-9_]*)\b(=True\b|=)?", flag, message)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, as for every other mistake
        self.exit(2, f"{self.prog}: error: {message}\n")


class _Deprecated(argparse.Action):
    """An old spelling that still works: stores into the new option's dest and warns once."""

    def __init__(self, option_strings, dest, new: str, **kwargs) -> None:
        self.new = new
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        print(f"{parser.prog}: warning: {option_string} is deprecated here; use {self.new}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def _schedule_options(p: argparse.ArgumentParser, base: TrainConfig) -> None:
    help_of = {"steps": "optimisation steps", "batch_size": "slices per step (the global batch under torchrun)",
               "lr": "AdamW learning rate", "head_lr": "learning rate of the segmentation head (none: --lr)",
               "warmup": "steps of linear learning-rate warm-up", "val_every": "steps between validations (0: none)",
               "ckpt_every": "steps between checkpoints", "seed": "seeds data, initialisation and augmentation",
               "device": "auto, cpu or cuda[:N]"}
    types = {f.name: f.type for f in fields(TrainConfig)}
    for name, text in help_of.items():
        typ = {"int": int, "float": float, "str": str, "float | None": float}[types[name]]
        p.add_argument(f"--{name.replace('_', '-')}", type=typ, default=None,
                       help=f"{text} (default {getattr(base, name)})")
    p.add_argument("--compile", default=None, metavar="BACKEND",
                   help="torch.compile the conv blocks with this backend (e.g. inductor on a GPU)")
    p.add_argument("--no-amp", action="store_true", help="no mixed precision on CUDA")
    p.add_argument("--no-channels-last", action="store_true", help="NCHW instead of channels_last")


def _data_options(p: argparse.ArgumentParser, split_alias: bool) -> None:
    p.add_argument("--data", required=True, help="'phantom' or a Decathlon folder")
    p.add_argument("--image-size", type=int, default=None, help=f"in-plane size (default {DataConfig.image_size})")
    p.add_argument("--crop", default=None, help=f"centred crop in native pixels, 'none' or 'auto' "
                                                f"(default {DataConfig.crop})")
    p.add_argument("--frames", default=None, choices=["ed", "es", "both"], help=f"default {DataConfig.frames}")
    p.add_argument("--split", default=None, choices=SPLITS, help=f"data split protocol (default {DataConfig.split})")
    if split_alias:
        p.add_argument("--protocol", dest="split", choices=SPLITS, action=_Deprecated, new="--split",
                       help=argparse.SUPPRESS)


def _few_label_options(p: argparse.ArgumentParser) -> None:
    """The label budgets and the pairs of a few-label run (supervised, evaluate)."""
    p.add_argument("--labelled", default="1,2,8", help="comma-separated k and/or 'all'")
    p.add_argument("--combos", type=int, default=None, help="N combinations per k: the split's own first, then "
                                                            "fixed seeded extra ones (default: the split's own)")
    p.add_argument("--seeds", default=None, help="comma-separated training seeds, a second axis of pairs "
                                                 "(default: --seed only)")


def _run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="run folder (never overwritten)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run folder")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _add_phantom(sub) -> None:
    from medkit.workflows.phantom import write_phantom
    ph = sub.add_parser("phantom", help="write the synthetic phantom in the Decathlon layout")
    ph.add_argument("dir")
    ph.add_argument("--cases", type=int, help=f"subjects (default {_default(write_phantom, 'cases')})")
    ph.add_argument("--seed", type=int, help=f"default {_default(write_phantom, 'seed')}")
    ph.add_argument("--frames", choices=["ed", "es", "both"], help=f"default {_default(write_phantom, 'frames')}")
    ph.add_argument("--size", type=int, help=f"in-plane size in pixels (default {_default(write_phantom, 'size')})")
    ph.set_defaults(func=_phantom)


def _add_data_check(sub) -> None:
    dc = sub.add_parser("data-check", help="check a Decathlon folder; non-zero exit on problems")
    dc.add_argument("dir")
    dc.set_defaults(func=_data_check)


def _add_supervised(sub) -> None:
    s = sub.add_parser("supervised", help="random-initialisation baseline on k labelled volumes")
    _data_options(s, split_alias=True)
    _run_options(s)
    _schedule_options(s, schedules.FEW_LABEL)
    _few_label_options(s)
    s.add_argument("--model", default="unet")
    s.set_defaults(func=_supervised)


def _add_pretrain(sub) -> None:
    pt = sub.add_parser("pretrain", help="self-supervised pretraining of a method on the unlabelled pool")
    pt.add_argument("--method", required=True, help="simclr, chaitanya, moco_v2, med_moco, pix2rep, ideal")
    pt.add_argument("--set", action="append", metavar="KEY=VALUE", help="method option (repeatable)")
    _data_options(pt, split_alias=True)
    pt.add_argument("--pool-frames", default=None, choices=["ed", "es", "both"],
                    help=f"frames of the pool's patients pretrained on (default {DataConfig.pool_frames})")
    _run_options(pt)
    _schedule_options(pt, schedules.PRETRAIN)
    pt.set_defaults(func=_pretrain)


def _add_evaluate(sub) -> None:
    ev = sub.add_parser("evaluate", help="linear probe or fine-tuning of a pretrained run on k labelled volumes")
    ev.add_argument("--checkpoint", required=True, help="a pretraining run folder, or 'random'")
    ev.add_argument("--eval-protocol", default="linear", choices=EVAL_PROTOCOLS, help="default linear")
    ev.add_argument("--protocol", dest="eval_protocol", choices=EVAL_PROTOCOLS, action=_Deprecated,
                    new="--eval-protocol", help=argparse.SUPPRESS)
    ev.add_argument("--transfer", default=None, choices=TRANSFERS,
                    help="what of the pretrained U-Net is loaded: all of it (default), or the encoder only "
                         "(decoder and head initialised as in the random baseline)")
    _data_options(ev, split_alias=False)
    _run_options(ev)
    _schedule_options(ev, schedules.FEW_LABEL)
    _few_label_options(ev)
    ev.set_defaults(func=_evaluate)


def _add_compare(sub) -> None:
    cp = sub.add_parser("compare", help="paired differences of few-label runs against the first (same pairs)")
    cp.add_argument("runs", nargs="+", metavar="RUN", help="finished supervised/evaluate run folders; the first "
                                                           "is the baseline A, each other one is a B")
    cp.add_argument("--out", help="CSV of the table (per-pair differences in <stem>_pairs.csv beside it)")
    cp.set_defaults(func=_compare)


def _add_study(sub) -> None:
    st = sub.add_parser("study", help="run notebooks over a parameter grid with papermill")
    st.add_argument("file", help="a study YAML, e.g. papermill_runs/studies/demo.yaml")
    st.add_argument("--workers", type=int, help="runs in parallel (default: one at a time)")
    st.add_argument("--root", help="where the study's run folders go (default: papermill_runs)")
    st.add_argument("--set", action="append", metavar="PARAM=VALUE",
                    help="replace a parameter everywhere in the study (repeatable), e.g. tiny CPU settings")
    st.add_argument("--changed", choices=["refuse", "rerun"], default=None,
                    help="a finished run whose recorded parameters differ from the study's: refuse (default, "
                         "nothing runs) or empty its folder and run it again")
    st.set_defaults(func=_study)


def _add_bench(sub) -> None:
    bn = sub.add_parser("bench", help="throughput, overhead, memory and data-pipeline rate per method")
    bn.add_argument("--out", default="bench/results", help="path stem of the JSON and markdown outputs")
    bn.add_argument("--sizes", help="comma-separated image sizes (default: run_bench's)")
    bn.add_argument("--methods", help="comma-separated method names, or all (default: all)")
    bn.add_argument("--batch-size", type=int, help="slices per step (default: run_bench's)")
    bn.add_argument("--repeats", type=int, help="timed steps per measure (medians)")
    bn.add_argument("--lightly", action="store_true",
                    help="time moco_v2 and simclr against the same steps built from lightly (needs lightly)")
    bn.set_defaults(func=_bench)


def _add_diagnose(sub) -> None:
    dg = sub.add_parser("diagnose", help="collapse measures and figures of a pretraining run")
    dg.add_argument("--checkpoint", required=True, action="append",
                    help="a finished pretraining run folder (repeat to compare runs in one figure)")
    dg.add_argument("--data", required=True, help="'phantom' or a Decathlon folder")
    dg.add_argument("--out", required=True, help="output folder (never overwritten)")
    dg.add_argument("--max-n", type=int, help="slices embedded, N well above D (default: diagnose's)")
    dg.add_argument("--device", help="auto, cpu or cuda[:N] (default: auto)")
    dg.add_argument("--resume", action="store_true", help="continue an interrupted output folder")
    dg.add_argument("--reference", metavar="DIR", help="also write the spectra and ranks as a committed reference "
                                                        "(e.g. papermill_runs/reference/acdc_collapse, notebook 01)")
    dg.set_defaults(func=_diagnose)


def _add_calibrate(sub) -> None:
    cb = sub.add_parser("calibrate", help="the supervised baseline on the phantom and on real data, same size "
                                          "and schedule (notebook 00's calibration table)")
    cb.add_argument("--real", required=True, help="a Decathlon folder to calibrate against (e.g. ../shared/data/acdc)")
    cb.add_argument("--labelled", default="1,2,8", help="comma-separated k (default 1,2,8)")
    cb.add_argument("--image-size", type=int, default=64, help="in-plane size on both sides (default 64)")
    cb.add_argument("--combos", type=int, default=None, help="labelled combinations per k on each side: the "
                                                             "split's own first, then seeded extra ones")
    cb.add_argument("--reference", metavar="DIR", help="also write the table as a committed reference "
                                                        "(e.g. papermill_runs/reference/phantom_calibration)")
    _run_options(cb)
    _schedule_options(cb, schedules.FEW_LABEL)
    cb.set_defaults(func=_calibrate)


COMMANDS = (_add_phantom, _add_data_check, _add_supervised, _add_pretrain, _add_evaluate, _add_compare, _add_study,
            _add_bench, _add_diagnose, _add_calibrate)


def parser() -> argparse.ArgumentParser:
    """The command line: one sub-command per workflow, each added by its ``_add_<command>``."""
    p = _Parser(prog="medkit", description="Self-supervised contrastive pretraining study kit.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for add in COMMANDS:
        add(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    try:
        return args.func(args)
    except MedkitError as e:
        print(f"medkit {args.command}: error: {as_flags(str(e), _flag_names(p))}", file=sys.stderr)
        return 2
    except OSError as e:  # permission, not a directory, no space left: the file and the reason, one line
        where = f"{e.filename}: " if e.filename else ""
        print(f"medkit {args.command}: error: {where}{e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"medkit {args.command}: interrupted; rerun with --resume to continue", file=sys.stderr)
        return 130
    finally:
        from medkit.engine.distributed import cleanup
        cleanup()  # leave a torchrun process group (a no-op otherwise)
