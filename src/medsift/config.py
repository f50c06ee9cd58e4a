"""Validated YAML configs with dotted ``--set key=value`` overrides.

Each (task, method) pair registers its own pydantic schema; every schema rejects unknown keys, so a
typo such as ``warmup_step`` fails at load time instead of being silently ignored. Field names reuse
``transformers.TrainingArguments`` names wherever they mean the same thing.

A config may be a path to a YAML file or the name of a shipped config (``medsift configs`` lists them).
Relative data paths are resolved against the current working directory; ``sample:NAME`` points to a
file of the bundled sample (``src/medsift/data``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from medsift.errors import ConfigError

SHIPPED_PACKAGE = "medsift.configs"


class StrictModel(BaseModel):
    """Base for every config section: unknown keys are an error."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class TrainingSection(StrictModel):
    """Optimisation settings, passed through to ``transformers.TrainingArguments`` under the same names."""

    # Value ranges are checked here, before a run folder is made: torch would only refuse them (or, for a
    # negative epoch count, silently train nothing) after the run had started.
    learning_rate: float = Field(2e-5, gt=0)
    per_device_train_batch_size: int = Field(16, ge=1)
    per_device_eval_batch_size: int = Field(32, ge=1)
    gradient_accumulation_steps: int = Field(1, ge=1)
    num_train_epochs: float = Field(
        3.0, ge=0, description="0 (with max_steps <= 0) only for a zero-shot LLM run: no training at all."
    )
    max_steps: int = Field(-1, ge=-1, description="-1: train num_train_epochs; N > 0: stop after N steps.")
    lr_scheduler_type: str = "linear"
    warmup_steps: float = Field(
        0.0, ge=0, description="An int is a step count; a float in [0, 1) a ratio of all steps."
    )
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float = Field(1.0, ge=0)
    label_smoothing_factor: float = Field(0.0, ge=0, lt=1)
    fp16: bool = False
    bf16: bool | Literal["auto"] = Field(
        False,
        description="bf16 mixed precision; auto = on where the hardware computes bf16 natively (a CUDA GPU that "
        "supports it, or a CPU with AVX512-BF16/AMX), off elsewhere (emulated bf16 is slower than fp32).",
    )
    eval_strategy: Literal["epoch", "steps"] = Field(
        "epoch", description="When to evaluate on the validation rows (and save a checkpoint)."
    )
    eval_steps: int | None = Field(
        None, ge=1, description="Optimizer steps between evaluations; required with eval_strategy: steps."
    )
    save_total_limit: int | None = Field(2, ge=1)
    logging_steps: int = Field(10, ge=1)
    report_to: list[str] = Field(default_factory=list)
    train_sampling_strategy: Literal["random", "sequential", "group_by_length"] = "group_by_length"
    dataloader_num_workers: int = Field(0, ge=0)
    gradient_checkpointing: bool = False
    use_cpu: bool = False
    extra: dict[str, Any] = Field(
        default_factory=dict,
        description="Any other TrainingArguments field, passed through unchanged (e.g. deepspeed, fsdp, optim).",
    )

    @model_validator(mode="after")
    def _eval_steps_with_steps(self) -> TrainingSection:
        if self.eval_strategy == "steps" and self.eval_steps is None:
            raise ValueError(
                "eval_strategy: steps needs eval_steps (optimizer steps between evaluations), "
                "e.g. --set training.eval_steps=500"
            )
        return self

    def to_training_arguments(
        self, output_dir: str | Path, *, seed: int, metric_for_best_model: str, **more: Any
    ):
        """Build ``TrainingArguments``; evaluation and saving share one strategy so the best checkpoint is kept."""
        from transformers import TrainingArguments

        from medsift.training import resolve_bf16

        kwargs = self.model_dump(exclude={"extra"})
        kwargs["bf16"] = resolve_bf16(kwargs["bf16"])
        if not kwargs.pop("gradient_checkpointing"):
            pass  # only passed when asked for: transformers 5 renames it and warns on every use
        else:
            kwargs["gradient_checkpointing"] = True
        if kwargs["warmup_steps"] >= 1:
            kwargs["warmup_steps"] = int(kwargs["warmup_steps"])
        kwargs["save_strategy"] = kwargs["eval_strategy"]
        if kwargs["eval_strategy"] == "steps":
            kwargs["save_steps"] = kwargs["eval_steps"]
        kwargs.update(
            output_dir=str(output_dir),
            seed=seed,
            data_seed=seed,
            load_best_model_at_end=True,
            metric_for_best_model=metric_for_best_model,
            greater_is_better=True,
            disable_tqdm=more.pop("disable_tqdm", False),
        )
        import torch

        if not torch.cuda.is_available():
            kwargs["dataloader_pin_memory"] = False  # pinning needs an accelerator; it only warns without one
        kwargs.update(more)
        kwargs.update(self.extra)
        if not kwargs["report_to"]:
            kwargs["report_to"] = "none"
        try:
            return TrainingArguments(**kwargs)
        except (TypeError, ValueError) as exc:  # an invalid combination the library itself rejects
            raise ConfigError(f"training: {exc}") from exc


# --- registry of schemas -------------------------------------------------------------------------

_SCHEMAS: dict[tuple[str, str], type[StrictModel]] = {}


def register_schema(task: str, method: str) -> Callable[[type[StrictModel]], type[StrictModel]]:
    """Class decorator: the schema for configs with ``task: TASK`` and ``method: METHOD``."""

    def deco(cls: type[StrictModel]) -> type[StrictModel]:
        _SCHEMAS[(task, method)] = cls
        return cls

    return deco


