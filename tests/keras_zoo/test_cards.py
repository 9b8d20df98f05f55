"""The model cards (keras_zoo.cards) against the seed documents and fixture readmes they were written from;
the list command."""

import dataclasses
import re
import subprocess
import sys
import textwrap

import pytest

import keras_zoo
from keras_zoo import cards, listing, models
from tests.helpers import FIXTURES, ROOT

SEEDS = FIXTURES.parent / "seeds"
BUILDERS = ["VGG16", "VGG19", "VGGF", "VGGM", "VGGS", "VGGM128", "VGGM1024", "VGGM2048", "VGGFace", "AlexNet",
            "CaffeNet", "RCNNILSVRC13", "GoogLeNet", "ResNet50", "ResNet101", "ResNet152", "FCN32s", "FCN16s",
            "FCN8s"]


# the saved text of the pages the cards were written from, in a folder beside the fixtures directory
SOURCE_PAGES = {"000": "MatConvNet's pretrained-models page", "002": "the VGG team's VGG-16 model-zoo gist",
                "003": "Caffe's Model Zoo page"}


def _seed(prefix):
    paths = sorted(SEEDS.glob(f"{prefix}_*.txt"))
    if not paths:
        pytest.skip(f"the saved text of {SOURCE_PAGES[prefix]}, {SEEDS}/{prefix}_*.txt, is absent (it is looked "
                    "for beside the fixtures directory: set KERAS_ZOO_FIXTURES)")
    return paths[0].read_text(encoding="utf-8")


def _mat_sources():
    return {source.file.filename: source for card in cards.CARDS for source in card.weights
            if source.format == "mat"}


def test_one_card_per_builder_each_with_one_default_source():
    assert [card.name for card in cards.list_models()] == BUILDERS
    for card in cards.CARDS:
        assert card.name in keras_zoo.__all__
        assert card.task in ("classification", "segmentation", "face")
        assert sum(source.default for source in card.weights) == 1, card.name
        for source in card.weights:
            assert source.format in ("caffemodel", "mat")
            assert source.classes in cards.LABEL_SETS
            pre = source.input
            assert pre.channel_order == ("BGR" if source.format == "caffemodel" else "RGB")
            mean = pre.mean
            assert mean == "meta" or isinstance(mean, tuple) and len(mean) == 3 or mean.id in cards.MEANS


def test_aliases_are_unique_and_lower_case():
    seen = {}
    for card in cards.CARDS:
        assert card.aliases[0] == card.name.lower()
        for alias in card.aliases:
            assert alias == alias.lower()
            assert seen.setdefault(alias, card.name) == card.name, alias


@pytest.mark.parametrize("alias, name", [("vgg16", "VGG16"), ("ImageNet-VGG-VeryDeep-16", "VGG16"),
                                         ("resnet-50", "ResNet50"), ("resnet-152", "ResNet152"),
                                         ("caffe-alex", "AlexNet"), ("bvlc_googlenet", "GoogLeNet"),
                                         ("caffenet", "CaffeNet"), ("pascal-fcn8s-tvg-dag", "FCN8s")])
def test_get_card_by_alias(alias, name):
    assert cards.get_card(alias).name == name


def test_unknown_name_lists_close_matches():
    with pytest.raises(ValueError, match="resnet-50"):
        cards.get_card("resnet-05")


def test_cards_are_immutable():
    card = cards.get_card("vgg16")
    with pytest.raises(dataclasses.FrozenInstanceError):
        card.aliases = ()
    with pytest.raises(TypeError):
        card.source("caffe").port.rename["conv1_1"] = "conv1"
    with pytest.raises(TypeError):
        cards.LABEL_SETS["imagenet-caffe"] = None
    assert isinstance(cards.list_models(), tuple) and isinstance(card.weights, tuple)
    assert cards.CARDS[0].weights and cards.CARDS[0].aliases


def test_get_source_by_name_and_unknown_source():
    card = cards.get_card("fcn8s")
    assert card.source("tvg").file.filename == "pascal-fcn8s-tvg-dag.mat"
    with pytest.raises(ValueError, match="tvg"):
        card.source("nonesuch")


