"""Contract of the impact tagger on tiny random models: training, gradients, save/reload, batching, files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

C, S = "ClinicalImpacts", "SocialImpacts"
POSTS = [
    (
        ["I", "overdosed", "last", "night", "and", "lost", "my", "job", "."],
        ["O", f"B-{C}", "O", "O", "O", f"B-{S}", f"I-{S}", f"I-{S}", "O"],
    ),
    (["No", "side", "effects", "so", "far", ",", "all", "good", "🙏"], ["O"] * 9),
    (
        ["withdrawal", "was", "hell", ",", "my", "family", "stopped", "talking", "to", "me"],
        [f"B-{C}", "O", "O", "O", f"B-{S}", f"I-{S}", f"I-{S}", f"I-{S}", f"I-{S}", f"I-{S}"],
    ),
    (["после", "приёма", "таблеток", "я", "потерял", "работу"], ["O", "O", "O", "O", f"B-{S}", f"I-{S}"]),
]


def _write_csv(path: Path, posts, labelled=True) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["tokens", "labels", "ID", "ner_tags"] if labelled else ["ID", "tokens"])
        for n, (tokens, tags) in enumerate(posts):
            if labelled:
                io = [t[2:] if t != "O" else "_" for t in tags]
                w.writerow([repr(tokens), repr(io), f"Train_{n}", repr(tags)])
            else:
                w.writerow([f"Test_{n}", repr(tokens)])
    return path


def _config(model_dir: Path, train_csv: Path, scheme: str, crf: bool, out: Path, epochs: int = 4):
    from medsift.config import parse_config

    return parse_config(
        {
            "task": "impacts",
            "model": {"name": str(model_dir), "max_length": 16, "stride": 4, "crf": crf},
            "data": {"train": [str(train_csv)], "val_fraction": 0.2, "seed": 1},
            "scheme": scheme,
            "training": {
                "learning_rate": 5e-3,
                "num_train_epochs": epochs,
                "per_device_train_batch_size": 4,
                "use_cpu": True,
                "logging_steps": 1,
                "label_smoothing_factor": 0.1,
            },
            "seeds": [7],
            "output_dir": str(out),
        }
    )


def _long_post(n: int = 60) -> list[str]:
    return ("I lost my job after the overdose and my family left " * 10).split()[:n]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("arch", "scheme", "crf"),
    [
        ("tiny_bert", "bio", False),
        ("tiny_bert", "io", False),
        ("tiny_deberta", "bio", True),
        ("tiny_xlmr", "io", False),
    ],
)
def test_tagger_contract(request, tmp_path, arch, scheme, crf):
    import numpy as np

    from medsift.engine.tagger_stream import predict_file
    from medsift.impacts.bio import tag_class
    from medsift.impacts.predict import SpanTagger, predict_posts
    from medsift.impacts.train import train
    from medsift.runs import RunManifest, read_json

    torch.set_num_threads(1)
    model_dir = request.getfixturevalue(arch)
    train_csv = _write_csv(tmp_path / "train.csv", POSTS * 6)
    config = _config(model_dir, train_csv, scheme, crf, tmp_path / "run")
    run_dir = train(config, quiet=True)

    assert RunManifest.load(run_dir).kind == "impacts-tagger"
    assert (run_dir / "config.yaml").exists() and (run_dir / "seed-7" / "DONE").exists()
    assert not (run_dir / "seed-7" / "checkpoints").exists()
    assert list((run_dir / "seed-7" / "model").glob("*.safetensors"))
    metrics = read_json(run_dir / "seed-7" / "metrics.json")
    history = metrics["history"]
    assert len(history) == 4 and history[-1]["train_loss"] < history[0]["train_loss"]
    meta = json.loads((run_dir / "seed-7" / "model" / "tagger.json").read_text())
    assert meta["labels"] == (
        ["O", f"B-{C}", f"I-{C}", f"B-{S}", f"I-{S}"] if scheme == "bio" else ["O", C, S]
    )

    # Reloaded from disk twice: identical tags; batched equals one by one; long posts keep every token.
    posts = [p[0] for p in POSTS] + [_long_post(60), _long_post(7), [""]]
    a = SpanTagger.from_run(run_dir).tag(posts, batch_size=8)
    b = SpanTagger.from_run(run_dir)
    assert b.tag(posts, batch_size=8) == a
    assert [b.tag([p], batch_size=1)[0] for p in posts] == a
    # Neither the token budget nor the number of workers changes a tag.
    model, tokenizer, meta_ = b.members[0]
    for budget, workers in [(16, 2), (10_000, 3)]:
        assert predict_posts(model, tokenizer, meta_, posts, batch_tokens=budget, workers=workers) == a
    assert [len(t) for t in a] == [len(p) for p in posts]
    # Word probabilities come with the tags: one row per word (O, then each type) summing to 1.
    tags_p, probs = predict_posts(model, tokenizer, meta_, posts, with_probs=True)
    assert tags_p == a and [p.shape for p in probs] == [(len(w), 3) for w in posts]
    assert all(np.allclose(p.sum(1), 1.0, atol=1e-4) for p in probs)
    if scheme == "io" and not crf:  # the argmax of the type probabilities is the tag
        classes = [["O", C, S][int(i)] for p in probs for i in p.argmax(1)]
        assert classes == [tag_class(t) for tags in a for t in tags]
    # postprocess.extend only turns O words into span words, next to a span of their type.
    grown = SpanTagger.from_run(run_dir)
    grown.members[0][2]["extend"] = 1e-6
    wide = grown.tag(posts)
    pairs = [(t, w) for x, y in zip(a, wide, strict=True) for t, w in zip(x, y, strict=True)]
    assert all(tag_class(w) == tag_class(t) for t, w in pairs if t != "O")
    assert sum(t != "O" for x in wide for t in x) >= sum(t != "O" for x in a for t in x)
    # Voting a run with itself changes nothing, by tags or by averaged probabilities.
    assert SpanTagger.from_runs([run_dir, run_dir]).tag(posts) == a
    twice = SpanTagger.from_runs([run_dir, run_dir])
    for _, _, m in twice.members:
        m["vote"] = "soft"
    assert twice.soft_vote == (not crf) and twice.tag(posts) == a
    # The same vote as a run folder that `medsift predict` can use.
    from medsift.cli import main

    main(["ensemble", str(run_dir), str(run_dir), "--method", "hard", "-o", str(tmp_path / "ens")])
    assert RunManifest.load(tmp_path / "ens").kind == "impacts-ensemble"
    assert SpanTagger.from_run(tmp_path / "ens").tag(posts) == a

    # Files: labelled CSV gives scores; unlabelled CSV and raw text give one tag per token and spans.
    result = predict_file(run_dir, train_csv, tmp_path / "sub.csv", quiet=True)
    assert result["rows"] == len(POSTS) * 6
    scores = result["scores"]
    assert set(scores) >= {"strict", "relaxed"} and 0.0 <= scores["strict"]["overall"]["f1"] <= 1.0
    test_csv = _write_csv(tmp_path / "test.csv", [(p, None) for p in posts[:-1]], labelled=False)
    result = predict_file(run_dir, test_csv, tmp_path / "sub2.csv", spans_json=tmp_path / "s.json")
    assert "scores" not in result and result["tokens"] == sum(len(p) for p in posts[:-1])
    from medsift.io import read_impacts_submission

    sub = read_impacts_submission(tmp_path / "sub2.csv")
    assert [len(t) for t in sub["predicted_ner_tags"]] == [len(p) for p in posts[:-1]]
    (tmp_path / "posts.txt").write_text(
        "I overdosed and lost my job.\n\nWithdrawal 😩 again\n", encoding="utf-8"
    )
    predict_file(run_dir, tmp_path / "posts.txt", tmp_path / "sub3.csv", spans_json=tmp_path / "t.json")
    records = json.loads((tmp_path / "t.json").read_text())
    assert [r["ID"] for r in records] == ["1", "3"]
    text = "I overdosed and lost my job."
    for span in records[0]["spans"]:
        assert text[span["start_char"] : span["end_char"]] == span["text"]

    # Running again resumes: the finished seed is not trained twice.
    mtime = (run_dir / "seed-7" / "DONE").stat().st_mtime
    train(config, quiet=True)
    assert (run_dir / "seed-7" / "DONE").stat().st_mtime == mtime


class _SameScores(torch.nn.Module):
    """A stand-in tagger that gives every subword the same label probabilities."""

    def __init__(self, probs: list[float]):
        super().__init__()
        self.probs = torch.nn.Parameter(torch.tensor(probs), requires_grad=False)

    def forward(self, input_ids, attention_mask):
        from types import SimpleNamespace

        batch, length = input_ids.shape
        return SimpleNamespace(logits=self.probs.log().expand(batch, length, -1).clone())

    def decode(self, emissions, valid):  # what a CRF's Viterbi gives when no transition is scored
        return [row[ok].argmax(-1).tolist() for row, ok in zip(emissions, valid, strict=True)]


def test_soft_vote_averages_probabilities_where_the_hard_vote_counts_tags(wordpiece_tokenizer):
    from transformers import AutoTokenizer

    from medsift.impacts.predict import SpanTagger

    tokenizer = AutoTokenizer.from_pretrained(str(wordpiece_tokenizer))
    meta = {"labels": ["O", C, S], "scheme": "io", "max_length": 16, "stride": 4, "base_model": "tiny"}
    # Two seeds lean a little to ClinicalImpacts, one is sure of O: the vote says C, the mean says O.
    seeds = [[0.45, 0.549, 0.001], [0.45, 0.549, 0.001], [0.979, 0.02, 0.001]]
    posts = [["I", "overdosed", "last", "night"], _long_post(40)]

    def tag(vote: str, o_bias: float = 0.0, **other) -> list[list[str]]:
        members = [(_SameScores(p), tokenizer, dict(meta, vote=vote, o_bias=o_bias)) for p in seeds]
        members[-1][2].update(other)
        return SpanTagger(members).tag(posts)

    inside = [[f"B-{C}"] + [f"I-{C}"] * (len(p) - 1) for p in posts]
    outside = [["O"] * len(p) for p in posts]
    assert tag("hard") == inside
    assert tag("soft") == outside
    # o_bias acts on the mean: log 0.626 - 0.3 still beats log 0.373, log 0.626 - 0.6 does not.
    assert tag("soft", o_bias=0.3) == outside
    assert tag("soft", o_bias=0.6) == inside
    # Members that read other windows average their word probabilities instead (o_bias still applies);
    # members that decode with a CRF cannot average: they vote on tags.
    assert tag("soft", max_length=32) == outside
    assert tag("soft", max_length=32, o_bias=0.6) == inside
    assert tag("soft", crf=True) == inside


@pytest.mark.slow
@pytest.mark.parametrize("crf", [False, True])
def test_every_trainable_parameter_gets_a_gradient(tiny_bert, crf):
    from transformers import AutoTokenizer

    from medsift.impacts.bio import label_list
    from medsift.impacts.model import build_model
    from medsift.impacts.train import encode_examples

    torch.manual_seed(0)
    labels = label_list([C, S], "bio")
    tok = AutoTokenizer.from_pretrained(str(tiny_bert))
    model = build_model(str(tiny_bert), labels, crf)
    model.train()
    examples = encode_examples(tok, [p[0] for p in POSTS], [p[1] for p in POSTS], "bio", labels, 16, 4)
    from transformers import DataCollatorForTokenClassification

    batch = DataCollatorForTokenClassification(tok)(examples)
    loss = model(**batch).loss
    loss.backward()
    missing = [
        n
        for n, p in model.named_parameters()
        if p.requires_grad and (p.grad is None or not p.grad.abs().sum() > 0)
    ]
    assert missing == []


def test_crf_packing_moves_valid_positions_first():
    from medsift.impacts.model import pack_valid

    emissions = torch.arange(2 * 4 * 1, dtype=torch.float).reshape(2, 4, 1)
    valid = torch.tensor([[False, True, False, True], [False, False, False, False]])
    labels = torch.tensor([[-100, 2, -100, 1], [-100, -100, -100, -100]])
    packed, tags, mask = pack_valid(emissions, valid, labels)
    assert packed[0, :2, 0].tolist() == [1.0, 3.0]
    assert tags[0, :2].tolist() == [2, 1] and mask[0].tolist() == [True, True, False, False]
    assert mask[1].tolist() == [True, False, False, False]  # an empty row still starts with one step


@pytest.mark.slow
def test_a_non_main_process_writes_nothing_of_its_own(tiny_bert, tmp_path, monkeypatch):
    """Under accelerate/torchrun only rank 0 writes medsift's files; the others only meet it at barriers."""
    import medsift.impacts.train as impacts_train

    barriers = []
    import medsift.trainer
    import medsift.training

    monkeypatch.setattr(impacts_train, "is_main_process", lambda: False)
    for module in (medsift.trainer, medsift.training):  # the trainer skeleton and its seed-finishing helper
        monkeypatch.setattr(module, "is_main_process", lambda: False)
        monkeypatch.setattr(module, "wait_for_everyone", lambda: barriers.append(1))
    torch.set_num_threads(1)
    train_csv = _write_csv(tmp_path / "train.csv", POSTS * 3)
    config = _config(tiny_bert, train_csv, "bio", False, tmp_path / "run", epochs=1)
    run = impacts_train.train(config, quiet=True)
    written = {p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file()}
    assert written and all(p.startswith("seed-7/checkpoints/") for p in written)  # the Trainer's own only
    assert (run / "seed-7" / "checkpoints").is_dir()  # removing checkpoints is the main process's job too
    assert len(barriers) == 3  # after the config, after the seed, at the end


