"""Settings: one frozen dataclass, read from ``QA_*`` environment variables, overridable per call.

Precedence, lowest first: the defaults below, the environment (``QA_MODEL=...``), then explicit arguments
(CLI flags or keyword arguments; ``None`` means "use the setting").
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import ConfigError

__all__ = ["BACKENDS", "DEFAULT_MODEL", "Settings", "default_index_root", "get_settings"]

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
#: Ways to run the model: PyTorch, or an ONNX export of it under ONNX Runtime (float32 or int8 weights).
BACKENDS = ("torch", "onnx", "onnx-int8")

_PACKAGE_DIR = Path(__file__).resolve().parent


def default_index_root() -> Path:
    """Where indexes live when ``QA_INDEX_DIR`` is not set.

    From a source checkout (the package sits next to ``pyproject.toml`` and ``index/``) that is the
    checkout's ``index/`` folder; an installed package falls back to a per-user data folder, because
    site-packages may not be writable.
    """
    checkout = _PACKAGE_DIR.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / "index").is_dir():
        return checkout / "index"
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "qa" / "index"


@dataclass(frozen=True)
class Settings:
    """Every tunable of ``qa``. Each field maps to the environment variable ``QA_<FIELD>`` (upper case).

    Example:
        >>> from qa.config import Settings
        >>> Settings().replace(k=3).k
        3
    """

    model: str = DEFAULT_MODEL
    """Sentence-transformers model name or local path."""
    index_dir: Path | None = None
    """Folder holding the default index (``None``: ``index/`` in a checkout, else a per-user data folder)."""
    index: Path | None = None
    """Index used by retrieve/ask/serve when none is given (``None``: the bundled article's index)."""
    k: int = 5
    """Number of passages returned by ``retrieve``."""
    max_k: int = 100
    """Most passages the web app's ``/retrieve`` returns; a larger ``k`` is refused before any search."""
    scorer: str = "auto"
    """What ranks the candidates: ``auto`` (the learned scorer shipped for the index's model, else ``fusion``),
    ``fusion`` (the fixed channel weights below), a shipped scorer's name (``minilm``) or a scorer ``.json``."""
    answer_threshold: float | None = None
    """With a learned scorer: the confidence below which ``answer`` declines (``None``: the scorer's own,
    chosen on dev data to maximise answer-triggering F1)."""
    min_score: float = 0.112
    """With ``scorer=fusion``: abstention threshold on the best passage's fused score."""
    weight_bm25: float = 1.0
    """Fusion weight of BM25 over the sentence (with its document title)."""
    weight_bm25_context: float = 0.5
    """Fusion weight of BM25 over the sentence's window (title and neighbouring sentences)."""
    weight_dense: float = 0.25
    """Fusion weight of the sentence embedding's cosine similarity."""
    weight_dense_context: float = 0.25
    """Fusion weight of the window embedding's cosine similarity (title and neighbouring sentences)."""
    focus_weight: float = 1.5
    """How much more a word of the question's focus ("which *economic sectors* ...") counts in BM25 (1: no more)."""
    answer_sentences: int = 2
    """At most this many sentences make up an extractive answer."""
    answer_margin: float | None = None
    """A further sentence joins the answer only if its score is within this margin of the best one (``None``:
    0.02 on fusion's scores, 1.5 on a learned scorer's log-odds)."""
    context: int = 1
    """Neighbouring sentences shown on each side of a cited sentence."""
    index_type: str = "auto"
    """FAISS index for the vectors: ``flat`` (exact), ``ivf`` (clustered, 8-bit codes) or ``auto`` (by size)."""
    exact_limit: int = 20_000
    """With ``index_type=auto``, indexes up to this many sentences are exact (flat)."""
    nprobe: int = 0
    """Clusters an ``ivf`` index scans per query (0: chosen by size for recall@10 >= 0.95)."""
    batch_size: int = 32
    """Sentences per forward pass when embedding."""
    device: str = "cpu"
    """Torch device for the model."""
    backend: str | None = None
    """How the model runs: ``torch``, ``onnx`` (ONNX Runtime) or ``onnx-int8`` (ONNX Runtime, int8 weights);
    ``None``: the model's own default (see :attr:`effective_backend`)."""
    model_cache_dir: Path | None = None
    """Folder for the ONNX exports of the model and the reassembled accurate model (``None``: ``qa/onnx`` in the
    user's cache folder)."""
    ray_address: str | None = None
    """Builds run the model on Ray (``qa[ray]``): ``local`` (an instance started for the build) or a cluster's
    address (``host:port``, ``ray://host:port``, ``auto``); ``None``: no Ray."""
    milvus_lexical: str = "auto"
    """Where an index saved to Milvus keeps its BM25 channels: ``milvus`` (sparse vectors, Milvus 2.4 or later or
    Milvus Lite), ``local`` (rebuilt from the text by each process that opens it), ``auto`` (sparse vectors when
    the server has them)."""
    max_file_mb: float = 50.0
    """Files larger than this are refused when indexing (uploads included)."""
    max_unpacked_mb: float = 200.0
    """A zip-based file (.docx) that unpacks to more than this many MB is refused, checked while unpacking."""
    max_zip_ratio: float = 200.0
    """A zip member (over 1 MB unpacked) that unpacks to more than this many times its packed size is refused."""
    max_xml_elements: int = 3_000_000
    """A zip-based file whose XML holds more elements than this is refused before it is parsed (memory)."""
    max_document_chars: int = 5_000_000
    """A document with more characters of text than this is refused (a PDF stops being read at the limit)."""
    max_document_sentences: int = 50_000
    """A document with more sentences (or a .docx with more paragraphs) than this is refused."""
    max_upload_sentences: int = 100_000
    """Sentences one web upload may add, over all its files; the files after the limit are refused unread."""
    max_question_chars: int = 2000
    """Longer questions are refused with a clear message."""
    progress: bool | None = None
    """Progress bars on long runs (``None``: only when stderr is a terminal)."""
    verify_model: bool = True
    """Check the SHA-256 of the default model's weights before first use."""
    allow_download: bool = False
    """Let sentence-transformers fetch a model that is not on this machine (off: fully offline)."""
    host: str = "127.0.0.1"
    """Address the web app binds to."""
    port: int = 7860
    """Port the web app listens on."""
    feedback_dir: Path | None = None
    """Folder for the UI's thumbs up/down log (``None``: ``feedback/`` under the index folder)."""
    auth: str | None = field(default=None, repr=False)
    """Web login as ``user:password``; set it in the environment (``QA_AUTH``), never on the command line."""
    auth_file: Path | None = None
    """File with one ``user:password`` line per account, for the web login."""
    concurrency: int = 4
    """Questions the web app answers at the same time."""

    def replace(self, **overrides: Any) -> Settings:
        """Return a copy with the given fields changed; ``None`` values are ignored (keep the setting)."""
        changes = {name: value for name, value in overrides.items() if value is not None}
        types = {f.name: str(f.type) for f in fields(self)}
        unknown = set(changes) - set(types)
        if unknown:
            raise ConfigError(f"unknown setting(s) {sorted(unknown)}; see the README's Settings table")
        for name, value in changes.items():
            if "Path" in types[name] and isinstance(value, str):
                changes[name] = Path(value).expanduser()
        return _validated(dataclasses.replace(self, **changes))

    @property
    def weights(self) -> dict[str, float]:
        """Fusion weight of each retrieval channel, by channel name."""
        return {
            "bm25": self.weight_bm25,
            "bm25_context": self.weight_bm25_context,
            "dense": self.weight_dense,
            "dense_context": self.weight_dense_context,
        }

    @property
    def effective_backend(self) -> str:
        """The backend the model runs on: ``backend`` if set, else ``torch`` off the CPU, else the model's default.

        The default is ``onnx-int8``, except for models that int8 weights harm (the accurate model, which runs
        on ``onnx``: see :func:`qa.models.default_backend`).

        Example:
            >>> from qa.config import Settings
            >>> Settings().effective_backend, Settings(model="all-mpnet-base-v2").effective_backend
            ('onnx-int8', 'onnx')
        """
        if self.backend is not None:
            return self.backend
        if self.device != "cpu":
            return "torch"
        from .models import default_backend

        return default_backend(self.model)

    @property
    def index_root(self) -> Path:
        """The resolved folder of the default index."""
        return self.index_dir if self.index_dir is not None else default_index_root()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``QA_*`` variables in ``environ`` (default ``os.environ``)."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f"QA_{f.name.upper()}")
            if raw is None or raw.strip() == "":
                continue
            values[f.name] = _parse(f.name, str(f.type), raw.strip())
        return _validated(cls(**values))


def _parse(name: str, type_name: str, raw: str) -> Any:
    var = f"QA_{name.upper()}"
    try:
        if "bool" in type_name:
            lowered = raw.lower()
            if lowered in {"1", "true", "yes", "on"}:
                return True
            if lowered in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)
        if type_name.startswith("int"):
            return int(raw)
        if type_name.startswith("float"):
            return float(raw)
        if "Path" in type_name:
            return Path(raw).expanduser()
        return raw
    except ValueError:
        expected = type_name.replace(" | None", "")
        raise ConfigError(f"{var}={raw!r} is not a valid {expected}; unset it or give a {expected}") from None


