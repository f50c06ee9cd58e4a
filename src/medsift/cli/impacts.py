"""``medsift tag RUN_DIR TEXT...``: print the impact spans a trained tagger finds in raw text."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def tag(
        run_dir: Annotated[
            Path, typer.Argument(help="An impacts run directory (medsift train) or a seed's model folder.")
        ],
        texts: Annotated[
            list[str] | None,
            typer.Argument(metavar="TEXT", help="Posts to tag (or use --file); '-' reads standard input."),
        ] = None,
        file: Annotated[
            Path | None,
            typer.Option("--file", "-f", help="A .txt file, one post per line ('-': standard input)."),
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="One JSON object per post.")] = False,
    ) -> None:
        """Tag raw text with an impact tagger and print its spans (label, character offsets, text)."""
        from medsift.cli._streams import STDIO, spool_posts
        from medsift.errors import MedsiftError
        from medsift.io import read_posts

        posts: list[str] = []
        for n, text in enumerate(texts or [], start=1):
            if text == "-":
                posts += spool_posts()
            elif not text.strip():  # as the service refuses it (422): an empty post has nothing to tag
                raise MedsiftError(f"post {n} is empty (or only whitespace); give the text to tag")
            else:
                posts.append(text)
        if file is not None:
            posts += spool_posts() if file == STDIO else read_posts(file)[1]
        if not posts:
            raise MedsiftError("nothing to tag: give posts as arguments, '-' (standard input) or --file")
        from medsift.impacts.model import progress_bars  # torch: only once the posts are known good
        from medsift.impacts.predict import SpanTagger

        with progress_bars(False):
            tagger = SpanTagger.from_run(run_dir)
        for n, spans in enumerate(tagger.tag_texts(posts), start=1):
            if as_json:
                typer.echo(json.dumps({"post": n, "spans": [s._asdict() for s in spans]}, ensure_ascii=False))
                continue
            typer.echo(f"post {n}: {len(spans)} span(s)")
            for s in spans:
                typer.echo(f"  {s.label}\t{s.start_char}-{s.end_char}\t{s.text}")