@pytest.mark.slow
def test_cli_tag_prints_spans(tiny_bert, tmp_path, capsys):
    from transformers import AutoTokenizer

    from medsift.cli import main
    from medsift.impacts.bio import label_list
    from medsift.impacts.model import build_model, save_tagger

    labels = label_list([C, S], "io")
    torch.manual_seed(0)
    model = build_model(str(tiny_bert), labels, False)
    with torch.no_grad():  # a head that calls every subword SocialImpacts
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor([0.0, 0.0, 5.0]))
    meta = {
        "labels": labels,
        "scheme": "io",
        "max_length": 16,
        "stride": 4,
        "word_strategy": "first",
        "crf": False,
    }
    save_tagger(model, AutoTokenizer.from_pretrained(str(tiny_bert)), tmp_path / "m", meta)
    main(["tag", str(tmp_path / "m"), "lost my job", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert out == {"post": 1, "spans": [{"label": S, "start_char": 0, "end_char": 11, "text": "lost my job"}]}
    with pytest.raises(SystemExit):
        main(["tag", str(tmp_path / "m")])
    assert "nothing to tag" in capsys.readouterr().err


def test_validation_examples_and_metrics_do_not_depend_on_order(tiny_bert):
    import numpy as np
    from transformers import AutoTokenizer

    from medsift.impacts.bio import IGNORE, label_list
    from medsift.impacts.train import encode_examples, window_metrics

    labels = label_list([C, S], "bio")
    tok = AutoTokenizer.from_pretrained(str(tiny_bert))
    posts, tags = [p[0] for p in POSTS], [p[1] for p in POSTS]
    dev = encode_examples(tok, posts, tags, "bio", labels, 16, 4, first_only=True)
    train = encode_examples(tok, posts, tags, "bio", labels, 16, 4)
    for d, t in zip(dev, train, strict=True):
        assert d["input_ids"] == t["input_ids"]
        kept = [x for x in d["labels"] if x != IGNORE]
        assert len(kept) <= len([x for x in t["labels"] if x != IGNORE])
    width = max(len(e["labels"]) for e in dev)
    gold = np.array([e["labels"] + [IGNORE] * (width - len(e["labels"])) for e in dev])
    pred = np.where(gold == IGNORE, IGNORE, 0)  # all O
    pred[0] = np.where(gold[0] == IGNORE, IGNORE, gold[0])  # the first window exactly right
    first = window_metrics(pred, gold, labels, "bio")
    order = np.arange(len(dev))[::-1]
    assert window_metrics(pred[order], gold[order], labels, "bio") == first
    assert 0.0 < first["strict_f1"] < 1.0
    assert window_metrics(gold.copy(), gold, labels, "bio") == {"strict_f1": 1.0, "relaxed_f1": 1.0}


def test_members_with_other_tokenizers_average_word_probabilities(wordpiece_tokenizer, unigram_tokenizer):
    from transformers import AutoTokenizer

    from medsift.impacts.predict import SpanTagger

    meta = {"labels": ["O", C, S], "scheme": "io", "max_length": 16, "stride": 4, "vote": "soft"}
    wordpiece = AutoTokenizer.from_pretrained(str(wordpiece_tokenizer))
    unigram = AutoTokenizer.from_pretrained(str(unigram_tokenizer))
    posts = [["I", "overdosed", "last", "night"], _long_post(40), [""]]
    # Two WordPiece seeds lean to Clinical, one Unigram model is sure of Social: the word mean
    # (2 x [0.3, 0.6, 0.1] + [0.1, 0.1, 0.8]) / 3 = [0.23, 0.43, 0.33] says Clinical; the tag vote agrees.
    members = [
        (_SameScores([0.3, 0.6, 0.1]), wordpiece, dict(meta, base_model="a")),
        (_SameScores([0.3, 0.6, 0.1]), wordpiece, dict(meta, base_model="a")),
        (_SameScores([0.1, 0.1, 0.8]), unigram, dict(meta, base_model="b")),
    ]
    tagger = SpanTagger(members)
    assert tagger.soft_vote and len(tagger._groups()) == 2
    tags = tagger.tag(posts)
    assert [len(t) for t in tags] == [len(p) for p in posts]
    assert tags[0] == [f"B-{C}"] + [f"I-{C}"] * 3
    # type_bias acts on the mean: Social 0.33 * e^0.3 = 0.45 > 0.43
    members[0][2]["type_bias"] = {S: 0.3}
    assert tagger.tag(posts)[0] == [f"B-{S}"] + [f"I-{S}"] * 3
    # with vote: hard the members vote on their tags (Clinical twice, Social once)
    members[0][2].update(type_bias={}, vote="hard")
    assert tagger.tag(posts)[0] == [f"B-{C}"] + [f"I-{C}"] * 3
