"""Class-to-class similarity from named sources, cached on disk.

Sources (``SIMILARITY_SOURCES``; a spec ``NAME[:ARG]`` builds one):

* ``glove``: cosine of GloVe 6B word vectors of the class names (extra ``scns[glove]``).
* ``wordnet[:wup|path|lch]``: WordNet 3.0 synset similarity (extra ``scns[wordnet]`` + Debian
  ``wordnet-base``); curated CIFAR maps ship, Tiny-ImageNet wnids map by offset.
* ``text[:TEMPLATE]``: cosine of sentence embeddings of "a photo of a {name}" (extra ``scns[text]``).
* ``prototypes:RUN_DIR``: cosine of a trained model's per-class mean features (training split).
* ``confusion:RUN_DIR[:mode=hard|soft]``: symmetrised confusion of a trained model on its
  training split (``:split=test`` is allowed for analysis and warns: a test-label leak).
* ``hierarchy[:TIEBREAK]``: 1 within a coarse group, 0 across, ties broken by another source.
* ``teacher:prototypes|confusion``: in distillation, the loaded teacher's class prototypes or
  soft-label confusion on the training set (no extra run).
* ``random[:seed=N]``: a seeded random matrix, the control for the semantic sources.
* ``bank`` (dynamic, training only): cosine of the memory bank's class means, each epoch.

Composite specs (:mod:`scns.similarity.spec`): ``wordnet+glove`` orders by WordNet and breaks its
ties with GloVe; ``glove:0.5+wordnet:0.5`` blends percentiles; ``glove:0.5+bank:0.5`` splits into
a static part and a dynamic part (:class:`SimilaritySpec`: ``parse``, ``static_names``,
``dynamic_names``, ``static_part``, ``combine``). Options ride in a spec as ``:KEY=VALUE``
(``confusion:RUN_DIR:split=test``).

Every matrix is float32 [C, C], symmetric, with ``-inf`` on the diagonal (see ``base``).

Top-k classes: :func:`topk_weights` (float64 [C, C], whole tie groups share the slots left at the
k-th place, rows sum to k; never depends on class order) is what class-level negatives use;
:func:`top_k` (int64 [C, k], ties broken by lower class id) is the legacy selection the earlier
grids ran on; :func:`topk_tie_stats` counts how many rows and slots that legacy cut leaves to
tie order.

Example::

    from scns.similarity import class_similarity, top_k
    sim = class_similarity("wordnet", ["cat", "dog", "truck"])   # [3, 3]
    top_k(sim, 1)                                                # tensor([[1], [0], [0]])
"""

from scns.registry import import_submodules
from scns.similarity.api import class_similarity, load_similarity
from scns.similarity.bank import bank_class_similarity
from scns.similarity.base import (
    DEFAULT_RTOL,
    ClassSimilarity,
    SimilarityError,
    cosine_matrix,
    finalize_similarity,
    top_k,
    topk_split,
    topk_tie_stats,
    topk_weights,
)
from scns.similarity.cache import SimilarityCache, cache_key, default_cache_dir
from scns.similarity.confusion import confusion_similarity, soft_confusion_similarity
from scns.similarity.context import imageset_context
from scns.similarity.glove import WordVectors
from scns.similarity.hierarchy import hierarchy_similarity
from scns.similarity.model_outputs import collect_outputs, model_similarity
from scns.similarity.prototypes import class_prototypes, prototype_similarity
from scns.similarity.registry import (
    SIMILARITY_SOURCES,
    SimilaritySource,
    build_source,
    parse_spec,
    register_source,
    spec_help,
)
from scns.similarity.spec import (
    DYNAMIC_SOURCES,
    SimilaritySpec,
    SimilarityTerm,
    lexicographic_similarity,
    percentile_similarity,
)

__all__ = [
    "DEFAULT_RTOL",
    "DYNAMIC_SOURCES",
    "SIMILARITY_SOURCES",
    "ClassSimilarity",
    "SimilarityCache",
    "SimilarityError",
    "SimilaritySource",
    "SimilaritySpec",
    "SimilarityTerm",
    "WordVectors",
    "bank_class_similarity",
    "build_source",
    "cache_key",
    "class_prototypes",
    "class_similarity",
    "collect_outputs",
    "confusion_similarity",
    "cosine_matrix",
    "default_cache_dir",
    "finalize_similarity",
    "hierarchy_similarity",
    "imageset_context",
    "lexicographic_similarity",
    "load_similarity",
    "model_similarity",
    "parse_spec",
    "percentile_similarity",
    "prototype_similarity",
    "register_source",
    "soft_confusion_similarity",
    "spec_help",
    "top_k",
    "topk_split",
    "topk_tie_stats",
    "topk_weights",
]

# every source module registers itself: a new source is one file in this package
import_submodules(__name__, __path__)
