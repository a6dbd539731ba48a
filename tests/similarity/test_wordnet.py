"""wordnet source: shipped CIFAR maps, offline reader, metrics, wnids, install hints."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from scns.similarity import SimilarityError, class_similarity
from scns.similarity.shipped import cifar_class_names, load_json


def test_shipped_maps_cover_every_cifar_class_exactly() -> None:
    maps = load_json("wordnet_synsets.json")
    for dataset in ("cifar10", "cifar100"):
        assert list(maps[dataset]) == cifar_class_names(dataset)
        assert all(s.count(".n.") == 1 for s in maps[dataset].values())
    assert len(set(maps["cifar100"].values())) == 100  # no two classes share a sense


def test_shipped_synsets_resolve(wn) -> None:
    maps = load_json("wordnet_synsets.json")
    for mapping in (maps["cifar10"], maps["cifar100"]):
        for name, synset in mapping.items():
            assert wn.synset(synset).pos() == "n", name


def _ancestors(wn, synset: str) -> set[str]:
    return {h.name() for path in wn.synset(synset).hypernym_paths() for h in path}


@pytest.mark.parametrize(
    ("name", "ancestor"),
    [
        ("mouse", "rodent.n.01"),
        ("plain", "land.n.04"),
        ("ray", "fish.n.01"),
        ("seal", "pinniped_mammal.n.01"),
        ("tank", "military_vehicle.n.01"),
        ("apple", "edible_fruit.n.01"),
        ("orange", "edible_fruit.n.01"),
        ("sweet_pepper", "vegetable.n.01"),
        ("maple_tree", "tree.n.01"),
        ("aquarium_fish", "fish.n.01"),
        ("beaver", "rodent.n.01"),
        ("turtle", "reptile.n.01"),
        ("tiger", "big_cat.n.01"),
    ],
)
def test_curated_senses_are_the_pictured_ones(wn, name: str, ancestor: str) -> None:
    synset = load_json("wordnet_synsets.json")["cifar100"][name]
    assert ancestor in _ancestors(wn, synset)


def test_metrics_equal_nltk_and_lexnames_are_built_in(wn) -> None:
    names = ["dog", "cat", "truck"]
    syn = [wn.synset(s) for s in ("dog.n.01", "cat.n.01", "truck.n.01")]
    assert syn[0].lexname() == "noun.animal"  # Debian ships no lexnames file
    for metric in ("wup", "path"):
        sim = class_similarity(f"wordnet:{metric}", names, use_cache=False)
        for i in range(3):
            for j in range(3):
                if i != j:
                    expected = getattr(syn[i], f"{metric}_similarity")(syn[j])
                    assert sim[i, j] == pytest.approx(expected, rel=1e-6)
    lch = class_similarity("wordnet:lch", names, use_cache=False)
    assert lch[0, 1] == pytest.approx(2.0281482472922856, rel=1e-6)  # nltk lch(dog, cat)
    wup = class_similarity("wordnet", names, use_cache=False)
    assert wup[0, 1] == pytest.approx(0.857142857, rel=1e-6)  # published nltk wup(dog, cat)
    assert wup[0, 1] > wup[0, 2]


@pytest.mark.slow
def test_lch_equals_nltk_lch_similarity(wn) -> None:
    """nltk's lch scans every noun synset for the taxonomy depth (~30 s); ours uses the constant."""
    names = ["dog", "cat", "truck", "oak_tree"]
    syn = [wn.synset(s) for s in ("dog.n.01", "cat.n.01", "truck.n.01", "oak.n.02")]
    lch = class_similarity("wordnet:lch", names, use_cache=False)
    for i in range(4):
        for j in range(4):
            if i != j:
                assert lch[i, j] == pytest.approx(syn[i].lch_similarity(syn[j]), rel=1e-6)


def test_tiny_imagenet_wnids_map_by_noun_offset(wn) -> None:
    sim = class_similarity(
        "wordnet",
        ["goldfish", "tabby", "school bus"],
        wnids=["n01443537", "n02123045", "n04146614"],
        use_cache=False,
    )
    from scns.similarity.wordnet import resolve_synsets

    found = resolve_synsets(wn, ["a", "b", "c"], wnids=["n01443537", "n02123045", "n04146614"])
    assert [s.name() for s in found] == ["goldfish.n.01", "tabby.n.01", "school_bus.n.01"]
    assert sim[1, 0] > sim[1, 2]  # a cat is closer to a fish than to a bus


def test_explicit_synsets_and_first_sense_fallback(wn) -> None:
    from scns.similarity.wordnet import resolve_synsets

    found = resolve_synsets(wn, ["mouse", "violin"], synsets={"mouse": "mouse.n.04"})
    assert [s.name() for s in found] == ["mouse.n.04", "violin.n.01"]


def test_unresolvable_names_and_bad_wnids_are_listed(wn) -> None:
    with pytest.raises(SimilarityError, match="'qwzx': no noun sense"):
        class_similarity("wordnet", ["cat", "qwzx"], use_cache=False)
    with pytest.raises(SimilarityError, match="not a noun wnid"):
        class_similarity("wordnet", ["a", "b"], wnids=["n01443537", "x1"], use_cache=False)
    with pytest.raises(SimilarityError, match="2 wnids for 3 classes"):
        class_similarity("wordnet", ["a", "b", "c"], wnids=["n01443537", "n02123045"], use_cache=False)


def test_unknown_metric_is_an_error() -> None:
    with pytest.raises(SimilarityError, match="wup, path, lch"):
        class_similarity("wordnet:jcn", ["cat", "dog"])


def test_missing_data_names_the_apt_command(tmp_path: Path) -> None:
    from scns.similarity.wordnet import find_wordnet_dir

    with pytest.raises(SimilarityError, match="apt-get install -y wordnet-base"):
        find_wordnet_dir(tmp_path)


def test_missing_nltk_names_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    from scns.similarity import wordnet

    if not (Path(wordnet.DEFAULT_WORDNET_DIRS[0]) / "data.noun").is_file():
        pytest.skip("needs the WordNet files to get past the data check")
    monkeypatch.setitem(sys.modules, "nltk", None)
    monkeypatch.setitem(sys.modules, "nltk.data", None)
    monkeypatch.setitem(sys.modules, "nltk.corpus.reader.wordnet", None)
    # past load_wordnet's cache, which may hold the folder already (failures are not cached)
    with pytest.raises(SimilarityError, match=r"pip install 'scns\[wordnet\]'"):
        wordnet._read_wordnet.__wrapped__(Path(wordnet.DEFAULT_WORDNET_DIRS[0]))


def test_one_folder_is_read_once_however_it_is_named(wn) -> None:
    from scns.similarity import wordnet

    folder = wordnet.find_wordnet_dir(None)
    assert wordnet.load_wordnet() is wn
    assert wordnet.load_wordnet(None) is wn and wordnet.load_wordnet(str(folder) + "/./") is wn


def test_cifar10_wordnet_matrix_is_valid(wn) -> None:
    names = cifar_class_names("cifar10")
    sim = class_similarity("wordnet", names, use_cache=False)
    off = ~torch.eye(10, dtype=torch.bool)
    assert torch.isfinite(sim[off]).all() and (sim[off] > 0).all() and (sim[off] <= 1).all()
    cat, dog, truck, automobile = (names.index(n) for n in ("cat", "dog", "truck", "automobile"))
    assert sim[cat, dog] > sim[cat, truck]
    assert sim[truck, automobile] > sim[truck, cat]
