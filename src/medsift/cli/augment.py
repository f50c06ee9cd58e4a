"""``medsift augment``: translation augmentation of a Task 1 file (see :mod:`medsift.augment`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from medsift.errors import MedsiftError


def _languages(text: str | None) -> list[str] | None:
    return None if text is None else [x.strip() for x in text.split(",") if x.strip()]


def _codes(pairs: list[str]) -> dict[str, str]:
    codes = {}
    for pair in pairs:
        lang, sep, code = pair.partition("=")
        if not sep or not lang.strip() or not code.strip():
            raise MedsiftError(f"--lang-code {pair!r}: expected LANG=CODE, e.g. fa=pes_Arab")
        codes[lang.strip()] = code.strip()
    return codes


def register(app: typer.Typer) -> None:
    @app.command()
    def augment(
        input: Annotated[Path, typer.Argument(help="A labelled Task 1 file (official columns).")],
        output: Annotated[Path, typer.Option("--output", "-o", help="The file to write (official columns).")],
        model: Annotated[
            str,
            typer.Option(
                help="A seq2seq translation model: hub id (facebook/nllb-200-distilled-600M, "
                "facebook/m2m100_418M, Helsinki-NLP/opus-mt-en-de) or local folder."
            ),
        ],
        to: Annotated[str, typer.Option("--to", help="Target languages, ISO codes: de,fr")],
        from_: Annotated[
            str | None,
            typer.Option("--from", help="Source languages (default: every other language in INPUT)."),
        ] = None,
        mode: Annotated[
            str,
            typer.Option(
                help="balanced (every positive and --negatives-per-positive times as many negatives) | positives "
                "(label 1 only: one-sided, needs --allow-one-class) | all (every source row)"
            ),
        ] = "balanced",
        negatives_per_positive: Annotated[
            float, typer.Option(min=0, help="balanced: negatives per positive.")
        ] = 1.0,
        max_rows_per_target: Annotated[
            int | None,
            typer.Option(min=1, help="Cap the rows added per target language (class shares kept)."),
        ] = None,
        max_class_share: Annotated[
            float,
            typer.Option(
                min=0.5,
                max=1.0,
                help="Refuse when one class is more than this share of a language's added rows.",
            ),
        ] = 0.8,
        allow_one_class: Annotated[
            bool,
            typer.Option(help="Add one-sided rows anyway (warned loudly): the paper's Clever Hans risk."),
        ] = False,
        lang_code: Annotated[
            list[str], typer.Option(help="LANG=CODE: the model's code of a language (NLLB: fa=pes_Arab).")
        ] = [],  # noqa: B006
        batch_size: Annotated[int, typer.Option(min=1, help="Posts per generate call.")] = 16,
        max_length: Annotated[int, typer.Option(min=8, help="Input and output tokens per post.")] = 256,
        num_beams: Annotated[int, typer.Option(min=1, help="Beam search width (1 = greedy).")] = 1,
        seed: Annotated[int, typer.Option(help="Seed of the negatives drawn and of the cap.")] = 13,
        quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    ) -> None:
        """Translate rows of a Task 1 file into other languages; the output goes straight into data.train.

        Killed half-way, the same command resumes where it stopped. Each added row records its source_id.
        """
        from medsift.augment.run import augment_file

        summary = augment_file(
            input,
            output,
            model=model,
            targets=_languages(to) or [],
            sources=_languages(from_),
            mode=mode,
            negatives_per_positive=negatives_per_positive,
            max_rows_per_target=max_rows_per_target,
            max_class_share=max_class_share,
            allow_one_class=allow_one_class,
            seed=seed,
            batch_size=batch_size,
            max_length=max_length,
            num_beams=num_beams,
            lang_codes=_codes(lang_code),
            quiet=quiet,
        )
        for line in summary["one_sided"]:
            typer.secho(
                f"WARNING: CLEVER HANS RISK: {line}: a model can learn 'this language = this class' "
                "(the paper's Farsi run: 99.9 % predicted positive); check that language on held-out rows",
                err=True,
                fg="red",
                bold=True,
            )
        counts = ", ".join(
            f"{k} {v['rows']} ({v['positives']} positive)" for k, v in summary["per_language"].items()
        )
        resumed = f"; {summary['resumed']} kept from an interrupted run" if summary["resumed"] else ""
        typer.echo(f"wrote {summary['rows']} rows to {output}: {counts}{resumed}", err=True)
