"""Report table of imported official R3GAN checkpoints beside the user's Config E runs and the paper's numbers (paper Section 4, Tables 3-8).

An imported checkpoint (`r3bench import-official`, roadmap/official.py) is a run folder whose
config.yaml says `feeds: official-checkpoints`; its metrics come from the evaluation commands run on
it afterwards, which write beside it: `fid.json` (`r3bench fid`), `fd_<network>.json`
(`r3bench fid --features`), `pr50k3*.json` / `kid50k*.json` (`r3bench metric`) and
`eval-stackedmnist.json` (`r3bench eval-stackedmnist --run`). Per data set of an imported
checkpoint the table has the checkpoint's row ("official checkpoint"), every Config E run of the
user on that data set (its final metrics, plus the same side files), the reference's Config E runs on
it (results/reference, when the report shows the reference beside yours), real data scored alike
(Stacked MNIST) and the paper's row.
"""
import math
from pathlib import Path

import pandas as pd

from reports.registry import register_table
from reports.staleness import commits_notes
from reports.tables import Cell, Table
from roadmap import files

FEEDS = "official-checkpoints"  # roadmap.official.FEEDS
# The paper's numbers for Config E, one row per published checkpoint's preset. FID: Table 4 (FFHQ-256),
# Table 5 (FFHQ-64), Table 6 (CIFAR-10), Table 7 (ImageNet-32), Table 8 (ImageNet-64); recall: Section 4's
# "Recall" paragraph; Stacked MNIST: Table 3. Tables 5, 7 and 8 are missing from the text copy in
# ../shared/paper (lost in its extraction): their FIDs were read from the published paper (arXiv 2501.05441)
# and agree with public leaderboard listings of it (ImageNet-32's 1.27 with two of them).
PAPER = {
    "cifar10": dict(fid=1.96, recall=0.57),
    "ffhq256": dict(fid=2.75, recall=0.49),
    "ffhq64": dict(fid=1.95, recall=0.53),
    "imagenet32": dict(fid=1.27, recall=0.63),
    "imagenet64": dict(fid=2.09, recall=0.59),
    "stackedmnist": dict(modes=1000, kl=0.029),
}
COLUMNS = (("fid", "FID", 2), ("precision", "Precision", 3), ("recall", "Recall", 3), ("kid", "KID", 4),
           ("modes", "Modes", 0), ("kl", "KL", 3), ("fd_mnist_classifier", "FD (MNIST classifier)", 3))
# The reference experiment that trains plain Config E on a data set (results/reference); its runs and its real-data
# score stand beside an imported checkpoint. Only Stacked MNIST has one: the other presets are GPU work not run there.
REFERENCE_FEEDS = {"stackedmnist": "table3"}
SIDE_FILES = ("fid.json", "fd_mnist_classifier.json", "pr50k3.json", "kid50k.json", "eval-stackedmnist.json")


def run_metrics(row) -> dict:
    """Metrics of one run row: its summary's `metric.*`, then what the evaluation commands wrote beside it."""
    values = {key[len("metric."):]: value for key, value in row.items() if str(key).startswith("metric.")}
    folder = Path(row["run_dir"])
    keys = {key for key, _, _ in COLUMNS}
    local = sorted(p.name for pattern in ("pr50k3_*.json", "kid50k_*.json") for p in folder.glob(pattern))
    for name in local + list(SIDE_FILES):  # the standard protocol's files last: they win
        path = folder / name
        if path.is_file():
            try:
                content = files.read_json(path)
            except Exception:  # an unreadable side file leaves its cells empty
                continue
            if isinstance(content, dict):
                values.update({key: value for key, value in content.items() if key in keys})
    return values


def _cell(value, digits: int) -> Cell:
    if value is None or isinstance(value, bool):
        return Cell(text="-")
    try:
        value = float(value)
    except (TypeError, ValueError):
        return Cell(text="-")
    if math.isnan(value):
        return Cell(text="-")
    return Cell(text=f"{value:.{digits}f}")


