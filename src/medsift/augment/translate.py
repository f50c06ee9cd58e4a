"""Any ``transformers`` seq2seq translation model, addressed with ISO 639-1 language codes.

Three ways models name languages, told apart from the tokenizer:

- **NLLB-200** (``facebook/nllb-200-distilled-600M``, ...): FLORES-200 codes such as ``eng_Latn``; the source
  code is the tokenizer's ``src_lang``, the target code the forced first token of the output;
- **M2M-100** (``facebook/m2m100_418M``): ISO codes through ``tokenizer.get_lang_id``;
- **Marian** (``Helsinki-NLP/opus-mt-en-de``): one direction per model, no codes; a multi-target Marian model
  takes a ``>>fr<<`` prefix, which is used when its vocabulary has it.

``lang_codes`` overrides the FLORES-200 code of any language (``{"fa": "pes_Arab"}``).
"""

from __future__ import annotations

from typing import Any

from medsift.errors import MedsiftError

# ISO 639-1 -> FLORES-200 (NLLB-200). Persian is Western Persian (pes_Arab), the Farsi of the Task 1 test.
NLLB_CODES = {
    "ar": "arb_Arab",
    "de": "deu_Latn",
    "en": "eng_Latn",
    "es": "spa_Latn",
    "fa": "pes_Arab",
    "fr": "fra_Latn",
    "hi": "hin_Deva",
    "it": "ita_Latn",
    "ja": "jpn_Jpan",
    "ko": "kor_Hang",
    "nl": "nld_Latn",
    "pl": "pol_Latn",
    "pt": "por_Latn",
    "ru": "rus_Cyrl",
    "tr": "tur_Latn",
    "uk": "ukr_Cyrl",
    "zh": "zho_Hans",
}


class Translator:
    """A seq2seq model and its tokenizer, loaded once; :meth:`translate` takes a batch of one language pair."""

    def __init__(
        self,
        name: str,
        *,
        max_length: int = 256,
        num_beams: int = 1,
        lang_codes: dict[str, str] | None = None,
        device: str | None = None,
        model: Any = None,
        tokenizer: Any = None,
    ):
        import torch
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        from medsift.models.hub import load_pretrained

        self.name, self.max_length, self.num_beams = name, max_length, num_beams
        self.codes = {**NLLB_CODES, **(lang_codes or {})}
        self.tokenizer = tokenizer or load_pretrained(AutoTokenizer.from_pretrained, name)
        self.model = model or load_pretrained(AutoModelForSeq2SeqLM.from_pretrained, name)
        if not getattr(self.model.config, "is_encoder_decoder", False):
            raise MedsiftError(
                f"model {name!r} is not a seq2seq (encoder-decoder) model; use a translation model"
            )
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model.to(self.device).eval()
        self.style = self._style()

    def _style(self) -> str:
        vocab = self.tokenizer.get_vocab()
        if "eng_Latn" in vocab or any(code in vocab for code in self.codes.values()):
            return "nllb"
        if hasattr(self.tokenizer, "get_lang_id"):
            return "m2m"
        return "marian"

    def _nllb_code(self, lang: str) -> str:
        code = self.codes.get(lang, lang)
        if code not in self.tokenizer.get_vocab():
            raise MedsiftError(
                f"translation model {self.name!r} has no language code {code!r} for {lang!r}; give one with "
                f"--lang-code {lang}=CODE (FLORES-200, e.g. {lang}=xxx_Latn)"
            )
        return code

    def _target_settings(
        self, source: str, target: str, texts: list[str]
    ) -> tuple[list[str], dict[str, Any]]:
        if self.style == "nllb":
            if hasattr(self.tokenizer, "src_lang"):
                self.tokenizer.src_lang = self._nllb_code(source)
            return texts, {
                "forced_bos_token_id": self.tokenizer.convert_tokens_to_ids(self._nllb_code(target))
            }
        if self.style == "m2m":
            self.tokenizer.src_lang = source
            return texts, {"forced_bos_token_id": self.tokenizer.get_lang_id(target)}
        prefix = f">>{target}<<"
        if prefix in self.tokenizer.get_vocab():  # a multi-target Marian model
            return [f"{prefix} {t}" for t in texts], {}
        return texts, {}

    def translate(self, texts: list[str], source: str, target: str) -> list[str]:
        """Translate ``texts`` (all in ``source``) into ``target``; blank posts stay blank."""
        import torch

        keep = [i for i, t in enumerate(texts) if t.strip()]
        out = [""] * len(texts)
        if not keep:
            return out
        inputs, generate_kwargs = self._target_settings(source, target, [texts[i] for i in keep])
        encoded = self.tokenizer(
            inputs, return_tensors="pt", padding=True, truncation=True, max_length=self.max_length
        ).to(self.device)
        encoded.pop("token_type_ids", None)
        with torch.inference_mode():
            generated = self.model.generate(
                **encoded, max_new_tokens=self.max_length, num_beams=self.num_beams, **generate_kwargs
            )  # (batch, new_len)
        decoded = self.tokenizer.batch_decode(generated, skip_special_tokens=True)
        for i, text in zip(keep, decoded, strict=True):
            out[i] = " ".join(text.split())
        return out
