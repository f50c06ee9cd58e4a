"""Regenerate medsift's bundled sample (src/medsift/data/) from the public corpora in /work/shared/data.

Only corpora whose licences allow redistribution are used: PsyTAR (CC BY 4.0) and KEEPHA-Ja (MIT).
The official task1/ and task7/ files are never read. The output is deterministic (fixed seed, stable
sort), so running this twice gives byte-identical files.

    python scripts/make_sample.py [--data /work/shared/data] [--out src/medsift/data]
"""

from __future__ import annotations

import argparse
import csv
import random
from pathlib import Path

from medsift.io import format_list, read_ade, read_conll

SEED = 20260
N_EN = 240
EN_POSITIVE = 72  # 30 % of the English rows
N_IMPACTS = 300
IMPACTS_WITHOUT_ENTITY = 45  # most sample sentences carry at least one entity
MAX_TOKENS = 40
ADE_HEADER = ["id", "text", "label", "origin", "type", "language", "split"]
IMPACTS_HEADER = ["tokens", "labels", "ID", "ner_tags"]


def psytar_sentences(path: Path) -> list[tuple[int, str, int]]:
    """(line number, sentence, ADR label) for well-formed lines of PsyTAR's binary/full.csv."""
    rows = []
    with path.open(encoding="utf-8", newline="") as fh:
        for number, line in enumerate(fh, start=1):
            fields = line.rstrip("\r\n").split("\t")
            if number == 1 or len(fields) != 7 or fields[1] not in {"0", "1"}:
                continue  # header, sentences broken over lines, unlabelled lines
            text = " ".join(fields[0].split())
            if 15 <= len(text) <= 300:
                rows.append((number, text, int(fields[1])))
    return rows


def ade_rows(data: Path, rng: random.Random) -> list[list[str]]:
    sentences = psytar_sentences(data / "psytar" / "binary" / "full.csv")
    positives = [s for s in sentences if s[2] == 1]
    negatives = [s for s in sentences if s[2] == 0]
    chosen = rng.sample(positives, EN_POSITIVE) + rng.sample(negatives, N_EN - EN_POSITIVE)
    chosen.sort()
    rows = [
        [f"en_psytar_{n}", text, f"{label}.0", "PsyTAR", "sentence", "en", "sample"]
        for n, text, label in chosen
    ]
    keepha = read_ade(data / "keepha-ja" / "task1_ja.csv", labelled=True)
    for record in keepha.itertuples(index=False):
        rows.append(
            [
                record.id,
                record.text,
                f"{record.label}.0",
                record.origin,
                record.type,
                record.language,
                "sample",
            ]
        )
    return rows


def impacts_rows(data: Path, rng: random.Random) -> list[list[str]]:
    sentences = []
    for split in ("train", "dev", "test"):
        frame = read_conll(data / "psytar" / "all" / f"{split}.txt")
        for record in frame.itertuples(index=False):
            if len(record.tokens) <= MAX_TOKENS:
                sentences.append((f"psytar_{split}_{record.ID.rsplit('_', 1)[1]}", record))
    with_entity = [s for s in sentences if any(tag != "O" for tag in s[1].ner_tags)]
    without = [s for s in sentences if all(tag == "O" for tag in s[1].ner_tags)]
    chosen = rng.sample(with_entity, N_IMPACTS - IMPACTS_WITHOUT_ENTITY) + rng.sample(
        without, IMPACTS_WITHOUT_ENTITY
    )
    chosen.sort(key=lambda s: (s[0].split("_")[1], int(s[0].rsplit("_", 1)[1])))
    return [
        [format_list(r.tokens), format_list(r.labels), sample_id, format_list(r.ner_tags)]
        for sample_id, r in chosen
    ]


def split_rows(rows: list[list[str]], key, rng: random.Random, test_share: float = 0.2):
    """Stratified split: within each stratum (``key(row)``) a fixed share of rows goes to the test file."""
    strata: dict[object, list[int]] = {}
    for index, row in enumerate(rows):
        strata.setdefault(key(row), []).append(index)
    test: set[int] = set()
    for stratum in sorted(strata, key=str):
        members = strata[stratum]
        test.update(rng.sample(members, round(len(members) * test_share)))
    return [r for i, r in enumerate(rows) if i not in test], [r for i, r in enumerate(rows) if i in test]


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("/work/shared/data"))
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parents[1] / "src" / "medsift" / "data"
    )
    args = parser.parse_args()
    rng = random.Random(SEED)

    ade = ade_rows(args.data, rng)
    write_csv(args.out / "ade_sample.csv", ADE_HEADER, ade)
    train, test = split_rows(ade, key=lambda r: (r[5], r[2]), rng=rng)
    write_csv(args.out / "ade_sample_train.csv", ADE_HEADER, train)
    write_csv(args.out / "ade_sample_test.csv", ADE_HEADER, test)

    impacts = impacts_rows(args.data, rng)
    write_csv(args.out / "impacts_sample.csv", IMPACTS_HEADER, impacts)
    train, test = split_rows(impacts, key=lambda r: "'B-" in r[3] or "'I-" in r[3], rng=rng)
    write_csv(args.out / "impacts_sample_train.csv", IMPACTS_HEADER, train)
    write_csv(args.out / "impacts_sample_test.csv", IMPACTS_HEADER, test)


if __name__ == "__main__":
    main()