def _column(runs: pd.DataFrame, name: str) -> pd.Series:
    return runs[name] if name in runs else pd.Series(None, index=runs.index, dtype=object)


def _config_e(runs: pd.DataFrame) -> pd.DataFrame:
    """The Config E runs among `runs` that are not imported checkpoints."""
    if not len(runs):
        return runs
    return runs[(_column(runs, "feeds") != FEEDS) & (_column(runs, "model") == "E")]


@register_table(FEEDS, order=90)
def official_checkpoints(results) -> list:
    runs = results.runs
    if not len(runs):
        return []
    official = runs[_column(runs, "feeds") == FEEDS]
    if not len(official):
        return []
    header = ["Run", "Source", "Data set", "kimg"] + [label for _, label, _ in COLUMNS]
    rows, shown = [], []
    ours = _config_e(runs)
    reference = _config_e(results.reference.runs) if results.reference is not None else ours.iloc[0:0]
    for dataset in sorted(set(official["dataset"].astype(str))):
        feeds = REFERENCE_FEEDS.get(dataset)
        for label, part in (("official checkpoint", official[official["dataset"] == dataset]),
                            ("ours (Config E)", ours[ours["dataset"] == dataset]),
                            ("reference (Config E)", reference[(reference["dataset"] == dataset)
                                                               & (_column(reference, "feeds") == feeds)])):
            shown.append(part)
            for _, row in part.sort_values(["experiment", "run"]).iterrows():
                metrics = run_metrics(row)
                kimg = row.get("kimg")
                rows.append([Cell(text=f"{row['experiment']}/{row['run']}"), Cell(text=label), Cell(text=dataset),
                             _cell(kimg, 1)] + [_cell(metrics.get(key), digits) for key, _, digits in COLUMNS])
        if dataset == "stackedmnist":  # real samples scored alike (`eval-stackedmnist --real`), yours then the reference's
            theirs = (results.reference.real or {}) if results.reference is not None else {}
            real_sets = [("real data", results.real or {}), ("real data, reference", {k: v for k, v in theirs.items() if k == feeds})]
            for source, real_set in real_sets:
                for experiment, real in sorted(real_set.items()):
                    rows.append([Cell(text=f"real data ({experiment})"), Cell(text=source), Cell(text=dataset), Cell(text="-")]
                                + [_cell(real.get(key), digits) for key, _, digits in COLUMNS])
        presets = set(_column(official[official["dataset"] == dataset], "model_args.preset").astype(str))
        for preset in sorted(presets & set(PAPER)):
            rows.append([Cell(text=f"paper ({preset})"), Cell(text="paper"), Cell(text=dataset), Cell(text="-")]
                        + [_cell(PAPER[preset].get(key), digits) for key, _, digits in COLUMNS])
    notes = ("Official checkpoints: `r3bench import-official` of a published network-snapshot.pkl; their metrics come "
             "from `r3bench fid`, `r3bench metric` and `r3bench eval-stackedmnist` run on the imported folder. "
             "FID/KID: clean-fid Inception; precision/recall: VGG16, k = 3 (pr50k3), unless a file says otherwise; "
             "FD (MNIST classifier): the Frechet distance in our Stacked MNIST classifier's feature space "
             "(`fid --features stackedmnist` or `eval-stackedmnist`), not comparable with FID.",
             "Reference rows: the committed evidence's Config E runs and real-data score on the same data set, when the "
             "report shows results/reference beside yours; only Stacked MNIST (table3) has them, since the other presets "
             "are GPU work that was not run for the reference.",)
    notes += commits_notes(pd.concat(shown)) if shown else ()
    return [Table("official-checkpoints", "Official R3GAN checkpoints beside our Config E runs and the paper", header,
                  pd.DataFrame(rows, columns=header), notes=notes, align="llll" + "r" * len(COLUMNS))]
