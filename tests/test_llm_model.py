"""LLM path on tiny random causal LMs: first-token confidence, LoRA, constrained decoding, train/predict."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medsift.config import parse_config
from medsift.errors import MedsiftError
from medsift.llm import prompts
from medsift.llm.config import ImpactsLlmConfig
from medsift.llm.constrained import Grammar, SpanGrammarProcessor, end_token_ids
from medsift.llm.data import IGNORE, AnswerOnlyCollator, encode_example
from medsift.llm.parse import parse_spans
from medsift.llm.scoring import answer_token_ids, first_token_probabilities, left_padded
from medsift.llm.spans import vocab_trie

LABELS = ["B-ClinicalImpacts", "I-ClinicalImpacts", "B-SocialImpacts", "I-SocialImpacts"]
POSTS = [
    "I took ibuprofen and got a terrible headache.",
    "No side effects so far.",
    "Лекарство вызывает тошноту 🤢",
]


def _load(path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    return AutoModelForCausalLM.from_pretrained(str(path)).eval(), AutoTokenizer.from_pretrained(str(path))


@pytest.fixture(scope="module", params=["tiny_qwen3", "tiny_llama"])
def lm(request):
    return _load(request.getfixturevalue(request.param))


def _ade_prompts(tokenizer):
    template = prompts.resolve_template(tokenizer, "model")
    return [prompts.render(tokenizer, prompts.ade_messages(t), template)[0] for t in POSTS]


def test_first_token_probability_equals_generate_scores(lm):
    model, tokenizer = lm
    texts = _ade_prompts(tokenizer)
    ours = first_token_probabilities(model, tokenizer, texts, batch_size=2)
    zero, one = answer_token_ids(tokenizer, texts[0])
    for text, p in zip(texts, ours, strict=True):
        batch = left_padded(tokenizer, [text], "cpu")
        out = model.generate(
            **batch, max_new_tokens=1, do_sample=False, output_scores=True, return_dict_in_generate=True
        )
        expected = torch.softmax(out.scores[0][0, [zero, one]], dim=-1)[1].item()
        assert p == pytest.approx(expected, abs=1e-5)
    # batched with padding gives the same numbers as one by one
    assert first_token_probabilities(model, tokenizer, texts, batch_size=1) == pytest.approx(ours, abs=1e-5)


class _SplitDigits:
    """A fake tokenizer that encodes "0" and "1" as two tokens each."""

    def __call__(self, text, add_special_tokens=False):
        ids = []
        for ch in text:
            ids.extend([7, 8] if ch in "01" else [ord(ch)])
        return {"input_ids": ids}


def test_multi_token_answers_are_refused():
    with pytest.raises(MedsiftError, match="one token"):
        answer_token_ids(_SplitDigits(), "Answer: ")


def test_labels_mask_everything_but_the_answer(tiny_qwen3):
    _, tokenizer = _load(tiny_qwen3)
    template = prompts.resolve_template(tokenizer, "chatml")
    prompt, answer = prompts.render(tokenizer, prompts.ade_messages(POSTS[0]), template, answer="1")
    assert answer.startswith("1<|im_end|>")
    example = encode_example(tokenizer, prompt, answer, 512)
    n_prompt = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    assert example["labels"][:n_prompt] == [IGNORE] * n_prompt
    assert example["labels"][n_prompt:] == example["input_ids"][n_prompt:]
    assert tokenizer.decode(example["input_ids"][n_prompt]) == "1"
    short = encode_example(tokenizer, "ab", "0", 512)
    batch = AnswerOnlyCollator(tokenizer.pad_token_id)([example, short])
    n = len(short["input_ids"])
    assert batch["labels"][1, n - 1 :].tolist() == [short["labels"][-1]] + [IGNORE] * (
        batch["labels"].shape[1] - n
    )
    assert (
        batch["attention_mask"][1].sum() == n and batch["input_ids"][1, n:].eq(tokenizer.pad_token_id).all()
    )


def test_lora_trains_only_adapter_and_lowers_loss(tiny_qwen3):
    from medsift.llm.config import LoraSection
    from medsift.llm.data import ade_examples
    from medsift.llm.modeling import add_lora

    model, tokenizer = _load(tiny_qwen3)
    model = add_lora(model.train(), LoraSection(dropout=0.0), quantised=False)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    template = prompts.resolve_template(tokenizer, "model")
    examples, cut = ade_examples(tokenizer, template, POSTS, [1, 0, 1], ImpactsLlmConfig().prompt, 256)
    assert cut == 0
    batch = AnswerOnlyCollator(tokenizer.pad_token_id)(examples)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    losses = []
    for _ in range(8):
        loss = model(**batch).loss
        loss.backward()
        assert all(p.grad is None for n, p in model.named_parameters() if "lora_" not in n)
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_long_training_posts_are_chunked_like_prediction_not_cut(tiny_qwen3):
    """A post whose prompt overflows ``max_length`` is split into the chunks prediction would use."""
    from medsift.llm.chunks import plan_chunks
    from medsift.llm.config import DecodingSection, PromptSection
    from medsift.llm.data import span_examples, span_fits, span_prompt

    _, tokenizer = _load(tiny_qwen3)
    template = prompts.resolve_template(tokenizer, "model")
    tokens = ["withdrawal", "overdosed", "hospital", "job", "family"] * 8
    tags = ["B-ClinicalImpacts", "I-ClinicalImpacts", "O", "B-SocialImpacts", "O"] * 8
    cfg, decoding, max_length = PromptSection(labels=LABELS), DecodingSection(max_new_tokens=100), 500
    whole = span_prompt(tokenizer, template, tokens, cfg)
    answer = prompts.render(
        tokenizer, prompts.span_messages(tokens, LABELS), template, answer=prompts.span_answer(tokens, tags)
    )[1]
    assert encode_example(tokenizer, whole, answer, max_length).get("cut")  # one chunk would be cut
    examples, cut = span_examples(tokenizer, template, [tokens], [tags], cfg, max_length, decoding)
    assert cut == 0 and all(len(e["input_ids"]) <= max_length for e in examples)
    predicted = plan_chunks(
        tokens, decoding.chunk_tokens, span_fits(tokenizer, template, cfg, max_length, 100)
    )
    assert len(examples) == len(predicted) > 1  # the same chunks as at prediction time
    for example, (start, end) in zip(examples, predicted, strict=True):
        prompt = span_prompt(tokenizer, template, tokens[start:end], cfg)
        n = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
        assert example["input_ids"][:n] == tokenizer(prompt, add_special_tokens=False)["input_ids"]
    with pytest.raises(MedsiftError, match="max_length 300 is too small for the span prompt"):
        span_examples(tokenizer, template, [tokens], [tags], cfg, 300, decoding)  # no chunk could fit


_WORDS = st.sampled_from(
    ["I", "took", "pills", ":", "0", "overdosed", "job", "🤢", "Übelkeit", "héroïne", "x", "  "]
)


@pytest.fixture(scope="session")
def tiny_llama_sp(tiny_root):
    """Llama with a SentencePiece-style vocabulary (``▁`` spaces, ``<0xNN>`` byte fallback)."""
    import tiny

    return tiny.tiny_causal_lm_dir("llama", root=tiny_root, tokenizer="sentencepiece")


@pytest.mark.slow
@pytest.mark.parametrize("lm_name", ["tiny_qwen3", "tiny_llama", "tiny_llama_sp"])
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tokens=st.lists(_WORDS, min_size=1, max_size=12), seed=st.integers(0, 10_000), tight=st.booleans())
def test_constrained_sampling_always_parses_cleanly(request, lm_name, tokens, seed, tight):
    model, tokenizer = _cached_model(request.getfixturevalue(lm_name))
    template = prompts.resolve_template(tokenizer, "model")
    prompt = prompts.render(tokenizer, prompts.span_messages(tokens, LABELS), template)[0]
    grammar = Grammar.build(tokens, LABELS)
    batch = left_padded(tokenizer, [prompt], "cpu")
    ends = end_token_ids(tokenizer, model)
    # every generated token carries at least one byte, so this bound always lets the answer finish;
    # a tight budget must make the processor stop early at a line boundary instead of mid-line
    lines = [f"{i} : {prompts.display_token(t)} : I-ClinicalImpacts\n" for i, t in enumerate(tokens)]
    bound = sum(len(line.encode()) for line in lines) + 8
    if tight:
        bound = grammar.max_line_bytes() + 2 + seed % 30
    processor = SpanGrammarProcessor(
        vocab_trie(tokenizer), [grammar], ends, batch["input_ids"].shape[1], max_new_tokens=bound
    )
    torch.manual_seed(seed)
    out = model.generate(
        **batch,
        max_new_tokens=bound,
        do_sample=True,
        logits_processor=[processor],
        eos_token_id=ends,
        pad_token_id=tokenizer.pad_token_id,
    )
    new = out[0, batch["input_ids"].shape[1] :].tolist()
    assert any(t in ends for t in new), "generation must end by itself"
    text = tokenizer.decode(
        new[: next(i for i, t in enumerate(new) if t in ends)],
        skip_special_tokens=True,
        clean_up_tokenization_spaces=False,
    )
    tags, report = parse_spans(text, tokens, LABELS)
    assert not report.counts, (text, report.counts)
    if text != "None":
        indices = [int(line.split(" : ")[0]) for line in text.splitlines()]
        assert indices == sorted(set(indices)) and all(0 <= i < len(tokens) for i in indices)
        assert len(tags) == len(tokens)


_MODELS: dict = {}


def _cached_model(path):
    if path not in _MODELS:
        _MODELS[path] = _load(path)
    return _MODELS[path]


def _write_ade(path):
    rows = [(f"en_{i}", POSTS[i % 2] + f" {i}", float(i % 2 == 0), "en") for i in range(16)]
    pd.DataFrame(rows, columns=["id", "text", "label", "language"]).assign(
        origin="", type="tweet", split="train"
    ).to_csv(path, index=False)


def _write_impacts(path):
    tokens = ["I", "overdosed", "and", "lost", "my", "job", "."]
    tags = ["O", "B-ClinicalImpacts", "O", "B-SocialImpacts", "I-SocialImpacts", "I-SocialImpacts", "O"]
    rows = [(str(tokens), str(["_"] * 7), f"Train_{i}", str(tags if i % 2 else ["O"] * 7)) for i in range(6)]
    pd.DataFrame(rows, columns=["tokens", "labels", "ID", "ner_tags"]).to_csv(path, index=False)


@pytest.mark.slow
@pytest.mark.parametrize("task", ["ade", "impacts"])
def test_train_and_predict_end_to_end(tiny_qwen3, tmp_path, task):
    from medsift.llm.predict import predict_file
    from medsift.llm.train import train
    from medsift.runs import RunManifest

    data = tmp_path / "train.csv"
    (_write_ade if task == "ade" else _write_impacts)(data)
    config = parse_config(
        {
            "task": task,
            "method": "llm",
            # the span prompt alone is ~350 tokens with the tiny 700-token vocabulary
            "model": {"name": str(tiny_qwen3), "max_length": 256 if task == "ade" else 512},
            "data": {"train": [str(data)], "val_fraction": 0.25},
            "training": {
                "max_steps": 2,
                "per_device_train_batch_size": 2,
                "logging_steps": 1,
                "eval_strategy": "steps",
                "eval_steps": 1,
            },
            "decoding": {"max_new_tokens": 40, "chunk_tokens": 4},
            "seeds": [1, 2] if task == "ade" else [1],
        }
    )
    run = train(config, run_dir=tmp_path / "run", quiet=True)
    assert RunManifest.load(run).kind == f"{task}-llm"
    assert (run / "seed-1" / "adapter" / "adapter_model.safetensors").exists()
    assert json.loads((run / "seed-1" / "metrics.json").read_text())["truncated_examples"] == {
        "train": 0,
        "val": 0,
    }
    out = tmp_path / "pred.csv"
    if task == "ade":
        probs = tmp_path / "p.csv"
        summary = predict_file(run, data, out, probabilities=probs, batch_size=3, quiet=True)
        assert {"p_ade", "p_ade__seed1", "p_ade__seed2", "label"} <= set(pd.read_csv(probs).columns)
        assert "f1" in summary["scores"]
        # the encoder runs' files: val and calib, per seed and for the run, and where every row went
        splits = pd.read_csv(run / "splits.csv")
        for name in ("val", "calib"):
            frame = pd.read_csv(run / f"{name}_probabilities.csv")
            assert list(frame.columns) == [
                "id",
                "language",
                "p_ade",
                "label",
                "uid",
                "p_ade__seed1",
                "p_ade__seed2",
            ]
            assert sorted(frame["id"]) == sorted(splits.loc[splits["split"] == name, "id"])
            assert (run / "seed-2" / f"{name}_probabilities.csv").exists()
        assert set(splits["split"]) == {"train", "val", "calib"} and len(splits) == 16
        before = pd.read_csv(run / "val_probabilities.csv")
        train(config, run_dir=run, quiet=True)  # finished seeds are kept, not retrained
        assert pd.read_csv(run / "val_probabilities.csv").equals(before)
        with pytest.raises(MedsiftError, match="--decoding applies to impact"):
            predict_file(run, data, out, decoding="free", quiet=True)
    else:
        summary = predict_file(
            run, data, out, spans_json=tmp_path / "s.json", decoding="constrained", quiet=True
        )
        assert summary["repairs"]["outputs_repaired"] == 0 and "strict" in summary["scores"]
        assert summary["constrained"] is True
        free = predict_file(run, data, out, decoding="free", quiet=True)
        assert free["constrained"] is False
        assert free["repairs"]["outputs"] == summary["repairs"]["outputs"]
        with pytest.raises(MedsiftError, match="unknown decoding"):
            predict_file(run, data, out, decoding="greedy", quiet=True)
    assert len(pd.read_csv(out)) == len(pd.read_csv(data))


@pytest.mark.slow
def test_predict_command_decoding_switch_prints_the_repair_report(tiny_qwen3, tmp_path, capsys):
    """``medsift predict RUN --decoding free`` overrides the run's constrained decoding, no retraining."""
    from medsift.cli import main
    from medsift.llm import zero_shot_run

    data = tmp_path / "posts.csv"
    _write_impacts(data)
    run = zero_shot_run(
        str(tiny_qwen3), "impacts", tmp_path / "run", decoding={"max_new_tokens": 24, "chunk_tokens": 4}
    )
    sub = tmp_path / "sub.csv"
    outputs = {}
    for mode in ("free", "constrained"):
        main(["predict", str(run), str(data), "-o", str(sub), "--decoding", mode, "--batch-size", "3"])
        err = capsys.readouterr().err
        line = next(x for x in err.splitlines() if "outputs needed repair" in x)
        assert line.startswith(f"{mode} decoding: ")
        outputs[mode] = line
    # 6 posts of 7 tokens in chunks of 4: 12 outputs; constrained ones never need repair
    assert outputs["constrained"] == "constrained decoding: 0 of 12 outputs needed repair (0%); repairs: none"
    assert " of 12 outputs" in outputs["free"]
    assert len(pd.read_csv(sub)) == 6


