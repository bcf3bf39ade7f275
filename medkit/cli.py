"""The command line. Every user mistake ends in one line naming the culprit and exit code 2."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from medkit.errors import MedkitError


def _phantom(a: argparse.Namespace) -> int:
    import nibabel as nib
    import numpy as np

    from medkit.data.phantom import LABELS, make_phantom
    from medkit.runs import write_json
    out = Path(a.dir)
    if out.exists() and any(out.iterdir()):
        raise MedkitError(f"{out}: folder exists and is not empty; choose another (nothing was changed)")
    if a.cases < 1:
        raise MedkitError(f"--cases must be at least 1, got {a.cases}")
    vols = make_phantom(a.cases, seed=a.seed, frames=a.frames, size=a.size)
    (out / "imagesTr").mkdir(parents=True)
    (out / "labelsTr").mkdir()
    entries = []
    for v in vols:
        affine = np.diag([*v.spacing, 1.0])
        for sub, arr in (("imagesTr", v.image), ("labelsTr", v.label)):
            nib.save(nib.Nifti1Image(np.moveaxis(arr, 0, -1), affine), str(out / sub / f"{v.case_id}.nii.gz"))
        entries.append({"image": f"./imagesTr/{v.case_id}.nii.gz", "label": f"./labelsTr/{v.case_id}.nii.gz"})
    write_json(out / "dataset.json", {
        "name": "medkit-phantom", "description": f"synthetic cine-MRI phantom, seed {a.seed}",
        "modality": {"0": "cine-MRI (synthetic)"}, "labels": {str(k): v for k, v in LABELS.items()},
        "numTraining": len(entries), "training": entries})
    print(f"wrote {len(vols)} volumes of {a.cases} subjects to {out}")
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
    from medkit.baseline import format_table, parse_labelled, run_supervised
    t0 = time.perf_counter()
    m = run_supervised(a.data, parse_labelled(a.labelled), a.out, _train_config(a), image_size=a.image_size,
                       crop=_crop(a.crop), frames=a.frames, model=a.model, combos=a.combos,
                       protocol=a.protocol, resume=a.resume, progress=not a.quiet)
    print(format_table(m))
    print(f"wall time {time.perf_counter() - t0:.0f} s; results in {a.out}/metrics.json")
    return 0


def _train_config(a: argparse.Namespace):
    from medkit.train import TrainConfig
    return TrainConfig(steps=a.steps, batch_size=a.batch_size, lr=a.lr, seed=a.seed, device=a.device,
                       val_every=a.val_every, ckpt_every=a.ckpt_every, compile=a.compile, amp=not a.no_amp,
                       channels_last=not a.no_channels_last)


def _crop(text: str):
    return "auto" if text == "auto" else (None if text == "none" else _int("--crop", text))


def _sets(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items or []:
        if "=" not in item:
            raise MedkitError(f"--set takes key=value, got {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def _pretrain(a: argparse.Namespace) -> int:
    from medkit.pretrain import pretrain
    t0 = time.perf_counter()
    run = pretrain(a.method, a.data, a.out, _train_config(a), _sets(a.set), image_size=a.image_size,
                   crop=_crop(a.crop), frames=a.frames, protocol=a.protocol, resume=a.resume,
                   progress=not a.quiet)
    from medkit import distributed
    if distributed.is_main():
        print(f"pretrained {a.method} in {time.perf_counter() - t0:.0f} s; run folder {run}")
    distributed.cleanup()
    return 0


def _evaluate(a: argparse.Namespace) -> int:
    from medkit.baseline import format_table, parse_labelled
    from medkit.transfer import run_evaluation
    t0 = time.perf_counter()
    m = run_evaluation(a.checkpoint, a.data, parse_labelled(a.labelled), a.protocol, a.out, _train_config(a),
                       image_size=a.image_size, crop=_crop(a.crop), frames=a.frames, combos=a.combos,
                       protocol=a.split, resume=a.resume, progress=not a.quiet)
    print(format_table(m))
    print(f"wall time {time.perf_counter() - t0:.0f} s; results in {a.out}/metrics.json")
    return 0


def _diagnose(a: argparse.Namespace) -> int:

    from medkit.diagnose import diagnose
    out = diagnose(a.checkpoint, a.data, a.out, max_n=a.max_n, device=a.device)
    for name, r in (out["runs"] if "runs" in out else {"": out}).items():
        print(name)
        for key in ("h", "z", "pixels"):
            if key in r:
                print(f"{key:>8}: RankMe {r[key]['rankme']:.1f} / {r[key]['d']}, covariance rank "
                      f"{r[key]['erank_cov']:.1f}, collapsed {r[key]['collapsed_fraction']:.0%}")
        print(json.dumps({k: v for k, v in r.items() if k in ("clusters",) or k.startswith("alignment")}))
    where = "summary.json and <run>/diagnostics.json" if len(a.checkpoint) > 1 else "diagnostics.json"
    print(f"measures in {a.out}/{where}, figures in {a.out}/figures/")
    return 0


def _study(a: argparse.Namespace) -> int:
    from medkit.study import run_study
    table = run_study(a.file, root=a.root, workers=a.workers)
    print(table.to_string(index=False))
    failed = int((table["status"] == "failed").sum())
    print(f"{len(table)} run(s), {failed} failed; summary in {a.root}/<study>/summary.csv")
    return 1 if failed else 0


def _bench(a: argparse.Namespace) -> int:
    from medkit.bench import machine, run_bench
    print("machine:", machine())
    sizes = tuple(_int("--sizes", t) for t in a.sizes.split(","))
    if a.lightly:
        from medkit.bench_lightly import compare, markdown
        rows = []
        for size in sizes:
            for name in ("simclr", "moco_v2"):
                rows.append(compare(name, size, a.batch_size, repeats=a.repeats))
                print(f"{name} {size}px: medkit {rows[-1]['medkit_s']:.4f} s, lightly {rows[-1]['lightly_s']:.4f} s, "
                      f"ratio {rows[-1]['medkit_over_lightly']:.2f}", flush=True)
        out = Path(a.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".json").write_text(json.dumps({"machine": machine(), "rows": rows}, indent=2))
        out.with_suffix(".md").write_text(markdown(rows))
        print(f"written {a.out}.json and {a.out}.md")
        return 0
    methods = tuple(a.methods.split(",")) if a.methods != "all" else None
    kwargs = {"methods": methods} if methods else {}
    run_bench(a.out, sizes=sizes, batch=a.batch_size, repeats=a.repeats, **kwargs)
    print(f"written {a.out}.json and {a.out}.md")
    return 0


def _int(opt: str, text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise MedkitError(f"{opt} takes an integer, got {text!r}") from None


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, as for every other mistake
        self.exit(2, f"{self.prog}: error: {message}\n")


def _data_options(p: argparse.ArgumentParser, steps: int) -> None:
    p.add_argument("--data", required=True, help="'phantom' or a Decathlon folder")
    p.add_argument("--out", required=True, help="run folder (never overwritten)")
    p.add_argument("--steps", type=int, default=steps)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--crop", default="auto", help="centred crop in native pixels, 'none' or 'auto'")
    p.add_argument("--frames", default="ed", choices=["ed", "es", "both"])
    p.add_argument("--val-every", type=int, default=250)
    p.add_argument("--ckpt-every", type=int, default=250)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.add_argument("--compile", default="", metavar="BACKEND",
                   help="torch.compile the conv blocks with this backend (e.g. inductor on a GPU)")
    p.add_argument("--no-amp", action="store_true", help="no mixed precision on CUDA")
    p.add_argument("--no-channels-last", action="store_true", help="NCHW instead of channels_last")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run folder")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="medkit", description="Self-supervised contrastive pretraining study kit.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    ph = sub.add_parser("phantom", help="write the synthetic phantom in the Decathlon layout")
    ph.add_argument("dir")
    ph.add_argument("--cases", type=int, default=30, help="subjects (each gives an ED and an ES volume)")
    ph.add_argument("--seed", type=int, default=0)
    ph.add_argument("--frames", default="both", choices=["ed", "es", "both"])
    ph.add_argument("--size", type=int, default=160, help="in-plane size in pixels")
    ph.set_defaults(func=_phantom)
    dc = sub.add_parser("data-check", help="check a Decathlon folder; non-zero exit on problems")
    dc.add_argument("dir")
    dc.set_defaults(func=_data_check)
    s = sub.add_parser("supervised", help="random-initialisation baseline on k labelled volumes")
    _data_options(s, steps=3000)
    s.add_argument("--labelled", default="1,2,8", help="comma-separated k and/or 'all'")
    s.add_argument("--model", default="unet")
    s.add_argument("--combos", type=int, default=None, help="only the first N combinations per k")
    s.add_argument("--protocol", default="auto", choices=["auto", "acdc", "random"], help="split protocol")
    s.set_defaults(func=_supervised)
    pt = sub.add_parser("pretrain", help="self-supervised pretraining of a method on the unlabelled pool")
    pt.add_argument("--method", required=True, help="simclr, chaitanya, moco_v2, med_moco, pix2rep, ideal")
    pt.add_argument("--set", action="append", metavar="KEY=VALUE", help="method option (repeatable)")
    _data_options(pt, steps=2000)
    pt.add_argument("--protocol", default="auto", choices=["auto", "acdc", "random"], help="split protocol")
    pt.set_defaults(func=_pretrain)
    ev = sub.add_parser("evaluate", help="linear probe or fine-tuning of a pretrained run on k labelled volumes")
    ev.add_argument("--checkpoint", required=True, help="a pretraining run folder, or 'random'")
    ev.add_argument("--protocol", default="linear", choices=["linear", "finetune", "consistency"])
    _data_options(ev, steps=3000)
    ev.add_argument("--labelled", default="1,2,8", help="comma-separated k and/or 'all'")
    ev.add_argument("--combos", type=int, default=None, help="only the first N combinations per k")
    ev.add_argument("--split", default="auto", choices=["auto", "acdc", "random"], help="split protocol")
    ev.set_defaults(func=_evaluate)
    st = sub.add_parser("study", help="run notebooks over a parameter grid with papermill")
    st.add_argument("file", help="a study YAML, e.g. papermill_runs/studies/demo.yaml")
    st.add_argument("--workers", type=int, default=1, help="runs in parallel")
    st.add_argument("--root", default="papermill_runs", help="where the study's run folders go")
    st.set_defaults(func=_study)
    bn = sub.add_parser("bench", help="throughput, overhead, memory and data-pipeline rate per method")
    bn.add_argument("--out", default="bench/results", help="path stem of the JSON and markdown outputs")
    bn.add_argument("--sizes", default="64", help="comma-separated image sizes")
    bn.add_argument("--methods", default="all", help="comma-separated method names, or all")
    bn.add_argument("--batch-size", type=int, default=16)
    bn.add_argument("--repeats", type=int, default=15, help="timed steps per measure (medians)")
    bn.add_argument("--lightly", action="store_true",
                    help="time moco_v2 and simclr against the same steps built from lightly (needs lightly)")
    bn.set_defaults(func=_bench)
    dg = sub.add_parser("diagnose", help="collapse measures and figures of a pretraining run")
    dg.add_argument("--checkpoint", required=True, action="append",
                    help="a finished pretraining run folder (repeat to compare runs in one figure)")
    dg.add_argument("--data", required=True, help="'phantom' or a Decathlon folder")
    dg.add_argument("--out", required=True, help="output folder (never overwritten)")
    dg.add_argument("--max-n", type=int, default=2048, help="slices embedded (N well above D)")
    dg.add_argument("--device", default="auto")
    dg.set_defaults(func=_diagnose)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except MedkitError as e:
        print(f"medkit {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"medkit {args.command}: interrupted; rerun with --resume to continue", file=sys.stderr)
        return 130
