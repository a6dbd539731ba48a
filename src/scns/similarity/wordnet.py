"""``wordnet``: similarity of WordNet 3.0 noun synsets of the classes, read offline with nltk.

The database files come from Debian's ``wordnet-base`` package (``/usr/share/wordnet``); nltk's
``WordNetCorpusReader`` reads them directly, with no ``nltk.download``. Two gaps are bridged:
Debian ships no ``lexnames`` file (its fixed 45 lexicographer file names are built in here), and
nltk only opens files under its data path (the folder is added to ``nltk.data.path``).

Metrics (nltk's definitions): ``wup`` (Wu-Palmer, default, in (0, 1]), ``path``
(1 / (1 + shortest path length), in (0, 1]) and ``lch`` (Leacock-Chodorow,
-log((shortest path length + 1) / (2 * D)) = log(2 * D * path), in (0, ~3.64]). ``D = 19`` is
WordNet 3.0's noun taxonomy depth as nltk counts it; lch is computed from ``path`` with it because
nltk's own ``lch_similarity`` first scans all 82k noun synsets for D (~30 s), for the same value.

Which synset is a class?
1. ``wnids``: WordNet ids such as Tiny-ImageNet's ``n01443537`` (one per class), by noun offset,
   or noun synset names such as ``dog.n.01`` (a folder dataset's folder names).
2. ``synsets``: an explicit class name -> synset name map (e.g. ``{"mouse": "mouse.n.01"}``).
3. The shipped, curated CIFAR-10/100 map (``data/wordnet_synsets.json``).
4. Otherwise the name's first noun sense (``maple_tree`` is looked up as ``maple_tree``), which
   may be the wrong sense: pass ``synsets`` for names that matter.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from scns.similarity.base import SimilarityError
from scns.similarity.registry import register_source
from scns.similarity.shipped import default_synsets, digest

METRICS = ("wup", "path", "lch")
_SYNSET_NAME = re.compile(r"[^.\s]+\.n\.\d{2}")
NOUN_TAXONOMY_DEPTH = 19  # nltk's max depth of WordNet 3.0 nouns (its lch_similarity's D)
DEFAULT_WORDNET_DIRS = ("/usr/share/wordnet", "/usr/local/share/wordnet", "/usr/share/WordNet-3.0/dict")
NLTK_HINT = "pip install 'scns[wordnet]'  (installs nltk)"
DATA_HINT = (
    "apt-get install -y wordnet-base  (Debian/Ubuntu; provides /usr/share/wordnet), "
    "or set SCNS_WORDNET_DIR to a WordNet 3.0 'dict' folder"
)

# WordNet 3.0 lexicographer files, in file-number order (wndb(5WN) / lexnames(5WN)).
_LEXNAMES = (
    "adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute noun.body "
    "noun.cognition noun.communication noun.event noun.feeling noun.food noun.group noun.location "
    "noun.motive noun.object noun.person noun.phenomenon noun.plant noun.possession noun.process "
    "noun.quantity noun.relation noun.shape noun.state noun.substance noun.time verb.body verb.change "
    "verb.cognition verb.communication verb.competition verb.consumption verb.contact verb.creation "
    "verb.emotion verb.motion verb.perception verb.possession verb.social verb.stative verb.weather "
    "adj.ppl"
).split()
_LEXNAME_POS = {"adj": 3, "adv": 4, "noun": 1, "verb": 2}


def find_wordnet_dir(wordnet_dir: str | Path | None = None) -> Path:
    """The WordNet 3.0 database folder: the argument, ``$SCNS_WORDNET_DIR``, or a system location."""
    candidates = [wordnet_dir] if wordnet_dir else []
    if not candidates and os.environ.get("SCNS_WORDNET_DIR"):
        candidates = [os.environ["SCNS_WORDNET_DIR"]]
    if not candidates:
        candidates = list(DEFAULT_WORDNET_DIRS)
    for candidate in candidates:
        path = Path(candidate).expanduser()
        if (path / "data.noun").is_file() and (path / "index.noun").is_file():
            return path.resolve()
    raise SimilarityError(
        f"WordNet data not found (looked for data.noun and index.noun in {', '.join(map(str, candidates))}). "
        f"Install it: {DATA_HINT}"
    )


def load_wordnet(wordnet_dir: str | Path | None = None) -> Any:
    """An nltk ``WordNetCorpusReader`` over the WordNet 3.0 files (loaded once per folder, ~2-4 s,
    however the folder is named: the default, a relative or an absolute path)."""
    return _read_wordnet(find_wordnet_dir(wordnet_dir).resolve())


@lru_cache(maxsize=4)
def _read_wordnet(root: Path) -> Any:
    """:func:`load_wordnet` for a resolved folder (the cache key); failures are not cached."""
    try:
        import nltk.data
        from nltk.corpus.reader.wordnet import WordNetCorpusReader
    except ImportError:
        raise SimilarityError(f"the wordnet source needs nltk: {NLTK_HINT}") from None

    class _OfflineReader(WordNetCorpusReader):
        def open(self, fileid: str) -> Any:
            if fileid == "lexnames" and not (root / "lexnames").is_file():
                lines = (f"{i:02d}\t{n}\t{_LEXNAME_POS[n.split('.')[0]]}\n" for i, n in enumerate(_LEXNAMES))
                return io.StringIO("".join(lines))
            return super().open(fileid)

        def map_wn(self, version: str = "wordnet") -> None:
            return None  # no Open Multilingual Wordnet mapping: English 3.0 only

    if str(root) not in map(str, nltk.data.path):
        nltk.data.path.append(str(root))  # nltk >= 3.9 refuses to open files outside its data path
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "multilingual functions are not available"
            reader = _OfflineReader(str(root), None)
        version = reader.get_version()
    except Exception as err:
        raise SimilarityError(f"cannot read WordNet in {root} ({err}); reinstall it: {DATA_HINT}") from None
    if version != "3.0":
        raise SimilarityError(
            f"{root} holds WordNet {version}; the shipped synset maps, Tiny-ImageNet wnids and the lch depth "
            f"are WordNet 3.0: {DATA_HINT}"
        )
    return reader


def resolve_synsets(
    wn: Any,
    class_names: Sequence[str],
    synsets: Mapping[str, str] | None = None,
    wnids: Sequence[str] | None = None,
) -> list[Any]:
    """One nltk ``Synset`` per class (see the module docstring for the order of precedence).

    Raises:
        SimilarityError: a wnid or synset name that WordNet does not have, or a name with no noun
            sense; every failure is listed.
    """
    if wnids is not None and len(wnids) != len(class_names):
        raise SimilarityError(f"got {len(wnids)} wnids for {len(class_names)} classes; give one per class")
    curated = {**default_synsets(), **dict(synsets or {})}
    found, problems = [], []
    for i, name in enumerate(class_names):
        try:
            if wnids is not None:
                wnid = str(wnids[i])
                if _SYNSET_NAME.fullmatch(wnid):  # a synset name such as dog.n.01 (folder datasets)
                    found.append(wn.synset(wnid))
                    continue
                if len(wnid) != 9 or wnid[0] != "n" or not wnid[1:].isdigit():
                    raise ValueError(f"'{wnid}' is not a noun wnid like n01443537 or a synset like dog.n.01")
                found.append(wn.synset_from_pos_and_offset("n", int(wnid[1:])))
            elif name in curated:
                found.append(wn.synset(curated[name]))
            else:
                senses = wn.synsets(name.replace(" ", "_"), pos="n")
                if not senses:
                    raise ValueError("no noun sense; pass synsets={name: 'word.n.NN'}")
                found.append(senses[0])
        except Exception as err:  # nltk raises WordNetError, ValueError, LookupError
            problems.append(f"'{name}': {err}")
    if problems:
        raise SimilarityError(
            f"cannot map {len(problems)} class(es) to WordNet synsets: {'; '.join(problems)}"
        )
    return found


def synset_similarity(synsets: Sequence[Any], metric: str = "wup") -> Tensor:
    """Pairwise similarity of nltk synsets.

    Args:
        synsets: C noun synsets.
        metric: ``wup``, ``path`` or ``lch``.

    Returns:
        float32 [C, C], symmetric, diagonal = the metric's self-similarity.
    """
    if metric not in METRICS:
        raise SimilarityError(f"unknown WordNet metric '{metric}'; choose one of {', '.join(METRICS)}")
    c = len(synsets)
    out = torch.zeros(c, c, dtype=torch.float64)
    measure = "wup" if metric == "wup" else "path"
    for i in range(c):  # O(C^2) graph queries: WordNet has no vectorised form; runs once, then cached
        for j in range(i, c):
            a, b = synsets[i], synsets[j]
            value = getattr(a, f"{measure}_similarity")(b)
            out[i, j] = out[j, i] = float("nan") if value is None else value
    if metric == "lch":
        out = torch.log(2 * NOUN_TAXONOMY_DEPTH * out)
    return out.float()


class WordNetSimilarity:
    """WordNet synset similarity of the classes (see module docstring)."""

    name = "wordnet"

    def __init__(
        self,
        metric: str = "wup",
        synsets: Mapping[str, str] | None = None,
        wnids: Sequence[str] | None = None,
        wordnet_dir: str | None = None,
    ) -> None:
        if metric not in METRICS:
            raise SimilarityError(f"unknown WordNet metric '{metric}'; choose one of {', '.join(METRICS)}")
        self.metric = metric
        self.synsets = dict(synsets or {})
        self.wnids = None if wnids is None else [str(w) for w in wnids]
        self.wordnet_dir = wordnet_dir

    def fingerprint(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "synsets": self.synsets,
            "wnids": self.wnids,
            "curated": digest("wordnet_synsets.json"),
            "wordnet": "3.0",
        }

    def compute(self, class_names: list[str]) -> Tensor:
        wn = load_wordnet(self.wordnet_dir)
        return synset_similarity(resolve_synsets(wn, class_names, self.synsets, self.wnids), self.metric)


@register_source("wordnet", spec_arg="metric")
def wordnet(
    metric: str = "wup",
    synsets: Mapping[str, str] | None = None,
    wnids: Sequence[str] | None = None,
    wordnet_dir: str | None = None,
) -> WordNetSimilarity:
    """WordNet 3.0 similarity (``wup``, ``path`` or ``lch``); ``wnids`` for Tiny-ImageNet classes."""
    return WordNetSimilarity(metric=metric, synsets=synsets, wnids=wnids, wordnet_dir=wordnet_dir)
