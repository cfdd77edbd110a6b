"""Optional translation before judging: the paper put Tibetan and Mongolian statements and
chunks through NLLB into Chinese, since its judge reads neither. A configured seq2seq
model translates the texts of `translate.languages`; translations are cached by content
hash like judgments."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from xcult.config import TranslateConfig


class Translator:
    def __init__(self, cfg: TranslateConfig):
        import torch
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        from xcult.devices import resolve_device

        self.torch, self.cfg = torch, cfg
        self.device = resolve_device(cfg.device)
        self.tok = AutoTokenizer.from_pretrained(cfg.model)
        self.model = AutoModelForSeq2SeqLM.from_pretrained(cfg.model).to(self.device).eval()
        self.max_len = min(getattr(self.tok, "model_max_length", 1024) or 1024, 1024)

    def translate(self, texts: list[str], lang: str) -> list[str]:
        c = self.cfg
        if hasattr(self.tok, "src_lang"):
            self.tok.src_lang = c.codes[lang]
        target_id = self.tok.convert_tokens_to_ids(c.codes[c.target])
        kwargs = {"max_new_tokens": c.max_new_tokens}
        if target_id is not None and target_id != self.tok.unk_token_id:
            kwargs["forced_bos_token_id"] = target_id
        out = []
        for start in range(0, len(texts), c.batch_size):
            batch = self.tok(texts[start : start + c.batch_size], return_tensors="pt", padding=True, truncation=True, max_length=self.max_len)
            with self.torch.inference_mode():
                ids = self.model.generate(**batch.to(self.device), **kwargs)
            out += self.tok.batch_decode(ids, skip_special_tokens=True)
        return out


def translate_pairs(
    cfg: TranslateConfig, langs: list[str], statements: list[str], chunks: list[str], cache_dir: Path
) -> tuple[list[str], list[str], int]:
    """Statements and chunks with those of `cfg.languages` translated; returns them and
    the number of texts translated now (not from the cache)."""
    from xcult.density.cache import Cache

    cache = Cache(cache_dir, dtype=pl.Utf8)
    rows = [i for i, lang in enumerate(langs) if lang in cfg.languages]
    if not rows:
        return statements, chunks, 0
    translator = None
    ident = {"translator": cfg.model, "target": cfg.codes[cfg.target], "max_new_tokens": cfg.max_new_tokens}
    statements, chunks = list(statements), list(chunks)
    done = 0
    for lang in sorted({langs[i] for i in rows}):
        mine = [i for i in rows if langs[i] == lang]
        texts = list(dict.fromkeys([statements[i] for i in mine] + [chunks[i] for i in mine]))
        keys = {t: cache.key(ident, lang, t) for t in texts}
        todo = [t for t in texts if keys[t] not in cache.values]
        if todo and translator is None:
            translator = Translator(cfg)  # loaded only when something is not cached
        for start in range(0, len(todo), cfg.batch_size * 8):
            part = todo[start : start + cfg.batch_size * 8]
            cache.add([keys[t] for t in part], translator.translate(part, lang))
        done += len(todo)
        for i in mine:
            statements[i] = cache.values[keys[statements[i]]]
            chunks[i] = cache.values[keys[chunks[i]]]
    return statements, chunks, done