def _adapter_config(tiny_qwen3, data):
    return parse_config(
        {
            "task": "ade",
            "method": "llm",
            "model": {"name": str(tiny_qwen3), "max_length": 128},
            "data": {"train": [str(data)], "val_fraction": 0.25, "calib_fraction": 0.0},
            "training": {"max_steps": 1, "per_device_train_batch_size": 2},
            "seeds": [1],
        }
    )


def _adapter_run(tiny_qwen3, tmp_path):
    """A trained one-step ADE run (for the adapter-loading checks)."""
    from medsift.llm.train import train

    data = tmp_path / "train.csv"
    _write_ade(data)
    return train(_adapter_config(tiny_qwen3, data), run_dir=tmp_path / "run", quiet=True), data


@pytest.mark.slow
def test_a_non_main_process_writes_nothing_of_its_own(tiny_qwen3, tmp_path, monkeypatch):
    """Under accelerate/torchrun only rank 0 writes medsift's files (the adapter too); the others train, wait
    for it at barriers and score with rank 0's adapter. Here the fake barrier plays rank 0's part: after
    training it puts the adapter of an earlier run where rank 0 would have saved it."""
    import shutil

    import medsift.llm.train as llm_train

    main_run, data = _adapter_run(tiny_qwen3, tmp_path)
    run = tmp_path / "other"
    barriers = []

    def barrier():
        barriers.append(sorted(p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file()))
        adapter = run / "seed-1" / "adapter"
        if (run / "seed-1" / "checkpoints").is_dir() and not adapter.exists():
            shutil.copytree(main_run / "seed-1" / "adapter", adapter)

    import medsift.trainer
    import medsift.training

    # the trainer, the skeleton around it and the shared seed-finishing helper
    for module in (llm_train, medsift.trainer, medsift.training):
        monkeypatch.setattr(module, "is_main_process", lambda: False, raising=False)
        monkeypatch.setattr(module, "wait_for_everyone", barrier, raising=False)
    assert llm_train.train(_adapter_config(tiny_qwen3, data), run_dir=run, quiet=True) == run
    # after the run's start, after training (the adapter), after the seed, at the end
    assert len(barriers) == 4
    assert barriers[0] == [] and not [p for p in barriers[1] if not p.startswith("seed-1/checkpoints/")]
    written = {p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file()}
    ours = {p for p in written if not p.startswith(("seed-1/checkpoints/", "seed-1/adapter/"))}
    assert not ours  # no config, splits, probabilities, metrics, DONE or manifest
    assert (run / "seed-1" / "checkpoints").is_dir()  # removing checkpoints is rank 0's job too