#: Limits on what one document (or upload) may cost that count things, so are whole numbers of at least 1.
_COUNT_LIMITS = ("max_xml_elements", "max_document_chars", "max_document_sentences", "max_upload_sentences")


def _validated(s: Settings) -> Settings:
    checks: list[tuple[bool, str]] = [
        (s.k >= 1, f"k={s.k} must be at least 1"),
        (s.max_k >= 1, f"max_k={s.max_k} must be at least 1"),
        (s.answer_sentences >= 1, f"answer_sentences={s.answer_sentences} must be at least 1"),
        (s.context >= 0, f"context={s.context} must be 0 or more"),
        (s.batch_size >= 1, f"batch_size={s.batch_size} must be at least 1"),
        (s.max_question_chars >= 1, f"max_question_chars={s.max_question_chars} must be at least 1"),
        (-1.0 <= s.min_score <= 1.0, f"min_score={s.min_score} must be between -1 and 1"),
        (
            s.answer_threshold is None or 0.0 <= s.answer_threshold <= 1.0,
            f"answer_threshold={s.answer_threshold} must be a probability between 0 and 1",
        ),
        (s.answer_margin is None or s.answer_margin >= 0, f"answer_margin={s.answer_margin} must be 0 or more"),
        (bool(s.scorer.strip()), "scorer must not be empty; use auto, fusion, a scorer name or a .json path"),
        (0 < s.port < 65536, f"port={s.port} must be between 1 and 65535"),
        (min(s.weights.values()) >= 0 < sum(s.weights.values()), f"weights {s.weights} must be >= 0, not all 0"),
        (s.focus_weight > 0, f"focus_weight={s.focus_weight} must be positive (1 counts focus words like others)"),
        (s.index_type in {"auto", "flat", "ivf"}, f"index_type={s.index_type!r} must be auto, flat or ivf"),
        (s.milvus_lexical in {"auto", "milvus", "local"},
         f"milvus_lexical={s.milvus_lexical!r} must be auto, milvus or local"),
        (s.exact_limit >= 0 and s.nprobe >= 0, "exact_limit and nprobe must be 0 or more"),
        (s.max_file_mb > 0, f"max_file_mb={s.max_file_mb} must be positive"),
        (s.max_unpacked_mb > 0, f"max_unpacked_mb={s.max_unpacked_mb} must be positive"),
        (s.max_zip_ratio >= 1, f"max_zip_ratio={s.max_zip_ratio} must be at least 1"),
        *((getattr(s, name) >= 1, f"{name}={getattr(s, name)} must be at least 1") for name in _COUNT_LIMITS),
        (s.concurrency >= 1, f"concurrency={s.concurrency} must be at least 1"),
        (s.backend is None or s.backend in BACKENDS, f"backend={s.backend!r} must be one of {', '.join(BACKENDS)}"),
        (
            s.backend in (None, "torch") or s.device == "cpu",
            f"backend={s.backend} runs on the CPU only; use backend=torch with device={s.device}",
        ),
        (bool(s.model.strip()), "model must not be empty"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(f"invalid setting: {message}")
    from .models import backend_problem

    problem = backend_problem(s.model, s.backend)
    if problem:
        raise ConfigError(f"invalid setting: {problem}")
    return s


def get_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with ``overrides`` (``None`` values ignored) on top.

    Example:
        >>> from qa.config import get_settings
        >>> get_settings(k=7).k
        7
    """
    return Settings.from_env().replace(**overrides)