def test_every_seed_md5_is_on_its_matconvnet_source():
    table = dict(re.findall(r"^\|\s*([0-9a-f]{32})\s*\|\s*(\S+\.mat)\s*\|", _seed("000"), re.M))
    table = {name: md5 for md5, name in table.items()}
    assert len(table) == 24
    sources = _mat_sources()
    assert set(sources) == set(table)
    for name, md5 in table.items():
        assert sources[name].file.md5[0] == md5, name  # the seed's first; MatConvNet's re-export's second
        assert sources[name].file.url.endswith("/matconvnet/models/" + name)


def test_seed_ilsvrc_metrics_are_on_the_sources():
    rows = re.findall(r"^\|\s*([\w-]+)\|\s*\d{4}\|\s*([\d.]+)\|\s*([\d.]+)\|\s*([\d.]+)\|", _seed("000"), re.M)
    assert len(rows) == 19
    sources = _mat_sources()
    for model, top1, top5, speed in rows:
        stem = f"imagenet-{model}.mat"
        metrics = sources[stem].metrics
        assert (metrics["top1_err"], metrics["top5_err"], metrics["images_per_s"]) == \
            (float(top1), float(top5), float(speed)), model


def test_bvlc_sha1_and_url_match_the_model_zoo_readmes():
    readmes = sorted((FIXTURES / "bvlc").glob("*/readme.md"))
    if not readmes:
        pytest.skip(f"the BVLC model-zoo readmes {FIXTURES}/bvlc/*/readme.md are absent (set KERAS_ZOO_FIXTURES)")
    caffe_sources = {source.file.filename: source for card in cards.CARDS for source in card.weights
                     if source.format == "caffemodel"}
    for readme in readmes:
        front = dict(re.findall(r"^(\w+): (\S+)$", readme.read_text().split("---")[1], re.M))
        source = caffe_sources[front["caffemodel"]]
        assert source.file.sha1 == (front["sha1"],) and source.file.url == front["caffemodel_url"], readme


def test_vgg16_caffe_source_follows_the_gist():
    text = _seed("002")
    source = cards.get_card("vgg16").source("caffe")
    assert f"caffemodel_url: {source.file.url}" in text
    gist_mean = [float(v) for v in re.search(r"BGR values should be subtracted: \[([^\]]+)\]", text)[1].split(",")]
    assert source.input.mean == tuple(gist_mean)


def test_fcn_caffe_urls_match_the_fcn_repository():
    for stride in (32, 16, 8):
        url_file = FIXTURES / f"fcn/voc-fcn{stride}s/caffemodel-url"
        if not url_file.exists():
            pytest.skip(f"fixture file {url_file} is absent (set KERAS_ZOO_FIXTURES)")
        source = cards.get_card(f"FCN{stride}s").source("caffe")
        assert source.file.url == url_file.read_text().strip()


def test_get_model_calls_the_builder(monkeypatch):
    calls = []
    monkeypatch.setitem(models.registry.BUILDERS, "ResNet152", lambda **kwargs: calls.append(kwargs) or "model")
    assert models.get_model("RESNET-152", weights=None, include_top=False) == "model"
    assert calls == [{"weights": None, "include_top": False}]


def test_list_command_prints_every_model(capsys):
    assert listing.main(["--sources"]) == 0
    out = capsys.readouterr().out
    for name in BUILDERS:
        assert re.search(rf"^{name}\s", out, re.M), name
    assert "pascal-fcn8s-tvg-dag.mat" in out and "2a42dd1d2987983dacffc436cca5dabf" in out


def test_cards_and_the_list_command_import_no_keras():
    """The cards are plain data and the list command reads only them (keras_zoo/__init__ is bypassed: it
    registers the custom layers)."""
    script = textwrap.dedent("""
        import sys, types
        package = types.ModuleType("keras_zoo")
        package.__path__ = [sys.argv[1] + "/keras_zoo"]
        sys.modules["keras_zoo"] = package
        from keras_zoo import listing
        listing.main(["--sources"])
        heavy = sorted(name for name in sys.modules if name.split(".")[0] in ("keras", "tensorflow", "numpy"))
        assert not heavy, heavy
    """)
    result = subprocess.run([sys.executable, "-c", script, str(ROOT)], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "pascal-fcn8s-tvg-dag.mat" in result.stdout