def _load_schema_modules() -> None:
    # Importing the task packages registers their schemas; kept lazy so `medsift --help` stays fast.
    import importlib

    for module in (
        "medsift.ade.config",
        "medsift.ade.ngram",
        "medsift.ade.zeroshot.config",
        "medsift.ensemble.recipe",
        "medsift.impacts.config",
        "medsift.llm.config",
    ):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


# --- loading --------------------------------------------------------------------------------------


def shipped_configs() -> dict[str, Path]:
    """Names and paths of the configs shipped with medsift (``src/medsift/configs/*.yaml``)."""
    root = resources.files(SHIPPED_PACKAGE)
    return {p.name.removesuffix(".yaml"): Path(str(p)) for p in root.iterdir() if p.name.endswith(".yaml")}


def describe_shipped_configs() -> list[tuple[str, str, str, str]]:
    """``(name, task, method, model)`` of every shipped config, by name; an ensemble config names its members'
    models joined by ``+``."""
    out = []
    for name, path in sorted(shipped_configs().items()):
        raw = read_yaml(path)
        model = (raw.get("model") or {}).get("name")
        if raw.get("method") == "ensemble":  # a config that trains several members
            model = "+".join(
                (m.get("model") or {}).get("name", m.get("method", "?"))
                for m in raw.get("members", {}).values()
            )
        out.append((name, str(raw.get("task")), str(raw.get("method", "encoder")), str(model)))
    return out


def locate_config(name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    if path.exists():
        return path
    shipped = shipped_configs()
    key = str(name_or_path).removesuffix(".yaml")
    if key in shipped:
        return shipped[key]
    raise ConfigError(
        f"no config file '{name_or_path}' and no shipped config of that name (shipped: {', '.join(sorted(shipped))})"
    )


def parse_override(item: str) -> tuple[list[str], Any]:
    """``a.b.c=value`` → (["a","b","c"], value parsed as YAML, so numbers, booleans and lists work)."""
    if "=" not in item:
        raise ConfigError(f"--set expects key=value, got '{item}'")
    key, raw = item.split("=", 1)
    keys = [k for k in key.strip().split(".") if k]
    if not keys:
        raise ConfigError(f"--set has an empty key in '{item}'")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {key}: cannot parse value '{raw}': {exc}") from exc
    return keys, value


def apply_overrides(raw: dict[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    data = copy.deepcopy(raw)
    for item in overrides:
        keys, value = parse_override(item)
        node = data
        for k in keys[:-1]:
            if not isinstance(node.get(k), dict):
                node[k] = {} if node.get(k) is None else node[k]
                if not isinstance(node[k], dict):
                    raise ConfigError(f"--set {item}: '{k}' is not a section")
            node = node[k]
        node[keys[-1]] = value
    return data


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"not valid YAML: {' '.join(str(exc).split())}", file=path) from None
    except IsADirectoryError:
        raise ConfigError("is a folder; expected a YAML config file", file=path) from None
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", file=path) from None
    except RecursionError:
        raise ConfigError("YAML nested too deeply to read", file=path) from None
    if not isinstance(data, dict):
        raise ConfigError("a config must be a YAML mapping", file=path)
    return data


def _format_validation_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"])
        msg = "unknown key (not in the schema)" if err["type"] == "extra_forbidden" else err["msg"]
        msg = msg.removeprefix("Value error, ")  # a validator's own message needs no pydantic prefix
        parts.append(f"{loc}: {msg}")
    return "; ".join(parts)


def parse_config(raw: dict[str, Any], *, source: str | Path | None = None) -> StrictModel:
    """Validate a raw mapping against the schema its ``task``/``method`` select."""
    _load_schema_modules()
    task = raw.get("task")
    method = raw.get("method", "encoder")
    schema = _SCHEMAS.get((task, method))
    if schema is None:
        known = ", ".join(f"task={t} method={m}" for t, m in sorted(_SCHEMAS))
        raise ConfigError(f"unknown task/method '{task}'/'{method}' (known: {known})", file=source)
    try:
        return schema.model_validate({**raw, "method": method})
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc), file=source) from exc


def load_config(name_or_path: str | Path, overrides: Iterable[str] = ()) -> StrictModel:
    """Load, override and validate a config file or a shipped config name."""
    path = locate_config(name_or_path)
    raw = apply_overrides(read_yaml(path), overrides)
    return parse_config(raw, source=path)


def check_data_files(config: Any, name_or_path: str | Path) -> None:
    """Refuse, before a run folder is made, a config whose training or dev file is not there.

    The papers' shipped configs name ``../shared/data/...`` relative to the repository's parent; run from
    elsewhere, the message says which file is missing and how to point the config at a copy.
    """
    data = getattr(config, "data", None)
    named = [("data.train", f) for f in (getattr(data, "train", None) or [])]
    if getattr(data, "dev", None):
        named.append(("data.dev", data.dev))
    for key, value in named:
        path = resolve_data_path(value)
        if path.exists():
            continue
        shipped = (
            not Path(str(name_or_path)).exists()
            and str(name_or_path).removesuffix(".yaml") in shipped_configs()
        )
        hint = (
            f"the shipped config '{name_or_path}' names it relative to the folder you run from; give your copy "
            f"with --set '{key}=" + ("[PATH, ...]'" if key == "data.train" else "PATH'")
            if shipped
            else f"relative paths are read from the folder you run from ({Path.cwd()}); fix {key} or use --set"
        )
        raise ConfigError(f"{key} file not found ({hint})", file=value)


def resolve_data_path(value: str | Path) -> Path:
    """``sample:NAME`` → the bundled sample file; other paths are relative to the working directory."""
    text = str(value)
    if text.startswith("sample:"):
        from medsift.data import sample_path

        return sample_path(text.removeprefix("sample:"))
    return Path(text).expanduser()