@pytest.mark.slow
def test_a_pickled_adapter_is_refused(tiny_qwen3, tmp_path):
    from safetensors.torch import load_file

    from medsift.llm.predict import predict_file

    run, data = _adapter_run(tiny_qwen3, tmp_path)
    adapter = run / "seed-1" / "adapter"
    weights = load_file(str(adapter / "adapter_model.safetensors"))
    (adapter / "adapter_model.safetensors").unlink()
    torch.save(weights, adapter / "adapter_model.bin")  # what older peft versions wrote
    with pytest.raises(MedsiftError, match=r"refusing the pickled adapter_model\.bin") as err:
        predict_file(run, data, tmp_path / "sub.csv", quiet=True)
    assert str(adapter) in str(err.value)
    assert not (tmp_path / "sub.csv").exists()
    (adapter / "adapter_model.bin").unlink()
    with pytest.raises(MedsiftError, match=r"no adapter_model\.safetensors"):
        predict_file(run, data, tmp_path / "sub.csv", quiet=True)


@pytest.mark.slow
def test_zero_shot_run_predicts_unlabelled_files(tiny_llama, tmp_path):
    from medsift.llm import zero_shot_run
    from medsift.llm.predict import predict_file

    ade = tmp_path / "ade.csv"
    pd.DataFrame({"id": ["a", "b"], "text": POSTS[:2], "language": ["en", "fa"]}).to_csv(ade, index=False)
    run = zero_shot_run(str(tiny_llama), "ade", tmp_path / "ade-run", model_options={"max_length": 128})
    summary = predict_file(run, ade, tmp_path / "sub.csv", probabilities=tmp_path / "p.csv", quiet=True)
    assert "scores" not in summary
    assert list(pd.read_csv(tmp_path / "sub.csv").columns) == ["id", "predicted_label"]
    assert pd.read_csv(tmp_path / "p.csv")["p_ade"].between(0, 1).all()

    spans = tmp_path / "spans.csv"
    pd.DataFrame({"ID": ["t1"], "tokens": [str(["I", "overdosed", "."] * 5)]}).to_csv(spans, index=False)
    run = zero_shot_run(
        str(tiny_llama), "impacts", tmp_path / "imp-run", decoding={"chunk_tokens": 4, "max_new_tokens": 20}
    )
    summary = predict_file(run, spans, tmp_path / "tags.csv", spans_json=tmp_path / "s.json", quiet=True)
    assert summary["repairs"]["outputs"] == 4 and summary["repairs"]["outputs_repaired"] == 0
    assert len(eval_tags(pd.read_csv(tmp_path / "tags.csv")["predicted_ner_tags"][0])) == 15


def eval_tags(cell: str) -> list[str]:
    import ast

    return ast.literal_eval(cell)
